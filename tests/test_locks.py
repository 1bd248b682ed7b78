"""Every baked project ships a ``uv.lock`` that is valid for its own dependency set, and only that.

The template stores one *superset* lock per model framework in
``{{cookiecutter.project_slug}}/.locks/`` (``make locks``, scripts/lock.py): ``uv lock`` of the
default project with the union of every option's requirements. The post-generation hook cuts
from it the packages the variant's own requirements reach and writes the root package anew
(hooks/post_gen_project.py, ``prune_lock``). These tests check, for every dependency set
(model_framework x auth x use_prometheus x use_serverless x use_opentelemetry):

- the store is current: its recorded requirements are exactly what the template asks for;
- the shipped lock holds exactly the packages the variant reaches (nothing of a disabled
  option), at the superset's versions and files;
- uv accepts it: ``uv lock --check`` (it satisfies the baked pyproject.toml) and
  ``uv sync --locked --dry-run`` (what the Dockerfile runs), with uv's cache warm and, for a few
  sets, empty; the slow tests also let uv resolve each set afresh and write the same file.
"""

from __future__ import annotations

import functools
import importlib.util
import itertools
import os
import re
import subprocess
import sys
import tomllib
from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from tests.conftest import ROOT, UV, Baked
from tests.test_hooks import post
from tests.variants import CHOICES

LOCKS = ROOT / "{{cookiecutter.project_slug}}" / post.LOCKS_DIR
FRAMEWORKS: list[str] = CHOICES["model_framework"]
DEPENDENCY_SETS: list[dict[str, Any]] = [
    dict(zip(post.DEPENDENCY_ANSWERS, values, strict=True))
    for values in itertools.product(*(CHOICES[name] for name in post.DEPENDENCY_ANSWERS))
]
UV_ENV = {**os.environ, "UV_PYTHON_DOWNLOADS": "never"}
STALE = "run `make locks` to re-lock (scripts/lock.py) and commit .locks/"
MAX_STORE_BYTES = 3 * 1024 * 1024

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

# Packages only one option brings in: a set without that option must not lock them.
OPTION_PACKAGES: dict[str, tuple[Callable[[dict[str, Any]], bool], set[str]]] = {
    "serverless": (lambda a: a["use_serverless"], {"mangum", "awslambdaric"}),
    "prometheus": (lambda a: a["use_prometheus"], {"prometheus-client", "pyarrow"}),
    "opentelemetry": (
        lambda a: a["use_opentelemetry"],
        # (opentelemetry-api is FastAPI's own dependency, for its built-in telemetry)
        {"opentelemetry-sdk", "opentelemetry-exporter-otlp-proto-http", "opentelemetry-proto"},
    ),
    "database": (lambda a: a["auth"] in {"jwt", "api_key"}, {"sqlalchemy", "psycopg"}),
    "jwt": (lambda a: a["auth"] == "jwt", {"pwdlib", "argon2-cffi", "python-multipart"}),
    "tokens": (lambda a: a["auth"] in {"jwt", "oidc"}, {"pyjwt"}),
    "oidc": (lambda a: a["auth"] == "oidc", {"cryptography"}),
    "sklearn": (lambda a: a["model_framework"] == "sklearn", {"skops", "pandas"}),
    "onnx": (lambda a: a["model_framework"] == "onnx", {"onnxruntime", "skl2onnx"}),
}


def load_lock_script() -> ModuleType:
    spec = importlib.util.spec_from_file_location("lock_script", ROOT / "scripts" / "lock.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


lock_script = load_lock_script()


def set_id(answers: dict[str, Any]) -> str:
    metrics = "metrics" if answers["use_prometheus"] else "nometrics"
    serverless = "-serverless" if answers["use_serverless"] else ""
    otel = "-otel" if answers["use_opentelemetry"] else ""
    return f"{answers['model_framework']}-{answers['auth']}-{metrics}{serverless}{otel}"


@functools.cache
def superset(framework: str) -> str:
    return (LOCKS / post.superset_name(framework)).read_text(encoding="utf-8")


@functools.cache
def parse_block(text: str) -> dict[str, Any]:
    """One package block of a lock, parsed (blocks recur in every lock cut from a superset)."""
    package: dict[str, Any] = tomllib.loads("[[package]]\n" + text)["package"][0]
    return package


def blocks(lock: str) -> dict[tuple[str, str], str]:
    """Each package block of a lock, by name and version."""
    found = {}
    for text in lock.rstrip("\n").split(post.PACKAGE_SEPARATOR)[1:]:
        package = parse_block(text)
        found[(package["name"], package["version"])] = text
    return found


def uv(project: Path, *args: str, env: dict[str, str] | None = None) -> None:
    """Run ``uv ARGS`` in the project (any interpreter: the lock is universal), or fail."""
    command = [*UV, *args, "--python", sys.executable]
    result = subprocess.run(
        command, cwd=project, env=env or UV_ENV, capture_output=True, text=True, timeout=300
    )
    if result.returncode != 0:
        pytest.fail(
            f"[{project.name}] `uv {' '.join(args)}` exited {result.returncode}: {STALE}\n"
            f"--- stdout\n{result.stdout[-4000:]}\n--- stderr\n{result.stderr[-4000:]}"
        )


def uv_accepts(project: Path, env: dict[str, str] | None = None) -> None:
    """``uv lock --locked``/``--check`` and the Dockerfile's ``uv sync --locked`` take the lock."""
    uv(project, "lock", "--locked", env=env)
    uv(project, "lock", "--check", env=env)
    uv(project, "sync", "--locked", "--no-dev", "--no-editable", "--dry-run", env=env)
    uv(project, "sync", "--locked", "--all-extras", "--dry-run", env=env)


def reachable(lock: dict[str, Any]) -> tuple[set[tuple[str, str]], dict[tuple[str, str], set[str]]]:
    """The packages a lock's root reaches through its own edges, and the extras asked of each."""
    packages = lock["package"]
    by_name: dict[str, list[dict[str, Any]]] = {}
    for package in packages:
        by_name.setdefault(package["name"], []).append(package)
    root = next(p for p in packages if p["source"] == {"editable": "."})
    seen: set[tuple[str, str]] = set()
    asked: dict[tuple[str, str], set[str]] = {}
    todo = [root]
    while todo:
        package = todo.pop()
        key = (package["name"], package["version"])
        if key in seen:
            continue
        seen.add(key)
        edges = list(package.get("dependencies", []))
        for extra in asked.get(key, set()) | (
            set(package.get("optional-dependencies", {})) if package is root else set()
        ):
            edges += package.get("optional-dependencies", {}).get(extra, [])
        for edge in edges:
            (target,) = [
                p
                for p in by_name[edge["name"]]
                if p["version"] == edge.get("version", p["version"])
            ]
            target_key = (target["name"], target["version"])
            more = set(edge.get("extra", [])) - asked.get(target_key, set())
            asked.setdefault(target_key, set()).update(more)
            if more:
                seen.discard(target_key)  # visit again for the extras' edges
            todo.append(target)
    return seen, asked


# --- the store --------------------------------------------------------------------------------


def test_the_store_is_one_superset_lock_per_framework() -> None:
    stored = {path.name for path in LOCKS.glob("*")}
    wanted = {post.superset_name(framework) for framework in FRAMEWORKS}
    assert stored == wanted, (
        f"missing {sorted(wanted - stored)}, unexpected {sorted(stored - wanted)}: {STALE}"
    )
    size = sum(path.stat().st_size for path in LOCKS.glob("*"))
    assert size <= MAX_STORE_BYTES, f"the stored locks take {size} bytes"


@pytest.mark.parametrize("framework", FRAMEWORKS)
def test_the_superset_records_exactly_what_the_template_requires(framework: str) -> None:
    """The superset's root was locked for the union of every set's requirements: a dependency
    added, removed or changed in the template's pyproject.toml without `make locks` fails here."""
    lock = superset(framework)
    main, extras = lock_script.union(framework)
    try:
        cut = post.prune_lock(lock, {"dependencies": main, "optional-dependencies": extras})
    except ValueError as exc:
        pytest.fail(f"[{framework}] {exc}: {STALE}")
    assert cut == lock, f"[{framework}] .locks/{framework}.lock locks other requirements: {STALE}"


def test_a_requirement_the_superset_lacks_says_run_make_locks() -> None:
    """What the hook says when the template's requirements changed without `make locks`."""
    project = lock_script.rendered_project(DEPENDENCY_SETS[0])
    changed = [r.replace("typer>=0.12,<1", "typer>=0.13,<1") for r in project["dependencies"]]
    assert changed != project["dependencies"]
    with pytest.raises(ValueError, match="run `make locks`"):
        post.prune_lock(superset("sklearn"), {**project, "dependencies": changed})


# --- what every dependency set gets ----------------------------------------------------------


def shipped_lock(answers: dict[str, Any]) -> str:
    """The ``uv.lock`` a bake with ``answers`` (and the default name and version) ships: what
    the hook writes, computed without baking."""
    project = lock_script.rendered_project(answers)
    cut = post.prune_lock(superset(answers["model_framework"]), project)
    defaults = lock_script.defaults()
    return post.lock_for_project(
        cut,
        post.distribution_name(defaults["project_slug"]),
        post.canonical_version(defaults["version"]),
    )


@pytest.mark.parametrize("answers", DEPENDENCY_SETS, ids=set_id)
def test_each_set_ships_exactly_its_packages(answers: dict[str, Any]) -> None:
    """The shipped lock holds what the variant reaches and nothing else, at the superset's
    versions and files (``uv lock --locked`` accepts an unreachable package, so reachability is
    checked here; that uv takes each lock, and that a bake ships this very lock, is the slow
    test below)."""
    what = f"[{set_id(answers)}]"
    text = shipped_lock(answers)
    lock = {"package": [parse_block(block) for block in blocks(text).values()]}
    names = {package["name"] for package in lock["package"]}
    for option, (enabled, packages) in OPTION_PACKAGES.items():
        if not enabled(answers):
            assert not names & packages, f"{what} {option} is off, yet locked: {names & packages}"
    seen, asked = reachable(lock)
    every = {(p["name"], p["version"]) for p in lock["package"]}
    assert every == seen, f"{what} packages no dependency reaches: {sorted(every - seen)}"
    for package in lock["package"]:
        key = (package["name"], package["version"])
        if package["source"] != {"editable": "."}:
            unasked = set(package.get("optional-dependencies", {})) - asked.get(key, set())
            assert not unasked, f"{what} {key}: extras no one asks for: {unasked}"
    # The same versions and files as the superset (so as what the template was tested with).
    wide = blocks(superset(answers["model_framework"]))
    for key, block in blocks(text).items():
        if f"\n{post.ROOT_SOURCE}\n" in block:
            continue
        assert key in wide, f"{what} {key} is not in the superset lock"
        files = [line for line in block.splitlines() if "hash = " in line]
        assert files == [line for line in wide[key].splitlines() if "hash = " in line], key
    head = text.split(post.PACKAGE_SEPARATOR)[0]
    assert head == superset(answers["model_framework"]).split(post.PACKAGE_SEPARATOR)[0], what


@pytest.mark.slow
@pytest.mark.parametrize("answers", DEPENDENCY_SETS, ids=set_id)
def test_uv_takes_each_shipped_lock(bake: Callable[..., Baked], answers: dict[str, Any]) -> None:
    """Each set's bake ships the lock checked above, with no ``.locks/`` left, and uv takes it."""
    baked = bake(**answers)
    what = f"[{set_id(answers)}]"
    shipped = baked.path / "uv.lock"
    assert shipped.is_file(), f"{what} no uv.lock in the baked project: {STALE}"
    assert not (baked.path / post.LOCKS_DIR).exists(), f"{what} .locks/ left in the project"
    assert shipped.read_text(encoding="utf-8") == shipped_lock(answers), what
    uv_accepts(baked.path)


@pytest.mark.parametrize("project", list(PROJECTS))
@pytest.mark.parametrize(
    "answers",
    [DEPENDENCY_SETS[0], DEPENDENCY_SETS[-1]],
    ids=set_id,
)
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
    uv_accepts(baked.path)


# A few sets, each option on and off at least once, for what needs uv's cache empty or the index.
FEW = [
    DEPENDENCY_SETS[0],  # the defaults
    next(
        a
        for a in DEPENDENCY_SETS
        if a["model_framework"] == "onnx"
        and a["auth"] == "oidc"
        and a["use_serverless"]
        and a["use_opentelemetry"]
        and not a["use_prometheus"]
    ),
    next(
        a
        for a in DEPENDENCY_SETS
        if a["model_framework"] == "sklearn"
        and a["auth"] == "none"
        and not a["use_prometheus"]
        and not a["use_serverless"]
        and not a["use_opentelemetry"]
    ),
]


@pytest.mark.slow  # asks the index
@pytest.mark.parametrize("answers", FEW, ids=set_id)
def test_uv_takes_the_lock_with_an_empty_cache(
    bake: Callable[..., Baked], answers: dict[str, Any], tmp_path: Path
) -> None:
    """Nothing that only a warm cache knows: a fresh uv cache (which may ask the index)."""
    baked = bake(**answers)
    uv_accepts(baked.path, env={**UV_ENV, "UV_CACHE_DIR": str(tmp_path / "uv-cache")})


# Every framework, auth and boolean value in eight sets; TEMPLATE_ALL_LOCKS=1 takes all 64 (about
# 2 minutes on 2 cores), as after a change to the hook's cutting.
AFRESH = DEPENDENCY_SETS if os.environ.get("TEMPLATE_ALL_LOCKS") == "1" else DEPENDENCY_SETS[::9]


@pytest.mark.slow
@pytest.mark.parametrize("answers", AFRESH, ids=set_id)
def test_uv_resolving_afresh_writes_the_same_lock(
    bake: Callable[..., Baked], answers: dict[str, Any]
) -> None:
    """Make uv resolve the set (a changed ``exclude-newer`` invalidates the lock, whose versions
    stay preferred): what it writes is the shipped lock, but for that option's own lines."""
    baked = bake(**answers)
    shipped = (baked.path / "uv.lock").read_text(encoding="utf-8")
    uv(baked.path, "lock", "--quiet", "--exclude-newer", "2999-01-01T00:00:00Z")
    fresh = (baked.path / "uv.lock").read_text(encoding="utf-8")
    fresh = re.sub(r'^\[options\]\nexclude-newer = "[^"]*"\n\n', "", fresh, count=1, flags=re.M)
    assert fresh == shipped, f"[{set_id(answers)}] uv resolves this set otherwise: {STALE}"


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
