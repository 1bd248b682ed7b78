"""The demo model: a classifier fitted on the iris data that ships inside scikit-learn.

It needs no download, trains in milliseconds and is deterministic, so every worker process
that trains it serves the same model.
"""

from __future__ import annotations

from typing import Any

from .signature import FeatureSpec, Sidecar

DEMO_VERSION = "iris-1"
_MEASURES = {"sepal_length": 5.1, "sepal_width": 3.5, "petal_length": 1.4, "petal_width": 0.2}

DEMO_SIDECAR = Sidecar(
    version=DEMO_VERSION,
    description="Iris species from four flower measurements (logistic regression).",
    features=[
        FeatureSpec(
            name=name,
            description=f"{name.replace('_', ' ').capitalize()}, in centimetres.",
            example=example,
        )
        for name, example in _MEASURES.items()
    ],
    classes=["setosa", "versicolor", "virginica"],
)


def train_demo() -> Any:
    """Fit the demo estimator (needs scikit-learn)."""
    from sklearn.datasets import load_iris
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    iris = load_iris()
    labels = iris.target_names[iris.target]
    estimator = make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000))
    return estimator.fit(iris.data, labels)
