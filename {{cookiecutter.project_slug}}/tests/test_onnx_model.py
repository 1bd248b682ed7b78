"""The ONNX demo shipped in the package, and what the service reads from a graph."""

from __future__ import annotations

import numpy as np
from sklearn.datasets import load_iris

from {{ cookiecutter.project_slug }}.model import onnx_proto
from {{ cookiecutter.project_slug }}.model.demo import DEMO_SIDECAR, train_demo
from {{ cookiecutter.project_slug }}.model.onnx import demo_bytes, export, load_bytes


def test_the_shipped_demo_is_the_demo_model() -> None:
    """The package carries the exported demo (the service has no scikit-learn to train it)."""
    served = load_bytes(demo_bytes(), "demo", DEMO_SIDECAR, "the demo model")
    fresh = load_bytes(export(train_demo()), "demo", DEMO_SIDECAR, "a fresh export")
    rows = load_iris().data
    shipped = served.predict(rows, probabilities=True)
    assert shipped.values == fresh.predict(rows, probabilities=True).values
    assert shipped.values == train_demo().predict(rows).tolist()
    expected = train_demo().predict_proba(rows)
    assert np.allclose(np.asarray(shipped.probabilities), expected, atol=1e-5)


def test_class_labels_are_read_from_the_graph() -> None:
    assert onnx_proto.class_labels(demo_bytes()) == ["setosa", "versicolor", "virginica"]
    assert onnx_proto.class_labels(b"") == []
