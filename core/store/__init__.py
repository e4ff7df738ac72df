"""Durable, compact history of the fleet in one local SQLite file (WAL mode).

- `HistoryWriter` (writer.py): one transaction per poll into a durable head, then background
  compaction into per-GPU compressed chunks, rollups (1 min, 1 h) and pruning.
- `HistoryReader` (queries.py): per-GPU and fleet series at an automatic resolution, the fleet at
  a past instant, events.
- `collector_running` / `WriterLock` (locking.py): one writer per database.
- `open_read_only` (connection.py): a connection that never creates, writes or migrates, for
  `--read-only` and the read-only console.
- `default_db_path` (paths.py), `RetentionPolicy` (retention.py), errors (errors.py).
"""

from gpuops.core.store.connection import open_read_only
from gpuops.core.store.errors import (
    CollectorRunning,
    DamagedDatabase,
    DatabaseTooNew,
    NoHistory,
    NotAGpuopsDatabase,
    StoreError,
)
from gpuops.core.store.locking import WriterLock, collector_running
from gpuops.core.store.paths import default_db_path
from gpuops.core.store.queries import HistoryReader, HistoryTable, Series
from gpuops.core.store.retention import RetentionPolicy
from gpuops.core.store.writer import HistoryWriter, WriterStatus

__all__ = [
    "CollectorRunning",
    "DamagedDatabase",
    "DatabaseTooNew",
    "HistoryReader",
    "HistoryTable",
    "HistoryWriter",
    "NoHistory",
    "NotAGpuopsDatabase",
    "RetentionPolicy",
    "Series",
    "StoreError",
    "WriterLock",
    "WriterStatus",
    "collector_running",
    "default_db_path",
    "open_read_only",
]
