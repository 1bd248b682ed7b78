"""What the HTTP layer needs from a model, whatever library runs it."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np
import numpy.typing as npt

from .signature import Label, ModelLoadError, Signature

__all__ = [
    "Label",
    "ModelError",
    "ModelLoadError",
    "ModelMetadata",
    "Prediction",
    "Predictor",
    "Rows",
    "check_output",
    "refuse_foreign_formats",
]

# A batch of validated rows in the signature's feature order: float64 for a numeric matrix
# model, object (numbers, strings, booleans, None) for a model that takes named columns.
Rows = npt.NDArray[Any]


@dataclass(frozen=True, eq=False)  # hashed by identity: a cache key per loaded model
class ModelMetadata:
    name: str
    version: str
    framework: str
    signature: Signature
    description: str | None = None

    @property
    def features(self) -> list[str]:
        return self.signature.names

    @property
    def n_features(self) -> int:
        return len(self.signature.features)

    @property
    def classes(self) -> list[Label]:
        return list(self.signature.classes)


@dataclass(frozen=True, slots=True)
class Prediction:
    """One label or value per row; with probabilities, one row of them per row."""

    values: list[Label]
    probabilities: list[list[float]] | None = None

    def __len__(self) -> int:
        return len(self.values)

    def slice(self, start: int, stop: int) -> Prediction:
        probabilities = self.probabilities
        return Prediction(
            self.values[start:stop], None if probabilities is None else probabilities[start:stop]
        )


class ModelError(Exception):
    """The model raised, or answered something the service cannot return.

    ``rejected_input``: the model refused these rows (an unseen category, say): the caller's
    fault, a 422. Otherwise the model itself failed: a 500.
    """

    def __init__(self, message: str, *, rejected_input: bool) -> None:
        super().__init__(message)
        self.rejected_input = rejected_input


class Predictor(Protocol):
    """A loaded model: metadata plus a thread-safe ``predict`` on a batch of rows."""

    metadata: ModelMetadata

    def predict(self, rows: Rows, probabilities: bool) -> Prediction:
        """Labels (or values) in row order, and class probabilities when asked for.

        Raises ``ModelError`` for anything the model raises or returns that cannot be served.
        """
        ...


def check_output(
    signature: Signature,
    rows: int,
    values: npt.NDArray[Any],
    probabilities: npt.NDArray[Any] | None,
) -> Prediction:
    """Plain Python answers for JSON, after checking they fit the signature.

    A model that returns the wrong number of answers, NaN or Infinity, or probabilities of the
    wrong width fails here with a ``ModelError`` rather than later in the JSON encoder.
    """
    values = np.asarray(values)
    if values.ndim == 2 and values.shape[1] == 1:
        values = values.reshape(-1)
    if values.ndim != 1 or len(values) != rows:
        raise ModelError(
            f"the model returned shape {list(values.shape)} for {rows} rows; expected one "
            "label or value per row",
            rejected_input=False,
        )
    if values.dtype.kind == "f" and not np.isfinite(values).all():
        raise ModelError("the model returned NaN or Infinity", rejected_input=False)
    table = None
    if probabilities is not None:
        probabilities = np.asarray(probabilities, dtype=np.float64)
        width = len(signature.classes)
        if probabilities.shape != (rows, width):
            raise ModelError(
                f"the model returned probabilities of shape {list(probabilities.shape)}; "
                f"expected [{rows}, {width}]",
                rejected_input=False,
            )
        if not np.isfinite(probabilities).all():
            raise ModelError(
                "the model returned NaN or Infinity probabilities", rejected_input=False
            )
        table = probabilities.tolist()
    return Prediction(to_labels(values), table)


def refuse_foreign_formats(data: bytes, source: str, advice: str) -> None:
    """One line that says what to do, for the files people most often try first."""
    if not data:
        raise ModelLoadError(f"{source} is empty")
    if data[:1] == b"\x80" or data[:2] in (b"\x1f\x8b", b"x\x9c", b"x\x01", b"x\xda", b"BZ"):
        raise ModelLoadError(
            f"{source} looks like a pickle or joblib file, which can run any code when loaded "
            f"and is refused: {advice}"
        )


def to_labels(values: npt.NDArray[Any]) -> list[Label]:
    """Plain Python labels for JSON: numpy scalars and bytes become int, float or str."""
    return [v.decode("utf-8") if isinstance(v, bytes) else v for v in values.tolist()]
