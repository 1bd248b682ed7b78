"""The authenticated caller and the scopes it may use."""

from __future__ import annotations

from dataclasses import dataclass

SCOPES: dict[str, str] = {
    "predict": "Call the model and read its metadata.",
    "admin": "Administer the service.",
}


@dataclass(frozen=True)
class Principal:
    name: str
    scopes: frozenset[str]


def parse_scopes(text: str) -> frozenset[str]:
    return frozenset(text.split())


def check_scopes(scopes: list[str]) -> list[str]:
    """Refuse unknown scope names, so that a typo does not silently grant nothing."""
    unknown = sorted(set(scopes) - SCOPES.keys())
    if unknown:
        raise ValueError(f"unknown scope(s): {', '.join(unknown)}; known: {', '.join(SCOPES)}")
    return sorted(set(scopes))
