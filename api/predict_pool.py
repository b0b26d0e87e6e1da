"""The threads that decode and classify uploads, with admission control.

A prediction that runs past PREDICT_TIMEOUT_S answers 504, but its thread cannot be interrupted (decord
holds it in native code), so it keeps its slot until it really ends. Counting such work here keeps the
server honest under pathological uploads: once the running and waiting work reaches the limit, new
requests are refused at once with 503 (and how many slots are held by timed-out work) instead of
queueing behind threads that may never finish.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any


class PoolBusy(Exception):
    def __init__(self, in_flight: int, overdue: int) -> None:
        super().__init__(f"{in_flight} predictions in progress")
        self.in_flight = in_flight
        self.overdue = overdue


class PredictPool:
    """``concurrency`` threads; at most ``concurrency + queue`` predictions admitted (running or waiting)."""

    def __init__(self, *, concurrency: int, queue: int) -> None:
        self._pool = ThreadPoolExecutor(max_workers=concurrency, thread_name_prefix="predict")
        self.limit = concurrency + queue
        self._lock = threading.Lock()
        self._in_flight = 0
        self._overdue: set[Future[Any]] = set()  # answered 504, still running

    @property
    def in_flight(self) -> int:
        with self._lock:
            return self._in_flight

    @property
    def overdue(self) -> int:
        with self._lock:
            return len(self._overdue)

    def submit(self, fn: Callable[[], Any]) -> Future[Any]:
        with self._lock:
            if self._in_flight >= self.limit:
                raise PoolBusy(self._in_flight, len(self._overdue))
            self._in_flight += 1
        future = self._pool.submit(fn)
        future.add_done_callback(self._finished)
        return future

    def mark_overdue(self, future: Future[Any]) -> None:
        """The caller gave up waiting (504); the work holds its slot until it ends."""
        with self._lock:
            if not future.done():
                self._overdue.add(future)

    def _finished(self, future: Future[Any]) -> None:
        with self._lock:
            self._in_flight -= 1
            self._overdue.discard(future)

    def shutdown(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)
