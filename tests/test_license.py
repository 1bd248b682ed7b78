"""The template repository carries its own licence (baked projects get theirs from the hook)."""

from __future__ import annotations

from tests.conftest import ROOT


def test_template_has_an_mit_license() -> None:
    license_file = ROOT / "LICENSE"
    assert license_file.is_file(), "the template has no top-level LICENSE"
    text = license_file.read_text(encoding="utf-8")
    assert text.startswith("MIT License\n"), text[:80]
    assert "Copyright (c)" in text and "the template's authors" in text, text[:200]
    assert 'THE SOFTWARE IS PROVIDED "AS IS"' in text, "the MIT permission text is incomplete"
    assert "{{" not in text and "{%" not in text, "the template's LICENSE is not rendered text"
