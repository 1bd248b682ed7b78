"""Admission control around the predictor: bounded concurrency, a bounded queue, a deadline.

The model's ``predict`` is synchronous, so it runs in the runner's own threads and never blocks
the event loop; health probes keep answering while every thread is busy. Requests that wait for
a thread may be stacked into one call (see ``batching``).

The threads are ``APP_MAX_CONCURRENCY`` long-lived workers rather than a general-purpose pool
(``anyio.to_thread``, ``run_in_executor``): a request then costs one queue append on the way in
and one loop callback per batch on the way out, with no task, limiter or cancel scope around
every call. Measured on the demo model, that hop took 18% of a request's time through anyio.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
import time
from types import TracebackType
from typing import Protocol

from .base import Prediction, Predictor, Rows
from .batching import BatchQueue, Pending, Timings, predict_batch
from .sizing import BatchPlan

logger = logging.getLogger(__name__)


class InferenceObserver(Protocol):
    """Receives what the runner measures (durations, batch sizes, rejections), and the model
    once it is loaded."""

    def model_loaded(self, predictor: Predictor) -> None: ...

    def inference_done(self, seconds: float, rows: int) -> None: ...

    def predicted(self, rows: Rows, prediction: Prediction) -> None: ...

    def answered(self, rows: int, timings: Timings) -> None:
        """A request's answer (or model error) is back, on the request's own task."""
        ...

    def batch_formed(self, size: int) -> None: ...

    def batching_chosen(self, plan: BatchPlan) -> None:
        """The most rows a model call takes, once measured (or set) for the loaded model."""
        ...

    def rejected(self, reason: str) -> None: ...


class NullObserver:
    def model_loaded(self, predictor: Predictor) -> None:
        pass

    def inference_done(self, seconds: float, rows: int) -> None:
        pass

    def predicted(self, rows: Rows, prediction: Prediction) -> None:
        pass

    def answered(self, rows: int, timings: Timings) -> None:
        pass

    def batch_formed(self, size: int) -> None:
        pass

    def batching_chosen(self, plan: BatchPlan) -> None:
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

    At most ``max_concurrency`` batches run at once (one per thread) and at most ``max_queue``
    more requests wait; beyond that, ``Overloaded``. A request that passes its deadline answers
    at once with ``InferenceTimeout``, while its thread stays busy until the model returns, so
    the concurrency bound holds.

    ``batching`` (see ``sizing``) caps the rows of one model call; by default each request
    runs alone.
    """

    def __init__(
        self,
        predictor: Predictor,
        *,
        max_rows: int,
        max_concurrency: int,
        max_queue: int,
        timeout_s: float,
        batching: BatchPlan | None = None,
        max_batch_wait_ms: float = 0.0,
        observer: InferenceObserver | None = None,
    ) -> None:
        self.predictor = predictor
        self.max_rows = max_rows
        self._threads_wanted = max_concurrency
        self._capacity = max_concurrency + max_queue
        self._pending = 0
        self._timeout_s = timeout_s
        self.batching = batching or BatchPlan(1, "settings")
        self._queue = BatchQueue(self.batching.max_batch_size, max_batch_wait_ms / 1000)
        self._observer = observer or NullObserver()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._threads: list[threading.Thread] = []

    async def __aenter__(self) -> InferenceRunner:
        self._loop = asyncio.get_running_loop()
        self._threads = [
            threading.Thread(target=self._work, name=f"inference-{n}", daemon=True)
            for n in range(self._threads_wanted)
        ]
        for thread in self._threads:
            thread.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        """Let the workers finish the batches already queued or running, then stop them."""
        self._queue.close()
        threads, self._threads = self._threads, []
        await asyncio.to_thread(_join_all, threads)
        self._loop = None

    @property
    def pending(self) -> int:
        """Requests admitted and not yet answered (running plus queued)."""
        return self._pending

    async def predict(self, rows: Rows, probabilities: bool = False) -> Prediction:
        """The model's answer for ``rows``; raises ``ModelError`` if the model fails on them."""
        loop = self._loop
        if loop is None:
            raise RuntimeError("the runner is not started: use `async with runner:`")
        if self._pending >= self._capacity:
            self._observer.rejected("queue_full")
            raise Overloaded(retry_after_s=1)
        self._pending += 1
        item = Pending(rows, probabilities, loop.create_future())
        try:
            self._queue.put(item)
            return await asyncio.wait_for(item.answer, self._timeout_s)
        except TimeoutError:
            self._queue.discard(item)
            self._observer.rejected("timeout")
            raise InferenceTimeout from None
        except asyncio.CancelledError:  # the request's task was cancelled: no one will read it
            self._queue.discard(item)
            raise
        finally:
            self._pending -= 1
            if item.timings is not None:
                self._observer.answered(len(rows), item.timings)

    def _work(self) -> None:
        """A worker thread: take a batch, run it, hand the answers back to the event loop."""
        while (batch := self._queue.take()) is not None:
            if not batch:
                continue
            try:
                started = time.perf_counter()
                rows = predict_batch(self.predictor, batch, self._observer.predicted)
                self._observer.batch_formed(rows)
                self._observer.inference_done(time.perf_counter() - started, rows)
            except Exception:  # not the model's (predict_batch keeps those): keep the thread
                logger.exception("inference worker failed")
            finally:
                self._queue.done()
                self._settle(batch)

    def _settle(self, batch: list[Pending]) -> None:
        loop = self._loop
        if loop is None or loop.is_closed():
            return
        # RuntimeError: the loop closed between the check and the call.
        with contextlib.suppress(RuntimeError):
            loop.call_soon_threadsafe(_settle_all, batch)


def _settle_all(batch: list[Pending]) -> None:
    for item in batch:
        item.settle()


def _join_all(threads: list[threading.Thread]) -> None:
    for thread in threads:
        thread.join()
