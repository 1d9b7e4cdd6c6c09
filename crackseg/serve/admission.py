"""How busy the server is, and who gets in: at most `workers` requests analysed at once and
`queue` more waiting; beyond that a request is refused at once (503 with Retry-After) instead of
waiting minutes for a CPU that is taken.

`admit` is called when a request arrives (before its upload is read), `working` around the
analysis in a worker thread, `leave` when the response is done.
"""

from __future__ import annotations

import math
import threading
import time
from contextlib import contextmanager


class Busy(Exception):
    """The server is full: `retry_after` seconds is an estimate of when a slot frees up."""

    def __init__(self, retry_after: int, message: str):
        super().__init__(message)
        self.retry_after, self.message = retry_after, message


class Admission:
    def __init__(self, *, workers: int, queue: int):
        self.workers, self.queue = workers, queue
        self._lock = threading.Lock()
        self._slots = threading.BoundedSemaphore(workers)
        self.admitted = 0  # in flight + queued
        self.running = 0
        self.seconds_per_image: float | None = None  # moving average of finished analyses

    @property
    def capacity(self) -> int:
        return self.workers + self.queue

    def retry_after(self) -> int:
        """Whole seconds until the queue has likely moved by one slot (at least 1)."""
        per_image = self.seconds_per_image or 1.0
        return max(1, math.ceil(per_image * self.admitted / self.workers))

    def admit(self) -> None:
        """Count a new request in, or raise `Busy` when `capacity` requests are already in."""
        with self._lock:
            if self.admitted >= self.capacity:
                wait = self.retry_after()
                raise Busy(wait, f"the server is busy ({self.running} images being analysed, "
                           f"{self.admitted - self.running} waiting, capacity {self.capacity}). "
                           f"Try again in {wait} s.")  # fmt: skip
            self.admitted += 1

    def leave(self) -> None:
        with self._lock:
            self.admitted -= 1

    @contextmanager
    def working(self):
        """Blocking (worker thread): wait for one of the `workers` slots, then hold it."""
        with self._slots:
            with self._lock:
                self.running += 1
            start = time.perf_counter()
            done = False
            try:
                yield
                done = True
            finally:
                with self._lock:
                    self.running -= 1
                    if done:
                        took = time.perf_counter() - start
                        old = self.seconds_per_image
                        self.seconds_per_image = took if old is None else 0.8 * old + 0.2 * took

    def status(self) -> dict:
        """For /api/health: images in flight, requests queued, and the capacity."""
        with self._lock:
            return {"in_flight": self.running, "queued": self.admitted - self.running,
                    "capacity": self.capacity, "workers": self.workers, "queue": self.queue,
                    "seconds_per_image": None if self.seconds_per_image is None
                    else round(self.seconds_per_image, 3)}  # fmt: skip
