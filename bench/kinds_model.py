"""Two kinds of model beyond the demo's one table and one label: text, and two targets.

    python bench/kinds_model.py train DIR      # DIR/text.skops, DIR/ridge2.skops, DIR/*-body.json
    python bench/kinds_model.py speed FILE     # seconds per in-process predict of its one row

- ``text``: ``TfidfVectorizer`` + ``LogisticRegression`` on short reviews made here from two
  word lists (a fixed seed, no download), served one document per request;
- ``ridge2``: a ``Ridge`` fitted on two targets of scikit-learn's diabetes data (ten features),
  answering two values per row.

``speed`` times what a caller of the model pays without the service: ``predict`` on the one
document or row that the bench's request body sends, with the service's scikit-learn settings
(the median of many calls).
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path
from typing import Any

import numpy as np
import sklearn
import skops.io
from sklearn.datasets import load_diabetes
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression, Ridge
from sklearn.pipeline import make_pipeline

SEED = 0
GOOD = ["wonderful", "moving", "funny", "brilliant", "warm", "clever", "tender"]
BAD = ["dull", "slow", "awful", "boring", "long", "flat", "clumsy"]
FILLER = ["film", "plot", "actors", "story", "the", "and", "a", "with", "its", "score"]
DOCUMENT = "a warm and funny story with clever actors"


def reviews(count: int) -> tuple[list[str], np.ndarray]:
    rng = np.random.default_rng(SEED)
    moods = rng.integers(0, 2, count)
    documents = []
    for mood in moods:
        words = [*rng.choice(GOOD if mood else BAD, 3), *rng.choice(FILLER, 6)]
        rng.shuffle(words)
        documents.append(" ".join(words))
    return documents, np.where(moods == 1, "liked", "disliked")


def train(directory: Path) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    documents, labels = reviews(2_000)
    text = make_pipeline(TfidfVectorizer(), LogisticRegression(max_iter=1000))
    skops.io.dump(text.fit(documents, labels), directory / "text.skops")
    body = {"instances": [DOCUMENT]}
    body_file(directory / "text.skops").write_text(json.dumps(body), encoding="utf-8")

    x, y = load_diabetes(return_X_y=True)
    two = np.column_stack([y, 0.5 * y + 10 * x[:, 0]])
    skops.io.dump(Ridge(alpha=0.5).fit(x, two), directory / "ridge2.skops")
    body = {"instances": [x[0].round(6).tolist()]}
    body_file(directory / "ridge2.skops").write_text(json.dumps(body), encoding="utf-8")


def body_file(artifact: Path) -> Path:
    """The request body for ``artifact`` (not ``<artifact>.json``: that is a metadata file)."""
    return artifact.with_name(f"{artifact.stem}-body.json")


def speed(artifact: Path, calls: int = 3000) -> float:
    model = skops.io.load(artifact, trusted=skops.io.get_untrusted_types(file=artifact))
    instance = json.loads(body_file(artifact).read_text(encoding="utf-8"))["instances"]
    rows: Any = instance if isinstance(instance[0], str) else np.asarray(instance)
    times = []
    with sklearn.config_context(assume_finite=True, skip_parameter_validation=True):
        model.predict(rows)  # warm up
        for _ in range(calls):
            started = time.perf_counter()
            model.predict(rows)
            times.append(time.perf_counter() - started)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("train").add_argument("directory", type=Path)
    commands.add_parser("speed").add_argument("artifact", type=Path)
    args = parser.parse_args()
    if args.command == "train":
        train(args.directory)
    else:
        print(json.dumps({"t_model": speed(args.artifact)}))


if __name__ == "__main__":
    main()
