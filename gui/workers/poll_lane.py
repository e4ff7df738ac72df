"""One lane for the per-poll work of the console's background workers.

At 10,000 GPUs the alert worker (rules, who holds each GPU, busy-but-unallocated events) and the
allocation worker (who holds each GPU, for the grid) each run tens of milliseconds of Python per
poll. Started on the same poll they hold the GIL in turns for that long together, and every
event the GUI thread handles meanwhile waits behind both: taking turns through this lock cut the
longest GUI event-loop stalls from ~55 ms to ~30 ms (bench_views). The GUI thread never takes it.
"""

from __future__ import annotations

import threading

#: Held by a worker thread while it does its share of one poll's work.
PER_POLL_WORK = threading.Lock()
