"""Turn the configured artifact (or the demo model) into a ready ``Predictor``."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

from . import signature
from .base import ModelLoadError, Predictor
from .demo import DEMO_SIDECAR
from .{{ cookiecutter.model_framework }} import SUFFIX, demo_bytes, export, load_bytes

if TYPE_CHECKING:
    from ..settings import Settings
    from .source import Fetched

__all__ = ["SUFFIX", "demo_bytes", "export", "load_fetched", "load_predictor", "write_demo"]


def load_predictor(path: Path | None, name: str, settings: Settings | None = None) -> Predictor:
    """Load the artifact at ``path``; with no path, serve the demo model. ``settings`` carry
    what the framework's loader may need of them (the types to trust, for scikit-learn)."""
    if path is None:
        return load_bytes(demo_bytes(), name, DEMO_SIDECAR, "the demo model", settings)
    if not path.is_file():
        raise ModelLoadError(f"model file {path} does not exist (check APP_MODEL_PATH)")
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ModelLoadError(f"cannot read model file {path}: {exc.strerror or exc}") from exc
    return load_bytes(data, name, signature.read_sidecar(path), str(path), settings)


def load_fetched(fetched: Fetched, name: str, settings: Settings | None = None) -> Predictor:
    """Load what a model source gave (see ``source.py``); its metadata remember where the
    artifact lies, for what is read from beside it (the reference statistics)."""
    predictor = load_bytes(fetched.data, name, fetched.sidecar, fetched.where, settings)
    predictor.metadata = replace(predictor.metadata, artifact=fetched.artifact)
    return predictor


def write_demo(directory: Path) -> Path:
    """Write the demo model's artifact and metadata into ``directory``."""
    directory.mkdir(parents=True, exist_ok=True)
    artifact = directory / f"model{SUFFIX}"
    artifact.write_bytes(demo_bytes())
    sidecar = signature.sidecar_json(DEMO_SIDECAR)
    artifact.with_suffix(signature.SIDECAR_SUFFIX).write_text(sidecar, encoding="utf-8")
    return artifact
