"""scikit-learn models stored with skops, which loads without running arbitrary pickle code."""

from __future__ import annotations

import hashlib
import importlib
from collections.abc import Iterator
from typing import Any

import numpy as np
import sklearn
import skops.io
from sklearn.base import is_classifier, is_regressor

from .base import (
    ModelError,
    ModelLoadError,
    ModelMetadata,
    Prediction,
    Rows,
    check_output,
    refuse_foreign_formats,
)
from .demo import train_demo
from .signature import Feature, FeatureType, Sidecar, Signature, merge

SUFFIX = ".skops"

# Types from these libraries are what a fitted scikit-learn estimator is made of. Anything else
# in an artifact (a custom transformer, say) is refused rather than imported and executed.
TRUSTED_MODULE_PREFIXES = ("sklearn.", "numpy.", "scipy.", "builtins.", "collections.")
# Cython types that skops versions before 0.12 recorded under their bare module name, so that
# ``sklearn._loss._loss.CyHalfBinomialLoss`` (inside every gradient-boosting model) reads as
# ``_loss.CyHalfBinomialLoss``. Trusted when scikit-learn itself defines that name.
BARE_SKLEARN_MODULES = {"_loss": "sklearn._loss._loss"}
# What the model raises when it refuses the rows it was given: the caller's fault (422).
INPUT_ERRORS: tuple[type[Exception], ...] = (ValueError, TypeError, KeyError)
STRICT_ENCODERS = {"OneHotEncoder", "OrdinalEncoder"}
SAVE_ADVICE = "save the fitted estimator with skops: `skops.io.dump(model, 'model.skops')`"


class SklearnPredictor:
    def __init__(self, estimator: Any, metadata: ModelMetadata) -> None:
        self._estimator = estimator
        self.metadata = metadata
        signature = metadata.signature
        self._to_input = self._frame if signature.named else _matrix

    def predict(self, rows: Rows, probabilities: bool) -> Prediction:
        signature = self.metadata.signature
        try:
            inputs = self._to_input(rows)
            # Rows were already validated; skip scikit-learn's second check of them.
            with sklearn.config_context(assume_finite=True, skip_parameter_validation=True):
                values = self._estimator.predict(inputs)
                table = self._estimator.predict_proba(inputs) if probabilities else None
        except INPUT_ERRORS as exc:
            raise ModelError(str(exc), rejected_input=True) from exc
        except Exception as exc:
            raise ModelError(f"{type(exc).__name__}: {exc}", rejected_input=False) from exc
        return check_output(signature, len(rows), values, table)

    def _frame(self, rows: Rows) -> Any:
        """The DataFrame the model was fitted on: its columns, by name, with their types."""
        import pandas as pd  # only models fitted on a DataFrame pay for importing pandas

        columns = {}
        for index, feature in enumerate(self.metadata.signature.features):
            columns[feature.name] = _column(rows[:, index].tolist(), feature)
        return pd.DataFrame(columns, copy=False)


def _matrix(rows: Rows) -> Rows:
    return rows


def _column(values: list[Any], feature: Feature) -> Any:
    """One column as numpy holds it in a DataFrame; a missing value is NaN, as in pandas."""
    if feature.type == "number" or (feature.type == "integer" and feature.nullable):
        return np.array(values, dtype=np.float64)  # None becomes NaN
    if feature.type == "integer":
        return np.array(values, dtype=np.int64)
    if feature.type == "boolean" and not feature.nullable:
        return np.array(values, dtype=bool)
    return np.array([np.nan if v is None else v for v in values], dtype=object)


# --- the signature, read from the fitted estimator --------------------------------------------


def describe(estimator: Any, name_hint: str = "the estimator") -> tuple[Signature, bool]:
    """What the estimator records about its inputs and outputs; and whether it knows names."""
    if not hasattr(estimator, "predict"):
        raise ModelLoadError(f"{name_hint} ({type(estimator).__name__}) has no predict() method")
    n_features = getattr(estimator, "n_features_in_", None)
    if n_features is None:
        raise ModelLoadError(f"{name_hint} is not fitted (it has no n_features_in_)")
    names = getattr(estimator, "feature_names_in_", None)
    named = names is not None
    if names is not None:
        columns = [str(n) for n in names]
    else:
        columns = [f"x{i}" for i in range(int(n_features))]
    found = dict(_encoded_columns(estimator, columns)) if named else {}
    features = tuple(found.get(name, Feature(name)) for name in columns)
    classes = getattr(estimator, "classes_", None)
    classifier = is_classifier(estimator) or (not is_regressor(estimator) and classes is not None)
    signature = Signature(
        features=features,
        task="classification" if classifier else "regression",
        classes=tuple(np.asarray(classes).tolist()) if classifier and classes is not None else (),
        probabilities=classifier and hasattr(estimator, "predict_proba"),
        named=named,
    )
    return signature, named


def _encoded_columns(estimator: Any, columns: list[str]) -> Iterator[tuple[str, Feature]]:
    """Columns of the model's input that an encoder or imputer tells more about."""
    transformer = estimator
    while hasattr(transformer, "steps"):  # a Pipeline: its first step sees the input
        transformer = transformer.steps[0][1]
    if hasattr(transformer, "transformers_"):  # a ColumnTransformer: by column
        # ``_transformer_to_input_indices`` is the fitted ColumnTransformer's own record of which
        # input columns each part took, whatever way they were selected (names, indices,
        # make_column_selector); there is no public equivalent.
        indices = getattr(transformer, "_transformer_to_input_indices", {})
        for part_name, part, _ in transformer.transformers_:
            picked = [columns[i] for i in indices.get(part_name, [])]
            yield from _describe_part(part, picked)
    else:
        yield from _describe_part(transformer, columns)


def _describe_part(part: Any, columns: list[str]) -> Iterator[tuple[str, Feature]]:
    steps = [step for _, step in getattr(part, "steps", [("", part)])]
    nullable = False
    for step in steps:
        if type(step).__name__ == "SimpleImputer":
            nullable = True
            continue
        categories = getattr(step, "categories_", None)
        if categories is None or len(categories) != len(columns):
            break  # not an encoder: what came before it still says whether nulls are imputed
        strict = (
            type(step).__name__ in STRICT_ENCODERS
            and getattr(step, "handle_unknown", "error") == "error"
        )
        for name, values in zip(columns, categories, strict=True):
            known = [v for v in values.tolist() if not _is_missing(v)]
            kind: FeatureType = "string" if any(isinstance(v, str) for v in known) else "number"
            yield (
                name,
                Feature(
                    name=name,
                    type=kind,
                    categories=tuple(known) if strict else None,
                    nullable=nullable or len(known) < len(values),
                    example=known[0] if known else None,
                ),
            )
        return
    if nullable:
        for name in columns:
            yield name, Feature(name=name, nullable=True)


def _is_missing(value: Any) -> bool:
    return value is None or (isinstance(value, float) and value != value)


# --- the artifact ----------------------------------------------------------------------------


def export(estimator: Any) -> bytes:
    """Serialise a fitted estimator to the artifact format this service loads."""
    data: bytes = skops.io.dumps(estimator)
    return data


def demo_bytes() -> bytes:
    """The demo model, trained here (in milliseconds) rather than shipped."""
    return export(train_demo())


def _trusted(type_name: str) -> bool:
    if type_name.startswith(TRUSTED_MODULE_PREFIXES):
        return True
    module, _, name = type_name.rpartition(".")
    home = BARE_SKLEARN_MODULES.get(module)
    if home is None:
        return False
    return hasattr(importlib.import_module(home), name)


def load_bytes(data: bytes, name: str, sidecar: Sidecar, source: str) -> SklearnPredictor:
    refuse_foreign_formats(data, source, SAVE_ADVICE)
    try:
        untrusted = skops.io.get_untrusted_types(data=data)
        refused = [t for t in untrusted if not _trusted(t)]
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
    artifact, knows_names = describe(estimator, source)
    metadata = ModelMetadata(
        name=name,
        version=sidecar.version or hashlib.sha256(data).hexdigest()[:12],
        framework="sklearn",
        signature=merge(artifact, sidecar, knows_names=knows_names),
        description=sidecar.description,
    )
    return SklearnPredictor(estimator, metadata)
