"""The template repository's own workflow (.github/workflows/test.yml): lint and hardening."""

from __future__ import annotations

import re
import shutil
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.conftest import run
from tests.variants import CHOICES

ROOT = Path(__file__).resolve().parent.parent
WORKFLOW = ROOT / ".github" / "workflows" / "test.yml"
PINNED = re.compile(r"^[\w.-]+/[\w.-]+@[0-9a-f]{40}$")


def workflow() -> dict[Any, Any]:
    data: dict[Any, Any] = yaml.safe_load(WORKFLOW.read_text(encoding="utf-8"))
    return data


def steps(job: dict[str, Any]) -> list[dict[str, Any]]:
    result: list[dict[str, Any]] = job["steps"]
    return result


def test_actionlint_is_clean() -> None:
    actionlint = Path(sys.executable).parent / "actionlint"
    binary = str(actionlint) if actionlint.exists() else shutil.which("actionlint")
    if binary is None:
        pytest.fail("actionlint is not installed (it is pinned in pyproject.toml)")
    run([binary, "-no-color", str(WORKFLOW)], cwd=ROOT, what="actionlint on the template CI")


def test_actions_are_pinned_by_commit() -> None:
    for name, job in workflow()["jobs"].items():
        for step in steps(job):
            if "uses" in step:
                assert PINNED.match(step["uses"]), f"{name}: {step['uses']} is not pinned by SHA"


def test_least_privilege_and_no_persisted_credentials() -> None:
    data = workflow()
    assert data["permissions"] == {"contents": "read"}
    assert "cancel-in-progress" in data["concurrency"]
    for name, job in data["jobs"].items():
        assert isinstance(job.get("timeout-minutes"), int), f"{name} has no timeout"
        assert "permissions" not in job or job["permissions"] == {"contents": "read"}, name
        for step in steps(job):
            if step.get("uses", "").startswith("actions/checkout@"):
                assert step["with"]["persist-credentials"] is False, name


def test_static_part_on_every_supported_python_and_full_suite_once() -> None:
    jobs = workflow()["jobs"]
    static = jobs["static"]
    assert sorted(static["strategy"]["matrix"]["python"]) == sorted(CHOICES["python_version"])
    assert any("make test-fast" in step.get("run", "") for step in steps(static))
    full = [job for name, job in jobs.items() if name != "static"]
    assert len(full) == 1
    assert "strategy" not in full[0]
    assert any(step.get("run", "") in (".ci/run", "make test") for step in steps(full[0]))
