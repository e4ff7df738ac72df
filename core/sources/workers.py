"""Worker threads for the network sources that never keep the process alive.

ThreadPoolExecutor's workers are joined when the interpreter exits, so one request stuck on a
hung peer kept `gpuops status` alive after its poll had ended. These are daemon threads, and
`wait_all` returns at its deadline or as soon as the source is interrupted (SIGTERM), never
waiting for the requests still running: the fetcher's deadline or `close()` ends those.
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable, Iterable
from concurrent.futures import Future
from typing import Any, TypeVar

T = TypeVar("T")

# How often a waiting poll looks at its interrupt flag (a plain attribute: safe to set from a
# signal handler, unlike an Event whose lock the interrupted thread may hold).
INTERRUPT_CHECK_S = 0.05


class DaemonPool:
    """A fixed number of daemon worker threads, started on first use."""

    def __init__(self, workers: int, name: str) -> None:
        self._workers = max(1, workers)
        self._name = name
        self._queue: queue.SimpleQueue[tuple[Future[Any], Callable[..., Any], tuple[Any, ...]] | None] = queue.SimpleQueue()
        self._threads: list[threading.Thread] = []
        self._lock = threading.Lock()
        self._closed = False

    def submit(self, fn: Callable[..., T], *args: Any) -> Future[T]:
        future: Future[T] = Future()
        with self._lock:
            if self._closed:
                raise RuntimeError("the worker pool is shut down")
            if not self._threads:
                for number in range(self._workers):
                    thread = threading.Thread(target=self._work, name=f"{self._name}-{number}", daemon=True)
                    thread.start()
                    self._threads.append(thread)
        self._queue.put((future, fn, args))
        return future

    def _work(self) -> None:
        while True:
            item = self._queue.get()
            if item is None:
                return
            future, fn, args = item
            if not future.set_running_or_notify_cancel():
                continue
            try:
                result = fn(*args)
            except BaseException as exc:  # handed to whoever waits on the future
                future.set_exception(exc)
            else:
                future.set_result(result)

    def shutdown(self) -> None:
        """Cancel queued work and let the threads end once their current call returns."""
        with self._lock:
            self._closed = True
            threads = len(self._threads)
        while True:
            try:
                item = self._queue.get_nowait()
            except queue.Empty:
                break
            if item is not None:
                item[0].cancel()
        for _ in range(threads):
            self._queue.put(None)


def wait_all(futures: Iterable[Future[Any]], timeout_s: float, interrupted: Callable[[], bool]) -> None:
    """Until every future is done, `timeout_s` has passed, or `interrupted()` is true."""
    pending = list(futures)
    left = [len(pending)]
    lock = threading.Lock()
    all_done = threading.Event()

    def one_done(_: Future[Any]) -> None:
        with lock:
            left[0] -= 1
            if left[0] == 0:
                all_done.set()

    for future in pending:
        future.add_done_callback(one_done)
    if not pending:
        return
    deadline = time.monotonic() + timeout_s
    while not interrupted():
        remaining = deadline - time.monotonic()
        if remaining <= 0 or all_done.wait(min(remaining, INTERRUPT_CHECK_S)):
            return
