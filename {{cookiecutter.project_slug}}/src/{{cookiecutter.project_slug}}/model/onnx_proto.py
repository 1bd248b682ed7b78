"""Class labels and encoders' categories from an ONNX file, read from its protobuf encoding.

Classifier nodes (``LinearClassifier``, ``TreeEnsembleClassifier``, ``SVMClassifier``, ``ZipMap``)
keep their labels, and ``OneHotEncoder`` nodes the categories they know, in attributes that
onnxruntime does not expose. The ``onnx`` package could read them, but it brings a second
protobuf schema and tens of megabytes into a runtime that otherwise needs onnxruntime and numpy
only; the few fields read here are stable parts of the ONNX format (``onnx.proto``:
ModelProto.graph = 7, GraphProto.node = 1, NodeProto.input = 1, output = 2, op_type = 4,
attribute = 5,
AttributeProto.name = 1, i = 3, ints = 8, strings = 9).
"""

from __future__ import annotations

from collections.abc import Iterator

LABEL_ATTRIBUTES = {
    b"classlabels_strings": "strings",
    b"classlabels_int64s": "ints",
    b"classlabels_ints": "ints",
}
VARINT, FIXED64, LENGTH, FIXED32 = 0, 1, 2, 5
# Nodes that pass their first input's values on unchanged (skl2onnx picks a DataFrame column
# out of its ``[batch, 1]`` input with a Gather before encoding it).
PASS_THROUGH = {b"Gather", b"Identity", b"Cast", b"Reshape", b"Squeeze", b"Unsqueeze", b"Flatten"}


def _varint(data: bytes, pos: int) -> tuple[int, int]:
    value = shift = 0
    while True:
        byte = data[pos]
        pos += 1
        value |= (byte & 0x7F) << shift
        if byte < 0x80:
            return value, pos
        shift += 7


def _fields(data: bytes) -> Iterator[tuple[int, int, int | bytes]]:
    """(field number, wire type, value) of one message; raises ValueError if malformed."""
    pos = 0
    while pos < len(data):
        key, pos = _varint(data, pos)
        number, wire = key >> 3, key & 7
        if wire == VARINT:
            value, pos = _varint(data, pos)
            yield number, wire, value
        elif wire == LENGTH:
            size, pos = _varint(data, pos)
            if pos + size > len(data):
                raise ValueError("truncated protobuf field")
            yield number, wire, data[pos : pos + size]
            pos += size
        elif wire in (FIXED64, FIXED32):
            pos += 8 if wire == FIXED64 else 4
        else:
            raise ValueError(f"unsupported protobuf wire type {wire}")


def _submessages(data: bytes, number: int) -> Iterator[bytes]:
    for field, wire, value in _fields(data):
        if field == number and wire == LENGTH and isinstance(value, bytes):
            yield value


def _signed(value: int) -> int:
    return value - (1 << 64) if value >= 1 << 63 else value


def _attribute_labels(attribute: bytes) -> list[str | int] | None:
    name = next(_submessages(attribute, 1), b"")
    kind = LABEL_ATTRIBUTES.get(name)
    if kind is None:
        return None
    return _values(attribute, kind)


def _values(attribute: bytes, kind: str) -> list[str | int]:
    if kind == "strings":
        return [value.decode("utf-8") for value in _submessages(attribute, 9)]
    ints: list[str | int] = []
    for field, wire, value in _fields(attribute):
        if field != 8:
            continue
        if wire == VARINT and isinstance(value, int):
            ints.append(_signed(value))
        elif isinstance(value, bytes):  # packed
            pos = 0
            while pos < len(value):
                item, pos = _varint(value, pos)
                ints.append(_signed(item))
    return ints


def class_labels(model: bytes) -> list[str | int]:
    """The first classifier node's labels, in the graph's order; [] for a regressor."""
    for graph in _submessages(model, 7):
        for node in _submessages(graph, 1):
            for attribute in _submessages(node, 5):
                labels = _attribute_labels(attribute)
                if labels:
                    return labels
    return []


def encoder_categories(model: bytes) -> dict[str, tuple[list[str | int], bool]]:
    """Per graph input that a ``OneHotEncoder`` node reads: its categories, and whether it
    refuses any other value (``zeros = 0``) rather than encoding it as all zeros."""
    found: dict[str, tuple[list[str | int], bool]] = {}
    for graph in _submessages(model, 7):
        source: dict[str, str] = {}  # a pass-through node's output -> its first input
        encoders = []
        for node in _submessages(graph, 1):
            op = next(_submessages(node, 4), b"")
            inputs = [value.decode("utf-8") for value in _submessages(node, 1)]
            outputs = [value.decode("utf-8") for value in _submessages(node, 2)]
            if op in PASS_THROUGH and inputs and len(outputs) == 1:
                source[outputs[0]] = inputs[0]
            elif op == b"OneHotEncoder" and inputs:
                encoders.append((inputs[0], _encoder(node)))
        for name, (categories, strict) in encoders:
            seen = set()
            while name in source and name not in seen:
                seen.add(name)
                name = source[name]
            if categories:
                found[name] = (categories, strict)
    return found


def _encoder(node: bytes) -> tuple[list[str | int], bool]:
    categories: list[str | int] = []
    zeros = 1
    for attribute in _submessages(node, 5):
        name = next(_submessages(attribute, 1), b"")
        if name == b"cats_strings":
            categories = _values(attribute, "strings")
        elif name == b"cats_int64s":
            categories = _values(attribute, "ints")
        elif name == b"zeros":
            zeros = next((v for f, _, v in _fields(attribute) if f == 3 and isinstance(v, int)), 1)
    return categories, zeros == 0
