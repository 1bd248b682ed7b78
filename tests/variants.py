"""The combinations of answers the template supports, and the answers it must reject.

``SUPPORTED`` is generated: every value of every choice appears, and every pair of values of
two different variables appears together in at least one variant (pairwise coverage), except
pairs that a rule forbids (Kubernetes or serverless without Docker). The generator is greedy and
deterministic, so the list and its ids are stable between runs.
"""

from __future__ import annotations

import itertools
import json
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
COOKIECUTTER_JSON = json.loads((ROOT / "cookiecutter.json").read_text(encoding="utf-8"))

# Variables with a fixed set of values (JSON booleans count as the choice true/false).
CHOICES: dict[str, list[Any]] = {
    name: (value if isinstance(value, list) else [value, not value])
    for name, value in COOKIECUTTER_JSON.items()
    if not name.startswith("_") and isinstance(value, list | bool)
}
DEFAULTS: dict[str, Any] = {name: values[0] for name, values in CHOICES.items()}


def allowed(variant: dict[str, Any]) -> bool:
    """The template's own rules (mirrors hooks/pre_gen_project.py)."""
    no_docker = variant.get("use_docker") is False
    return not (no_docker and (variant.get("use_kubernetes") or variant.get("use_serverless")))


def _pairs(variant: dict[str, Any]) -> set[tuple[tuple[str, Any], tuple[str, Any]]]:
    items = sorted(variant.items(), key=lambda kv: kv[0])
    return {(a, b) for a, b in itertools.combinations(items, 2)}


def pairwise(choices: dict[str, list[Any]]) -> list[dict[str, Any]]:
    """A small list of complete variants in which every allowed value pair appears."""
    names = sorted(choices)
    wanted = set()
    for a, b in itertools.combinations(names, 2):
        for va in choices[a]:
            for vb in choices[b]:
                if allowed({a: va, b: vb}):
                    wanted.add(((a, va), (b, vb)))
    variants = [{name: values[0] for name, values in choices.items()}]  # the defaults first
    wanted -= _pairs(variants[0])
    while wanted:
        # Seed with an uncovered pair, then fill the other variables greedily.
        (a, va), (b, vb) = min(wanted, key=repr)
        variant: dict[str, Any] = {a: va, b: vb}
        for name in names:
            if name in variant:
                continue
            best = max(
                (v for v in choices[name] if allowed({**variant, name: v})),
                key=lambda v: (len(_pairs({**variant, name: v}) & wanted), -choices[name].index(v)),
            )
            variant[name] = best
        variants.append(variant)
        wanted -= _pairs(variant)
    return variants


def variant_id(variant: dict[str, Any]) -> str:
    """A short readable name: the values that differ from the defaults."""
    parts = []
    for name in CHOICES:
        value = variant.get(name, DEFAULTS[name])
        if value == DEFAULTS[name]:
            continue
        parts.append(f"{name}={str(value).lower() if isinstance(value, bool) else value}")
    return ",".join(parts) or "default"


SUPPORTED: list[dict[str, Any]] = pairwise(CHOICES)

# Answers that pre_gen_project must refuse, each with the words its message must contain.
UNSUPPORTED: dict[str, tuple[dict[str, Any], str]] = {
    "slug starts with a digit": ({"project_slug": "9lives"}, "project_slug"),
    "slug with a hyphen": ({"project_slug": "my-model"}, "project_slug"),
    "slug with upper case": ({"project_slug": "MyModel"}, "project_slug"),
    "slug with a space": ({"project_slug": "my model"}, "project_slug"),
    "slug is a keyword": ({"project_slug": "import"}, "keyword"),
    "name that makes a bad slug": ({"project_name": "3D Model"}, "project_slug"),
    "kubernetes without docker": ({"use_kubernetes": True, "use_docker": False}, "use_docker"),
    "serverless without docker": (
        {"use_serverless": True, "use_kubernetes": False, "use_docker": False},
        "use_serverless",
    ),
}
