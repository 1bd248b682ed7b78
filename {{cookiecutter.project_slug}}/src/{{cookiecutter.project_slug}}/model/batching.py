"""Micro-batching: requests that queue up behind busy workers are stacked into one predict call.

A worker thread takes what is waiting when it gets a slot, so an idle service answers a lone
request at once. Only while other batches are running does a worker wait, at most
``max_wait_s``, for the batch to fill up; that is when the next requests are likely to arrive.
"""

from __future__ import annotations

import contextlib
import threading
from collections import deque
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

import anyio
import numpy as np
import numpy.typing as npt

from .base import Label, Predictor


@dataclass(eq=False)
class Pending:
    """One request's rows, and its answer once a worker has run them."""

    rows: npt.NDArray[np.float64]
    done: anyio.Event = field(default_factory=anyio.Event)
    labels: list[Label] | None = None
    error: Exception | None = None


class BatchQueue:
    """Requests waiting for a worker, shared by the event loop and the worker threads."""

    def __init__(self, max_rows: int, max_wait_s: float) -> None:
        self._max_rows = max_rows
        self._max_wait_s = max_wait_s
        self._items: deque[Pending] = deque()
        self._changed = threading.Condition()
        self._running = 0

    def put(self, item: Pending) -> None:
        with self._changed:
            self._items.append(item)
            self._changed.notify_all()

    def discard(self, item: Pending) -> None:
        """Forget a request whose caller gave up before a worker took it."""
        # ValueError: a worker already took it; its answer is simply not read.
        with self._changed, contextlib.suppress(ValueError):
            self._items.remove(item)

    def _queued_rows(self) -> int:
        return sum(len(item.rows) for item in self._items)

    @contextmanager
    def batch(self) -> Iterator[list[Pending]]:
        """Take the oldest requests, up to ``max_rows`` rows (and always at least one request).

        Called from a worker thread. Yields an empty list when other workers already took
        everything.
        """
        with self._changed:
            if self._items and self._running and self._max_wait_s > 0:
                self._changed.wait_for(
                    lambda: not self._items or self._queued_rows() >= self._max_rows,
                    timeout=self._max_wait_s,
                )
            taken: list[Pending] = []
            rows = 0
            while self._items and (not taken or rows + len(self._items[0].rows) <= self._max_rows):
                item = self._items.popleft()
                taken.append(item)
                rows += len(item.rows)
            self._running += 1
        try:
            yield taken
        finally:
            with self._changed:
                self._running -= 1


def predict_batch(predictor: Predictor, batch: list[Pending]) -> int:
    """Run the requests as one stacked batch and hand each its own labels; return the row count.

    A failing model fails every request of the batch with the same error.
    """
    counts = [len(item.rows) for item in batch]
    stacked = batch[0].rows if len(batch) == 1 else np.concatenate([item.rows for item in batch])
    try:
        labels = predictor.predict(stacked)
        if len(labels) != len(stacked):
            raise RuntimeError(f"the model returned {len(labels)} labels for {len(stacked)} rows")
    except Exception as exc:
        for item in batch:
            item.error = exc
        return len(stacked)
    start = 0
    for item, count in zip(batch, counts, strict=True):
        item.labels = labels[start : start + count]
        start += count
    return len(stacked)
