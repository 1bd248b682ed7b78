"""Every baked project ships a ``uv.lock`` that is valid for its own dependency set.

The template stores one lock per dependency set (model_framework x auth x use_prometheus x
use_serverless x use_opentelemetry) in ``{{cookiecutter.project_slug}}/.locks/``, made by
``make locks`` (scripts/lock.py) for the default name and version; the post-generation hook
picks the matching one and gives it the project's name and version. These tests bake every set
and ask uv whether the result fits: ``uv lock --check`` (the lock satisfies the baked
pyproject.toml) and ``uv sync --locked --dry-run`` (what the Dockerfile runs). A valid lock needs
no package index for either, so each test takes well under a second.
"""

from __future__ import annotations

import itertools
import os
import subprocess
import sys
import tomllib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import ROOT, Baked
from tests.test_hooks import post
from tests.variants import CHOICES

LOCKS = ROOT / "{{cookiecutter.project_slug}}" / post.LOCKS_DIR
DEPENDENCY_SETS: list[dict[str, Any]] = [
    dict(zip(post.DEPENDENCY_ANSWERS, values, strict=True))
    for values in itertools.product(*(CHOICES[name] for name in post.DEPENDENCY_ANSWERS))
]
UV = [sys.executable, "-m", "uv"]
UV_ENV = {**os.environ, "UV_PYTHON_DOWNLOADS": "never"}
STALE = "run `make locks` to re-lock (scripts/lock.py) and commit .locks/"

# Names and versions other than the defaults the locks were made for: one sorting after every
# dependency, one before almost all of them (with a version uv writes in another spelling, and
# a Python version that must not matter).
PROJECTS: dict[str, dict[str, str]] = {
    "zeta": {"project_name": "Zeta Forecaster", "version": "2.3.4"},
    "aardvark": {
        "project_name": "Aardvark Model",
        "version": "1.0.0-RC1",
        "python_version": "3.13",
    },
}
EXPECTED_ROOT = {"zeta": ("zeta-forecaster", "2.3.4"), "aardvark": ("aardvark-model", "1.0.0rc1")}


def lock_name(answers: dict[str, Any]) -> str:
    return str(post.lock_name({name: str(value) for name, value in answers.items()}))


def set_id(answers: dict[str, Any]) -> str:
    return lock_name(answers).removesuffix(".lock")


def uv_accepts(project: Path, what: str, hint: str) -> None:
    """``uv lock --check`` and the Dockerfile's ``uv sync --locked`` accept the project's lock."""
    python = ["--python", sys.executable]  # any interpreter: the lock is universal
    for command in (
        [*UV, "lock", "--check", *python],
        [*UV, "sync", "--locked", "--no-dev", "--no-editable", "--dry-run", *python],
    ):
        result = subprocess.run(
            command, cwd=project, env=UV_ENV, capture_output=True, text=True, timeout=300
        )
        if result.returncode != 0:
            pytest.fail(
                f"{what} `uv {' '.join(command[3:-2])}` exited {result.returncode}: {hint}\n"
                f"--- stdout\n{result.stdout[-4000:]}\n--- stderr\n{result.stderr[-4000:]}"
            )


def test_one_stored_lock_per_dependency_set() -> None:
    stored = {path.name for path in LOCKS.glob("*")}
    wanted = {lock_name(answers) for answers in DEPENDENCY_SETS}
    assert stored == wanted, (
        f"missing {sorted(wanted - stored)}, unexpected {sorted(stored - wanted)}: {STALE}"
    )


@pytest.mark.parametrize("answers", DEPENDENCY_SETS, ids=set_id)
def test_stored_lock_is_current(bake: Callable[..., Baked], answers: dict[str, Any]) -> None:
    """With the default name and version the hook ships the stored lock unchanged, and uv
    accepts it for the baked pyproject.toml: a failure here means the lock is stale."""
    baked = bake(**answers)
    what = f"[{set_id(answers)}]"
    shipped = baked.path / "uv.lock"
    assert shipped.is_file(), f"{what} no uv.lock in the baked project"
    assert not (baked.path / post.LOCKS_DIR).exists(), f"{what} .locks/ left in the project"
    stored = (LOCKS / lock_name(answers)).read_text(encoding="utf-8")
    assert shipped.read_text(encoding="utf-8") == stored, f"{what} the hook changed the lock"
    uv_accepts(
        baked.path,
        what,
        f".locks/{lock_name(answers)} does not fit the baked pyproject.toml: {STALE}",
    )


@pytest.mark.parametrize("project", list(PROJECTS))
@pytest.mark.parametrize("answers", DEPENDENCY_SETS, ids=set_id)
def test_lock_fits_the_projects_name_and_version(
    bake: Callable[..., Baked], answers: dict[str, Any], project: str
) -> None:
    baked = bake(**answers, **PROJECTS[project])
    what = f"[{set_id(answers)},{project}]"
    shipped = baked.path / "uv.lock"
    assert shipped.is_file(), f"{what} no uv.lock in the baked project"
    assert not (baked.path / post.LOCKS_DIR).exists(), f"{what} .locks/ left in the project"
    packages = tomllib.loads(shipped.read_text(encoding="utf-8"))["package"]
    roots = [p for p in packages if p["source"] == {"editable": "."}]
    assert [(p["name"], p["version"]) for p in roots] == [EXPECTED_ROOT[project]], what
    names = [p["name"] for p in packages]
    assert names == sorted(names), f"{what} packages are not in uv's (sorted) order"
    uv_accepts(
        baked.path,
        what,
        "if test_stored_lock_is_current passes for this set, the hook's renaming broke the lock;"
        f" otherwise the stored lock is stale: {STALE}",
    )


def test_a_stale_lock_is_refused(bake: Callable[..., Baked]) -> None:
    """The Dockerfile installs with ``uv sync --locked``, which refuses a lock that no longer
    fits pyproject.toml (a dependency changed without ``uv lock``), rather than re-resolving."""
    baked = bake()
    dockerfile = (baked.path / "Dockerfile").read_text(encoding="utf-8")
    syncs = [line for line in dockerfile.splitlines() if line.startswith("RUN uv ")]
    assert len(syncs) == 2 and all("uv sync --locked " in line for line in syncs), syncs
    pyproject = baked.path / "pyproject.toml"
    text = pyproject.read_text(encoding="utf-8")
    pyproject.write_text(text.replace('    "typer>=0.12,<1",\n', ""), encoding="utf-8")
    assert pyproject.read_text(encoding="utf-8") != text
    result = subprocess.run(
        [*UV, "sync", "--locked", "--no-dev", "--dry-run", "--python", sys.executable],
        cwd=baked.path,
        env=UV_ENV,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode != 0, result.stdout
    assert "needs to be updated" in result.stderr, result.stderr
