"""Delivery in the baked CI: on main and version tags, build once, scan, push, deploy to staging.

Checked for every pairwise variant that has a CI platform, plus every Docker/Kubernetes
combination on each platform (the pairwise list has no variant with CI and Docker but without
Kubernetes): the GitHub workflow passes actionlint (with shellcheck on its scripts) and the
workflow schema, the GitLab file the GitLab CI schema; then the delivery rules themselves
(``check_github`` and ``check_gitlab``): only the push job may write packages, the scan fails on
critical vulnerabilities before anything is pushed, images are pushed only on main and v* tags,
the staging deploy job exists exactly with Kubernetes, and nothing mentions a feature the variant
does not have. ``test_*_checks_can_fail`` break a good file in each of those ways and expect the
checks to say so. The deploy scripts run for real against a stand-in ``kubectl`` that renders
what ``kubectl apply -k`` would apply, with the real ``kubectl kustomize``.
"""

from __future__ import annotations

import copy
import os
import re
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.conftest import Baked, run, shared_bake
from tests.test_deploy import tool
from tests.variants import DEFAULTS, SUPPORTED, variant_id

COMBINATIONS = [(True, True), (True, False), (False, False)]  # use_docker, use_kubernetes


def ci_variants(platform: str) -> list[dict[str, Any]]:
    chosen = [v for v in SUPPORTED if {**DEFAULTS, **v}["ci"] == platform]
    chosen += [
        {"ci": platform, "use_docker": docker, "use_kubernetes": kubernetes}
        for docker, kubernetes in COMBINATIONS
    ]
    unique: dict[str, dict[str, Any]] = {}
    for variant in chosen:
        unique.setdefault(variant_id(variant), variant)
    return list(unique.values())


GITHUB = ci_variants("github")
GITLAB = ci_variants("gitlab")

PINNED_USES = re.compile(r"^\s*(?:- )?uses: [\w.-]+/[\w.-]+@[0-9a-f]{40} # v\d+\.\d+\.\d+$")
RELEASE = (
    "github.event_name == 'push'"
    " && (github.ref == 'refs/heads/main' || startsWith(github.ref, 'refs/tags/v'))"
)
GITLAB_RELEASE = "$CI_COMMIT_BRANCH == $CI_DEFAULT_BRANCH || $CI_COMMIT_TAG =~ /^v/"
DIGEST = "sha256:" + "ab" * 32

# Words that must not appear in a variant's CI file without the feature.
NO_DOCKER_WORDS = ("docker", "registry", "ghcr", "trivy", "sbom", "provenance", "packages")
NO_KUBERNETES_WORDS = ("kubectl", "kustomize", "k8s", "deploy", "staging", "kube")


def context(baked: Baked) -> dict[str, Any]:
    return {**DEFAULTS, **baked.context}


def squash(text: str) -> str:
    return " ".join(str(text).split())


def step_index(steps: list[dict[str, Any]], match: Callable[[dict[str, Any]], bool]) -> int:
    found = [i for i, step in enumerate(steps) if match(step)]
    assert len(found) == 1, f"expected one such step, found {len(found)}"
    return found[0]


def uses(step: dict[str, Any], action: str) -> bool:
    return str(step.get("uses", "")).startswith(f"{action}@")


def pushes(step: dict[str, Any]) -> bool:
    """A step that logs in to a registry or pushes an image."""
    script = str(step.get("run", ""))
    return (
        uses(step, "docker/login-action")
        or (uses(step, "docker/build-push-action") and step.get("with", {}).get("push") is True)
        or "docker push" in script
        or "docker login" in script
    )


def absent_words(text: str, ctx: dict[str, Any], ignore: Callable[[str], bool]) -> None:
    lines = [line.lower() for line in text.splitlines() if not ignore(line)]
    words: list[str] = []
    if not ctx["use_docker"]:
        words += NO_DOCKER_WORDS
    if not ctx["use_kubernetes"]:
        words += NO_KUBERNETES_WORDS
    for word in words:
        hits = [line.strip() for line in lines if word in line]
        assert not hits, f"{word!r} in a variant without the feature: {hits}"


# --- GitHub -------------------------------------------------------------------------------


def check_github(workflow: dict[Any, Any], text: str, ctx: dict[str, Any]) -> None:
    """The delivery rules for a baked .github/workflows/ci.yml; AssertionError if one is broken."""
    triggers = workflow.get("on", workflow.get(True))  # YAML 1.1 reads the key `on` as True
    assert triggers["push"] == {"branches": ["main"], "tags": ["v*"]}, triggers["push"]
    assert "pull_request" in triggers, triggers
    assert workflow["permissions"] == {"contents": "read"}, workflow["permissions"]
    for line in text.splitlines():
        if re.match(r"^\s*(- )?uses:", line):
            assert PINNED_USES.match(line), f"not pinned by SHA with a # vX.Y.Z comment: {line}"

    jobs: dict[str, dict[str, Any]] = workflow["jobs"]
    docker, kubernetes = ctx["use_docker"], ctx["use_kubernetes"]
    writers = {
        name
        for name, job in jobs.items()
        if any(level == "write" for level in (job.get("permissions") or {}).values())
    }
    assert writers == ({"publish"} if docker else set()), f"jobs that may write: {writers}"
    pushers = {name for name, job in jobs.items() if any(pushes(s) for s in job["steps"])}
    assert pushers == ({"publish"} if docker else set()), f"jobs that push: {pushers}"
    expected_jobs = {"lint", "test"} | ({"build", "publish"} if docker else set())
    expected_jobs |= {"deploy-staging"} if kubernetes else set()
    assert set(jobs) == expected_jobs, f"jobs {sorted(jobs)}"
    absent_words(text, ctx, ignore=lambda line: False)
    if not docker:
        assert "image" not in text.lower(), "an image is mentioned in a variant without Docker"
        return

    # Pull requests build only; main and v* tags build, scan and push, in one job.
    assert squash(jobs["publish"]["if"]) == f"${{{{ {RELEASE} }}}}", jobs["publish"]["if"]
    assert squash(jobs["build"]["if"]) == f"${{{{ !({RELEASE}) }}}}", jobs["build"]["if"]
    publish = jobs["publish"]
    assert publish["permissions"] == {"contents": "read", "packages": "write"}
    steps = publish["steps"]
    builds = [s for s in steps if uses(s, "docker/build-push-action")]
    assert len(builds) == 2, "publish: one build loaded for the scan, one push from its cache"
    load = step_index(
        steps, lambda s: uses(s, "docker/build-push-action") and s["with"].get("load")
    )
    scan = step_index(steps, lambda s: uses(s, "aquasecurity/trivy-action"))
    login = step_index(steps, lambda s: uses(s, "docker/login-action"))
    push = step_index(
        steps, lambda s: uses(s, "docker/build-push-action") and s["with"].get("push")
    )
    assert load < scan < login < push, "publish: build, scan, log in, push, in that order"
    scanned = steps[scan]["with"]
    assert scanned["image-ref"] == steps[load]["with"]["tags"], "the scan checks another image"
    assert scanned["severity"] == "CRITICAL", scanned
    assert str(scanned["exit-code"]) == "1", "the scan does not fail the job"
    assert scanned["ignore-unfixed"] is True, scanned
    assert steps[login]["with"] == {
        "registry": "ghcr.io",
        "username": "${{ github.actor }}",
        "password": "${{ secrets.GITHUB_TOKEN }}",
    }, steps[login]["with"]
    pushed = steps[push]["with"]
    assert pushed["sbom"] is True and pushed["provenance"] == "mode=max", pushed
    assert pushed["tags"] == "${{ steps.meta.outputs.tags }}", pushed
    meta = steps[step_index(steps, lambda s: uses(s, "docker/metadata-action"))]
    assert meta.get("id") == "meta", meta
    for tag in ("type=sha", "type=semver,pattern={{version}}"):
        assert tag in meta["with"]["tags"], f"no {tag} tag"
    assert publish["outputs"]["digest"] == f"${{{{ steps.{steps[push]['id']}.outputs.digest }}}}"
    if kubernetes:
        check_github_deploy(jobs["deploy-staging"], text)


def check_github_deploy(job: dict[str, Any], text: str) -> None:
    environment = job["environment"]
    name = environment["name"] if isinstance(environment, dict) else environment
    assert name == "staging", f"deploy-staging runs in environment {name!r}"
    assert job["needs"] == ["publish"], job["needs"]
    assert "permissions" not in job, "the deploy job needs no token permissions"
    script = "\n".join(str(s.get("run", "")) for s in job["steps"])
    for command in ("kubectl apply -k", "kubectl rollout status"):
        assert command in script, f"deploy-staging does not run {command!r}"
    env = {k: v for s in job["steps"] for k, v in s.get("env", {}).items()}
    assert env.get("DIGEST") == "${{ needs.publish.outputs.digest }}", env
    comment = text.split("deploy-staging:")[0].rsplit("\n\n", 1)[-1]
    assert "Production goes here" in comment, "no comment on where to add production"


@pytest.fixture(params=GITHUB, ids=[variant_id(v) for v in GITHUB])
def github(request: pytest.FixtureRequest, run_dir: Path) -> Baked:
    return shared_bake(run_dir, **request.param)  # the checks below only read it


def test_github_delivery(github: Baked) -> None:
    workflow_file = ".github/workflows/ci.yml"
    run(
        [tool("actionlint"), "-no-color", "-shellcheck", tool("shellcheck"), workflow_file],
        cwd=github.path,
        what=f"[{github.name}] actionlint",
    )
    run(
        [tool("check-jsonschema"), "--builtin-schema", "vendor.github-workflows", workflow_file],
        cwd=github.path,
        what=f"[{github.name}] workflow schema",
    )
    text = (github.path / workflow_file).read_text(encoding="utf-8")
    try:
        check_github(yaml.safe_load(text), text, context(github))
    except AssertionError as exc:
        pytest.fail(f"[{github.name}] {workflow_file}: {exc}")


# --- GitLab -------------------------------------------------------------------------------


def check_gitlab(pipeline: dict[str, Any], text: str, ctx: dict[str, Any]) -> None:
    """The delivery rules for a baked .gitlab-ci.yml; AssertionError if one is broken."""
    workflow_rules = [rule.get("if") for rule in pipeline["workflow"]["rules"]]
    assert "$CI_COMMIT_TAG =~ /^v/" in workflow_rules, f"no pipeline for v* tags: {workflow_rules}"
    docker, kubernetes = ctx["use_docker"], ctx["use_kubernetes"]
    jobs = {
        name: job for name, job in pipeline.items() if isinstance(job, dict) and "script" in job
    }

    def commands(job: dict[str, Any]) -> list[str]:
        return [str(c) for c in (*job.get("before_script", []), *job.get("script", []))]

    pushers = {
        name
        for name, job in jobs.items()
        if any("docker login" in c or "--push" in c or "docker push" in c for c in commands(job))
    }
    assert pushers == ({"publish"} if docker else set()), f"jobs that push: {pushers}"
    expected_jobs = {"lint", "test"} | ({"build", "publish"} if docker else set())
    expected_jobs |= {"deploy-staging"} if kubernetes else set()
    assert set(jobs) == expected_jobs, f"jobs {sorted(jobs)}"
    # `image:` is a GitLab keyword (the job's container), so the word alone cannot be banned.
    absent_words(text, ctx, ignore=lambda line: line.strip().startswith("image: python:"))
    if not docker:
        assert "container image" not in text.lower(), "a variant without Docker mentions images"
        return

    assert pipeline["build"]["rules"][0] == {"if": GITLAB_RELEASE, "when": "never"}, (
        f"build runs on the default branch or tags: {pipeline['build']['rules']}"
    )
    publish = pipeline["publish"]
    assert publish["rules"] == [{"if": GITLAB_RELEASE}], f"publish rules {publish['rules']}"
    script = commands(publish)

    def line(match: Callable[[str], bool]) -> int:
        found = [i for i, c in enumerate(script) if match(c)]
        assert len(found) == 1, f"publish: expected one such command, found {found}"
        return found[0]

    load = line(lambda c: c.startswith("docker buildx build") and "--load" in c)
    scan = line(lambda c: "$TRIVY_IMAGE" in c)
    login = line(lambda c: "docker login" in c)
    push = line(lambda c: c.startswith("docker buildx build") and "--push" in c)
    assert load < scan < login < push, "publish: build, scan, log in, push, in that order"
    assert publish["variables"]["TRIVY_IMAGE"].startswith("aquasec/trivy:"), publish["variables"]
    for flag in ("--severity CRITICAL", "--exit-code 1", "--ignore-unfixed", '"$SCAN_IMAGE"'):
        assert flag in script[scan], f"the scan lacks {flag}: {script[scan]}"
    assert '"$SCAN_IMAGE"' in script[load], script[load]
    for token in ("$CI_JOB_TOKEN", "$CI_REGISTRY", "--password-stdin"):
        assert token in script[login], f"the login lacks {token}: {script[login]}"
    for flag in ("--sbom=true", "--provenance=mode=max", "--metadata-file"):
        assert flag in script[push], f"the push lacks {flag}: {script[push]}"
    tags = " ".join(script[login:push])
    for source in ("$CI_COMMIT_SHORT_SHA", "${CI_COMMIT_TAG#v}"):
        assert source in tags, f"no tag from {source}"
    reports = publish.get("artifacts", {}).get("reports", {})
    assert reports.get("dotenv") == "image.env", f"no dotenv report of the digest: {reports}"
    if kubernetes:
        deploy = pipeline["deploy-staging"]
        assert deploy["environment"]["name"] == "staging", deploy["environment"]
        assert deploy["needs"] == ["publish"], deploy["needs"]
        assert deploy["rules"] == publish["rules"], deploy["rules"]
        joined = "\n".join(commands(deploy))
        for command in ("kubectl apply -k", "kubectl rollout status", "$IMAGE_DIGEST"):
            assert command in joined, f"deploy-staging does not run {command!r}"
        comment = text.split("\ndeploy-staging:")[0].rsplit("\n\n", 1)[-1]
        assert "Production goes here" in comment, "no comment on where to add production"


@pytest.fixture(params=GITLAB, ids=[variant_id(v) for v in GITLAB])
def gitlab(request: pytest.FixtureRequest, run_dir: Path) -> Baked:
    return shared_bake(run_dir, **request.param)  # the checks below only read it


def test_gitlab_delivery(gitlab: Baked) -> None:
    run(
        [tool("check-jsonschema"), "--builtin-schema", "vendor.gitlab-ci", ".gitlab-ci.yml"],
        cwd=gitlab.path,
        what=f"[{gitlab.name}] gitlab-ci schema",
    )
    text = (gitlab.path / ".gitlab-ci.yml").read_text(encoding="utf-8")
    try:
        check_gitlab(yaml.safe_load(text), text, context(gitlab))
    except AssertionError as exc:
        pytest.fail(f"[{gitlab.name}] .gitlab-ci.yml: {exc}")


# --- the checks can fail ------------------------------------------------------------------


def set_path(data: dict[Any, Any], path: str, value: Any) -> None:
    *parents, last = path.split(".")
    for key in parents:
        data = data[int(key)] if isinstance(data, list) else data[key]
    if value is DELETE:
        del data[last]
    else:
        data[last] = value


DELETE = object()
PUBLISH = "jobs.publish"
GITHUB_BREAKAGES: dict[str, tuple[str, Any]] = {
    "workflow may write packages": ("permissions", {"contents": "read", "packages": "write"}),
    "build job may write packages": ("jobs.build.permissions", {"packages": "write"}),
    "publish on pull requests": (f"{PUBLISH}.if", "${{ github.event_name != 'schedule' }}"),
    "push on every branch": ("on.push.branches", ["**"]),
    "scan does not fail": (f"{PUBLISH}.steps.5.with.exit-code", "0"),
    "scan ignores critical": (f"{PUBLISH}.steps.5.with.severity", "HIGH"),
    "no SBOM": (f"{PUBLISH}.steps.7.with.sbom", False),
    "long-lived password": (f"{PUBLISH}.steps.6.with.password", "${{ secrets.GHCR_PASSWORD }}"),
    "no staging environment": ("jobs.deploy-staging.environment", "production"),
    "no deploy job": ("jobs.deploy-staging", DELETE),
}


def test_github_checks_can_fail(bake: Callable[..., Baked]) -> None:
    baked = bake(ci="github")
    text = (baked.path / ".github/workflows/ci.yml").read_text(encoding="utf-8")
    good = yaml.safe_load(text)
    good["on"] = good.pop(True)
    check_github(good, text, context(baked))  # the unbroken file passes
    steps = good["jobs"]["publish"]["steps"]
    assert uses(steps[5], "aquasecurity/trivy-action") and uses(steps[6], "docker/login-action")
    assert steps[7].get("id") == "push", "GITHUB_BREAKAGES indexes the publish steps"
    for what, (path, value) in GITHUB_BREAKAGES.items():
        broken = copy.deepcopy(good)
        set_path(broken, path, value)
        with pytest.raises(AssertionError):
            check_github(broken, text, context(baked))
            pytest.fail(f"the checks accept a workflow with {what}")
    # Text-level checks: an unpinned action; words of a feature the variant does not have (the
    # jobs are removed from the parsed file, so that only the text can fail).
    unpinned = text.replace("docker/login-action@4907a6ddec9925e35a0a9e82d7399ccc52663121", "x@v4")
    without_kubernetes = copy.deepcopy(good)
    del without_kubernetes["jobs"]["deploy-staging"]
    without_docker = copy.deepcopy(without_kubernetes)
    for job in ("build", "publish"):
        del without_docker["jobs"][job]
    for what, parsed, broken_text, ctx in (
        ("an unpinned action", good, unpinned, context(baked)),
        ("kubectl", without_kubernetes, text, {**context(baked), "use_kubernetes": False}),
        ("docker", without_docker, text, {"use_docker": False, "use_kubernetes": False}),
    ):
        with pytest.raises(AssertionError):
            check_github(parsed, broken_text, ctx)
            pytest.fail(f"the checks accept a workflow with {what}")


GITLAB_BREAKAGES: dict[str, tuple[str, Any]] = {
    "publish on every branch": ("publish.rules", [{"when": "on_success"}]),
    "build on the default branch": ("build.rules", [{"when": "on_success"}]),
    "no tag pipelines": ("workflow.rules", [{"if": "$CI_COMMIT_BRANCH"}]),
    "no staging environment": ("deploy-staging.environment", {"name": "production"}),
    "no deploy job": ("deploy-staging", DELETE),
    "no artifact for the digest": ("publish.artifacts", {}),
}


def test_gitlab_checks_can_fail(bake: Callable[..., Baked]) -> None:
    baked = bake(ci="gitlab")
    text = (baked.path / ".gitlab-ci.yml").read_text(encoding="utf-8")
    good = yaml.safe_load(text)
    check_gitlab(good, text, context(baked))
    broken_scripts = {
        "scan does not fail": ("--exit-code 1", "--exit-code 0"),
        "scan ignores critical": ("--severity CRITICAL", "--severity HIGH"),
        "no provenance": ("--provenance=mode=max", "--provenance=false"),
        "push before the scan": ("--load", "--push"),
        "password from a variable": ("$CI_JOB_TOKEN", "$REGISTRY_PASSWORD"),
    }
    cases: list[tuple[str, dict[str, Any]]] = []
    for what, (path, value) in GITLAB_BREAKAGES.items():
        broken = copy.deepcopy(good)
        set_path(broken, path, value)
        cases.append((what, broken))
    for what, (old, new) in broken_scripts.items():
        broken = copy.deepcopy(good)
        script = broken["publish"]["script"]
        assert any(old in c for c in script), f"{old!r} not in the publish script"
        broken["publish"]["script"] = [c.replace(old, new) for c in script]
        cases.append((what, broken))
    for what, broken in cases:
        with pytest.raises(AssertionError):
            check_gitlab(broken, text, context(baked))
            pytest.fail(f"the checks accept a pipeline with {what}")
    # Words of a feature the variant does not have, with its jobs gone from the parsed file.
    without_kubernetes = copy.deepcopy(good)
    del without_kubernetes["deploy-staging"]
    without_docker = copy.deepcopy(without_kubernetes)
    for job in ("build", "publish"):
        del without_docker[job]
    for parsed, ctx in (
        (without_kubernetes, {**context(baked), "use_kubernetes": False}),
        (without_docker, {"use_docker": False, "use_kubernetes": False}),
    ):
        with pytest.raises(AssertionError):
            check_gitlab(parsed, text, ctx)
            pytest.fail(f"the checks accept the words of a disabled feature: {ctx}")


def test_actionlint_runs_shellcheck(tmp_path: Path) -> None:
    """actionlint with shellcheck rejects an unquoted variable in a run script."""
    workflow = tmp_path / "wf.yml"
    workflow.write_text(
        "on: push\njobs:\n  x:\n    runs-on: ubuntu-latest\n    steps:\n"
        "      - run: rm -rf $DIR/build\n",
        encoding="utf-8",
    )
    cmd = [tool("actionlint"), "-no-color", "-shellcheck", tool("shellcheck"), str(workflow)]
    result = subprocess.run(cmd, capture_output=True, text=True, timeout=120, check=False)
    assert result.returncode != 0 and "SC2086" in result.stdout, result.stdout


# --- the deploy scripts, run -------------------------------------------------------------

FAKE_KUBECTL = """#!/bin/sh
# Stands in for kubectl: records each call; `apply -k DIR` renders DIR with the real kubectl.
echo "$*" >> "$KUBECTL_LOG"
if [ "$1" = apply ] && [ "$2" = -k ]; then
    exec "$REAL_KUBECTL" kustomize "$3" > "$KUBECTL_APPLIED"
fi
"""


def run_deploy_script(baked: Baked, script: str, env: dict[str, str], tmp: Path) -> list[str]:
    """Run ``script`` in the baked project with the stand-in kubectl; return the calls made."""
    bin_dir = tmp / "bin"
    bin_dir.mkdir()
    kubectl = bin_dir / "kubectl"
    kubectl.write_text(FAKE_KUBECTL, encoding="utf-8")
    kubectl.chmod(0o755)
    full_env = {
        **os.environ,
        **env,
        "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}",
        "KUBECTL_LOG": str(tmp / "calls.log"),
        "KUBECTL_APPLIED": str(tmp / "applied.yaml"),
        "REAL_KUBECTL": tool("kubectl"),
    }
    run(["bash", "-c", script], cwd=baked.path, what=f"[{baked.name}] deploy", env=full_env)
    return (tmp / "calls.log").read_text(encoding="utf-8").splitlines()


def applied_image(tmp: Path) -> str:
    docs = list(yaml.safe_load_all((tmp / "applied.yaml").read_text(encoding="utf-8")))
    deployment = next(d for d in docs if d and d["kind"] == "Deployment")
    image: str = deployment["spec"]["template"]["spec"]["containers"][0]["image"]
    return image


def test_github_deploy_applies_the_pushed_digest(
    bake: Callable[..., Baked], tmp_path: Path
) -> None:
    baked = bake(ci="github")
    workflow = yaml.safe_load((baked.path / ".github/workflows/ci.yml").read_text("utf-8"))
    step = next(s for s in workflow["jobs"]["deploy-staging"]["steps"] if "run" in s)
    env = {
        **{k: v for k, v in step["env"].items() if "${{" not in v},
        "KUBE_CONFIG": "apiVersion: v1\nkind: Config\n",
        "IMAGE": "ghcr.io/acme/iris",
        "DIGEST": DIGEST,
        "RUNNER_TEMP": str(tmp_path),
    }
    calls = run_deploy_script(baked, "set -e\n" + step["run"], env, tmp_path)
    assert calls == [
        "apply -k deploy/pinned",
        "rollout status deployment/iris-classifier --timeout=10m",
    ], calls
    assert applied_image(tmp_path) == f"ghcr.io/acme/iris@{DIGEST}"
    assert (tmp_path / "kubeconfig").stat().st_mode & 0o077 == 0, "kubeconfig readable by others"


def test_gitlab_deploy_applies_the_pushed_digest(
    bake: Callable[..., Baked], tmp_path: Path
) -> None:
    baked = bake(ci="gitlab")
    pipeline = yaml.safe_load((baked.path / ".gitlab-ci.yml").read_text("utf-8"))
    job = pipeline["deploy-staging"]
    env = {
        **job["variables"],
        "CI_REGISTRY_IMAGE": "registry.gitlab.example/acme/iris",
        "IMAGE_DIGEST": DIGEST,
        "KUBE_CONTEXT": "acme/agents:staging",
    }
    calls = run_deploy_script(baked, "set -e\n" + "\n".join(job["script"]), env, tmp_path)
    assert calls == [
        "config use-context acme/agents:staging",
        "apply -k deploy/pinned",
        "rollout status deployment/iris-classifier --timeout=10m",
    ], calls
    assert applied_image(tmp_path) == f"registry.gitlab.example/acme/iris@{DIGEST}"
