"""Schemathesis hooks (``SCHEMATHESIS_HOOKS=tests.schemathesis_hooks``) for a baked service.

The Open Inference Protocol's infer route types every tensor value in its request schema, but
JSON Schema cannot say three things that its description says in words: a tensor's ``data``
holds as many values as its ``shape`` multiplies to, a model with named inputs takes each of
them once, and all of those have the same number of rows. A body that schemathesis generates
from the schema alone breaks them nearly every time, and the service rightly answers 400.

``fill_tensors`` makes each generated body keep those rules and nothing else changes: the values
are the ones schemathesis generated, repeated or cut to fill the shape; the rows are the first
tensor's; a named input the body lacks (or has twice) is one tensor of a valid value, from the
model's inputs as ``GET /model`` describes them, passed in ``OIP_INPUTS`` (JSON). Schemathesis
checks the mapped body against the schema again, so a negative case stays negative only while
it still breaks the schema. With that, its positive checks hold the route to every status it
documents with no allowance.
"""

from __future__ import annotations

import itertools
import json
import math
import os
from typing import Any

import schemathesis

# The infer route, and the same route for each kept version of the model.
INFER = {"/v2/models/{name}/infer", "/v2/models/{name}/versions/{version}/infer"}
DATATYPE = {"number": "FP64", "integer": "INT64", "boolean": "BOOL"}
VALUE: dict[str, Any] = {
    "number": 0.0,
    "integer": 0,
    "boolean": True,
    "string": "text",
    "datetime": "2024-05-01T12:00:00+00:00",
}


def _inputs() -> dict[str, dict[str, Any]]:
    described: list[dict[str, Any]] = json.loads(os.environ.get("OIP_INPUTS", "[]"))
    return {item["name"]: item for item in described}


def _flatten(data: list[Any]) -> list[Any]:
    flat: list[Any] = []
    for item in data:
        flat.extend(_flatten(item) if isinstance(item, list) else [item])
    return flat


def _well_formed(tensor: Any) -> bool:
    if not isinstance(tensor, dict) or not isinstance(tensor.get("data"), list):
        return False
    shape = tensor.get("shape")
    return (
        isinstance(shape, list)
        and len(shape) > 0
        and all(_whole(n) and n >= 1 for n in shape)
        and bool(_flatten(tensor["data"]))
    )


def _whole(value: Any) -> bool:
    """An integer as JSON Schema sees one: 2.0 is one too."""
    return isinstance(value, int | float) and not isinstance(value, bool) and value == int(value)


def _described(name: str, feature: dict[str, Any], rows: int) -> dict[str, Any]:
    """One valid tensor of ``rows`` rows for a named input the generated body lacks."""
    categories = feature.get("categories")
    value = categories[0] if categories else VALUE[feature["type"]]
    if feature["type"] in ("number", "integer") and feature.get("minimum") is not None:
        value = feature["minimum"]
    datatype = DATATYPE.get(feature["type"], "BYTES")
    return {"name": name, "shape": [rows], "datatype": datatype, "data": [value] * rows}


@schemathesis.hook
def map_case(context: Any, case: Any) -> Any:
    """Each generated infer body with the tensors' data filling their shapes; see the module."""
    if context.operation is None or context.operation.path not in INFER:
        return case
    body = case.body
    if not isinstance(body, dict) or not isinstance(body.get("inputs"), list):
        return case
    tensors = body["inputs"]
    if not tensors or not all(_well_formed(t) for t in tensors):
        return case
    features = _inputs()
    names = [t.get("name") for t in tensors]
    if all(isinstance(name, str) and name in features for name in names):  # named inputs
        rows = int(tensors[0]["shape"][0])
        first: dict[str, dict[str, Any]] = {}
        for tensor in tensors:
            first.setdefault(tensor["name"], tensor)
        order = [*first, *(name for name in features if name not in first)]
        tensors = [
            {**first[name], "shape": [rows, *first[name]["shape"][1:]]}
            if name in first
            else _described(name, features[name], rows)
            for name in order
        ]
    filled = []
    for tensor in tensors:
        values = _flatten(tensor["data"])
        wanted = math.prod(int(n) for n in tensor["shape"])
        filled.append({**tensor, "data": list(itertools.islice(itertools.cycle(values), wanted))})
    case.body = {**body, "inputs": filled}
    return case
