"""Remove the files of every feature the answers switched off, then tidy the new project.

All optional files are listed once, in ``OPTIONAL_PATHS``: a feature's files are deleted when
its predicate is false for the answers given. Standard library only, offline, deterministic.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from collections.abc import Callable, Mapping
from pathlib import Path

Answers = Mapping[str, str]

PACKAGE = "src/{{ cookiecutter.project_slug }}"


def is_true(value: str) -> bool:
    return value.strip().lower() in {"true", "1", "yes", "y", "on"}


# feature -> (keep it?, paths relative to the project root)
OPTIONAL_PATHS: dict[str, tuple[Callable[[Answers], bool], list[str]]] = {
    "sklearn": (
        lambda a: a["model_framework"] == "sklearn",
        [f"{PACKAGE}/model/sklearn.py"],
    ),
    "onnx": (
        lambda a: a["model_framework"] == "onnx",
        [f"{PACKAGE}/model/onnx.py"],
    ),
    "auth": (
        lambda a: a["auth"] != "none",
        [f"{PACKAGE}/security"],
    ),
    "jwt": (
        lambda a: a["auth"] == "jwt",
        [
            f"{PACKAGE}/security/passwords.py",
            f"{PACKAGE}/security/tokens.py",
            f"{PACKAGE}/security/users.py",
            f"{PACKAGE}/security/bearer.py",
            f"{PACKAGE}/security/login_limit.py",
            f"{PACKAGE}/security/users_cli.py",
            f"{PACKAGE}/api/auth.py",
            "tests/test_jwt.py",
        ],
    ),
    "api_key": (
        lambda a: a["auth"] == "api_key",
        [
            f"{PACKAGE}/security/keys.py",
            f"{PACKAGE}/security/api_key.py",
            f"{PACKAGE}/security/keys_cli.py",
            "tests/test_api_key.py",
        ],
    ),
    "prometheus": (
        lambda a: is_true(a["use_prometheus"]),
        [
            f"{PACKAGE}/observability/metrics.py",
            f"{PACKAGE}/observability/multiprocess.py",
            "tests/test_metrics.py",
            "monitoring",
        ],
    ),
    "docker": (
        lambda a: is_true(a["use_docker"]),
        ["Dockerfile", ".dockerignore", "docker-compose.yml"],
    ),
    "github": (lambda a: a["ci"] == "github", [".github"]),
    "gitlab": (lambda a: a["ci"] == "gitlab", [".gitlab-ci.yml"]),
    "kubernetes": (lambda a: is_true(a["use_kubernetes"]), ["deploy"]),
    "open_inference_protocol": (
        lambda a: is_true(a["use_open_inference_protocol"]),
        [f"{PACKAGE}/api/oip.py", "tests/test_oip.py"],
    ),
    "license": (lambda a: a["license"] != "Proprietary", ["LICENSE"]),
}


def paths_to_remove(answers: Answers) -> list[str]:
    """Every optional path whose feature is off for ``answers``, in manifest order."""
    removed: list[str] = []
    for keep, paths in OPTIONAL_PATHS.values():
        if not keep(answers):
            removed.extend(paths)
    return removed


def remove_paths(root: Path, paths: list[str]) -> None:
    for relative in paths:
        target = root / relative
        if target.is_dir():
            shutil.rmtree(target)
        elif target.exists():
            target.unlink()


def init_git(root: Path, made_by_cruft: bool = False) -> str:
    """Make the project a git repository with one commit; say why when that is not possible."""
    if made_by_cruft:
        # cruft renders old and new versions into temporary folders to diff them; a .git in
        # each would break that diff, and the user's project already has its own history.
        return "made by cruft: skipped 'git init'"
    if shutil.which("git") is None:
        return "git is not installed: skipped 'git init'"
    if (root / ".git").exists() or _inside_git_work_tree(root.parent):
        return "already inside a git repository: skipped 'git init'"

    def git(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(["git", *args], cwd=root, capture_output=True, text=True, check=False)

    if not git("config", "user.email").stdout.strip():
        return "no git identity is set (git config user.email): skipped 'git init'"
    git("init", "--quiet", "--initial-branch=main")
    git("add", "--all")
    result = git("commit", "--quiet", "--no-verify", "-m", "Initial commit from the template")
    if result.returncode != 0:
        shutil.rmtree(root / ".git", ignore_errors=True)
        return f"git commit failed, skipped 'git init': {result.stderr.strip()}"
    return "initialised a git repository with one commit"


def _inside_git_work_tree(path: Path) -> bool:
    result = subprocess.run(
        ["git", "rev-parse", "--is-inside-work-tree"],
        cwd=path,
        capture_output=True,
        text=True,
        check=False,
    )
    return result.stdout.strip() == "true"


def main() -> int:
    answers: dict[str, str] = {
        "model_framework": "{{ cookiecutter.model_framework }}",
        "auth": "{{ cookiecutter.auth }}",
        "use_prometheus": "{{ cookiecutter.use_prometheus }}",
        "use_docker": "{{ cookiecutter.use_docker }}",
        "ci": "{{ cookiecutter.ci }}",
        "use_kubernetes": "{{ cookiecutter.use_kubernetes }}",
        "use_open_inference_protocol": "{{ cookiecutter.use_open_inference_protocol }}",
        "license": "{{ cookiecutter.license }}",
    }
    root = Path.cwd()
    remove_paths(root, paths_to_remove(answers))
    # Only cruft puts the template's commit into the context.
    made_by_cruft = "{{ cookiecutter._commit | default('') }}" != ""
    print(init_git(root, made_by_cruft), file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
