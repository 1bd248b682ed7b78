"""ONNX models run by onnxruntime: the service needs onnxruntime and numpy, no training library.

Two input layouts are served: one 2-D tensor ``[batch, features]`` (the fast path), or one
tensor per column, as skl2onnx exports a pipeline fitted on a DataFrame (``[batch, 1]`` each,
strings included). Outputs are read as a label or value per row, plus a classifier's
probabilities (a ``[batch, classes]`` tensor, or the sequence of maps that ZipMap makes).
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Sequence
from dataclasses import replace
from importlib import resources
from typing import TYPE_CHECKING, Any

import numpy as np
import onnxruntime as ort

from . import onnx_proto
from .base import (
    ModelError,
    ModelLoadError,
    ModelMetadata,
    Prediction,
    Rows,
    check_output,
    refuse_foreign_formats,
)
from .signature import Feature, FeatureType, Label, Output, Sidecar, Signature, merge

if TYPE_CHECKING:
    from ..settings import Settings

logger = logging.getLogger(__name__)
# onnxruntime writes its own log lines, in colour, straight to stderr, past Python's logging:
# plain text in a JSON log. Whatever goes wrong in a session also comes back as an exception,
# which the service logs as JSON with the request's id, so only fatal errors are let through.
ORT_FATAL = 4
ort.set_default_logger_severity(ORT_FATAL)

SUFFIX = ".onnx"
DEMO_ARTIFACT = "demo.onnx"
SAVE_ADVICE = "export the model to ONNX (skl2onnx, onnxmltools, torch.onnx) and serve that file"

# onnxruntime's element types, as numpy holds them and as the signature names them.
ELEMENT_TYPES: dict[str, tuple[Any, FeatureType]] = {
    "tensor(float)": (np.float32, "number"),
    "tensor(double)": (np.float64, "number"),
    "tensor(int64)": (np.int64, "integer"),
    "tensor(int32)": (np.int32, "integer"),
    "tensor(string)": (object, "string"),
    "tensor(bool)": (np.bool_, "boolean"),
}
LABEL_TYPES = {"tensor(int64)", "tensor(int32)", "tensor(string)"}
# onnxruntime raises these when the feeds do not fit the graph: the caller's fault (422).
INPUT_ERRORS: tuple[type[Exception], ...] = (
    ort.capi.onnxruntime_pybind11_state.InvalidArgument,
    ValueError,
    TypeError,
)


class Column:
    """How one graph input is fed: its name, numpy type and shape."""

    def __init__(self, node: Any) -> None:
        self.name: str = node.name
        self.dtype, _ = ELEMENT_TYPES[node.type]
        self.flat = len(node.shape) == 1

    def feed(self, values: Rows) -> Rows:
        if self.dtype is object:
            values = np.array([str(v) for v in values.reshape(-1).tolist()], dtype=object)
        else:
            values = np.asarray(values, dtype=self.dtype)
        return values.reshape(-1) if self.flat else values.reshape(len(values), -1)


class OnnxPredictor:
    def __init__(
        self,
        session: ort.InferenceSession,
        metadata: ModelMetadata,
        label_output: str,
        probability_output: str | None,
    ) -> None:
        self._session = session
        self.metadata = metadata
        self._columns = [Column(node) for node in session.get_inputs()]
        self._label_output = label_output
        self._probability_output = probability_output
        self._classes = list(metadata.signature.classes)

    def _feeds(self, rows: Rows) -> dict[str, Rows]:
        if len(self._columns) == 1:  # one matrix: every feature in one tensor
            (column,) = self._columns
            return {column.name: column.feed(rows)}
        return {c.name: c.feed(rows[:, i]) for i, c in enumerate(self._columns)}

    def predict(self, rows: Rows, probabilities: bool) -> Prediction:
        wanted = [self._label_output]
        if probabilities and self._probability_output:
            wanted.append(self._probability_output)
        try:
            outputs = self._session.run(wanted, self._feeds(rows))
        except INPUT_ERRORS as exc:
            raise ModelError(str(exc), rejected_input=True) from exc
        except Exception as exc:  # onnxruntime's own types for a failing graph
            raise ModelError(f"{type(exc).__name__}: {exc}", rejected_input=False) from exc
        table = self._table(outputs[1]) if len(outputs) > 1 else None
        return check_output(self.metadata.signature, len(rows), np.asarray(outputs[0]), table)

    def _table(self, output: Any) -> Any:
        if isinstance(output, list):  # ZipMap: one {class: probability} per row
            return [[row[c] for c in self._classes] for row in output]
        return output


def describe(
    session: ort.InferenceSession, class_labels: Sequence[Label], source: str, outputs: int = 0
) -> tuple[Signature, str, str | None]:
    """What the graph records (inputs by name and type, outputs), and which outputs to read.

    ``outputs``: how many values per row the model metadata names (0: it names none). A graph
    cannot tell a regressor's several values per row from a classifier's raw scores; the
    metadata file can.
    """
    inputs = session.get_inputs()
    unknown = [f"{i.name} ({i.type})" for i in inputs if i.type not in ELEMENT_TYPES]
    if unknown:
        raise ModelLoadError(f"{source} has inputs of types this service cannot feed: {unknown}")
    if len(inputs) == 1:
        (node,) = inputs
        shape = node.shape
        if len(shape) != 2 or not isinstance(shape[1], int):
            raise ModelLoadError(
                f"{source} must take one 2-D input [batch, features] with a fixed feature "
                f"count, or one input per feature; its input {node.name!r} has shape {shape}"
            )
        kind = ELEMENT_TYPES[node.type][1]
        features = tuple(Feature(f"x{i}", type=kind, typed=True) for i in range(shape[1]))
        named = False
    else:
        wide = [i.name for i in inputs if len(i.shape) == 2 and i.shape[1] != 1]
        if wide or any(len(i.shape) not in (1, 2) for i in inputs):
            raise ModelLoadError(
                f"{source} takes several inputs, so each must be one column ([batch] or "
                f"[batch, 1]); these are not: {wide}"
            )
        features = tuple(Feature(i.name, type=ELEMENT_TYPES[i.type][1], typed=True) for i in inputs)
        named = True
    several = _several_values(session, outputs) if outputs > 1 and not class_labels else None
    if several is not None:
        signature = Signature(
            features=features,
            task="regression",
            named=named,
            outputs=tuple(Output(f"y{i}") for i in range(outputs)),
        )
        return signature, several, None
    label, probability = read_outputs(session, source)
    label_type = next(o.type for o in session.get_outputs() if o.name == label)
    classifier = probability is not None or bool(class_labels) or label_type in LABEL_TYPES
    signature = Signature(
        features=features,
        task="classification" if classifier else "regression",
        classes=tuple(class_labels) if classifier else (),
        probabilities=probability is not None,
        named=named,
    )
    return signature, label, probability


def _encoded(feature: Feature, encoded: dict[str, tuple[list[Any], bool]]) -> Feature:
    """A graph input that a one-hot encoder reads: the categories it knows. An encoder that
    refuses other values makes them the only ones accepted (a 422, not the graph's failure)."""
    if feature.name not in encoded:
        return feature
    categories, strict = encoded[feature.name]
    if feature.type == "string":
        categories = [str(c) for c in categories]
    return replace(feature, categories=tuple(categories) if strict else None, example=categories[0])


def _several_values(session: ort.InferenceSession, count: int) -> str | None:
    """The one numeric ``[batch, count]`` output of a graph with several values per row."""
    found = [
        o.name
        for o in session.get_outputs()
        if o.type in ("tensor(float)", "tensor(double)")
        and len(o.shape) == 2
        and (o.shape[1] == count or not isinstance(o.shape[1], int))
    ]
    return found[0] if len(found) == 1 else None


def read_outputs(session: ort.InferenceSession, source: str) -> tuple[str, str | None]:
    """The output that holds labels or values, and the one with probabilities, if any."""
    label = probability = None
    for output in session.get_outputs():
        rank = len(output.shape) if output.type.startswith("tensor") else None
        one_per_row = rank == 1 or (rank == 2 and output.shape[1] == 1)
        if label is None and one_per_row:
            label = output.name
        elif probability is None and (output.type.startswith("seq(map") or rank == 2):
            probability = output.name
    if label is None:
        shapes = {o.name: (o.type, o.shape) for o in session.get_outputs()}
        raise ModelLoadError(
            f"{source} has no output with one label or value per row (outputs: {shapes}); "
            "a [batch, classes] output of scores needs a label output next to it (export "
            "the classifier with its label, or add an ArgMax node); a regressor's several "
            'values per row need their names, as "outputs" in the model metadata file'
        )
    return label, probability


def export(estimator: Any, sample: Any = None) -> bytes:
    """Convert a fitted scikit-learn estimator to ONNX (needs the ``train`` extra: skl2onnx).

    ``sample``: one row of training data, a DataFrame for a model fitted on one (the graph
    then takes one input per column); by default a float32 matrix row.
    """
    from skl2onnx import to_onnx
    from sklearn.base import is_classifier

    if sample is None:
        sample = np.zeros((1, int(estimator.n_features_in_)), dtype=np.float32)
    # Probabilities as one [batch, classes] tensor rather than ZipMap's list of maps; a
    # regressor has no such option, and skl2onnx refuses it.
    options = {"zipmap": False} if is_classifier(estimator) else None
    model = to_onnx(estimator, sample, options=options, target_opset=17)
    return bytes(model.SerializeToString())


def demo_bytes() -> bytes:
    """The demo model, exported once by ``train-demo`` and shipped inside the package."""
    return resources.files(__package__).joinpath(DEMO_ARTIFACT).read_bytes()


def load_bytes(
    data: bytes, name: str, sidecar: Sidecar, source: str, settings: Settings | None = None
) -> OnnxPredictor:
    """The graph in ``data`` as a predictor. A graph holds no Python code to trust, so the
    settings ask nothing of it."""
    refuse_foreign_formats(data, source, SAVE_ADVICE)
    try:
        options = ort.SessionOptions()
        # Requests are small; one thread per inference scales better across concurrent calls.
        options.intra_op_num_threads = 1
        options.inter_op_num_threads = 1
        options.log_severity_level = ORT_FATAL
        session = ort.InferenceSession(data, options, providers=["CPUExecutionProvider"])
        class_labels = onnx_proto.class_labels(data)
        encoded = onnx_proto.encoder_categories(data)
    except Exception as exc:  # onnxruntime raises its own types for a bad file
        raise ModelLoadError(f"{source} is not a readable ONNX model: {exc}") from exc
    artifact, label, probability = describe(
        session, class_labels, source, len(sidecar.outputs or ())
    )
    artifact = replace(artifact, features=tuple(_encoded(f, encoded) for f in artifact.features))
    metadata = ModelMetadata(
        name=name,
        version=sidecar.version or hashlib.sha256(data).hexdigest()[:12],
        framework="onnx",
        signature=merge(artifact, sidecar, knows_names=artifact.named, knows_task=False),
        description=sidecar.description,
        examples=tuple(sidecar.examples or ()),
    )
    signature = metadata.signature
    if signature.probabilities and signature.task != "classification":
        # A clusterer's scores are distances, not probabilities: serve the cluster ids.
        metadata = replace(metadata, signature=replace(signature, probabilities=False))
        probability = None
    elif signature.probabilities and not signature.classes:
        # Probabilities are only useful in a known class order: serve the labels alone.
        logger.warning(
            '%s gives probabilities but records no class labels: list them as "classes" in '
            "the model metadata file to serve probabilities too",
            source,
        )
        metadata = replace(metadata, signature=replace(signature, probabilities=False))
        probability = None
    return OnnxPredictor(session, metadata, label, probability)
