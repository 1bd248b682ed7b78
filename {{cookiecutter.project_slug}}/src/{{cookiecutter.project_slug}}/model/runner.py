"""Admission control around the predictor: bounded concurrency, a bounded queue, a deadline.

The model's ``predict`` is synchronous, so it runs in worker threads and never blocks the event
loop; health probes and metrics keep answering while every inference slot is busy.
"""

from __future__ import annotations

import time
from typing import Protocol

import anyio
import anyio.to_thread
import numpy as np
import numpy.typing as npt

from .base import Label, Predictor


class InferenceObserver(Protocol):
    """Receives what the runner measures; the metrics module provides one."""

    def inference_done(self, seconds: float, rows: int) -> None: ...

    def batch_formed(self, size: int) -> None: ...

    def rejected(self, reason: str) -> None: ...


class NullObserver:
    def inference_done(self, seconds: float, rows: int) -> None:
        pass

    def batch_formed(self, size: int) -> None:
        pass

    def rejected(self, reason: str) -> None:
        pass


class Overloaded(Exception):
    """More requests are waiting than the queue holds; the client should retry later."""

    def __init__(self, retry_after_s: int) -> None:
        super().__init__("the model is busy: too many requests in flight")
        self.retry_after_s = retry_after_s


class InferenceTimeout(Exception):
    """The request waited and ran longer than the inference deadline."""


class InferenceRunner:
    def __init__(
        self,
        predictor: Predictor,
        *,
        max_rows: int,
        max_concurrency: int,
        max_queue: int,
        timeout_s: float,
        observer: InferenceObserver | None = None,
    ) -> None:
        self.predictor = predictor
        self.max_rows = max_rows
        self._slots = anyio.CapacityLimiter(max_concurrency)
        self._capacity = max_concurrency + max_queue
        self._pending = 0
        self._timeout_s = timeout_s
        self._observer = observer or NullObserver()

    @property
    def pending(self) -> int:
        """Requests admitted and not yet answered (running plus queued)."""
        return self._pending

    async def predict(self, rows: npt.NDArray[np.float64]) -> list[Label]:
        if self._pending >= self._capacity:
            self._observer.rejected("queue_full")
            raise Overloaded(retry_after_s=1)
        self._pending += 1
        try:
            with anyio.fail_after(self._timeout_s):
                # abandon_on_cancel: on timeout, answer now; the thread keeps its slot until
                # the model returns, so the concurrency bound still holds.
                return await anyio.to_thread.run_sync(
                    self._run, rows, limiter=self._slots, abandon_on_cancel=True
                )
        except TimeoutError:
            self._observer.rejected("timeout")
            raise InferenceTimeout from None
        finally:
            self._pending -= 1

    def _run(self, rows: npt.NDArray[np.float64]) -> list[Label]:
        started = time.perf_counter()
        labels = self.predictor.predict(rows)
        self._observer.batch_formed(len(rows))
        self._observer.inference_done(time.perf_counter() - started, len(rows))
        return labels
