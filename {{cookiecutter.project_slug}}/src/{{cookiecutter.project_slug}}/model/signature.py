"""What the model takes and gives, learnt from the artifact and its optional sidecar file.

The artifact is the authority on what it records (feature names, encoders' categories, classes,
input types); the sidecar adds what it cannot say (names for a plain matrix, integer or
boolean types, descriptions, ranges, examples). Where both speak they must agree: a sidecar that
silently disagreed would document one model and serve another.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, ValidationError

Label = str | int | float
FeatureType = Literal["number", "integer", "string", "boolean"]
Task = Literal["classification", "regression"]
NUMERIC_TYPES: frozenset[str] = frozenset({"number", "integer"})

SIDECAR_SUFFIX = ".json"
SIDECAR_FALLBACK = "metadata.json"


class ModelLoadError(RuntimeError):
    """The artifact is missing, corrupt or not a model this service can run."""


@dataclass(frozen=True, slots=True)
class Feature:
    """One input column: its type, the values it may take, and what it means."""

    name: str
    type: FeatureType = "number"
    categories: tuple[Label, ...] | None = None
    nullable: bool = False
    description: str | None = None
    minimum: float | None = None
    maximum: float | None = None
    example: Label | None = None

    def example_value(self) -> Label:
        """A value the model accepts, for warm-up and the API docs."""
        if self.example is not None:
            return self.example
        if self.categories:
            return self.categories[0]
        if self.type == "string":
            return "text"
        if self.type == "boolean":
            return False
        low = self.minimum if self.minimum is not None else self.maximum
        value = low if low is not None else 0.0
        return int(value) if self.type == "integer" else float(value)


@dataclass(frozen=True, slots=True)
class Signature:
    """The model's inputs and outputs.

    ``named`` says how the model takes its input: by column name (a DataFrame, or one graph input
    per column) rather than as one positional numeric matrix, the fast path.
    """

    features: tuple[Feature, ...]
    task: Task
    classes: tuple[Label, ...] = ()
    probabilities: bool = False
    named: bool = False

    @property
    def names(self) -> list[str]:
        return [feature.name for feature in self.features]

    def example_row(self) -> list[Label]:
        return [feature.example_value() for feature in self.features]


# --- the sidecar file ------------------------------------------------------------------------


class FeatureSpec(BaseModel):
    """A feature as the sidecar describes it; unset fields are left to the artifact."""

    model_config = ConfigDict(extra="forbid")

    name: Annotated[str, StringConstraints(min_length=1)]
    type: FeatureType | None = None
    categories: list[Label] | None = Field(default=None, min_length=1)
    nullable: bool | None = None
    description: str | None = None
    minimum: float | None = None
    maximum: float | None = None
    example: Label | None = None


class Sidecar(BaseModel):
    """The optional metadata file beside the artifact (see the README, "Plug in your model")."""

    model_config = ConfigDict(extra="forbid")

    version: str | None = None
    description: str | None = None
    features: list[Annotated[str, StringConstraints(min_length=1)] | FeatureSpec] | None = None
    classes: list[Label] | None = None

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


def sidecar_json(sidecar: Sidecar) -> str:
    return json.dumps(sidecar.model_dump(exclude_none=True), indent=2) + "\n"


# --- merging what the artifact says with what the sidecar says -------------------------------


def merge(artifact: Signature, sidecar: Sidecar, *, knows_names: bool) -> Signature:
    """The artifact's signature completed by the sidecar; ModelLoadError where they differ.

    ``knows_names``: the artifact records its feature names (else they are ``x0``, ``x1``...
    and the sidecar may name them).
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
    classes = artifact.classes
    if sidecar.classes is not None:
        if classes and [str(c) for c in sidecar.classes] != [str(c) for c in classes]:
            raise ModelLoadError(
                f"the model metadata lists the classes {sidecar.classes} but the model "
                f"predicts {list(classes)}"
            )
        if artifact.task == "regression":
            raise ModelLoadError("the model metadata lists classes for a regression model")
        classes = classes or tuple(sidecar.classes)
    return replace(artifact, features=tuple(features), classes=classes)


def _merge_feature(feature: Feature, spec: FeatureSpec) -> Feature:
    where = f"feature {feature.name!r}"
    kind = feature.type
    if spec.type is not None and spec.type != kind:
        # A numeric column may be declared integer or boolean (the model still sees a number);
        # anything else contradicts the artifact.
        if not (kind == "number" and spec.type in ("integer", "boolean")):
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
        types: dict[str, type | tuple[type, ...]] = {
            "string": str,
            "integer": int,
            "number": (int, float),
            "boolean": bool,
        }
        wanted = types[kind]
        strange = [c for c in categories if not isinstance(c, wanted)]
        if strange:
            raise ModelLoadError(f"{where}: categories {strange} are not of type {kind}")
    return Feature(
        name=spec.name,
        type=kind,
        categories=categories,
        nullable=feature.nullable if spec.nullable is None else spec.nullable,
        description=spec.description,
        minimum=spec.minimum,
        maximum=spec.maximum,
        example=spec.example,
    )
