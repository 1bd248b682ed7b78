"""ONNX models run by onnxruntime: the serving image needs no training library."""

from __future__ import annotations

import hashlib
from typing import Any

import numpy as np
import numpy.typing as npt
import onnx
import onnxruntime as ort

from .base import Label, ModelLoadError, ModelMetadata, build_metadata, to_labels

SUFFIX = ".onnx"
_CLASS_LABEL_ATTRIBUTES = ("classlabels_strings", "classlabels_int64s", "classlabels_ints")


class OnnxPredictor:
    def __init__(self, session: ort.InferenceSession, metadata: ModelMetadata) -> None:
        self._session = session
        self._input = session.get_inputs()[0]
        self._input_dtype = np.float32 if self._input.type == "tensor(float)" else np.float64
        self._label_output = session.get_outputs()[0].name
        self.metadata = metadata

    def predict(self, rows: npt.NDArray[np.float64]) -> list[Label]:
        inputs = {self._input.name: rows.astype(self._input_dtype, copy=False)}
        (labels,) = self._session.run([self._label_output], inputs)
        return to_labels(np.asarray(labels).reshape(-1))


def export(estimator: Any) -> bytes:
    """Convert a fitted scikit-learn estimator to ONNX (float32 input, plain label output)."""
    from skl2onnx import to_onnx

    sample = np.zeros((1, int(estimator.n_features_in_)), dtype=np.float32)
    model = to_onnx(estimator, sample, options={"zipmap": False}, target_opset=17)
    return bytes(model.SerializeToString())


def _class_labels(model: onnx.ModelProto) -> list[Label]:
    """Classifier nodes carry their labels as attributes; regressors have none."""
    for node in model.graph.node:
        for attribute in node.attribute:
            if attribute.name in _CLASS_LABEL_ATTRIBUTES:
                values = onnx.helper.get_attribute_value(attribute)
                return to_labels(np.asarray(values))
    return []


def load_bytes(data: bytes, name: str, sidecar: dict[str, Any], source: str) -> OnnxPredictor:
    try:
        model = onnx.load_from_string(data)
        options = ort.SessionOptions()
        # Requests are small; one thread per inference scales better across concurrent calls.
        options.intra_op_num_threads = 1
        options.inter_op_num_threads = 1
        session = ort.InferenceSession(data, options, providers=["CPUExecutionProvider"])
    except Exception as exc:  # onnx and onnxruntime raise their own types for a bad file
        raise ModelLoadError(f"{source} is not a readable ONNX model: {exc}") from exc
    inputs = session.get_inputs()
    shape = inputs[0].shape
    if len(inputs) != 1 or len(shape) != 2 or not isinstance(shape[1], int):
        raise ModelLoadError(
            f"{source} must take one 2-D input [batch, features] with a fixed feature count"
        )
    if inputs[0].type not in ("tensor(float)", "tensor(double)"):
        raise ModelLoadError(f"{source} input must be float or double, not {inputs[0].type}")
    metadata = build_metadata(
        sidecar,
        name=name,
        framework="onnx",
        n_features=shape[1],
        classes=_class_labels(model),
        default_version=hashlib.sha256(data).hexdigest()[:12],
    )
    return OnnxPredictor(session, metadata)
