"""The demo model: a classifier fitted on the iris data that ships inside scikit-learn.

It needs no download, trains in milliseconds and is deterministic, so every worker process
that trains it serves the same model.
"""

from __future__ import annotations

from typing import Any

from sklearn.datasets import load_iris
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

DEMO_VERSION = "iris-1"


def train_demo() -> tuple[Any, dict[str, Any]]:
    """Fit the demo estimator; return it with its sidecar metadata."""
    iris = load_iris()
    labels = iris.target_names[iris.target]
    estimator = make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000))
    estimator.fit(iris.data, labels)
    sidecar = {
        "version": DEMO_VERSION,
        "features": [name.replace(" (cm)", "").replace(" ", "_") for name in iris.feature_names],
        "classes": [str(c) for c in estimator.classes_],
    }
    return estimator, sidecar
