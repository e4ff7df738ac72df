"""Test session setup: headless Qt, and config/data directories that never touch the real ones."""

from __future__ import annotations

import gc
import os
import tempfile

import pytest

pytest_plugins = ("tests.fake_nvml.fixtures", "tests.cli_support")

# Must precede any Qt import: with no DISPLAY and no platform, Qt aborts the interpreter.
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

_HOME = tempfile.mkdtemp(prefix="gpuops-test-home-")
for _var, _sub in (
    ("XDG_CONFIG_HOME", "config"), ("XDG_DATA_HOME", "data"), ("XDG_CACHE_HOME", "cache"), ("XDG_STATE_HOME", "state"),
):
    os.environ[_var] = os.path.join(_HOME, _sub)


@pytest.fixture(autouse=True)
def _collect_garbage_between_gui_tests(request: pytest.FixtureRequest):
    """In a GUI test Python's cyclic collector runs only after the test, once its windows are
    closed and their worker threads have ended. Run at a random moment of a test that builds and
    drops windows by the dozen, while pollers and store workers were busy, it freed PySide
    wrappers and segfaulted in "Garbage-collecting" (twice in the full suite, in the GUI walk)."""
    if "qtbot" not in request.fixturenames:
        yield
        return
    gc.disable()
    try:
        yield
    finally:
        gc.enable()
        gc.collect()


@pytest.fixture(scope="session")
def postgres_server():
    """One throwaway PostgreSQL server for the session (tests/postgres_server.py)."""
    from tests.postgres_server import running_postgres

    with running_postgres() as server:
        yield server


@pytest.fixture
def team_db_url(postgres_server, request: pytest.FixtureRequest) -> str:
    """A fresh database with btree_gist on the session's server, for one test; its URL (no password)."""
    import re

    name = "t_" + re.sub(r"[^a-z0-9_]", "_", request.node.name.lower())[:40] + f"_{os.getpid()}_{id(request) % 100000}"
    return postgres_server.create_database(name)
