"""A heavier model for the batching scenario: 32 features, gradient-boosted trees.

    python bench/slow_model.py train DIR      # writes DIR/model.skops and DIR/model.json
    python bench/slow_model.py speed FILE     # rows/s in-process, one row at a time and batched

A HistGradientBoostingClassifier costs about a millisecond per call whatever the number of rows
(input checks, thread start-up), so it is the kind of model micro-batching should help. The
training data is synthetic (``make_classification``) with a fixed seed: every run builds the
same model. Runs with the interpreter of the baked project, which has scikit-learn and skops.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import sklearn
import skops.io
from sklearn.datasets import make_classification
from sklearn.ensemble import HistGradientBoostingClassifier

FEATURES = 32
SEED = 0


def data(rows: int) -> tuple[np.ndarray, np.ndarray]:
    x, y = make_classification(
        n_samples=rows, n_features=FEATURES, n_informative=16, n_classes=3, random_state=SEED
    )
    return x, np.array(["a", "b", "c"])[y]


def train(directory: Path) -> Path:
    x, y = data(5_000)
    model = HistGradientBoostingClassifier(max_iter=100, random_state=SEED).fit(x, y)
    directory.mkdir(parents=True, exist_ok=True)
    artifact = directory / "model.skops"
    skops.io.dump(model, artifact)
    sidecar = {
        "version": "hgb-32",
        "features": [f"f{i}" for i in range(FEATURES)],
        "classes": [str(c) for c in model.classes_],
    }
    (directory / "model.json").write_text(json.dumps(sidecar, indent=2) + "\n", encoding="utf-8")
    return artifact


def rows_per_second(model: object, rows: np.ndarray, batch: int, seconds: float) -> float:
    """Predict ``batch`` rows per call for about ``seconds``; the service's sklearn settings."""
    done = 0
    started = time.perf_counter()
    with sklearn.config_context(assume_finite=True, skip_parameter_validation=True):
        while time.perf_counter() - started < seconds:
            start = done % (len(rows) - batch)
            model.predict(rows[start : start + batch])  # type: ignore[attr-defined]
            done += batch
    return done / (time.perf_counter() - started)


def speed(artifact: Path, seconds: float) -> dict[str, float]:
    model = skops.io.load(artifact, trusted=skops.io.get_untrusted_types(file=artifact))
    rows, _ = data(2_000)
    rows_per_second(model, rows, 1, 0.5)  # warm up
    return {
        "one_row": rows_per_second(model, rows, 1, seconds),
        "batch_64": rows_per_second(model, rows, 64, seconds),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("train").add_argument("directory", type=Path)
    measure = commands.add_parser("speed")
    measure.add_argument("artifact", type=Path)
    measure.add_argument("--seconds", type=float, default=5.0)
    args = parser.parse_args()
    if args.command == "train":
        print(train(args.directory))
    else:
        print(json.dumps(speed(args.artifact, args.seconds)))


if __name__ == "__main__":
    main()
