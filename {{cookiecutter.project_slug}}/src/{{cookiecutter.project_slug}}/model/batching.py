"""The queue between the event loop and the inference threads, and micro-batching on top of it.

A worker takes what is waiting as soon as it is free, so an idle service answers a lone request
at once. Only while other workers are busy does a worker wait, at most ``max_wait_s``, for its
batch to fill up; that is when the next requests are likely to arrive.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from .base import ModelError, Prediction, Predictor, Rows

logger = logging.getLogger(__name__)
# Sees each successful model call: its rows and the answer (the metrics of what the model does).
Observe = Callable[[Rows, Prediction], None]


@dataclass(frozen=True, slots=True)
class Timings:
    """When a request waited, rode in a batch and the model ran (ns since the epoch), and
    that batch's size: what a trace shows of the time spent in an inference thread."""

    queued: int
    batch_started: int
    predict_started: int
    predict_ended: int
    batch_ended: int
    batch_rows: int
    batch_requests: int


@dataclass(eq=False, slots=True)
class Pending:
    """One request's rows, and the future its caller awaits on the event loop."""

    rows: Rows
    probabilities: bool
    answer: asyncio.Future[Prediction]
    result: Prediction | None = None
    error: BaseException | None = None
    queued: int = field(default_factory=time.time_ns)
    timings: Timings | None = None

    def settle(self) -> None:
        """Hand the result to the caller. Runs on the event loop, never in a worker thread."""
        if self.answer.done():  # the caller gave up (timeout) before the model answered
            return
        if self.result is None:
            self.answer.set_exception(self.error or RuntimeError("the batch gave no answer"))
        else:
            self.answer.set_result(self.result)


class BatchQueue:
    """Requests waiting for a worker thread, in arrival order."""

    def __init__(self, max_rows: int, max_wait_s: float) -> None:
        self._max_rows = max_rows
        self._max_wait_s = max_wait_s if max_rows > 1 else 0.0
        self._items: deque[Pending] = deque()
        self._changed = threading.Condition()
        self._busy = 0
        self._closed = False

    def put(self, item: Pending) -> None:
        with self._changed:
            self._items.append(item)
            # One waiter is enough: whoever wakes takes the request or fills its batch with it.
            self._changed.notify()

    def discard(self, item: Pending) -> None:
        """Forget a request whose caller gave up before a worker took it."""
        # ValueError: a worker already took it; its answer is simply not read.
        with self._changed, contextlib.suppress(ValueError):
            self._items.remove(item)

    def close(self) -> None:
        """Let the workers finish what is queued, then stop."""
        with self._changed:
            self._closed = True
            self._changed.notify_all()

    def take(self) -> list[Pending] | None:
        """Block until there is work; take the oldest requests, up to ``max_rows`` rows.

        Always takes at least one request. Returns None once the queue is closed and empty.
        Called from a worker thread; pair every batch taken with ``done()``.
        """
        with self._changed:
            self._changed.wait_for(lambda: self._items or self._closed)
            if not self._items:
                return None
            if self._busy and self._max_wait_s > 0:
                self._changed.wait_for(
                    lambda: self._closed or self._queued_rows() >= self._max_rows,
                    timeout=self._max_wait_s,
                )
                if not self._items:  # another worker took them meanwhile
                    return []
            taken = [self._items.popleft()]
            rows = len(taken[0].rows)
            while self._items and rows + len(self._items[0].rows) <= self._max_rows:
                item = self._items.popleft()
                taken.append(item)
                rows += len(item.rows)
            self._busy += 1
            return taken

    def done(self) -> None:
        with self._changed:
            self._busy -= 1

    def _queued_rows(self) -> int:
        return sum(len(item.rows) for item in self._items)


def predict_batch(
    predictor: Predictor, batch: list[Pending], observe: Observe = lambda rows, answer: None
) -> int:
    """Run the requests as one stacked batch and hand each its own answer; return the row count.

    If the stacked batch fails, each request runs again on its own: one request's bad rows
    must not fail the others that happened to share its batch. ``observe`` sees every model
    call that succeeded, with its rows.
    """
    started = time.time_ns()
    stacked = batch[0].rows if len(batch) == 1 else np.concatenate([i.rows for i in batch])
    probabilities = any(item.probabilities for item in batch)
    predict_started = time.time_ns()
    try:
        prediction = _predict(predictor, stacked, probabilities)
    except ModelError as exc:
        if len(batch) == 1:
            batch[0].error = exc
            _note(batch, started, predict_started, len(stacked))
        else:
            for item in batch:
                predict_batch(predictor, [item], observe)
        return len(stacked)
    predict_ended = time.time_ns()
    try:
        observe(stacked, prediction)
    except Exception:  # counting what the model did must never cost a caller its answer
        logger.exception("observing the model's answers failed")
    start = 0
    for item in batch:
        count = len(item.rows)
        answer = prediction.slice(start, start + count)
        item.result = answer if item.probabilities else Prediction(answer.values)
        start += count
    _note(batch, started, predict_started, len(stacked), predict_ended)
    return len(stacked)


def _note(
    batch: list[Pending], started: int, predict_started: int, rows: int, ended: int = 0
) -> None:
    now = time.time_ns()
    for item in batch:
        item.timings = Timings(
            item.queued, started, predict_started, ended or now, now, rows, len(batch)
        )


def _predict(predictor: Predictor, rows: Rows, probabilities: bool) -> Prediction:
    try:
        prediction = predictor.predict(rows, probabilities)
    except ModelError:
        raise
    except Exception as exc:  # a predictor that let its model's error through
        raise ModelError(f"{type(exc).__name__}: {exc}", rejected_input=False) from exc
    if len(prediction) != len(rows):
        raise ModelError(
            f"the model returned {len(prediction)} answers for {len(rows)} rows",
            rejected_input=False,
        )
    return prediction
