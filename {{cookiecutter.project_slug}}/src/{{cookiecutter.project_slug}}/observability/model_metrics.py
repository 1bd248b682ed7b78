"""What the model is asked and answers, as Prometheus metrics: class mix, confidence, values, drift.

Every label value comes from the model's signature or its reference file, never from a request,
so the number of series is fixed when the model loads: at most ``MAX_CLASSES`` classes (the rest
count as "other"), at most ``APP_MONITOR_MAX_FEATURES`` features (the rest are not watched, and
the start-up log names them), and at most twelve buckets per feature.

The counting runs in the inference threads after each model call, a handful of counter
increments per batch: per feature one ``bincount`` over the batch, not one increment per row.
"""

from __future__ import annotations

import logging
from collections import Counter as Tally
from pathlib import Path

from prometheus_client import REGISTRY, Counter, Gauge, Histogram

from ..model.base import ModelLoadError, Prediction, Predictor, Rows
from . import reference
from .reference import Distribution, Reference, ReferenceError

logger = logging.getLogger(__name__)

MAX_CLASSES = 50
OTHER = "other"
CONFIDENCE_BUCKETS = (0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 0.95, 0.99, 1.0)
# A regressor's values without a reference: powers of ten either side of zero.
VALUE_BUCKETS = (-1e4, -1e3, -1e2, -10.0, -1.0, -0.1, 0.0, 0.1, 1.0, 10.0, 1e2, 1e3, 1e4)

PREDICTED_CLASS = Counter("model_predicted_class", "Rows predicted, per class.", ["class"])
CONFIDENCE = Histogram(
    "model_prediction_confidence",
    "The predicted class's probability, per row, for requests that asked for probabilities.",
    buckets=CONFIDENCE_BUCKETS,
)
INPUT_BUCKET = Counter(
    "model_input_bucket",
    "Input values per feature, in the buckets of the reference statistics.",
    ["feature", "bucket"],
)
REFERENCE_SHARE = Gauge(
    "model_input_reference_share",
    "Share of the training data in each bucket, from the reference statistics.",
    ["feature", "bucket"],
    multiprocess_mode="max",
)
_value_histograms: dict[tuple[float, ...], Histogram] = {}


def predicted_values(buckets: tuple[float, ...]) -> Histogram:
    """The regressor's value histogram, with the buckets of the model being served.

    Buckets are fixed when a histogram is made, and the reference decides them per model; a
    process that loads another model (a test, say) replaces the one registered before.
    """
    histogram = _value_histograms.get(buckets)
    if histogram is None:
        for old in _value_histograms.values():
            REGISTRY.unregister(old)
        _value_histograms.clear()
        histogram = Histogram(
            "model_predicted_value", "A regressor's predicted values, per row.", buckets=buckets
        )
        _value_histograms[buckets] = histogram
    return histogram


class ModelMonitor:
    """Counts one model's answers and, with a reference, its inputs by reference bucket."""

    def __init__(self, predictor: Predictor, found: Reference | None, max_features: int) -> None:
        signature = predictor.metadata.signature
        # Classes, cluster ids and outlier flags are counted by label; a model with several
        # outputs per row has no one label to count.
        self._classifier = signature.labelled and not signature.outputs
        classes = [str(c) for c in signature.classes[:MAX_CLASSES]]
        self._classes = {label: PREDICTED_CLASS.labels(label) for label in [*classes, OTHER]}
        self._values: Histogram | None = None
        if not self._classifier:
            edges = found.predictions.edges if found is not None else None
            self._values = predicted_values(edges or VALUE_BUCKETS)
        self._watched: list[tuple[int, Distribution, dict[str, Counter]]] = []
        if found is None:
            return
        for index, feature in enumerate(found.features[:max_features]):
            children = {b: INPUT_BUCKET.labels(feature.name, b) for b in feature.shares}
            for bucket, share in feature.shares.items():
                REFERENCE_SHARE.labels(feature.name, bucket).set(share)
            self._watched.append((index, feature, children))
        skipped = [d.name for d in found.features[max_features:]]
        if max_features == 0:
            logger.info("input drift metrics off (APP_MONITOR_MAX_FEATURES=0)")
        elif skipped:
            logger.warning(
                "input drift: watching the first %d features only (APP_MONITOR_MAX_FEATURES)",
                max_features,
                extra={"not_watched": skipped},
            )

    def observe(self, rows: Rows, prediction: Prediction) -> None:
        """Count one model call: its answers and, per watched feature, its inputs."""
        if self._classifier:
            for label, count in Tally(str(v) for v in prediction.values).items():
                self._classes.get(label, self._classes[OTHER]).inc(count)
            for probabilities in prediction.probabilities or ():
                CONFIDENCE.observe(max(probabilities))
        elif self._values is not None:
            for value in prediction.values:
                if isinstance(value, int | float):
                    self._values.observe(value)
        for index, feature, children in self._watched:
            for bucket, count in feature.counts(rows[:, index]).items():
                children[bucket].inc(count)


def load_reference(predictor: Predictor, path: Path | None, explicit: bool) -> Reference | None:
    """The reference for the served model, or None (drift metrics off, said in the log).

    A file that is there but unusable stops the start: a drift alert that silently never fires
    is worse than a deployment that fails loudly. Only an absent file beside the model is normal.
    """
    signature = predictor.metadata.signature
    if path is None:  # the demo model, trained at start-up
        path = reference.DEMO
    if not path.is_file() and not explicit:
        logger.info(
            "no reference statistics at %s: input drift metrics off "
            "(python -m {{ cookiecutter.project_slug }} reference <training data> writes them)",
            path,
        )
        return None
    try:
        return reference.read(path, signature)
    except ReferenceError as exc:
        raise ModelLoadError(str(exc)) from exc
