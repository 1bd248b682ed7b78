"""Admission control around the predictor: bounded concurrency, a bounded queue, a deadline.

The model's ``predict`` is synchronous, so it runs in worker threads and never blocks the event
loop; health probes keep answering while every inference slot is busy. Requests that
wait for a slot may be stacked into one call (see ``batching``).
"""

from __future__ import annotations

import time
from types import TracebackType
from typing import Protocol

import anyio
import anyio.abc
import anyio.to_thread
import numpy as np
import numpy.typing as npt

from .base import Label, Predictor
from .batching import BatchQueue, Pending, predict_batch


class InferenceObserver(Protocol):
    """Receives what the runner measures (durations, batch sizes, rejections)."""

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
    """Runs predictions in worker threads; use as ``async with runner:`` around serving.

    Each admitted request queues its rows and starts one dispatch task. A dispatch task waits for
    a worker slot, then runs whatever is queued (up to ``max_batch_size`` rows) in a thread. The
    tasks belong to the runner, not to the requests: a request that times out answers 504 at once,
    while its slot stays taken until the model returns, so the concurrency bound holds.
    """

    def __init__(
        self,
        predictor: Predictor,
        *,
        max_rows: int,
        max_concurrency: int,
        max_queue: int,
        timeout_s: float,
        max_batch_size: int = 1,
        max_batch_wait_ms: float = 0.0,
        observer: InferenceObserver | None = None,
    ) -> None:
        self.predictor = predictor
        self.max_rows = max_rows
        self._slots = anyio.CapacityLimiter(max_concurrency)
        self._capacity = max_concurrency + max_queue
        self._pending = 0
        self._timeout_s = timeout_s
        self._queue = BatchQueue(max_batch_size, max_batch_wait_ms / 1000)
        self._observer = observer or NullObserver()
        self._tasks: anyio.abc.TaskGroup | None = None

    async def __aenter__(self) -> InferenceRunner:
        self._tasks = anyio.create_task_group()
        await self._tasks.__aenter__()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        """Wait for the batches already handed to the model."""
        tasks, self._tasks = self._tasks, None
        if tasks is not None:
            await tasks.__aexit__(exc_type, exc, tb)

    @property
    def pending(self) -> int:
        """Requests admitted and not yet answered (running plus queued)."""
        return self._pending

    async def predict(self, rows: npt.NDArray[np.float64]) -> list[Label]:
        if self._tasks is None:
            raise RuntimeError("the runner is not started: use `async with runner:`")
        if self._pending >= self._capacity:
            self._observer.rejected("queue_full")
            raise Overloaded(retry_after_s=1)
        self._pending += 1
        item = Pending(rows)
        try:
            self._queue.put(item)
            self._tasks.start_soon(self._dispatch)
            with anyio.fail_after(self._timeout_s):
                await item.done.wait()
        except TimeoutError:
            self._observer.rejected("timeout")
            raise InferenceTimeout from None
        finally:
            self._pending -= 1
            if not item.done.is_set():
                self._queue.discard(item)
        if item.labels is None:
            raise item.error or RuntimeError("the batch ended without an answer")
        return item.labels

    async def _dispatch(self) -> None:
        async with self._slots:
            batch = await anyio.to_thread.run_sync(self._run)
        for item in batch:
            item.done.set()

    def _run(self) -> list[Pending]:
        with self._queue.batch() as batch:
            if batch:
                started = time.perf_counter()
                rows = predict_batch(self.predictor, batch)
                self._observer.batch_formed(rows)
                self._observer.inference_done(time.perf_counter() - started, rows)
            return batch
