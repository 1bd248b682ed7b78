"""The ``/predict`` request and response models, generated from the served model's signature.

Each instance is either a record (an object with every feature by name) or a positional row (an
array of the feature values in order); for a text model, also the document itself, a string.
All are typed feature by feature, so pydantic-core
checks everything in one pass over the JSON bytes and the OpenAPI document shows exactly what
the model accepts: names, types, categories as enums, nullability, ranges and row length.
"""

from __future__ import annotations

import functools
from datetime import datetime
from operator import itemgetter
from typing import Annotated, Any, Literal, cast

import numpy as np
from fastapi.exceptions import RequestValidationError
from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Discriminator,
    Field,
    StrictBool,
    StrictInt,
    StrictStr,
    Tag,
    ValidationError,
    WithJsonSchema,
    create_model,
)
from typing_extensions import TypedDict  # pydantic reads typing.TypedDict only from 3.12 on

from ..model.base import ModelMetadata, Rows
from ..model.signature import NUMERIC_TYPES, Feature, Label, Signature
from .schemas import validation_error

# Strict: "1.5" or true is not a number. No NaN or Infinity: models give garbage for them.
FiniteFloat = Annotated[float, Field(strict=True, allow_inf_nan=False)]
INSTANCE_ERROR = (
    "an instance is an object with every feature by name, or an array of the feature values "
    "in order"
)
DOCUMENT_ERROR = INSTANCE_ERROR + ", or the document itself (a string)"
# Times as RFC 3339 / ISO 8601 strings ("2024-05-01T12:00:00Z"); strict: no Unix numbers.
StrictDatetime = Annotated[datetime, Field(strict=True)]
ANSWERS = {
    "classification": "One class label per instance, in order.",
    "regression": "One predicted value per instance, in order.",
    "clustering": "One cluster id per instance, in order.",
    "outlier_detection": "Per instance, in order: 1 for an inlier, -1 for an outlier.",
}


# Numbers a model is given stay within this magnitude unless the metadata file sets a range. No
# measured quantity comes near it, and squares and products of such values still fit in a
# double: past it, a linear step or a distance overflows to Infinity, and a schema-valid request
# could only be answered with an error.
MAGNITUDE = 1e100


def _no_booleans(value: Any) -> Any:
    """JSON ``true`` is no number: ``Literal[1]`` alone would take it (``True == 1``)."""
    if isinstance(value, bool):
        raise ValueError("a boolean is not one of the categories")
    return value


def _only_false(value: bool) -> bool:
    if value:
        raise ValueError("this model gives no probabilities: only false is accepted")
    return value


# ``Literal[False]`` would take 0 as well, and cannot be strict.
OnlyFalse = Annotated[
    StrictBool, AfterValidator(_only_false), WithJsonSchema({"type": "boolean", "const": False})
]


def value_type(feature: Feature) -> Any:
    """The pydantic type of one feature's value."""
    kind: Any
    if feature.type == "boolean":
        kind = StrictBool  # both values, either way: and Literal[True] would take 1 as well
    elif feature.categories is not None:
        kind = Literal[feature.categories]
        if feature.type in NUMERIC_TYPES:
            kind = Annotated[kind, BeforeValidator(_no_booleans)]
    elif feature.type == "number":
        kind = Annotated[float, Field(strict=True, allow_inf_nan=False)]
    elif feature.type == "integer":
        kind = StrictInt
    elif feature.type == "datetime":
        kind = StrictDatetime
    else:
        kind = StrictStr
    if feature.type in NUMERIC_TYPES and feature.categories is None:
        if (feature.minimum, feature.maximum) == (None, None):
            kind = Annotated[kind, Field(ge=-MAGNITUDE, le=MAGNITUDE)]
        else:
            kind = Annotated[kind, Field(ge=feature.minimum, le=feature.maximum)]
    if feature.description:
        kind = Annotated[kind, Field(description=feature.description)]
    return kind | None if feature.nullable else kind


def _instance_kind(value: Any) -> str | None:
    if isinstance(value, dict):
        return "record"
    if isinstance(value, list):
        return "row"
    if isinstance(value, str):
        return "document"
    return None


class PredictSchema:
    """Reads ``/predict`` bodies for one model: validation, then rows in feature order."""

    def __init__(self, metadata: ModelMetadata, max_rows: int) -> None:
        signature = metadata.signature
        self.signature = signature
        self.names = signature.names
        self._field = itemgetter(*self.names) if len(self.names) > 1 else None
        matrix = not signature.named and all(f.type in NUMERIC_TYPES for f in signature.features)
        # A numeric matrix model keeps the fast path: one float64 array, no per-value objects.
        self._dtype: Any = np.float64 if matrix else object
        self.request = self._request_model(signature, max_rows, matrix)
        self.response = self._response_model(signature)

    @staticmethod
    def _request_model(signature: Signature, max_rows: int, matrix: bool) -> type[BaseModel]:
        n = len(signature.features)
        types = [value_type(f) for f in signature.features]
        row: Any
        if matrix and len(set(map(repr, types))) == 1:
            row = Annotated[list[types[0]], Field(min_length=n, max_length=n)]  # type: ignore[valid-type]
        else:
            row = tuple.__class_getitem__(tuple(types))
        fields = dict(zip(signature.names, types, strict=True))
        record: Any = cast(Any, TypedDict)("Record", fields)
        record.__pydantic_config__ = ConfigDict(extra="forbid")
        kinds: Any = Annotated[record, Tag("record")] | Annotated[row, Tag("row")]
        if signature.documents:
            kinds = kinds | Annotated[types[0], Tag("document")]
        instance = Annotated[
            kinds,
            Discriminator(
                _instance_kind,
                custom_error_type="instance_type",
                custom_error_message=DOCUMENT_ERROR if signature.documents else INSTANCE_ERROR,
            ),
        ]
        example = signature.example_row()
        examples: Any = [
            {"instances": [dict(zip(signature.names, example, strict=True))]},
            {"instances": [example], "probabilities": signature.probabilities},
        ]
        if signature.documents:
            examples.append({"instances": example})
        probabilities_help = (
            "Add each instance's class probabilities to the answer."
            if signature.probabilities
            else "This model gives no probabilities: only `false` is accepted."
        )
        model: type[BaseModel] = create_model(
            "PredictRequest",
            __config__=ConfigDict(extra="forbid", json_schema_extra={"examples": examples}),
            instances=(
                list[instance],
                Field(
                    min_length=1,
                    max_length=max_rows,
                    description="Rows to predict: objects by feature name, or arrays of the "
                    "feature values in `/model`'s order.",
                ),
            ),
            probabilities=(
                StrictBool if signature.probabilities else OnlyFalse,
                Field(default=False, description=probabilities_help),
            ),
        )
        return model

    @staticmethod
    def _response_model(signature: Signature) -> type[BaseModel]:
        prediction: Any
        what = ANSWERS[signature.task]
        outputs = signature.outputs
        if outputs:
            names = ", ".join(output.name for output in outputs)
            what = f"Per instance, in order, one value per output: {names}."
            # One list per row rather than a tuple of per-output types: schema tools read a
            # tuple's ``prefixItems`` unevenly, and the outputs' classes are in ``/model``.
            k = len(outputs)
            every = tuple(dict.fromkeys(c for o in outputs for c in o.classes))
            value: Any = _labels(every) if signature.labelled else float
            prediction = Annotated[list[value], Field(min_length=k, max_length=k)]
        elif signature.task == "regression":
            prediction = float
        else:
            prediction = _labels(signature.classes)
        fields: dict[str, Any] = {
            "predictions": (list[prediction], Field(description=what)),
            "model_version": (str, ...),
        }
        if signature.probabilities:
            if outputs:
                k = len(outputs)
                per_row: Any = Annotated[list[list[float]], Field(min_length=k, max_length=k)]
                order = "per output, one probability per class of that output, in its order"
            else:
                per_row = _probability_row(len(signature.classes))
                order = "one probability per class, in the order of `/model`'s `classes`"
            fields["probabilities"] = (
                list[per_row] | None,
                Field(
                    default=None,
                    description=f"With `probabilities: true`: per instance, {order}.",
                ),
            )
        model: type[BaseModel] = create_model("PredictResponse", **fields)
        return model

    def parse(self, body: bytes) -> tuple[Rows, bool]:
        """The body's rows, in feature order, and whether probabilities were asked for."""
        try:
            request = self.request.model_validate_json(body)
        except ValidationError as exc:
            raise self._named(validation_error(exc)) from None
        instances: list[Any] = request.instances  # type: ignore[attr-defined]
        field = self._field
        if field is not None:
            table = [list(field(i)) if isinstance(i, dict) else i for i in instances]
        else:
            name = self.names[0]
            # A record, a row (a list or a tuple), or a text model's bare document.
            table = [
                [i[name]] if isinstance(i, dict) else [i] if isinstance(i, str) else i
                for i in instances
            ]
        rows = np.array(table, dtype=self._dtype)
        return rows, bool(request.probabilities)  # type: ignore[attr-defined]

    def _named(self, exc: RequestValidationError) -> RequestValidationError:
        """Errors located as the client wrote the instance, naming the feature.

        The union's branch tag (``record``/``row``) leaves ``loc``; a positional value's
        feature name joins its message.
        """
        issues = []
        for issue in exc.errors():
            loc = list(issue["loc"])
            if len(loc) > 3 and loc[1] == "instances" and loc[3] in ("record", "row"):
                del loc[3]
                if isinstance(loc[-1], int) and len(loc) == 4 and loc[-1] < len(self.names):
                    issue = {**issue, "msg": f"{self.names[loc[-1]]}: {issue['msg']}"}
            issues.append({**issue, "loc": tuple(loc)})
        return RequestValidationError(issues)


def _labels(classes: tuple[Label, ...]) -> Any:
    return Literal[classes] if classes else str | int | float


def _probability_row(width: int) -> Any:
    return Annotated[list[float], Field(min_length=width, max_length=width)]


@functools.cache
def predict_schema(metadata: ModelMetadata, max_rows: int) -> PredictSchema:
    """Built once per loaded model (``ModelMetadata`` hashes by identity)."""
    return PredictSchema(metadata, max_rows)
