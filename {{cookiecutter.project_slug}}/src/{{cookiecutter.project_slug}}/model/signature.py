"""What the model takes and gives, learnt from the artifact and its optional sidecar file.

The artifact is the authority on what it records (feature names, encoders' categories, classes,
input types, how many values it answers per row); the sidecar adds what it cannot say (names for
a plain matrix or for several outputs, integer, boolean or datetime types, descriptions, ranges,
examples). Where both speak they must agree: a sidecar that silently disagreed would document
one model and serve another.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, ValidationError

# A class label or a cluster id.
Label = str | int | float
# A feature's value, example or category. ``bool`` first: pydantic then keeps JSON ``true`` a
# boolean instead of reading it as the integer 1.
Value = bool | str | int | float
FeatureType = Literal["number", "integer", "string", "boolean", "datetime"]
Task = Literal["classification", "regression", "clustering", "outlier_detection"]
NUMERIC_TYPES: frozenset[str] = frozenset({"number", "integer"})
# The types a feature's categories must have, by feature type.
CATEGORY_TYPES: dict[str, type | tuple[type, ...]] = {
    "string": str,
    "integer": int,
    "number": (int, float),
    "boolean": bool,
    "datetime": str,
}
EXAMPLE_DOCUMENT = "an example document"
EXAMPLE_DATETIME = "2024-01-01T00:00:00Z"

SIDECAR_SUFFIX = ".json"
SIDECAR_FALLBACK = "metadata.json"


class ModelLoadError(RuntimeError):
    """The artifact is missing, corrupt or not a model this service can run."""


@dataclass(frozen=True, slots=True)
class Feature:
    """One input column: its type, the values it may take, and what it means."""

    name: str
    type: FeatureType = "number"
    categories: tuple[Value, ...] | None = None
    nullable: bool = False
    description: str | None = None
    minimum: float | None = None
    maximum: float | None = None
    example: Value | None = None
    # The artifact records this type (an encoder's categories, a vectorizer, a graph input, a
    # column picked by dtype); otherwise "number" is only the default, which a sidecar may set.
    typed: bool = False
    # Fitted on a pandas ``category`` column: given to the model as one, with these categories.
    categorical: bool = False

    def example_value(self) -> Value:
        """A value the model accepts, for warm-up and the API docs."""
        if self.example is not None:
            return self.example
        if self.categories:
            return self.categories[0]
        if self.type == "string":
            return EXAMPLE_DOCUMENT
        if self.type == "datetime":
            return EXAMPLE_DATETIME
        if self.type == "boolean":
            return False
        low = self.minimum if self.minimum is not None else self.maximum
        value = low if low is not None else 0.0
        return int(value) if self.type == "integer" else float(value)


@dataclass(frozen=True, slots=True)
class Output:
    """One of several values a model answers per row (a target of a multi-output model)."""

    name: str
    classes: tuple[Label, ...] = ()


@dataclass(frozen=True, slots=True)
class Signature:
    """The model's inputs and outputs.

    ``named`` says how the model takes its input: by column name (a DataFrame, or one graph input
    per column) rather than as one positional numeric matrix, the fast path. ``documents``: it
    takes a 1-D list of raw texts (a text vectorizer is its first step), its one feature.
    ``outputs``: a model that answers several values per row lists them; one that answers one
    value per row lists none. A multi-output classifier's classes are per output.
    """

    features: tuple[Feature, ...]
    task: Task
    classes: tuple[Label, ...] = ()
    probabilities: bool = False
    named: bool = False
    documents: bool = False
    outputs: tuple[Output, ...] = ()

    @property
    def names(self) -> list[str]:
        return [feature.name for feature in self.features]

    @property
    def labelled(self) -> bool:
        """Answers are labels from ``classes`` (or per output), not free numbers."""
        return self.task != "regression"

    def example_row(self) -> list[Value]:
        return [feature.example_value() for feature in self.features]


# --- the sidecar file ------------------------------------------------------------------------


class FeatureSpec(BaseModel):
    """A feature as the sidecar describes it; unset fields are left to the artifact."""

    model_config = ConfigDict(extra="forbid")

    name: Annotated[str, StringConstraints(min_length=1)]
    type: FeatureType | None = None
    categories: list[Value] | None = Field(default=None, min_length=1)
    nullable: bool | None = None
    description: str | None = None
    minimum: float | None = None
    maximum: float | None = None
    example: Value | None = None


class Example(BaseModel):
    """An instance the model is known to answer, and (optionally) the answer it must give."""

    model_config = ConfigDict(extra="forbid")

    instance: dict[str, Any] | list[Any] | str
    prediction: Any = None


Name = Annotated[str, StringConstraints(min_length=1)]


class Sidecar(BaseModel):
    """The optional metadata file beside the artifact (see the README, "Plug in your model")."""

    model_config = ConfigDict(extra="forbid")

    version: str | None = None
    description: str | None = None
    task: Task | None = None
    features: list[Name | FeatureSpec] | None = None
    classes: list[Label] | None = None
    outputs: list[Name] | None = Field(default=None, min_length=2)
    examples: list[Example] | None = Field(default=None, min_length=1)

    def specs(self) -> list[FeatureSpec] | None:
        if self.features is None:
            return None
        return [FeatureSpec(name=f) if isinstance(f, str) else f for f in self.features]


def sidecar_path(artifact: Path) -> Path:
    """``churn.<ext>`` -> ``churn.json``; else ``metadata.json`` in the same folder."""
    own = artifact.with_suffix(SIDECAR_SUFFIX)
    return own if own.exists() else artifact.with_name(SIDECAR_FALLBACK)


def read_sidecar(artifact: Path) -> Sidecar:
    """The sidecar of ``artifact``, validated; an empty one when there is none."""
    path = sidecar_path(artifact)
    if not path.exists():
        return Sidecar()
    try:
        return Sidecar.model_validate_json(path.read_bytes())
    except OSError as exc:
        raise ModelLoadError(f"cannot read model metadata {path}: {exc.strerror}") from exc
    except ValidationError as exc:
        first = exc.errors(include_url=False)[0]
        where = ".".join(str(part) for part in first["loc"]) or "the file"
        raise ModelLoadError(
            f"model metadata {path}: {where}: {first['msg']} ({exc.error_count()} problem(s))"
        ) from None


def reference_example(artifact: Path, signature: Signature) -> list[Value] | None:
    """A typical row from the reference statistics beside ``artifact``, if there are any: each
    number's median decile, each category's most common value (see ``reference.py``)."""
    path = artifact.with_name(artifact.stem + ".reference.json")
    try:
        document = json.loads(path.read_bytes())
        found = {f["name"]: f for f in document["features"]}
        row = [_typical(feature, found[feature.name]) for feature in signature.features]
    except (OSError, ValueError, KeyError, TypeError, IndexError):
        return None  # no usable reference: the signature's own example serves
    return None if any(value is None for value in row) else row  # type: ignore[return-value]


def _typical(feature: Feature, stats: dict[str, Any]) -> Value | None:
    edges: list[float] | None = stats.get("edges")
    if edges:
        middle = float(edges[len(edges) // 2])
        return round(middle) if feature.type == "integer" else middle
    shares = {k: v for k, v in stats["shares"].items() if k not in ("missing", "other")}
    if not shares:
        return None
    text: str = max(shares, key=shares.__getitem__)
    if feature.type == "boolean":
        return text == "true"
    for category in feature.categories or ():
        if str(category) == text:
            return category
    return text if feature.type in ("string", "datetime") else None


def sidecar_json(sidecar: Sidecar) -> str:
    return json.dumps(sidecar.model_dump(exclude_none=True), indent=2) + "\n"


# --- merging what the artifact says with what the sidecar says -------------------------------


def merge(
    artifact: Signature, sidecar: Sidecar, *, knows_names: bool, knows_task: bool = True
) -> Signature:
    """The artifact's signature completed by the sidecar; ModelLoadError where they differ.

    ``knows_names``: the artifact records its feature names (else they are ``x0``, ``x1``...
    and the sidecar may name them). ``knows_task``: it records what its answers are.
    """
    features = list(artifact.features)
    specs = sidecar.specs()
    if specs is not None:
        names = [spec.name for spec in specs]
        if len(names) != len(set(names)):
            raise ModelLoadError("the model metadata lists a feature twice")
        if len(specs) != len(features):
            raise ModelLoadError(
                f"the model metadata lists {len(specs)} features but the model takes "
                f"{len(features)}"
            )
        if knows_names and names != artifact.names:
            raise ModelLoadError(
                f"the model metadata names the features {names} but the model was fitted on "
                f"{artifact.names}"
            )
        features = [_merge_feature(f, spec) for f, spec in zip(features, specs, strict=True)]
    task = artifact.task
    if sidecar.task is not None and sidecar.task != task:
        # A graph records no estimator type: its integer labels may be classes, clusters or
        # outlier flags, which only the sidecar can tell. A scikit-learn estimator knows.
        if knows_task:
            raise ModelLoadError(
                f"the model metadata says the task is {sidecar.task}, the model is a "
                f"{artifact.task} model"
            )
        task = sidecar.task
    classes = artifact.classes
    if sidecar.classes is not None:
        if classes and [str(c) for c in sidecar.classes] != [str(c) for c in classes]:
            raise ModelLoadError(
                f"the model metadata lists the classes {sidecar.classes} but the model "
                f"predicts {list(classes)}"
            )
        if task == "regression":
            raise ModelLoadError("the model metadata lists classes for a regression model")
        classes = classes or tuple(sidecar.classes)
    outputs = artifact.outputs
    if sidecar.outputs is not None:
        if len(sidecar.outputs) != len(outputs):
            raise ModelLoadError(
                f"the model metadata names {len(sidecar.outputs)} outputs but the model "
                f"answers {len(outputs) or 1} value(s) per row"
            )
        if len(set(sidecar.outputs)) != len(sidecar.outputs):
            raise ModelLoadError("the model metadata names an output twice")
        outputs = tuple(
            replace(output, name=name)
            for output, name in zip(outputs, sidecar.outputs, strict=True)
        )
    return replace(artifact, features=tuple(features), task=task, classes=classes, outputs=outputs)


def _merge_feature(feature: Feature, spec: FeatureSpec) -> Feature:
    where = f"feature {feature.name!r}"
    kind = feature.type
    if spec.type is not None and spec.type != kind:
        # Where the artifact leaves the type open, the sidecar says it. Where it records one, a
        # number may still be declared integer or boolean and a string a datetime (the model
        # sees the same tensor); anything else contradicts the artifact.
        refinements = {"number": ("integer", "boolean"), "string": ("datetime",)}
        if feature.typed and spec.type not in refinements.get(kind, ()):
            raise ModelLoadError(
                f"{where}: the model metadata says {spec.type}, the model takes {kind}"
            )
        kind = spec.type
    categories = feature.categories
    if spec.categories is not None:
        if categories is not None and set(map(str, spec.categories)) != set(map(str, categories)):
            raise ModelLoadError(
                f"{where}: the model metadata lists the categories {spec.categories}, the "
                f"model knows {list(categories)}"
            )
        categories = categories or tuple(spec.categories)
    if categories is not None:
        strange = [c for c in categories if not _of_type(c, kind)]
        if strange:
            raise ModelLoadError(f"{where}: categories {strange} are not of type {kind}")
    example = feature.example if spec.example is None else spec.example
    if spec.example is not None and not _of_type(spec.example, kind):
        raise ModelLoadError(f"{where}: the example {spec.example!r} is not of type {kind}")
    return replace(
        feature,
        name=spec.name,
        type=kind,
        categories=categories,
        nullable=feature.nullable if spec.nullable is None else spec.nullable,
        description=spec.description,
        minimum=spec.minimum,
        maximum=spec.maximum,
        example=example,
        typed=feature.typed or spec.type is not None,
    )


def _of_type(value: Value, kind: str) -> bool:
    """Whether ``value`` is a JSON value of the feature type ``kind`` (a bool is no number)."""
    if isinstance(value, bool):
        return kind == "boolean"
    return isinstance(value, CATEGORY_TYPES[kind])
