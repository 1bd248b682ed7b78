"""scikit-learn models stored with skops, which loads without running arbitrary pickle code."""

from __future__ import annotations

import hashlib
from typing import Any

import numpy as np
import numpy.typing as npt
import sklearn
import skops.io

from .base import Label, ModelLoadError, ModelMetadata, build_metadata, to_labels

SUFFIX = ".skops"

# Types from these libraries are what a fitted scikit-learn estimator is made of. Anything else
# in an artifact (a custom transformer, say) is refused rather than imported and executed.
TRUSTED_MODULE_PREFIXES = ("sklearn.", "numpy.", "scipy.", "builtins.", "collections.")


class SklearnPredictor:
    def __init__(self, estimator: Any, metadata: ModelMetadata) -> None:
        if not hasattr(estimator, "predict"):
            raise ModelLoadError(f"{type(estimator).__name__} has no predict() method")
        self._estimator = estimator
        self.metadata = metadata

    def predict(self, rows: npt.NDArray[np.float64]) -> list[Label]:
        # Rows were already checked to be finite numbers; skip scikit-learn's second check.
        with sklearn.config_context(assume_finite=True, skip_parameter_validation=True):
            return to_labels(np.asarray(self._estimator.predict(rows)))


def metadata_for(estimator: Any, sidecar: dict[str, Any], name: str, version: str) -> ModelMetadata:
    n_features = getattr(estimator, "n_features_in_", None)
    if n_features is None:
        raise ModelLoadError("the estimator is not fitted (it has no n_features_in_)")
    names = getattr(estimator, "feature_names_in_", None)
    if names is not None and not sidecar.get("features"):
        sidecar = {**sidecar, "features": [str(n) for n in names]}
    classes = getattr(estimator, "classes_", None)
    return build_metadata(
        sidecar,
        name=name,
        framework="sklearn",
        n_features=int(n_features),
        classes=to_labels(np.asarray(classes)) if classes is not None else [],
        default_version=version,
    )


def export(estimator: Any) -> bytes:
    """Serialise a fitted estimator to the artifact format this service loads."""
    data: bytes = skops.io.dumps(estimator)
    return data


def load_bytes(data: bytes, name: str, sidecar: dict[str, Any], source: str) -> SklearnPredictor:
    try:
        untrusted = skops.io.get_untrusted_types(data=data)
        refused = [t for t in untrusted if not t.startswith(TRUSTED_MODULE_PREFIXES)]
        if refused:
            raise ModelLoadError(
                f"{source} contains types outside scikit-learn, NumPy and SciPy, which are not "
                f"loaded for safety: {', '.join(sorted(refused))}"
            )
        estimator = skops.io.loads(data, trusted=untrusted)
    except ModelLoadError:
        raise
    except Exception as exc:  # skops raises many types for a corrupt or foreign file
        raise ModelLoadError(f"{source} is not a readable skops model: {exc}") from exc
    version = hashlib.sha256(data).hexdigest()[:12]
    return SklearnPredictor(estimator, metadata_for(estimator, sidecar, name, version))
