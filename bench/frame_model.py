"""A tabular model as data scientists fit it: a DataFrame pipeline with string categories.

    python bench/frame_model.py train DIR      # writes DIR/churn.skops and DIR/body.json
    python bench/frame_model.py speed FILE     # predictions/s in-process, one row per call

Two numeric columns scaled, two string columns one-hot encoded, a logistic regression on top:
the service must build a DataFrame for every batch, which the plain-matrix demo never does. The
data is synthetic with a fixed seed, so every run builds the same model. ``speed`` times what a
caller of the model pays without the service: ``predict`` on a one-row DataFrame made from one
record, with the service's scikit-learn settings.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import pandas as pd
import sklearn
import skops.io
from sklearn.compose import ColumnTransformer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

SEED = 0
RECORD = {"age": 41.0, "income": 58.5, "plan": "team", "region": "eu"}


def data(rows: int) -> tuple[pd.DataFrame, np.ndarray]:
    rng = np.random.default_rng(SEED)
    frame = pd.DataFrame(
        {
            "age": rng.normal(40, 10, rows).round(1),
            "income": rng.normal(50, 15, rows).round(2),
            "plan": rng.choice(["free", "pro", "team"], rows),
            "region": rng.choice(["eu", "us", "apac"], rows),
        }
    )
    churn = (frame["plan"] == "free") & (frame["age"] < 35)
    return frame, np.where(churn, "churn", "stay")


def train(directory: Path) -> Path:
    frame, target = data(2_000)
    model = make_pipeline(
        ColumnTransformer(
            [
                ("numbers", StandardScaler(), ["age", "income"]),
                ("categories", OneHotEncoder(), ["plan", "region"]),
            ]
        ),
        LogisticRegression(max_iter=1000),
    ).fit(frame, target)
    directory.mkdir(parents=True, exist_ok=True)
    artifact = directory / "churn.skops"
    skops.io.dump(model, artifact)
    body = json.dumps({"instances": [RECORD]})
    (directory / "body.json").write_text(body, encoding="utf-8")
    return artifact


def speed(artifact: Path, seconds: float) -> dict[str, float]:
    model = skops.io.load(artifact, trusted=skops.io.get_untrusted_types(file=artifact))
    done = 0
    with sklearn.config_context(assume_finite=True, skip_parameter_validation=True):
        model.predict(pd.DataFrame([RECORD]))  # warm up
        started = time.perf_counter()
        while time.perf_counter() - started < seconds:
            model.predict(pd.DataFrame([RECORD]))
            done += 1
    return {"one_row": done / (time.perf_counter() - started)}


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
