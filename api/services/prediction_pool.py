"""The threads that decode and classify uploads, with admission control.

A prediction that runs past PREDICT_TIMEOUT_S answers 504, but its thread cannot be interrupted (decord
holds it in native code), so it keeps its slot until it really ends. Counting such work here keeps the
server honest under pathological uploads: once the running and waiting work reaches the limit, new
requests are refused at once with 503 (and how many slots are held by timed-out work) instead of
queueing behind threads that may never finish.

A request whose time runs out while its work is still waiting for a thread (all slots busy) did no work
at all: :meth:`PredictPool.withdraw` takes it out of the queue, and the route answers 503 (retry later),
not 504 (the clip is too slow).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any


class PoolBusy(Exception):
    def __init__(self, in_flight: int, overdue: int) -> None:
        super().__init__(f"{in_flight} predictions in progress")
        self.in_flight = in_flight
        self.overdue = overdue


@dataclass
class Ticket:
    """One admitted prediction: its future, when it was admitted and when a thread started it."""

    future: Future[Any]
    admitted: float = field(default_factory=time.monotonic)
    started: float | None = None

    def waited_s(self, now: float | None = None) -> float:
        """Seconds spent waiting for a thread (until now if it has not started)."""
        end = self.started if self.started is not None else (time.monotonic() if now is None else now)
        return end - self.admitted


class PredictPool:
    """``concurrency`` threads; at most ``concurrency + queue`` predictions admitted (running or waiting)."""

    def __init__(self, *, concurrency: int, queue: int) -> None:
        self._pool = ThreadPoolExecutor(max_workers=concurrency, thread_name_prefix="predict")
        self.concurrency = concurrency
        self.limit = concurrency + queue
        self._lock = threading.Lock()
        self._in_flight = 0
        self._overdue: set[Future[Any]] = set()  # answered 504, still running
        self.rejected = 0  # refused at once: every slot and queue place taken (503)
        self.withdrawn = 0  # gave up waiting for a slot (503)

    @property
    def in_flight(self) -> int:
        with self._lock:
            return self._in_flight

    @property
    def overdue(self) -> int:
        with self._lock:
            return len(self._overdue)

    def submit(self, fn: Callable[[], Any]) -> Ticket:
        with self._lock:
            if self._in_flight >= self.limit:
                self.rejected += 1
                raise PoolBusy(self._in_flight, len(self._overdue))
            self._in_flight += 1
        holder: list[Ticket] = []
        ready = threading.Event()

        def run() -> Any:
            ready.wait()
            holder[0].started = time.monotonic()
            return fn()

        ticket = Ticket(self._pool.submit(run))
        holder.append(ticket)
        ready.set()
        ticket.future.add_done_callback(self._finished)
        return ticket

    def withdraw(self, ticket: Ticket) -> bool:
        """Take work that has not started out of the queue (its slot comes back); False once a thread runs it."""
        if not ticket.future.cancel():
            return False
        with self._lock:
            self.withdrawn += 1
        return True

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
