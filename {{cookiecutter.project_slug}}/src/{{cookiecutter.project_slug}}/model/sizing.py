"""How many rows one model call takes: measured at warm-up, unless the settings say.

Batching pays when a row costs less inside a batch than alone: a vectorised model shares the
fixed cost of a call (validation, a DataFrame, a graph run) between the rows of the batch. The
warm-up times the model on batches of 1, 8, 32 and 128 copies of the example rows. If a row
costs no less in a batch than alone, batching is off for that model; otherwise the cap is the
smallest size whose cost per row is within ``GAIN`` of the cheapest measured: past it, bigger
batches gain little and only make each call longer.

The sizing is bounded, so that a slow model adds no seconds to start-up: a size whose call
would take longer than ``CALL_BUDGET_S`` (predicted from the last size measured) is not
tried, and no new size is started after ``TOTAL_BUDGET_S``.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np

from .base import ModelError, Predictor, Rows

logger = logging.getLogger(__name__)

SIZES = (1, 8, 32, 128)
CALL_BUDGET_S = 0.05
TOTAL_BUDGET_S = 0.25
# Timing one size: the fastest of at least MIN_CALLS calls, more while under SAMPLE_S. The
# fastest call is the model's own cost; slower ones met a busy core or the garbage collector.
MIN_CALLS = 3
MAX_CALLS = 50
SAMPLE_S = 0.02
# A bigger batch is chosen only if it saves at least this share of a row's cost.
GAIN = 0.1

Source = Literal["measured", "settings"]


@dataclass(frozen=True, slots=True)
class BatchPlan:
    """The most rows one model call takes, where that number came from, and the cost per row
    measured at each batch size (seconds; empty when set by the settings or not measurable)."""

    max_batch_size: int
    source: Source
    per_row_s: Mapping[int, float] = field(default_factory=dict)

    def describe(self) -> dict[str, Any]:
        """As ``GET /model`` and the ``model ready`` log line show it (microseconds)."""
        return {
            "max_batch_size": self.max_batch_size,
            "source": self.source,
            "per_row_us": {str(n): round(s * 1e6, 2) for n, s in self.per_row_s.items()},
        }


def plan_batches(predictor: Predictor, rows: Rows, max_batch_size: int | None) -> BatchPlan:
    """The settings' batch size if one is set, else the one measured on ``rows`` (validated
    example rows)."""
    if max_batch_size is not None:
        return BatchPlan(max_batch_size, "settings")
    per_row = measure(predictor, rows)
    return BatchPlan(choose(per_row), "measured", per_row)


def measure(
    predictor: Predictor, rows: Rows, clock: Callable[[], float] = time.perf_counter
) -> dict[int, float]:
    """Seconds per row at each batch size of ``SIZES`` that fits the budgets."""
    started = clock()
    per_row: dict[int, float] = {}
    for size in SIZES:
        if per_row:
            largest = max(per_row)
            predicted = per_row[largest] * size
            if predicted > CALL_BUDGET_S or clock() - started > TOTAL_BUDGET_S:
                break
        batch = rows[np.arange(size) % len(rows)]
        try:
            best = _fastest_call(predictor, batch, clock)
        except ModelError as exc:  # the example may be refused (see warm_up): no figures
            logger.debug("batch sizing stopped at %d rows: %s", size, exc)
            break
        per_row[size] = best / size
        if best > CALL_BUDGET_S:
            break
    return per_row


def _fastest_call(predictor: Predictor, batch: Rows, clock: Callable[[], float]) -> float:
    fastest = float("inf")
    began = clock()
    for calls in range(1, MAX_CALLS + 1):
        before = clock()
        predictor.predict(batch, False)
        fastest = min(fastest, clock() - before)
        if fastest > CALL_BUDGET_S or (calls >= MIN_CALLS and clock() - began > SAMPLE_S):
            break
    return fastest


def choose(per_row: Mapping[int, float]) -> int:
    """The smallest size within ``GAIN`` of the cheapest cost per row; 1 (off) when a row
    costs no less in a batch than alone, or when nothing could be measured."""
    if 1 not in per_row or len(per_row) < 2:
        return 1
    cheapest = min(per_row.values())
    return min(size for size, cost in per_row.items() if cost <= cheapest * (1 + GAIN))
