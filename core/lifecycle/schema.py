"""The lifecycle table, as one history migration (appended to core/store/schema.py MIGRATIONS).

One row per transition, never changed or deleted (triggers refuse it): the current state of a node
(`gpu_uuid` NULL) or of one GPU's override is its latest row. The rules that a writer other than
gpuops could break are checked here too: known states, a reason, the vendor case number of an RMA,
the end of a maintenance, and that nothing leaves retired.
"""

from __future__ import annotations

import sqlite_utils

from gpuops.core.allocations.schema import split_statements
from gpuops.core.lifecycle.states import State

_STATES = ", ".join(f"'{s.value}'" for s in State)

_SCRIPT = f"""
CREATE TABLE lifecycle_transitions (
    id INTEGER PRIMARY KEY,
    ts_ms INTEGER NOT NULL,
    node TEXT NOT NULL CHECK (length(node) > 0),
    gpu_uuid TEXT CHECK (gpu_uuid IS NULL OR length(gpu_uuid) > 0),
    state TEXT NOT NULL CHECK (state IN ({_STATES})),
    previous TEXT NOT NULL CHECK (previous IN ({_STATES})),
    reason TEXT NOT NULL CHECK (length(trim(reason)) > 0),
    ticket TEXT,
    user TEXT NOT NULL,
    until_ms INTEGER,
    expected_ms INTEGER,
    override_of TEXT,
    CHECK (state <> 'rma' OR length(trim(coalesce(ticket, ''))) > 0),
    CHECK (state <> 'maintenance' OR until_ms IS NOT NULL)
);
CREATE INDEX lifecycle_target ON lifecycle_transitions (node, gpu_uuid, id);
CREATE INDEX lifecycle_ts ON lifecycle_transitions (ts_ms);
CREATE TRIGGER lifecycle_retired_final BEFORE INSERT ON lifecycle_transitions
BEGIN
    SELECT RAISE(ABORT, 'lifecycle refused: retired is final')
    WHERE (SELECT state FROM lifecycle_transitions t
           WHERE t.node = NEW.node AND t.gpu_uuid IS NEW.gpu_uuid ORDER BY t.id DESC LIMIT 1) = 'retired';
END;
CREATE TRIGGER lifecycle_no_update BEFORE UPDATE ON lifecycle_transitions
BEGIN
    SELECT RAISE(ABORT, 'lifecycle history is append-only');
END;
CREATE TRIGGER lifecycle_no_delete BEFORE DELETE ON lifecycle_transitions
BEGIN
    SELECT RAISE(ABORT, 'lifecycle history is append-only');
END;
"""


def migrate_lifecycle(db: sqlite_utils.Database) -> None:
    """The lifecycle transitions table and its guards."""
    for statement in split_statements(_SCRIPT):
        db.conn.execute(statement)
