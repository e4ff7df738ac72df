"""An alert service on a history database, as a collector runs it, for the alert tests."""

from __future__ import annotations

from pathlib import Path

from core.alerts.service import AlertService
from core.store.connection import open_database

POLL_S = 5.0


def open_service(path: Path) -> AlertService:
    """A service on its own connection to `path` (created if missing), polling every POLL_S;
    opening it again on the same file is a collector restart."""
    conn, _layout = open_database(path, create=True)
    return AlertService(conn, poll_interval_s=POLL_S)
