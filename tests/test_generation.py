"""Bake every supported variant and check the result without installing it (fast)."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import tomllib
from collections.abc import Callable
from importlib.metadata import version
from pathlib import Path
from typing import Any

import pytest
import yaml
from cookiecutter.exceptions import FailedHookException
from cookiecutter.main import cookiecutter

from tests.conftest import Baked, CfnLoader, dependencies, locked, run, shared_venv
from tests.variants import DEFAULTS, SUPPORTED, UNSUPPORTED, variant_id

ROOT = Path(__file__).resolve().parent.parent
LEFTOVER = re.compile(r"cookiecutter\.|\{%|%\}|\{\{ *cookiecutter")
BINARY_SUFFIXES = {".png", ".onnx", ".skops", ".ico"}


def text_files(root: Path) -> list[Path]:
    return [
        p
        for p in sorted(root.rglob("*"))
        if p.is_file() and ".git" not in p.parts and p.suffix not in BINARY_SUFFIXES
    ]


def expected_presence(ctx: dict[str, Any], slug: str) -> dict[str, bool]:
    """Optional paths and whether this variant must have them."""
    pkg = f"src/{slug}"
    auth = ctx["auth"]
    return {
        f"{pkg}/model/sklearn.py": ctx["model_framework"] == "sklearn",
        f"{pkg}/model/onnx.py": ctx["model_framework"] == "onnx",
        f"{pkg}/security": auth != "none",
        f"{pkg}/security/users.py": auth == "jwt",
        f"{pkg}/security/tokens.py": auth == "jwt",
        f"{pkg}/security/users_cli.py": auth == "jwt",
        f"{pkg}/api/auth.py": auth == "jwt",
        "tests/test_jwt.py": auth == "jwt",
        f"{pkg}/security/database.py": auth in {"jwt", "api_key"},
        f"{pkg}/security/oidc.py": auth == "oidc",
        "tests/test_oidc.py": auth == "oidc",
        "tests/identity_provider.py": auth == "oidc",
        f"{pkg}/security/keys.py": auth == "api_key",
        f"{pkg}/security/keys_cli.py": auth == "api_key",
        "tests/test_api_key.py": auth == "api_key",
        f"{pkg}/observability/metrics.py": ctx["use_prometheus"],
        f"{pkg}/observability/multiprocess.py": ctx["use_prometheus"],
        "tests/test_metrics.py": ctx["use_prometheus"],
        f"{pkg}/api/oip.py": ctx["use_open_inference_protocol"],
        "tests/test_oip.py": ctx["use_open_inference_protocol"],
        "LICENSE": ctx["license"] != "Proprietary",
        "Dockerfile": ctx["use_docker"],
        ".dockerignore": ctx["use_docker"],
        "docker-compose.yml": ctx["use_docker"],
        ".github": ctx["ci"] == "github",
        ".github/workflows/ci.yml": ctx["ci"] == "github",
        ".github/dependabot.yml": ctx["ci"] == "github",
        ".gitlab-ci.yml": ctx["ci"] == "gitlab",
        "deploy/k8s/kustomization.yaml": ctx["use_kubernetes"],
        "deploy/k8s/deployment.yaml": ctx["use_kubernetes"],
        f"{pkg}/serverless.py": ctx["use_serverless"],
        "template.yaml": ctx["use_serverless"],
        "tests/test_serverless.py": ctx["use_serverless"],
        "monitoring": ctx["use_prometheus"],
        "monitoring/prometheus.yml": ctx["use_prometheus"],
        "monitoring/grafana/provisioning/datasources/prometheus.yml": ctx["use_prometheus"],
        "monitoring/alerts.yml": ctx["use_prometheus"],
        "monitoring/alerts.test.yml": ctx["use_prometheus"],
        "monitoring/grafana/provisioning/dashboards/service.yml": ctx["use_prometheus"],
        "monitoring/grafana/dashboards/service.json": ctx["use_prometheus"],
        # The hook writes uv.lock from the template's stored locks, then removes them.
        "uv.lock": True,
        ".locks": False,
    }


# Words that must not appear anywhere in a variant without the feature.
ABSENT_WORDS: dict[str, Callable[[dict[str, Any]], bool]] = {
    "prometheus": lambda c: not c["use_prometheus"],
    "grafana": lambda c: not c["use_prometheus"],
    "drift": lambda c: not c["use_prometheus"],
    "APP_REFERENCE_PATH": lambda c: not c["use_prometheus"],
    "onnx": lambda c: c["model_framework"] != "onnx",
    "skops": lambda c: c["model_framework"] != "sklearn",
    "jwt": lambda c: c["auth"] not in {"jwt", "oidc"},
    "APP_SECRET_KEY": lambda c: c["auth"] != "jwt",
    "/token": lambda c: c["auth"] != "jwt",
    "APP_OIDC": lambda c: c["auth"] != "oidc",
    "identity provider": lambda c: c["auth"] != "oidc",
    "X-API-Key": lambda c: c["auth"] != "api_key",
    "sqlalchemy": lambda c: c["auth"] in {"none", "oidc"},
    "psycopg": lambda c: c["auth"] in {"none", "oidc"},
    "APP_DATABASE_URL": lambda c: c["auth"] in {"none", "oidc"},
    "/v2/models": lambda c: not c["use_open_inference_protocol"],
    "/admin/model": lambda c: c["auth"] == "none",
    # FastAPI itself depends on opentelemetry-api; the SDK and the rest come with tracing only.
    "opentelemetry-sdk": lambda c: not c["use_opentelemetry"],
    "OTEL_": lambda c: not c["use_opentelemetry"],
    "traceparent": lambda c: not c["use_opentelemetry"],
    "tracing.py": lambda c: not c["use_opentelemetry"],
    "mangum": lambda c: not c["use_serverless"],
    "awslambdaric": lambda c: not c["use_serverless"],
    "serverless": lambda c: not c["use_serverless"],
    "aws lambda": lambda c: not c["use_serverless"],
    "sam deploy": lambda c: not c["use_serverless"],
}


@pytest.fixture(params=SUPPORTED, ids=[variant_id(v) for v in SUPPORTED])
def baked(request: pytest.FixtureRequest, bake: Callable[..., Baked]) -> Baked:
    return bake(**request.param)


def test_no_template_leftovers(baked: Baked) -> None:
    for path in text_files(baked.path):
        text = path.read_text(encoding="utf-8", errors="replace")
        match = LEFTOVER.search(text)
        assert match is None, (
            f"[{baked.name}] template leftover {match.group()!r} in {path.relative_to(baked.path)}"
        )


def test_optional_files_match_answers(baked: Baked) -> None:
    ctx = {**DEFAULTS, **baked.context}
    for relative, wanted in expected_presence(ctx, baked.slug).items():
        present = (baked.path / relative).exists()
        assert present == wanted, (
            f"[{baked.name}] {relative} should {'exist' if wanted else 'be absent'}"
        )


def test_disabled_features_leave_no_trace(baked: Baked) -> None:
    ctx = {**DEFAULTS, **baked.context}
    for word, absent in ABSENT_WORDS.items():
        if not absent(ctx):
            continue
        for path in text_files(baked.path):
            if path.name == ".cookiecutter.json":  # the recorded answers name every option
                continue
            text = path.read_text(encoding="utf-8", errors="replace").lower()
            assert word.lower() not in text, (
                f"[{baked.name}] {word!r} appears in {path.relative_to(baked.path)}"
            )


def test_ruff_and_compile(baked: Baked) -> None:
    ruff = [sys.executable, "-m", "ruff"]
    run([*ruff, "check", "--no-cache", "."], cwd=baked.path, what=f"[{baked.name}] ruff check")
    run(
        [*ruff, "format", "--check", "--no-cache", "."],
        cwd=baked.path,
        what=f"[{baked.name}] ruff format",
    )
    run(
        [sys.executable, "-m", "compileall", "-q", "src", "tests"],
        cwd=baked.path,
        what=f"[{baked.name}] compileall",
    )


def every_value_once(variants: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """A few of ``variants`` that between them take every value of every choice."""
    seen: set[tuple[str, Any]] = set()
    chosen = []
    for variant in variants:
        new = set(variant.items()) - seen
        if new:
            chosen.append(variant)
            seen |= new
    return chosen


@pytest.fixture(scope="session")
def typing_python(run_dir: Path) -> Path:
    """One environment with every variant's dependencies, for type-checking any variant.

    The union is read from baked projects that between them take every value of every
    choice, so a dependency added to the template is picked up without editing this file.
    mypy is the template's own pinned version.
    """
    union = run_dir / "typing-requirements.txt"
    with locked(run_dir / "typing-requirements.lock"):
        if not union.exists():
            requirements: set[str] = set()
            for i, context in enumerate(every_value_once(SUPPORTED)):
                out = run_dir / "typing-bakes" / str(i)
                project = cookiecutter(
                    str(ROOT), no_input=True, output_dir=str(out), extra_context=context
                )
                requirements.update(dependencies(Path(project), ("dev", "postgres")))
            requirements.add(f"mypy=={version('mypy')}")
            union.write_text("\n".join(sorted(requirements)) + "\n", encoding="utf-8")
    return shared_venv(run_dir, union.read_text(encoding="utf-8").splitlines(), "typing venv")


def test_mypy_strict(baked: Baked, typing_python: Path, run_dir: Path, worker_id: str) -> None:
    """mypy as the baked pyproject configures it (strict, src and tests), on every variant."""
    run(
        [str(typing_python), "-m", "mypy", "--cache-dir", str(run_dir / f"mypy-{worker_id}")],
        cwd=baked.path,
        what=f"[{baked.name}] mypy",
        env={**os.environ, "MYPY_FORCE_COLOR": "0"},
    )


def test_data_files_parse(baked: Baked) -> None:
    for path in text_files(baked.path):
        relative = path.relative_to(baked.path)
        try:
            if path.suffix in {".yml", ".yaml"}:
                # CloudFormation's short tags (!Ref) only in the SAM template.
                loader = CfnLoader if path.name == "template.yaml" else yaml.SafeLoader
                list(yaml.load_all(path.read_text(encoding="utf-8"), Loader=loader))
            elif path.suffix == ".toml":
                tomllib.loads(path.read_text(encoding="utf-8"))
            elif path.suffix == ".json":
                json.loads(path.read_text(encoding="utf-8"))
        except Exception as exc:  # any parser error is a broken file
            pytest.fail(f"[{baked.name}] {relative} does not parse: {exc}")


def test_answers_are_recorded(baked: Baked) -> None:
    recorded = json.loads((baked.path / ".cookiecutter.json").read_text(encoding="utf-8"))
    for name, value in baked.context.items():
        assert recorded[name] == value, f"[{baked.name}] .cookiecutter.json: {name}"


@pytest.mark.parametrize(("context", "words"), UNSUPPORTED.values(), ids=list(UNSUPPORTED.keys()))
def test_unsupported_answers_are_rejected(
    cookies: Any, capfd: pytest.CaptureFixture[str], context: dict[str, Any], words: str
) -> None:
    result = cookies.bake(extra_context=context)
    assert isinstance(result.exception, FailedHookException), result.exception
    assert result.exit_code != 0
    err = capfd.readouterr().err
    errors = [line for line in err.splitlines() if line.startswith("ERROR:")]
    assert len(errors) == 1, err
    assert words in errors[0]


def test_stock_cookiecutter_cli_bakes_with_no_input(tmp_path: Path) -> None:
    """The README's command, with the real command line and booleans given as text."""
    root = Path(__file__).resolve().parent.parent
    subprocess.run(
        [
            sys.executable,
            "-m",
            "cookiecutter",
            str(root),
            "--no-input",
            "--output-dir",
            str(tmp_path),
            "use_docker=false",
            "use_kubernetes=false",
        ],
        check=True,
        capture_output=True,
        timeout=120,
    )
    project = tmp_path / "iris_classifier"
    recorded = json.loads((project / ".cookiecutter.json").read_text(encoding="utf-8"))
    assert recorded["use_docker"] is False
    assert (project / "src/iris_classifier/main.py").is_file()
