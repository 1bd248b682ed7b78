"""``use_serverless``: the SAM template passes cfn-lint, and the Lambda handler works in-process.

The fast tests lint the baked ``template.yaml`` with cfn-lint (SAM transform included) for each
auth kind, check what it must say (HTTP API, the function from the project's Dockerfile, the
secrets from NoEcho parameters and never a value) and show that cfn-lint does fail on a broken
copy. The slow test installs serverless variants and runs their own ``tests/test_serverless.py``
(API Gateway v2 and v1 events through the handler, the model loaded once), then times a cold
start in a fresh interpreter: import the handler (the model loads) and answer a first event.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.conftest import Baked, CfnLoader, install_project, locked, run, shared_bake
from tests.variants import DEFAULTS

CFN_LINT = Path(sys.executable).parent / "cfn-lint"
SERVERLESS = {"use_serverless": True}


AUTHS = ["jwt", "oidc", "api_key", "none"]
BROKEN = {  # what breaks the default serverless template, as cfn-lint must see
    "a wrong type": ("MemorySize: 1024", "MemorySize: lots"),
    "an unknown property": ("PackageType: Image", "PackageType: Image\n      Handler2: x"),
}


@pytest.fixture(scope="session")
def cfn_findings(run_dir: Path) -> dict[str, list[str]]:
    """cfn-lint's findings for each serverless template (one per auth kind) and for each broken
    copy, by name. One cfn-lint process for them all, once per run: loading its resource specs
    costs several seconds per start, and a test per template started it six times."""
    cache = run_dir / "cfn-lint.json"
    with locked(run_dir / "cfn-lint.lock"):
        if not cache.exists():
            folder = run_dir / "cfn-lint"
            shutil.rmtree(folder, ignore_errors=True)
            templates: dict[str, Path] = {}
            for auth in AUTHS:
                baked = shared_bake(run_dir, auth=auth, **SERVERLESS)
                templates[auth] = baked.path / "template.yaml"
            text = templates["jwt"].read_text(encoding="utf-8")
            for name, (good, bad) in BROKEN.items():
                assert good in text, f"the template no longer has {good!r}"
                copy = folder / name.replace(" ", "-") / "template.yaml"
                copy.parent.mkdir(parents=True)
                copy.write_text(text.replace(good, bad), encoding="utf-8")
                templates[name] = copy
            result = subprocess.run(
                [str(CFN_LINT), "--format", "parseable", *map(str, templates.values())],
                capture_output=True,
                text=True,
                timeout=300,
                check=False,
            )
            assert not result.stderr.strip(), f"cfn-lint failed to run:\n{result.stderr}"
            lines = result.stdout.splitlines()
            findings = {
                name: [line for line in lines if line.startswith(f"{path}:")]
                for name, path in templates.items()
            }
            assert sum(map(len, findings.values())) == len(lines), result.stdout
            cache.write_text(json.dumps(findings), encoding="utf-8")
    findings: dict[str, list[str]] = json.loads(cache.read_text(encoding="utf-8"))
    return findings


@pytest.mark.parametrize("auth", AUTHS)
def test_sam_template_passes_cfn_lint(
    run_dir: Path, cfn_findings: dict[str, list[str]], auth: str
) -> None:
    baked = shared_bake(run_dir, auth=auth, **SERVERLESS)
    what = f"[{baked.name}]"
    template = baked.path / "template.yaml"
    assert not cfn_findings[auth], f"{what} cfn-lint:\n" + "\n".join(cfn_findings[auth])

    doc = yaml.load(template.read_text(encoding="utf-8"), Loader=CfnLoader)
    assert doc["Transform"] == "AWS::Serverless-2016-10-31"
    function = doc["Resources"]["Function"]
    props = function["Properties"]
    assert function["Type"] == "AWS::Serverless::Function"
    assert props["PackageType"] == "Image", what
    assert function["Metadata"]["Dockerfile"] == "Dockerfile", what
    assert (baked.path / function["Metadata"]["DockerContext"] / "Dockerfile").is_file(), what
    assert props["MemorySize"] >= 512 and 0 < props["Timeout"] <= 30, what
    assert [e["Type"] for e in props["Events"].values()] == ["HttpApi"], what
    # The image's handler: the Lambda runtime client, pointed at the baked module.
    assert props["ImageConfig"]["EntryPoint"][-2:] == ["-m", "awslambdaric"], what
    module, attribute = props["ImageConfig"]["Command"][0].rsplit(".", 1)
    assert attribute == "handler", what
    source = baked.path / "src" / Path(*module.split("."))
    assert source.with_suffix(".py").is_file(), f"{what} no {module}"

    # Secrets only from NoEcho parameters, and no value for them in the template.
    env = props["Environment"]["Variables"]
    parameters = doc.get("Parameters", {})
    secrets = {"APP_SECRET_KEY": "SecretKey", "APP_DATABASE_URL": "DatabaseUrl"}
    for variable, parameter in secrets.items():
        if (variable == "APP_SECRET_KEY" and auth != "jwt") or auth in {"none", "oidc"}:
            assert variable not in env and parameter not in parameters, what
            continue
        assert env[variable] == {"Ref": parameter}, f"{what} {variable} is not its parameter"
        assert parameters[parameter]["NoEcho"] is True, f"{what} {parameter} echoes"
        assert "Default" not in parameters[parameter], f"{what} {parameter} has a value"
    if auth == "oidc":
        for variable, parameter in {
            "APP_OIDC_ISSUER": "OidcIssuer",
            "APP_OIDC_AUDIENCE": "OidcAudience",
        }.items():
            assert env[variable] == {"Ref": parameter}, f"{what} {variable} is not its parameter"
            assert "Default" not in parameters[parameter], f"{what} {parameter} has a value"


@pytest.mark.parametrize("broken", list(BROKEN))
def test_cfn_lint_fails_on_a_broken_template(
    cfn_findings: dict[str, list[str]], broken: str
) -> None:
    """The check above can fail: cfn-lint refuses a wrong type and an unknown property."""
    assert cfn_findings[broken], f"cfn-lint passed a template with {broken}"


COLD_START = """
import json, sys, time
started = time.perf_counter()
from {slug} import serverless
imported = time.perf_counter()
event = {event}
response = serverless.handler(event, None)
answered = time.perf_counter()
serverless.handler.close()
print(json.dumps({{"status": response["statusCode"], "import_s": imported - started,
                  "first_event_s": answered - imported}}))
"""


@pytest.mark.slow
@pytest.mark.parametrize(
    "answers",
    [{}, {"model_framework": "onnx", "auth": "api_key", "use_prometheus": False}],
    ids=["sklearn-jwt", "onnx-api_key"],
)
def test_lambda_handler_in_process(
    bake: Callable[..., Baked], run_dir: Path, tmp_path: Path, answers: dict[str, Any]
) -> None:
    baked = bake(**answers, **SERVERLESS)
    baked.context = {**DEFAULTS, **baked.context}
    what = f"[{baked.name}]"
    python, path_env = install_project(run_dir / "venvs", baked)
    env = {**os.environ, **path_env}
    run(
        [str(python), "-m", "pytest", "-q", "-p", "no:cacheprovider", "tests/test_serverless.py"],
        cwd=baked.path,
        what=f"{what} the baked Lambda tests",
        env=env,
    )

    # A cold start as Lambda makes one: a fresh interpreter imports the handler, then answers.
    event = {
        "version": "2.0",
        "routeKey": "$default",
        "rawPath": "/health/ready",
        "rawQueryString": "",
        "headers": {"host": "abc.execute-api.eu-west-1.amazonaws.com"},
        "requestContext": {
            "http": {"method": "GET", "path": "/health/ready", "sourceIp": "192.0.2.10"},
            "requestId": "cold",
            "stage": "$default",
        },
        "isBase64Encoded": False,
    }
    # As in the image: the demo model's artifact, made at build time, and compiled byte code
    # (the baked tests above imported what the handler imports, which wrote it; compiling the
    # whole environment beforehand cost half a minute and changed nothing measured here).
    model = tmp_path / "model"
    run([str(python), "-m", baked.slug, "train-demo", str(model)], cwd=tmp_path, what=what, env=env)
    artifact = next(p for p in model.iterdir() if p.suffix in {".skops", ".onnx"})
    lambda_env = {
        **env,
        "APP_MODEL_PATH": str(artifact),
        "APP_LOG_LEVEL": "warning",
        "APP_SECRET_KEY": "cold-start-secret-key-0123456789abcdef",
        "APP_DATABASE_URL": f"sqlite:///{tmp_path / 'app.db'}",
    }
    script = COLD_START.format(slug=baked.slug, event=repr(event))
    out = run([str(python), "-c", script], cwd=tmp_path, what=f"{what} cold start", env=lambda_env)
    report = json.loads(out.strip().splitlines()[-1])
    print(f"{what} Lambda cold start in-process: {json.dumps(report)}")
    # The times are printed, not asserted (they depend on the machine and what else runs on
    # it): Lambda gives a function's init phase, the import where the model loads, 10 s.
    assert report["status"] == 200, f"{what} {report}"
