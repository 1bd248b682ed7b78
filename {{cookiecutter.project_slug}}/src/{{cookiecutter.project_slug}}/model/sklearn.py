"""scikit-learn models stored with skops, which loads without running arbitrary pickle code."""

from __future__ import annotations

import hashlib
import importlib
from collections.abc import Callable, Iterator
from datetime import UTC
from typing import TYPE_CHECKING, Any

import numpy as np
import sklearn
import skops.io
from sklearn.base import is_regressor

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
from .signature import Feature, FeatureType, Output, Sidecar, Signature, Task, Value, merge

if TYPE_CHECKING:
    from ..settings import Settings

SUFFIX = ".skops"

# Types from these libraries are what a fitted scikit-learn estimator is made of. Anything else
# in an artifact (a custom transformer, say) is refused rather than imported and executed,
# unless APP_MODEL_TRUSTED_TYPES names it.
TRUSTED_MODULE_PREFIXES = ("sklearn.", "numpy.", "scipy.", "builtins.", "collections.")
# What scikit-learn itself builds inside fitted estimators: HistGradientBoosting* keeps a
# ``functools.partial`` of its own ``check_array`` for columns of pandas' category dtype. skops
# lists the function a partial wraps as a type of its own, so trusting the partial trusts no
# function that is not checked on its own account.
TRUSTED_TYPES = frozenset({"functools.partial"})
# Cython types that skops versions before 0.12 recorded under their bare module name, so that
# ``sklearn._loss._loss.CyHalfBinomialLoss`` (inside every gradient-boosting model) reads as
# ``_loss.CyHalfBinomialLoss``. Trusted when scikit-learn itself defines that name.
BARE_SKLEARN_MODULES = {"_loss": "sklearn._loss._loss"}
# What the model raises when it refuses the rows it was given: the caller's fault (422).
INPUT_ERRORS: tuple[type[Exception], ...] = (ValueError, TypeError, KeyError)
STRICT_ENCODERS = {"OneHotEncoder", "OrdinalEncoder"}
SAVE_ADVICE = "save the fitted estimator with skops: `skops.io.dump(model, 'model.skops')`"
# Meta-estimators with one fitted estimator per output.
PER_OUTPUT = {"MultiOutputRegressor", "MultiOutputClassifier", "RegressorChain", "ClassifierChain"}
TASKS: dict[str, Task] = {
    "classifier": "classification",
    "regressor": "regression",
    "clusterer": "clustering",
    "outlier_detector": "outlier_detection",
}
# What a column picked by ``make_column_selector(dtype_include=...)`` holds, by dtype name.
SELECTED_TYPES: dict[str, FeatureType] = {
    "bool": "boolean",
    "category": "string",
    "object": "string",
    "string": "string",
    "str": "string",
    "datetime": "datetime",
    "datetime64": "datetime",
    "number": "number",
    "float": "number",
    "floating": "number",
    "float64": "number",
    "int": "integer",
    "integer": "integer",
    "int64": "integer",
}


class SklearnPredictor:
    def __init__(self, estimator: Any, metadata: ModelMetadata) -> None:
        self._estimator = estimator
        self.metadata = metadata
        signature = metadata.signature
        self._to_input: Callable[[Rows], Any]
        if signature.documents:
            self._to_input = _documents
        else:
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


def _documents(rows: Rows) -> list[str]:
    """A text pipeline's input: the documents themselves, a 1-D list of strings."""
    documents: list[str] = rows[:, 0].tolist()
    return documents


def _column(values: list[Any], feature: Feature) -> Any:
    """One column as pandas holds it in the frame the model was fitted on; a missing value is
    NaN (NaT for datetimes), as in pandas."""
    if feature.type == "number" or (feature.type == "integer" and feature.nullable):
        return np.array(values, dtype=np.float64)  # None becomes NaN
    if feature.type == "integer":
        return np.array(values, dtype=np.int64)
    if feature.type == "boolean" and not feature.nullable and not feature.categorical:
        return np.array(values, dtype=bool)
    import pandas as pd

    if feature.type == "datetime":
        # One dtype for every row: times with an offset in UTC, naive ones as they are.
        stamps = [v if v is None or v.tzinfo is None else v.astimezone(UTC) for v in values]
        return pd.to_datetime([None if v is None else v.replace(tzinfo=None) for v in stamps])
    if feature.categorical:
        return pd.Categorical(values, categories=list(feature.categories or ()))
    return np.array([np.nan if v is None else v for v in values], dtype=object)


# --- the signature, read from the fitted estimator --------------------------------------------


def describe(estimator: Any, name_hint: str = "the estimator") -> tuple[Signature, bool]:
    """What the estimator records about its inputs and outputs; and whether it knows names."""
    if not hasattr(estimator, "predict"):
        raise ModelLoadError(f"{name_hint} ({type(estimator).__name__}) has no predict() method")
    first = _first_step(estimator)
    documents = hasattr(first, "build_analyzer")  # CountVectorizer, TfidfVectorizer, Hashing...
    n_features = getattr(estimator, "n_features_in_", None)
    names = getattr(estimator, "feature_names_in_", None)
    named = names is not None
    if documents:
        features: tuple[Feature, ...] = (Feature("text", type="string", typed=True),)
    elif n_features is None:
        raise ModelLoadError(f"{name_hint} is not fitted (it has no n_features_in_)")
    else:
        if names is not None:
            columns = [str(n) for n in names]
        else:
            columns = [f"x{i}" for i in range(int(n_features))]
        found = dict(_encoded_columns(estimator, columns)) if named else {}
        # A plain matrix is numbers; a DataFrame's column that no part describes may be
        # anything, which the metadata file can say.
        features = tuple(found.get(name, Feature(name, typed=not named)) for name in columns)
    task = _task(estimator)
    final = _final_step(estimator)
    found_classes = getattr(estimator, "classes_", getattr(final, "classes_", None))
    outputs = _outputs(final, task, found_classes)
    classes: tuple[Any, ...] = ()
    if task == "classification" and found_classes is not None and not outputs:
        classes = tuple(np.asarray(found_classes).tolist())
    elif task == "clustering" and isinstance(getattr(final, "n_clusters", None), int):
        classes = tuple(range(final.n_clusters))
    elif task == "outlier_detection":
        classes = (-1, 1)
    signature = Signature(
        features=features,
        task=task,
        classes=classes,
        probabilities=task == "classification" and hasattr(estimator, "predict_proba"),
        named=named,
        documents=documents,
        outputs=outputs,
    )
    return signature, named


def _first_step(estimator: Any) -> Any:
    while hasattr(estimator, "steps"):  # a Pipeline: its first step sees the input
        estimator = estimator.steps[0][1]
    return estimator


def _final_step(estimator: Any) -> Any:
    """The estimator that makes the answers: a pipeline's last step, a wrapper's inner one."""
    while True:
        if hasattr(estimator, "steps"):
            estimator = estimator.steps[-1][1]
        elif hasattr(estimator, "regressor_"):  # TransformedTargetRegressor
            estimator = estimator.regressor_
        elif hasattr(estimator, "best_estimator_"):  # a fitted search
            estimator = estimator.best_estimator_
        else:
            return estimator


def _task(estimator: Any) -> Task:
    try:
        from sklearn.utils import get_tags  # scikit-learn 1.6 and later

        kind = get_tags(estimator).estimator_type
    except ImportError:
        kind = getattr(estimator, "_estimator_type", None)
    if kind in TASKS:
        return TASKS[kind]
    if is_regressor(estimator):
        return "regression"
    return "classification" if getattr(estimator, "classes_", None) is not None else "regression"


def _outputs(final: Any, task: Task, classes: Any) -> tuple[Output, ...]:
    """The outputs of a model with several per row, from what the fitted estimator records."""
    count = getattr(final, "n_outputs_", None)
    if count is None and type(final).__name__ in PER_OUTPUT:
        count = len(final.estimators_)
    if count is None and task == "regression":
        coef = getattr(final, "coef_", None)
        if coef is not None and np.ndim(coef) == 2:  # linear models fitted on several targets
            count = np.shape(coef)[0]
    if not count or int(count) < 2:
        return ()
    per_output = classes if isinstance(classes, list) and len(classes) == count else None
    return tuple(
        Output(
            name=f"y{i}",
            classes=() if per_output is None else tuple(np.asarray(per_output[i]).tolist()),
        )
        for i in range(int(count))
    )


def _encoded_columns(estimator: Any, columns: list[str]) -> Iterator[tuple[str, Feature]]:
    """Columns of the model's input that an encoder, a vectorizer, a dtype selector or an
    imputer tells more about."""
    transformer = _first_step(estimator)
    preprocessor = getattr(transformer, "_preprocessor", None)
    if hasattr(preprocessor, "transformers_"):
        # HistGradientBoosting* with categorical_features="from_dtype": its own encoder of the
        # pandas category columns it was fitted on.
        categorical = getattr(transformer, "categorical_features", None) == "from_dtype"
        transformer = preprocessor
    else:
        categorical = False
    if hasattr(transformer, "transformers_"):  # a ColumnTransformer: by column
        # ``_transformer_to_input_indices`` is the fitted ColumnTransformer's own record of which
        # input columns each part took, whatever way they were selected (names, indices,
        # make_column_selector); there is no public equivalent.
        indices = getattr(transformer, "_transformer_to_input_indices", {})
        selectors = {part[0]: part[2] for part in getattr(transformer, "transformers", [])}
        for part_name, part, _ in transformer.transformers_:
            picked = [columns[i] for i in indices.get(part_name, [])]
            selected = _selected_type(selectors.get(part_name))
            found = dict(_describe_part(part, picked, categorical or selected == "category"))
            for name in picked:
                if name in found:
                    yield name, found[name]
                elif selected is not None:
                    kind = SELECTED_TYPES[selected]
                    yield name, Feature(name, type=kind, typed=True)
    else:
        yield from _describe_part(transformer, columns, False)


def _selected_type(columns: Any) -> str | None:
    """The dtype a ``make_column_selector(dtype_include=...)`` picked its columns by, if one."""
    include = getattr(columns, "dtype_include", None)
    if include is None or getattr(columns, "pattern", None) is not None:
        return None
    kinds = include if isinstance(include, list | tuple) else [include]
    if len(kinds) != 1:
        return None
    kind = kinds[0]
    name = kind if isinstance(kind, str) else getattr(kind, "__name__", str(kind))
    return name if name in SELECTED_TYPES else None


def _describe_part(
    part: Any, columns: list[str], categorical: bool
) -> Iterator[tuple[str, Feature]]:
    steps = [step for _, step in getattr(part, "steps", [("", part)])]
    nullable = False
    for step in steps:
        if type(step).__name__ == "SimpleImputer":
            nullable = True
            continue
        if hasattr(step, "build_analyzer"):  # a text vectorizer: one column of documents
            for name in columns:
                yield name, Feature(name=name, type="string", nullable=nullable, typed=True)
            return
        categories = getattr(step, "categories_", None)
        if categories is None or len(categories) != len(columns):
            break  # not an encoder: what came before it still says whether nulls are imputed
        strict = categorical or (
            type(step).__name__ in STRICT_ENCODERS
            and getattr(step, "handle_unknown", "error") == "error"
        )
        for name, values in zip(columns, categories, strict=True):
            known = [v for v in values.tolist() if not _is_missing(v)]
            yield (
                name,
                Feature(
                    name=name,
                    type=_category_type(known),
                    categories=tuple(known) if strict else None,
                    nullable=nullable or len(known) < len(values),
                    example=known[0] if known else None,
                    typed=True,
                    categorical=categorical,
                ),
            )
        return
    if nullable:
        for name in columns:
            yield name, Feature(name=name, nullable=True)


def _category_type(known: list[Value]) -> FeatureType:
    if known and all(isinstance(v, bool) for v in known):
        return "boolean"
    return "string" if any(isinstance(v, str) for v in known) else "number"


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


def _trusted(type_name: str, extra: tuple[str, ...] = ()) -> bool:
    """scikit-learn's, NumPy's and SciPy's types, and those named by APP_MODEL_TRUSTED_TYPES
    (a type by its full name, or a module and everything below it)."""
    if type_name.startswith(TRUSTED_MODULE_PREFIXES) or type_name in TRUSTED_TYPES:
        return True
    if any(type_name == name or type_name.startswith(name + ".") for name in extra):
        return True
    module, _, name = type_name.rpartition(".")
    home = BARE_SKLEARN_MODULES.get(module)
    if home is None:
        return False
    return hasattr(importlib.import_module(home), name)


def load_bytes(
    data: bytes, name: str, sidecar: Sidecar, source: str, settings: Settings | None = None
) -> SklearnPredictor:
    refuse_foreign_formats(data, source, SAVE_ADVICE)
    extra = () if settings is None else settings.trusted_types
    try:
        untrusted = skops.io.get_untrusted_types(data=data)
        refused = [t for t in untrusted if not _trusted(t, extra)]
        if refused:
            raise ModelLoadError(
                f"{source} contains types outside scikit-learn, NumPy and SciPy, which are not "
                f"loaded unless trusted: {', '.join(sorted(refused))} (if this is your own "
                "code, installed with the service, name its module in APP_MODEL_TRUSTED_TYPES)"
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
        examples=tuple(sidecar.examples or ()),
    )
    return SklearnPredictor(estimator, metadata)
