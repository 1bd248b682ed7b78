"""What the HTTP layer needs from a model, whatever library runs it."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import numpy.typing as npt

Label = str | int | float


class ModelLoadError(RuntimeError):
    """The artifact is missing, corrupt or not a model this service can run."""


@dataclass(frozen=True)
class ModelMetadata:
    name: str
    version: str
    framework: str
    features: list[str]
    classes: list[Label] = field(default_factory=list)

    @property
    def n_features(self) -> int:
        return len(self.features)


class Predictor(Protocol):
    """A loaded model: metadata plus a thread-safe ``predict`` on a 2-D float batch."""

    metadata: ModelMetadata

    def predict(self, rows: npt.NDArray[np.float64]) -> list[Label]:
        """Return one label per row, in row order."""
        ...


def sidecar_path(artifact: Path) -> Path:
    """Metadata the trainer writes next to the artifact: ``model.<ext>`` -> ``model.json``."""
    return artifact.with_suffix(".json")


def read_sidecar(artifact: Path) -> dict[str, Any]:
    """Optional metadata (name, version, features, classes) stored beside the artifact."""
    path = sidecar_path(artifact)
    if not path.exists():
        return {}
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ModelLoadError(f"cannot read model metadata {path}: {exc}") from exc
    if not isinstance(data, dict):
        raise ModelLoadError(f"model metadata {path} must be a JSON object")
    return data


def build_metadata(
    sidecar: dict[str, Any],
    *,
    name: str,
    framework: str,
    n_features: int,
    classes: list[Label],
    default_version: str,
) -> ModelMetadata:
    """Merge what the artifact says about itself with its sidecar, and check they agree."""
    features = [str(f) for f in sidecar.get("features") or []] or [
        f"x{i}" for i in range(n_features)
    ]
    if len(features) != n_features:
        raise ModelLoadError(
            f"metadata lists {len(features)} features but the model expects {n_features}"
        )
    return ModelMetadata(
        name=name,
        version=str(sidecar.get("version") or default_version),
        framework=framework,
        features=features,
        classes=list(sidecar.get("classes") or classes),
    )


def to_labels(values: npt.NDArray[Any]) -> list[Label]:
    """Plain Python labels for JSON: numpy scalars and bytes become int, float or str."""
    labels: list[Label] = []
    for value in values.tolist():
        labels.append(value.decode("utf-8") if isinstance(value, bytes) else value)
    return labels
