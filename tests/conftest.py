"""Test session setup: headless Qt, and config/data directories that never touch the real ones."""

from __future__ import annotations

import os
import tempfile

pytest_plugins = ("tests.fake_nvml.fixtures", "tests.cli_support")

# Must precede any Qt import: with no DISPLAY and no platform, Qt aborts the interpreter.
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

_HOME = tempfile.mkdtemp(prefix="gpuops-test-home-")
for _var, _sub in (
    ("XDG_CONFIG_HOME", "config"), ("XDG_DATA_HOME", "data"), ("XDG_CACHE_HOME", "cache"), ("XDG_STATE_HOME", "state"),
):
    os.environ[_var] = os.path.join(_HOME, _sub)
