"""The pairwise generator in tests/variants.py: coverage, rules and names (no bake needed)."""

from __future__ import annotations

import itertools
import re
from typing import Any

import pytest

from tests.variants import (
    CHOICES,
    DEFAULTS,
    SUPPORTED,
    UNSUPPORTED,
    allowed,
    pairwise,
    variant_id,
)


def allowed_pairs(choices: dict[str, list[Any]]) -> set[tuple[tuple[str, Any], tuple[str, Any]]]:
    """Every pair of values of two variables that the rules allow, by brute force."""
    return {
        ((a, va), (b, vb))
        for a, b in itertools.combinations(sorted(choices), 2)
        for va in choices[a]
        for vb in choices[b]
        if allowed({a: va, b: vb})
    }


def covered_pairs(variants: list[dict[str, Any]]) -> set[tuple[tuple[str, Any], tuple[str, Any]]]:
    return {
        ((a, v[a]), (b, v[b])) for v in variants for a, b in itertools.combinations(sorted(v), 2)
    }


def test_choices_come_from_cookiecutter_json() -> None:
    assert CHOICES["auth"] == ["jwt", "oidc", "api_key", "none"]
    assert CHOICES["use_prometheus"] == [True, False]
    assert "project_name" not in CHOICES  # free text is not a choice
    assert {name: values[0] for name, values in CHOICES.items()} == DEFAULTS


def test_every_allowed_pair_is_covered() -> None:
    missing = allowed_pairs(CHOICES) - covered_pairs(SUPPORTED)
    assert not missing, f"pairs no variant covers: {sorted(missing, key=repr)}"


def test_no_variant_breaks_a_rule_or_uses_an_unknown_value() -> None:
    for variant in SUPPORTED:
        assert allowed(variant), variant_id(variant)
        assert set(variant) == set(CHOICES), variant_id(variant)
        for name, value in variant.items():
            assert value in CHOICES[name], f"{variant_id(variant)}: {name}={value!r}"


def test_forbidden_pairs_are_never_generated() -> None:
    assert not any(v["use_kubernetes"] and not v["use_docker"] for v in SUPPORTED)
    assert not allowed({"use_kubernetes": True, "use_docker": False})
    assert "kubernetes without docker" in UNSUPPORTED


def test_the_default_variant_comes_first() -> None:
    assert SUPPORTED[0] == DEFAULTS
    assert variant_id(SUPPORTED[0]) == "default"


def test_ids_are_unique_and_readable() -> None:
    ids = [variant_id(v) for v in SUPPORTED]
    assert len(set(ids)) == len(ids), ids
    for name in ids[1:]:
        # "name=value,name=value": only the answers that differ from the defaults
        assert re.fullmatch(r"[a-z_]+=[\w.\-]+(,[a-z_]+=[\w.\-]+)*", name), name
        assert all(part.split("=")[0] in CHOICES for part in name.split(","))


def test_variants_are_distinct_and_few() -> None:
    keys = {tuple(sorted(v.items())) for v in SUPPORTED}
    assert len(keys) == len(SUPPORTED)
    # Pairwise, not exhaustive: far fewer variants than the full product of the answers.
    assert len(SUPPORTED) <= 20


def test_generator_is_deterministic() -> None:
    assert pairwise(CHOICES) == SUPPORTED


@pytest.mark.parametrize(
    "choices",
    [
        {"a": [1, 2], "b": ["x", "y", "z"]},
        {"a": [1, 2, 3], "b": [True, False], "c": ["p", "q"], "d": [0, 1, 2, 3]},
    ],
)
def test_generator_covers_arbitrary_choices(choices: dict[str, list[Any]]) -> None:
    variants = pairwise(choices)
    assert allowed_pairs(choices) <= covered_pairs(variants)
