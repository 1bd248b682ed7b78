"""Turn the configured artifact (or the demo model) into a ready ``Predictor``."""

from __future__ import annotations

import json
from pathlib import Path

from .base import ModelLoadError, Predictor, read_sidecar, sidecar_path
from .demo import train_demo
from .{{ cookiecutter.model_framework }} import SUFFIX, export, load_bytes


def load_predictor(path: Path | None, name: str) -> Predictor:
    """Load the artifact at ``path``; with no path, train and serve the demo model."""
    if path is None:
        estimator, sidecar = train_demo()
        return load_bytes(export(estimator), name, sidecar, "the demo model")
    if not path.is_file():
        raise ModelLoadError(f"model file {path} does not exist (check APP_MODEL_PATH)")
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ModelLoadError(f"cannot read model file {path}: {exc.strerror or exc}") from exc
    return load_bytes(data, name, read_sidecar(path), str(path))


def write_demo(directory: Path) -> Path:
    """Train the demo model and write its artifact and metadata into ``directory``."""
    directory.mkdir(parents=True, exist_ok=True)
    estimator, sidecar = train_demo()
    artifact = directory / f"model{SUFFIX}"
    artifact.write_bytes(export(estimator))
    sidecar_path(artifact).write_text(json.dumps(sidecar, indent=2) + "\n", encoding="utf-8")
    return artifact
