"""What the HTTP layer needs from a model, whatever library runs it."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import numpy.typing as npt

from .signature import Example, Label, ModelLoadError, Signature, Value

__all__ = [
    "Label",
    "ModelError",
    "ModelLoadError",
    "ModelMetadata",
    "Prediction",
    "Predictor",
    "Rows",
    "Value",
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
    # The metadata file's ``examples``: instances the model must answer (as given, if given).
    examples: tuple[Example, ...] = ()
    # Where the artifact lies (a local file or its cached download), for the files beside it.
    artifact: Path | None = None

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
    """One label or value per row (a list of them for a model with several outputs); with
    probabilities, one row of them per row (for several outputs, one row per output)."""

    values: list[Any]
    probabilities: list[Any] | None = None

    def __len__(self) -> int:
        return len(self.values)

    def slice(self, start: int, stop: int) -> Prediction:
        probabilities = self.probabilities
        return Prediction(
            self.values[start:stop], None if probabilities is None else probabilities[start:stop]
        )


class ModelError(Exception):
    """The model raised, or answered something the service cannot return.

    ``rejected_input``: the model refused these rows (an unseen category, say), or answered
    NaN or Infinity for finite input: the caller's fault, a 422 that names ``row`` when it is
    known. Otherwise the model itself failed: a 500. ``unfit``: what it answered does not fit
    its signature (a shape, a width), which no input can cause: such a model never serves.
    """

    def __init__(
        self, message: str, *, rejected_input: bool, row: int | None = None, unfit: bool = False
    ) -> None:
        super().__init__(message)
        self.rejected_input = rejected_input
        self.row = row
        self.unfit = unfit


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
    probabilities: npt.NDArray[Any] | list[npt.NDArray[Any]] | None,
) -> Prediction:
    """Plain Python answers for JSON, after checking they fit the signature.

    A model that returns the wrong number of answers or probabilities of the wrong width fails
    here (``unfit``) rather than later in the JSON encoder. NaN or Infinity out of rows that
    passed validation is the input's doing (extreme but finite values overflow): a refusal of
    that row, not a server error.
    """
    values = np.asarray(values)
    width = len(signature.outputs)
    if width:
        wanted = [rows, width]
    else:
        wanted = [rows]
        if values.ndim == 2 and values.shape[1] == 1:
            values = values.reshape(-1)
    if list(values.shape) != wanted:
        several = f"{width} values" if width else "one label or value"
        hint = (
            ""
            if width
            else ' (for several values per row, name them as "outputs" in the model metadata)'
        )
        raise ModelError(
            f"the model returned shape {list(values.shape)} for {rows} rows; expected "
            f"{several} per row{hint}",
            rejected_input=False,
            unfit=True,
        )
    if values.dtype.kind in "fc":
        _refuse_non_finite(values, "")
    table = None
    if probabilities is not None:
        table = _probabilities(signature, rows, probabilities)
    return Prediction(to_labels(values), table)


def _probabilities(
    signature: Signature, rows: int, found: npt.NDArray[Any] | list[npt.NDArray[Any]]
) -> list[Any]:
    """Per row, the classes' probabilities; for several outputs, a list of them per output."""
    outputs = signature.outputs
    tables = found if outputs else [found]
    widths = [len(o.classes) for o in outputs] if outputs else [len(signature.classes)]
    if len(tables) != len(widths):
        raise ModelError(
            f"the model returned probabilities for {len(tables)} outputs, not {len(widths)}",
            rejected_input=False,
            unfit=True,
        )
    checked: list[list[Any]] = []
    for table, width in zip(tables, widths, strict=True):
        array = np.asarray(table, dtype=np.float64)
        if array.shape != (rows, width):
            raise ModelError(
                f"the model returned probabilities of shape {list(array.shape)}; "
                f"expected [{rows}, {width}]",
                rejected_input=False,
                unfit=True,
            )
        _refuse_non_finite(array, " probabilities")
        checked.append(array.tolist())
    if not outputs:
        return checked[0]
    return [list(per_row) for per_row in zip(*checked, strict=True)]


def _refuse_non_finite(array: npt.NDArray[Any], what: str) -> None:
    finite = np.isfinite(array)
    if not finite.all():
        bad = np.flatnonzero(~finite.reshape(len(array), -1).all(axis=1))
        row = int(bad[0])
        raise ModelError(
            f"the model answered NaN or Infinity{what} for instance {row}: its values are too "
            "extreme for this model",
            rejected_input=True,
            row=row,
        )


def refuse_foreign_formats(data: bytes, source: str, advice: str) -> None:
    """One line that says what to do, for the files people most often try first."""
    if not data:
        raise ModelLoadError(f"{source} is empty")
    if data[:1] == b"\x80" or data[:2] in (b"\x1f\x8b", b"x\x9c", b"x\x01", b"x\xda", b"BZ"):
        raise ModelLoadError(
            f"{source} looks like a pickle or joblib file, which can run any code when loaded "
            f"and is refused: {advice}"
        )


def to_labels(values: npt.NDArray[Any]) -> list[Any]:
    """Plain Python labels for JSON: numpy scalars and bytes become int, float or str (a list
    of them per row for several outputs)."""
    if values.dtype.kind in "biuf":
        plain: list[Any] = values.tolist()
        return plain
    return [_label(v) for v in values.tolist()]


def _label(value: Any) -> Any:
    if isinstance(value, list):
        return [_label(v) for v in value]
    return value.decode("utf-8") if isinstance(value, bytes) else value
