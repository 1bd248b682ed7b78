"""Reference statistics of the training data, stored beside the model, for drift metrics.

``python -m {{ cookiecutter.project_slug }} reference train.csv`` reads the data the model was
fitted on, checks every row as ``POST /predict`` would, and records per feature:

- numbers: up to nine deciles as bucket edges (so up to ten buckets, ``"0"`` to ``"9"``) and the
  share of rows in each bucket;
- strings and booleans: the share of each of the ``MAX_CATEGORIES`` most common values, the
  rest together as ``"other"``;
- both: the share of missing values (``"missing"``).

It records the model's answers on those rows the same way: the share of each class, or a
regressor's deciles (which also become the buckets of its predicted-value histogram).

The service counts live inputs in the same buckets (``model_input_bucket_total``) and exports
the reference shares beside them (``model_input_reference_share``), so that Prometheus computes
a population stability index per feature (``monitoring/alerts.yml``). Bucket labels come only
from this file: a client cannot add series.
"""

from __future__ import annotations

import csv
import json
import math
from bisect import bisect_right
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from fastapi.exceptions import RequestValidationError

from ..api.signature_schema import predict_schema
from ..model.base import Label, Predictor, Rows
from ..model.signature import NUMERIC_TYPES, Signature

FORMAT = 1
SUFFIX = ".reference.json"
# The demo model's reference, made by this module from the iris data scikit-learn ships (a test
# checks it still is): shipped, so that serving the demo needs no scikit-learn to describe it.
DEMO = Path(__file__).with_name("demo" + SUFFIX)
MISSING = "missing"
OTHER = "other"
MAX_CATEGORIES = 20
QUANTILES = (0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9)
CHUNK_ROWS = 1000
SMALL_BATCH = 16


class ReferenceError(Exception):
    """The reference file or the data it is computed from cannot be used; the message says why."""


@dataclass(frozen=True)
class Distribution:
    """One feature (or the model's answers) as the reference saw it: buckets and their shares.

    ``edges`` is set for numbers: bucket ``"i"`` holds ``edges[i-1] <= x < edges[i]``.
    """

    name: str
    shares: dict[str, float]
    edges: tuple[float, ...] | None = None

    def counts(self, column: Rows) -> dict[str, int]:
        """How many of ``column``'s values fall in each bucket (only buckets that occur)."""
        if self.edges is not None and len(column) <= SMALL_BATCH:
            # A request's few rows: plain Python is several times faster than NumPy's set-up.
            tally: Counter[str] = Counter()
            for number in column.tolist():
                missing = number is None or number != number
                tally[MISSING if missing else str(bisect_right(self.edges, number))] += 1
            return dict(tally)
        if self.edges is not None:
            values = np.asarray(column, dtype=np.float64)  # None becomes NaN
            missing = np.isnan(values)
            found = np.bincount(
                np.searchsorted(self.edges, values[~missing], side="right"),
                minlength=len(self.edges) + 1,
            )
            counts = {str(i): int(n) for i, n in enumerate(found.tolist()) if n}
            if missing.any():
                counts[MISSING] = int(missing.sum())
            return counts
        tally = Counter()
        for value in np.asarray(column, dtype=object).tolist():
            if _missing(value):
                tally[MISSING] += 1
            else:
                text = _category(value)
                tally[text if text in self.shares else OTHER] += 1
        return dict(tally)


@dataclass(frozen=True)
class Reference:
    rows: int
    features: tuple[Distribution, ...]
    predictions: Distribution

    def to_json(self) -> str:
        def plain(d: Distribution) -> dict[str, Any]:
            edges = None if d.edges is None else list(d.edges)
            return {"name": d.name, "edges": edges, "shares": d.shares}

        document = {
            "format": FORMAT,
            "rows": self.rows,
            "features": [plain(d) for d in self.features],
            "predictions": plain(self.predictions),
        }
        return json.dumps(document, indent=2) + "\n"


def compute(signature: Signature, rows: Rows, answers: list[Label]) -> Reference:
    """The reference for ``rows`` (validated, in the signature's order) and the model's answers."""
    features = tuple(
        _numbers(f.name, rows[:, i]) if f.type in NUMERIC_TYPES else _categories(f.name, rows[:, i])
        for i, f in enumerate(signature.features)
    )
    column = np.array(answers, dtype=object)
    if signature.labelled:
        predictions = _categories("prediction", column, pinned=signature.classes)
    else:
        predictions = _numbers("prediction", column)
    return Reference(rows=len(rows), features=features, predictions=predictions)


def _numbers(name: str, column: Rows) -> Distribution:
    values = np.asarray(column, dtype=np.float64)
    present = values[~np.isnan(values)]
    edges = tuple(np.unique(np.quantile(present, QUANTILES)).tolist()) if present.size else ()
    empty = Distribution(name, {}, edges)
    return Distribution(name, _shares(empty.counts(values), len(values), _labels(edges)), edges)


def _categories(name: str, column: Rows, pinned: Iterable[Label] = ()) -> Distribution:
    tally = Counter(_category(v) for v in column.tolist() if not _missing(v))
    kept = [_category(v) for v in pinned][:MAX_CATEGORIES]
    kept += [v for v, _ in tally.most_common() if v not in kept][: MAX_CATEGORIES - len(kept)]
    shares = dict.fromkeys(kept, 0.0)
    counts = Distribution(name, shares).counts(column)
    return Distribution(name, _shares(counts, len(column), [*kept, OTHER]))


def _labels(edges: tuple[float, ...]) -> list[str]:
    return [str(i) for i in range(len(edges) + 1)]


def _shares(counts: dict[str, int], total: int, labels: list[str]) -> dict[str, float]:
    """Every bucket's share, zeros included: a bucket the reference never saw still has a series."""
    return {label: round(counts.get(label, 0) / max(total, 1), 6) for label in [*labels, MISSING]}


def _missing(value: object) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


def _category(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


# --- files ------------------------------------------------------------------------------------


def default_path(model_path: Path) -> Path:
    """The model file's name with ``.reference.json`` for its suffix, in the same folder."""
    return model_path.with_name(model_path.stem + SUFFIX)


def read(path: Path, signature: Signature) -> Reference:
    """The reference at ``path``, checked against the served model's features."""
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
        features = tuple(_distribution(d) for d in document["features"])
        predictions = _distribution(document["predictions"])
        rows = int(document["rows"])
        if document.get("format") != FORMAT:
            raise ValueError(f"format {document.get('format')!r}, expected {FORMAT}")
    except OSError as exc:
        raise ReferenceError(f"cannot read {path}: {exc.strerror or exc}") from exc
    except (ValueError, KeyError, TypeError) as exc:
        raise ReferenceError(f"{path} is not a reference file: {exc}") from exc
    names = [d.name for d in features]
    if names != signature.names:
        raise ReferenceError(
            f"{path} describes the features {names}, but the model takes {signature.names}: "
            "compute it again for this model (`reference` command)"
        )
    return Reference(rows=rows, features=features, predictions=predictions)


def write(predictor: Predictor, records: Iterable[dict[str, Any]], output: Path) -> Path:
    """Compute the reference of ``records`` for ``predictor`` and write it to ``output``."""
    found = from_records(predictor, records)
    try:
        output.write_text(found.to_json(), encoding="utf-8")
    except OSError as exc:
        raise ReferenceError(f"cannot write {output}: {exc.strerror or exc}") from exc
    return output


def _distribution(document: dict[str, Any]) -> Distribution:
    edges = document.get("edges")
    shares = {str(k): float(v) for k, v in dict(document["shares"]).items()}
    if MISSING not in shares:
        raise ValueError(f"{document['name']}: no {MISSING!r} bucket")
    return Distribution(
        name=str(document["name"]),
        shares=shares,
        edges=None if edges is None else tuple(float(e) for e in edges),
    )


# --- from training data -----------------------------------------------------------------------


def from_records(predictor: Predictor, records: Iterable[dict[str, Any]]) -> Reference:
    """Check every record as ``POST /predict`` would, predict them, and describe both."""
    metadata = predictor.metadata
    schema = predict_schema(metadata, CHUNK_ROWS)
    names = metadata.signature.names
    chunks: list[Rows] = []
    answers: list[Label] = []
    for start, chunk in _chunks(records, CHUNK_ROWS):
        missing = [n for n in names if n not in chunk[0]]
        if missing:
            raise ReferenceError(f"the data has no column {', '.join(missing)}")
        body = json.dumps({"instances": [{n: r[n] for n in names} for r in chunk]})
        try:
            rows = schema.parse(body.encode())[0]
        except RequestValidationError as exc:
            error = exc.errors()[0]
            where = [str(part) for part in error["loc"]]
            row = start + int(where[2]) if len(where) > 2 and where[2].isdigit() else start
            field = f" {where[3]}" if len(where) > 3 else ""
            raise ReferenceError(f"row {row + 1}{field}: {error['msg']}") from None
        chunks.append(rows)
        answers += predictor.predict(rows, False).values
    if not chunks:
        raise ReferenceError("the data has no rows")
    return compute(metadata.signature, np.concatenate(chunks), answers)


def _chunks(
    records: Iterable[dict[str, Any]], size: int
) -> Iterator[tuple[int, list[dict[str, Any]]]]:
    chunk: list[dict[str, Any]] = []
    start = 0
    for record in records:
        chunk.append(record)
        if len(chunk) == size:
            yield start, chunk
            start += size
            chunk = []
    if chunk:
        yield start, chunk


def read_records(path: Path, signature: Signature) -> Iterator[dict[str, Any]]:
    """Rows of a CSV file with a header line (values typed by the signature), or of Parquet."""
    if path.suffix.lower() in (".parquet", ".pq"):
        try:
            import pyarrow.parquet as pq  # optional: only to read Parquet
        except ImportError:
            raise ReferenceError(
                "reading Parquet needs pyarrow (`pip install pyarrow`); or give a CSV file"
            ) from None
        yield from pq.read_table(path).to_pylist()
        return
    types = {f.name: f.type for f in signature.features}
    try:
        with path.open(newline="", encoding="utf-8") as file:
            for line, record in enumerate(csv.DictReader(file), start=2):
                try:
                    yield {k: _typed(v, types.get(k)) for k, v in record.items()}
                except ValueError as exc:
                    raise ReferenceError(f"{path}, line {line}: {exc}") from None
    except OSError as exc:
        raise ReferenceError(f"cannot read {path}: {exc.strerror or exc}") from exc


def _typed(text: str | None, kind: str | None) -> object:
    """A CSV field as JSON would carry it: empty is missing; numbers and booleans parsed."""
    if text is None or text.strip() == "":
        return None
    if kind in NUMERIC_TYPES:
        number = float(text)
        return int(number) if kind == "integer" and number.is_integer() else number
    if kind == "boolean":
        lowered = text.strip().lower()
        if lowered in ("true", "1", "yes"):
            return True
        if lowered in ("false", "0", "no"):
            return False
        raise ValueError(f"{text!r} is not a boolean")
    return text
