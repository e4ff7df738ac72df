"""A writer in fast-forward time, to be killed with SIGKILL by tests/test_collect_crash.py.

Usage: python -m tests.store_crash_child DB_PATH
Writes polls of 12 GPUs 20 s apart (simulated time), maintaining after each, and prints
"stored <ts_ms>" after every committed poll; resumes after the last stored poll when restarted.
"""

from __future__ import annotations

import sys
from pathlib import Path

from gpuops.core.store import HistoryWriter
from tests.samples import make_inventory
from tests.store_support import T0, varied_sample

INTERVAL_S = 20.0
N_GPUS = 12


def main(path: Path) -> None:
    gpus = make_inventory(N_GPUS)
    with HistoryWriter(path) as writer:
        last = writer.status().last_written_ts
        ts = T0 if last is None else last + INTERVAL_S
        queued: list[float] = []  # taken, maybe still waiting in the writer's backlog
        while True:
            if writer.write(varied_sample(gpus, ts, seed=9)):
                queued.append(ts)
            if writer.status().backlog_polls == 0:  # committed, as `gpuops collect` logs it
                for stored in queued:
                    print(f"stored {round(stored * 1000)}", flush=True)
                queued.clear()
            writer.maintain(0.005)
            ts += INTERVAL_S


if __name__ == "__main__":
    main(Path(sys.argv[1]))
