"""The allocation tables, as one history migration (appended to core/store/schema.py MIGRATIONS).

`idle_hours` is derived data, a cache for accounting (see usage_history.py): for hours whose
1-minute rollups are final, the idle minutes at the hour's start and end and the idle windows
inside it, so a report does not decode those minutes again.

The invariants are enforced here as well as in `validation.py`, so that no writer (another
gpuops version, a script, the sqlite3 shell) can store a double booking:
- CHECK constraints: known contract types and statuses, positive GPU counts, end after start,
  equity terms on compute-for-equity contracts;
- triggers raising ABORT: a GPU is never allocated twice over overlapping time; an allocation lies
  within its contract's dates; a contract never holds more GPUs than it bought at any instant
  (the peak of concurrent allocations is reached at some allocation's start, so checking those
  instants is enough).
Intervals are half-open [start_ms, end_ms); NULL end = open-ended. 4611686018427387904 is
`model.OPEN_END_MS`.
"""

from __future__ import annotations

import sqlite3

import sqlite_utils

from gpuops.core.allocations.model import OPEN_END_MS, ContractStatus, ContractType

# The contract types and statuses as SQL value lists, for CHECK constraints (the team schema's too).
CONTRACT_TYPES_SQL = ", ".join(f"'{t.value}'" for t in ContractType)
CONTRACT_STATUSES_SQL = ", ".join(f"'{s.value}'" for s in ContractStatus)
_OPEN = str(OPEN_END_MS)

_TABLES = f"""
CREATE TABLE customers (
    id INTEGER PRIMARY KEY,
    name TEXT NOT NULL UNIQUE CHECK (length(trim(name)) > 0),
    contact TEXT NOT NULL DEFAULT '',
    notes TEXT NOT NULL DEFAULT ''
);
CREATE TABLE contracts (
    id INTEGER PRIMARY KEY,
    customer_id INTEGER NOT NULL REFERENCES customers(id),
    name TEXT NOT NULL CHECK (length(trim(name)) > 0),
    type TEXT NOT NULL CHECK (type IN ({CONTRACT_TYPES_SQL})),
    gpu_model TEXT NOT NULL CHECK (length(trim(gpu_model)) > 0),
    gpu_count INTEGER NOT NULL CHECK (gpu_count > 0),
    start_ms INTEGER NOT NULL,
    end_ms INTEGER CHECK (end_ms IS NULL OR end_ms > start_ms),
    price_per_gpu_hour REAL NOT NULL CHECK (price_per_gpu_hour >= 0),
    status TEXT NOT NULL DEFAULT 'active' CHECK (status IN ({CONTRACT_STATUSES_SQL})),
    equity_terms TEXT,
    compute_value_credited REAL,
    CHECK (type <> 'compute_for_equity' OR length(trim(coalesce(equity_terms, ''))) > 0),
    UNIQUE (customer_id, name)
);
CREATE TABLE allocations (
    id INTEGER PRIMARY KEY,
    contract_id INTEGER NOT NULL REFERENCES contracts(id),
    gpu_uuid TEXT NOT NULL CHECK (length(gpu_uuid) > 0),
    start_ms INTEGER NOT NULL,
    end_ms INTEGER CHECK (end_ms IS NULL OR end_ms > start_ms)
);
CREATE INDEX allocations_gpu ON allocations (gpu_uuid, start_ms);
CREATE INDEX allocations_contract ON allocations (contract_id, start_ms);
CREATE TABLE audit_log (
    id INTEGER PRIMARY KEY,
    ts_ms INTEGER NOT NULL,
    user TEXT NOT NULL,
    action TEXT NOT NULL,
    entity TEXT NOT NULL,
    entity_id INTEGER,
    before_json TEXT,
    after_json TEXT
);
CREATE INDEX audit_log_ts ON audit_log (ts_ms);
CREATE TABLE idle_hours (
    gpu_id INTEGER NOT NULL,
    hour_ms INTEGER NOT NULL,
    head_ms INTEGER NOT NULL,
    tail_ms INTEGER NOT NULL,
    inner_ms INTEGER NOT NULL,
    PRIMARY KEY (gpu_id, hour_ms)
) WITHOUT ROWID;
"""


def _allocation_checks(event: str) -> str:
    """A trigger body rejecting the NEW allocation row; shared by INSERT and UPDATE."""
    new_end = f"coalesce(NEW.end_ms, {_OPEN})"
    return f"""
CREATE TRIGGER allocations_valid_{event.lower()} BEFORE {event} ON allocations
BEGIN
    SELECT RAISE(ABORT, 'allocation refused: unknown contract')
    WHERE NOT EXISTS (SELECT 1 FROM contracts c WHERE c.id = NEW.contract_id);
    SELECT RAISE(ABORT, 'allocation refused: it lies outside its contract''s dates')
    FROM contracts c
    WHERE c.id = NEW.contract_id
      AND (NEW.start_ms < c.start_ms OR {new_end} > coalesce(c.end_ms, {_OPEN}));
    SELECT RAISE(ABORT, 'allocation refused: the GPU is already allocated over an overlapping time')
    WHERE EXISTS (
        SELECT 1 FROM allocations a
        WHERE a.gpu_uuid = NEW.gpu_uuid AND a.id IS NOT NEW.id
          AND a.start_ms < {new_end} AND NEW.start_ms < coalesce(a.end_ms, {_OPEN}));
    SELECT RAISE(ABORT, 'allocation refused: the contract would hold more GPUs than it bought')
    WHERE EXISTS (
        SELECT 1 FROM (
            SELECT NEW.start_ms AS t
            UNION
            SELECT a.start_ms FROM allocations a
            WHERE a.contract_id = NEW.contract_id AND a.id IS NOT NEW.id
              AND a.start_ms > NEW.start_ms AND a.start_ms < {new_end}
        ) AS instant
        WHERE (
            SELECT count(*) FROM allocations b
            WHERE b.contract_id = NEW.contract_id AND b.id IS NOT NEW.id
              AND b.start_ms <= instant.t AND instant.t < coalesce(b.end_ms, {_OPEN})
        ) + 1 > (SELECT gpu_count FROM contracts WHERE id = NEW.contract_id));
END;
"""


_CONTRACT_UPDATE = f"""
CREATE TRIGGER contracts_keep_allocations BEFORE UPDATE OF start_ms, end_ms, gpu_count ON contracts
BEGIN
    SELECT RAISE(ABORT, 'contract change refused: some of its allocations would lie outside its dates')
    WHERE EXISTS (
        SELECT 1 FROM allocations a WHERE a.contract_id = NEW.id
          AND (a.start_ms < NEW.start_ms OR coalesce(a.end_ms, {_OPEN}) > coalesce(NEW.end_ms, {_OPEN})));
    SELECT RAISE(ABORT, 'contract change refused: it holds more GPUs at once than the new count')
    WHERE EXISTS (
        SELECT 1 FROM allocations p WHERE p.contract_id = NEW.id
          AND (SELECT count(*) FROM allocations b
               WHERE b.contract_id = NEW.id AND b.start_ms <= p.start_ms
                 AND p.start_ms < coalesce(b.end_ms, {_OPEN})) > NEW.gpu_count);
END;
CREATE TRIGGER contracts_keep_customer BEFORE UPDATE OF customer_id ON contracts
WHEN NEW.customer_id IS NOT OLD.customer_id
BEGIN
    SELECT RAISE(ABORT, 'contract change refused: a contract cannot move to another customer');
END;
"""


_BULK_CHECKS = (
    ("allocation refused: unknown contract",
     "SELECT 1 FROM allocations a WHERE a.id > :after"
     " AND NOT EXISTS (SELECT 1 FROM contracts c WHERE c.id = a.contract_id) LIMIT 1"),
    ("allocation refused: it lies outside its contract's dates",
     f"SELECT 1 FROM allocations a JOIN contracts c ON c.id = a.contract_id WHERE a.id > :after"
     f" AND (a.start_ms < c.start_ms OR coalesce(a.end_ms, {_OPEN}) > coalesce(c.end_ms, {_OPEN})) LIMIT 1"),
    # Per GPU in start order, the latest end before an allocation must not pass its start.
    ("allocation refused: the GPU is already allocated over an overlapping time",
     f"SELECT 1 FROM (SELECT start_ms, max(coalesce(end_ms, {_OPEN})) OVER ("
     f"PARTITION BY gpu_uuid ORDER BY start_ms, id ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING) AS before_end"
     f" FROM allocations WHERE gpu_uuid IN (SELECT gpu_uuid FROM allocations WHERE id > :after))"
     f" WHERE before_end > start_ms LIMIT 1"),
    # Per contract, +1 at each start and -1 at each end (ends first at one instant: half-open).
    ("allocation refused: the contract would hold more GPUs than it bought",
     f"SELECT 1 FROM (SELECT contract_id,"
     f" sum(step) OVER (PARTITION BY contract_id ORDER BY t, step ROWS UNBOUNDED PRECEDING) AS held"
     f" FROM (SELECT contract_id, start_ms AS t, 1 AS step FROM allocations"
     f" WHERE contract_id IN (SELECT contract_id FROM allocations WHERE id > :after)"
     f" UNION ALL SELECT contract_id, coalesce(end_ms, {_OPEN}), -1 FROM allocations"
     f" WHERE contract_id IN (SELECT contract_id FROM allocations WHERE id > :after))) AS r"
     f" JOIN contracts c ON c.id = r.contract_id WHERE r.held > c.gpu_count LIMIT 1"),
)


def insert_allocations_in_bulk(conn: sqlite3.Connection, rows: list[tuple[int, str, int, int | None]]) -> list[int]:
    """Insert (contract_id, gpu_uuid, start_ms, end_ms) rows inside the caller's write transaction
    and return their ids, checking the same invariants as the insert trigger once, set-wise.

    The trigger checks each row against every allocation of its contract: quadratic for an import
    of 100,000 rows. So it is dropped inside the transaction, the rows go in with one executemany,
    the four checks run over the touched GPUs and contracts (sort and sweep in SQLite), and the
    trigger is created again before the caller commits. Other connections never see the table
    without its trigger; on any failure the caller's ROLLBACK restores it with the rows undone.
    Raises sqlite3.IntegrityError as the trigger would."""
    (after,) = conn.execute("SELECT coalesce(max(id), 0) FROM allocations").fetchone()
    ids = list(range(after + 1, after + 1 + len(rows)))
    conn.execute("DROP TRIGGER allocations_valid_insert")
    conn.executemany(
        "INSERT INTO allocations (id, contract_id, gpu_uuid, start_ms, end_ms) VALUES (?, ?, ?, ?, ?)",
        [(i, *row) for i, row in zip(ids, rows, strict=True)],
    )
    for message, sql in _BULK_CHECKS:
        if conn.execute(sql, {"after": after}).fetchone():
            raise sqlite3.IntegrityError(message)
    conn.execute(_allocation_checks("INSERT"))
    return ids


def migrate_allocations(db: sqlite_utils.Database) -> None:
    """Customers, contracts, allocations, audit log, and the triggers guarding them."""
    script = _TABLES + _allocation_checks("INSERT") + _allocation_checks("UPDATE") + _CONTRACT_UPDATE
    # executescript would COMMIT the migration's transaction: run statement by statement instead.
    for statement in split_statements(script):
        db.conn.execute(statement)


def split_statements(script: str) -> list[str]:
    """Statements of `script`, cut where SQLite itself says one is complete (trigger bodies included)."""
    statements, current = [], ""
    for line in script.splitlines(keepends=True):
        current += line
        if sqlite3.complete_statement(current):
            statements.append(current.strip())
            current = ""
    if current.strip():
        raise ValueError("unterminated statement in the allocation schema")
    return statements
