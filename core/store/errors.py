"""Why the history database cannot be used, each as one clear line a person can act on."""

from __future__ import annotations


class StoreError(Exception):
    """The history database cannot be opened or used; the message names the file and the cause."""


class NotAGpuopsDatabase(StoreError):
    """The file exists but is not a gpuops history (garbage, or another application's SQLite file).
    It is left exactly as it was."""


class DamagedDatabase(StoreError):
    """The file is a gpuops history but cannot be read (truncated or corrupt). It is left as it was."""


class DatabaseTooNew(StoreError):
    """The file was written by a newer gpuops whose schema this version does not know."""


class NoHistory(StoreError):
    """Reading was asked for but there is no history file at the path."""


class CollectorRunning(StoreError):
    """Another process already writes to this database."""
