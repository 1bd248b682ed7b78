"""Lint and validate the deployment files of a few baked variants with the real tools.

Dockerfile (hadolint), GitHub workflows (actionlint and the workflow JSON schema), Dependabot,
Compose and GitLab CI (their JSON schemas), every YAML file (yamllint) and the Kubernetes
manifests (``kubectl kustomize`` rendered, then ``kubernetes-validate --strict``). The tools
are pinned in the template's pyproject.toml and found beside the running interpreter.

CI and ``make install`` install from the shipped ``uv.lock`` (``uv sync --locked``): the CI
files are checked for it here, the Makefile's choice between uv and pip with ``make -n``, and
(slow) a real ``make install`` against the lock.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import tomllib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.conftest import ROOT, Baked, run, shared_bake
from tests.variants import DEFAULTS, variant_id

BIN = Path(sys.executable).parent
TEMPLATE = ROOT / "{{cookiecutter.project_slug}}"
# CI installs the same uv as the Dockerfile (a lock may need a recent uv to be read).
UV_PIN = re.search(r"uv==[0-9][0-9.]*", (TEMPLATE / "Dockerfile").read_text("utf-8"))
UV_VERSION = UV_PIN.group() if UV_PIN else "uv==?"
LOCKED_SYNC = "uv sync --locked --extra dev"
CI_TOOLS = {"ruff check .", "ruff format --check .", "mypy", "pytest"}

# A few variants that between them keep or drop every deployment file.
VARIANTS: list[dict[str, Any]] = [
    {},
    {"ci": "gitlab", "auth": "none", "use_prometheus": False},
    {"auth": "api_key", "model_framework": "onnx", "python_version": "3.13"},
    {"use_docker": False, "use_kubernetes": False, "use_prometheus": False, "auth": "none"},
    {"ci": "gitlab", "use_docker": False, "use_kubernetes": False, "python_version": "3.11"},
]

# The project's own line length (100) plus room for SHA-pinned actions; comments may sit
# one space after content; GitHub's `on:` key is not a boolean.
YAMLLINT_CONFIG = (
    "{extends: default, rules: {line-length: {max: 120}, document-start: disable,"
    " truthy: {check-keys: false}, comments: {min-spaces-from-content: 1}}}"
)


def tool(name: str) -> str:
    path = BIN / name
    if not path.is_file():
        pytest.fail(f"{name} is not installed in {BIN}: run 'make venv' (it is in pyproject.toml)")
    return str(path)


@pytest.fixture(params=VARIANTS, ids=[variant_id(v) for v in VARIANTS])
def baked(request: pytest.FixtureRequest, run_dir: Path) -> Baked:
    return shared_bake(run_dir, **request.param)  # the checks here only read it


def context(baked: Baked) -> dict[str, Any]:
    return {**DEFAULTS, **baked.context}


def yaml_files(root: Path) -> list[str]:
    return sorted(
        str(p.relative_to(root))
        for p in root.rglob("*")
        if p.is_file() and p.suffix in {".yml", ".yaml"} and ".git" not in p.parts
    )


def test_dockerfile(baked: Baked) -> None:
    ctx = context(baked)
    dockerfile = baked.path / "Dockerfile"
    if not ctx["use_docker"]:
        assert not dockerfile.exists()
        return
    run([tool("hadolint"), "Dockerfile"], cwd=baked.path, what=f"[{baked.name}] hadolint")
    text = dockerfile.read_text(encoding="utf-8")
    suffix = "skops" if ctx["model_framework"] == "sklearn" else "onnx"
    for wanted in (
        f"FROM python:{ctx['python_version']}-slim AS builder",
        f"APP_MODEL_URI=/opt/model/model.{suffix}",
        f"-m {baked.slug} train-demo /opt/model",
        f'CMD ["/opt/venv/bin/python", "-m", "{baked.slug}", "serve"]',
        "USER 10001",
        "HEALTHCHECK",
    ):
        assert wanted in text, f"[{baked.name}] Dockerfile lacks {wanted!r}"


def test_compose(baked: Baked) -> None:
    ctx = context(baked)
    compose = baked.path / "docker-compose.yml"
    if not ctx["use_docker"]:
        assert not compose.exists()
        return
    run(
        [tool("check-jsonschema"), "--builtin-schema", "vendor.compose-spec", compose.name],
        cwd=baked.path,
        what=f"[{baked.name}] compose schema",
    )
    services = yaml.safe_load(compose.read_text(encoding="utf-8"))["services"]
    expected = {"app", "prometheus", "grafana"} if ctx["use_prometheus"] else {"app"}
    assert set(services) == expected, f"[{baked.name}] compose services {set(services)}"
    environment = services["app"].get("environment", {})
    assert ("APP_SECRET_KEY" in environment) == (ctx["auth"] == "jwt"), baked.name
    assert ("APP_OIDC_ISSUER" in environment) == (ctx["auth"] == "oidc"), baked.name
    if ctx["use_prometheus"]:
        scrape = yaml.safe_load((baked.path / "monitoring/prometheus.yml").read_text("utf-8"))
        targets = scrape["scrape_configs"][0]["static_configs"][0]["targets"]
        assert targets == ["app:8000"], f"[{baked.name}] prometheus scrapes {targets}"


def test_github_workflows(baked: Baked) -> None:
    workflows = baked.path / ".github" / "workflows"
    if context(baked)["ci"] != "github":
        assert not workflows.exists()
        return
    files = sorted(str(p.relative_to(baked.path)) for p in workflows.glob("*.yml"))
    assert files, f"[{baked.name}] no workflow in .github/workflows"
    run(
        [tool("actionlint"), "-no-color", *files],
        cwd=baked.path,
        what=f"[{baked.name}] actionlint",
    )
    run(
        [tool("check-jsonschema"), "--builtin-schema", "vendor.github-workflows", *files],
        cwd=baked.path,
        what=f"[{baked.name}] workflow schema",
    )
    run(
        [
            tool("check-jsonschema"),
            "--builtin-schema",
            "vendor.dependabot",
            ".github/dependabot.yml",
        ],
        cwd=baked.path,
        what=f"[{baked.name}] dependabot schema",
    )
    ci = yaml.safe_load((workflows / "ci.yml").read_text(encoding="utf-8"))
    assert ci["env"]["UV_PYTHON_DOWNLOADS"] == "never", f"[{baked.name}] uv may download Python"
    tools: set[str] = set()
    for job in ("lint", "test"):
        commands = [step["run"] for step in ci["jobs"][job]["steps"] if "run" in step]
        tools |= installs_from_the_lock(commands, f"[{baked.name}] ci.yml job {job}")
    assert tools == CI_TOOLS, f"[{baked.name}] ci.yml runs {sorted(tools)}"


def test_gitlab_ci(baked: Baked) -> None:
    ctx = context(baked)
    gitlab = baked.path / ".gitlab-ci.yml"
    if ctx["ci"] != "gitlab":
        assert not gitlab.exists()
        return
    run(
        [tool("check-jsonschema"), "--builtin-schema", "vendor.gitlab-ci", gitlab.name],
        cwd=baked.path,
        what=f"[{baked.name}] gitlab-ci schema",
    )
    pipeline = yaml.safe_load(gitlab.read_text(encoding="utf-8"))
    assert pipeline["default"]["image"] == f"python:{ctx['python_version']}-slim", baked.name
    assert ("build" in pipeline) == ctx["use_docker"], f"[{baked.name}] docker build job"
    variables = pipeline["variables"]
    assert variables["UV_PYTHON_DOWNLOADS"] == "never", f"[{baked.name}] uv may download Python"
    tools: set[str] = set()
    for name in ("lint", "test"):
        job = {**pipeline.get(pipeline[name].get("extends", ""), {}), **pipeline[name]}
        commands = [*job.get("before_script", []), *job["script"]]
        tools |= installs_from_the_lock(commands, f"[{baked.name}] .gitlab-ci.yml job {name}")
    assert tools == CI_TOOLS, f"[{baked.name}] .gitlab-ci.yml runs {sorted(tools)}"


def installs_from_the_lock(commands: list[str], what: str) -> set[str]:
    """Check that a CI job installs the Dockerfile's uv with pip, then exactly the locked
    dependencies with ``uv sync --locked``, and runs every later command in that environment
    (``uv run --no-sync``). Return the tools it runs."""
    assert len(commands) >= 3, f"{what}: {commands}"
    install_uv, sync, *rest = commands
    assert re.fullmatch(
        rf"python -m pip install (--[\w-]+ )*{re.escape(UV_VERSION)}", install_uv
    ), f"{what} should install {UV_VERSION} with pip first, not {install_uv!r}"
    assert sync == LOCKED_SYNC, f"{what} should install with {LOCKED_SYNC!r}, not {sync!r}"
    prefix = "uv run --no-sync "
    outside = [command for command in rest if not command.startswith(prefix)]
    assert not outside, f"{what} runs outside the synced environment: {outside}"
    return {command.removeprefix(prefix) for command in rest}


def test_yamllint(baked: Baked) -> None:
    files = yaml_files(baked.path)
    assert files, f"[{baked.name}] no YAML files"
    run(
        [tool("yamllint"), "--strict", "-d", YAMLLINT_CONFIG, *files],
        cwd=baked.path,
        what=f"[{baked.name}] yamllint",
    )


def test_kubernetes_manifests(baked: Baked) -> None:
    ctx = context(baked)
    k8s = baked.path / "deploy" / "k8s"
    if not ctx["use_kubernetes"]:
        assert not k8s.exists()
        return
    rendered = run(
        [tool("kubectl"), "kustomize", "deploy/k8s"],
        cwd=baked.path,
        what=f"[{baked.name}] kubectl kustomize",
    )
    run(
        [tool("kubernetes-validate"), "--strict", "--quiet", "-"],
        cwd=baked.path,
        what=f"[{baked.name}] kubernetes-validate",
        input=rendered,
    )
    docs = {doc["kind"]: doc for doc in yaml.safe_load_all(rendered) if doc}
    assert set(docs) == {
        "ConfigMap",
        "Deployment",
        "Service",
        "HorizontalPodAutoscaler",
        "PodDisruptionBudget",
    }, f"[{baked.name}] kinds {set(docs)}"
    pod = docs["Deployment"]["spec"]["template"]
    container = pod["spec"]["containers"][0]
    security = container["securityContext"]
    assert security["readOnlyRootFilesystem"] is True, baked.name
    assert security["allowPrivilegeEscalation"] is False, baked.name
    assert security["capabilities"]["drop"] == ["ALL"], baked.name
    assert pod["spec"]["securityContext"]["runAsUser"] == 10001, baked.name
    grace = float(docs["ConfigMap"]["data"]["APP_SHUTDOWN_GRACE_S"])
    assert pod["spec"]["terminationGracePeriodSeconds"] > grace, baked.name
    secret_refs = [e for e in container.get("env", []) if e["name"] == "APP_SECRET_KEY"]
    assert len(secret_refs) == (ctx["auth"] == "jwt"), f"[{baked.name}] APP_SECRET_KEY env"
    for entry in secret_refs:
        assert "value" not in entry and "secretKeyRef" in entry["valueFrom"], baked.name
    annotations = pod["metadata"].get("annotations", {})
    assert ("prometheus.io/scrape" in annotations) == ctx["use_prometheus"], baked.name


def test_tools_can_fail(tmp_path: Path) -> None:
    """Each linter rejects a broken file, so a green run above means something."""
    (tmp_path / "Dockerfile").write_text("FROM python\nRUN cd /tmp && apt-get install curl\n")
    (tmp_path / "bad.yml").write_text("a: 1\na: 2\n")
    (tmp_path / "wf.yml").write_text("on: push\njobs:\n  x:\n    steps: []\n")
    (tmp_path / "pdb.yaml").write_text(
        "apiVersion: policy/v1\nkind: PodDisruptionBudget\nmetadata: {name: x}\n"
        "spec: {minAvailable: 1, bogus: true}\n"
    )
    checks = [
        [tool("hadolint"), "Dockerfile"],
        [tool("yamllint"), "--strict", "-d", YAMLLINT_CONFIG, "bad.yml"],
        [tool("actionlint"), "-no-color", "wf.yml"],
        [tool("check-jsonschema"), "--builtin-schema", "vendor.github-workflows", "wf.yml"],
        [tool("check-jsonschema"), "--builtin-schema", "vendor.gitlab-ci", "bad.yml"],
        [tool("kubernetes-validate"), "--strict", "--quiet", "pdb.yaml"],
    ]
    for cmd in checks:
        result = subprocess.run(
            cmd, cwd=tmp_path, capture_output=True, text=True, timeout=120, check=False
        )
        assert result.returncode != 0, f"`{' '.join(cmd)}` accepted a broken file"


def make_dry_run(baked: Baked, path: Path, *args: str) -> list[str]:
    """The commands ``make -n install`` would run with only ``path`` on the PATH."""
    make = shutil.which("make")
    if make is None:
        pytest.skip("make is not installed")
    result = subprocess.run(
        [make, "--no-print-directory", "-n", "install", *args],
        cwd=baked.path,
        env={"PATH": str(path)},  # nothing inherited: no uv, no UV, VIRTUAL_ENV or MAKEFLAGS
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, f"[{baked.name}] make -n install {args}: {result.stderr}"
    return result.stdout.splitlines()


def test_make_install_uses_the_lock_when_uv_is_on_the_path(
    bake: Callable[..., Baked], tmp_path: Path
) -> None:
    baked = bake()
    with_uv, without_uv = tmp_path / "with-uv", tmp_path / "without-uv"
    with_uv.mkdir()
    without_uv.mkdir()
    uv = with_uv / "uv"
    uv.write_text("#!/bin/sh\nexit 1\n", encoding="utf-8")
    uv.chmod(0o755)
    sync = f"UV_PROJECT_ENVIRONMENT=.venv {uv} {LOCKED_SYNC.removeprefix('uv ')}"

    assert make_dry_run(baked, with_uv) == [sync], f"[{baked.name}] make install with uv"
    assert make_dry_run(baked, with_uv, "PYTHON=python3.13") == [f"{sync} --python python3.13"]

    # Python alone (or UV= to force it): a venv and pip, with a note that the lock is not used.
    for path, args in ((without_uv, ()), (with_uv, ("UV=",))):
        commands = make_dry_run(baked, path, *args)
        what = f"[{baked.name}] make install {args} without uv: {commands}"
        assert commands[0] == "python3 -m venv .venv", what
        assert commands[1].startswith("echo ") and "not the locked ones" in commands[1], what
        assert commands[-1] == ".venv/bin/python -m pip install --quiet -e '.[dev]'", what
        assert not any("uv sync" in command for command in commands), what


@pytest.mark.slow
def test_make_install_with_uv_installs_the_locked_versions(bake: Callable[..., Baked]) -> None:
    """A real ``make install`` with uv on the PATH (the template's, from its pyproject.toml):
    every package in .venv at its version in uv.lock, dev tools included. About a second when
    uv's cache holds the wheels; it downloads them otherwise."""
    # uv downloads no Python here, so .python-version must name this interpreter's version.
    python_version = f"{sys.version_info.major}.{sys.version_info.minor}"
    baked = bake(python_version=python_version)
    tool("uv")
    env = {
        name: value
        for name, value in os.environ.items()
        if name not in {"UV", "VIRTUAL_ENV", "MAKEFLAGS", "MAKELEVEL", "PYTHON"}
    }
    env["PATH"] = f"{BIN}{os.pathsep}{env.get('PATH', '')}"
    env["UV_PYTHON_DOWNLOADS"] = "never"
    out = run(["make", "install"], cwd=baked.path, what=f"[{baked.name}] make install", env=env)
    assert "not the locked ones" not in out, f"[{baked.name}] make install fell back to pip"

    lock = tomllib.loads((baked.path / "uv.lock").read_text(encoding="utf-8"))
    # A universal lock may pin one package at several versions (one per Python range).
    pinned: dict[str, set[str]] = {}
    for package in lock["package"]:
        pinned.setdefault(package["name"], set()).add(package.get("version", ""))
    script = (
        "import json, re, importlib.metadata as m; print(json.dumps({re.sub(r'[-_.]+', '-',"
        " d.metadata['Name']).lower(): d.version for d in m.distributions()}))"
    )
    python = baked.path / ".venv" / "bin" / "python"
    installed: dict[str, str] = json.loads(
        run([str(python), "-c", script], cwd=baked.path, what=f"[{baked.name}] versions")
    )
    differ = {n: v for n, v in installed.items() if v not in pinned.get(n, set())}
    assert not differ, f"[{baked.name}] installed but not so in uv.lock: {differ}"
    assert {"iris-classifier", "fastapi", "pytest", "ruff", "mypy"} <= installed.keys(), installed
