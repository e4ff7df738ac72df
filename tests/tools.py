"""External programs the tests drive (desktop-file-validate, poppler's pdfinfo, Prometheus, ...)."""

from __future__ import annotations

import os
import shutil

import pytest


def require_tool(*names: str, install: str = "scripts/dev.sh test installs it") -> str:
    """The path of the first of `names` found (a bare name on PATH or an absolute path).

    In CI (CI=true) a missing tool fails the test, since a skip would hide a missing install;
    elsewhere the test is skipped saying how to install it.
    """
    for name in names:
        path = shutil.which(name)
        if path is not None:
            return path
    reason = f"{os.path.basename(names[0])} is not installed ({install})"
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(reason + " - required in CI")
    pytest.skip(reason)
