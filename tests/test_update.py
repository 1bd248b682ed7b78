"""The update path: a project made with cruft takes a later change of the template.

The template is copied into a temporary git repository (cruft only reads templates from git), a
project is created from it and committed, the template gets a new commit, and ``cruft update``
must bring that change into the project as an ordinary, reviewable change in its work tree.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import ROOT, run

pytestmark = pytest.mark.slow

CRUFT = Path(sys.executable).with_name("cruft")
# Not part of the template: the tooling's environment, bakes, caches and history.
NOT_TEMPLATE = shutil.ignore_patterns(
    ".git", ".venv", "build", "__pycache__", ".pytest_cache", ".mypy_cache", ".ruff_cache"
)
README_LINE = "Upgraded template: {{ cookiecutter.project_name }} has a new paragraph."
NEW_FILE = "{{cookiecutter.project_slug}}/docs/UPGRADING.md"


@pytest.fixture
def git_env(tmp_path: Path) -> dict[str, str]:
    """An environment whose git has an identity, without touching the user's git config."""
    config = tmp_path / "gitconfig"
    config.write_text(
        "[user]\n\tname = Template Test\n\temail = test@example.com\n"
        "[init]\n\tdefaultBranch = main\n",
        encoding="utf-8",
    )
    return {**os.environ, "GIT_CONFIG_GLOBAL": str(config), "GIT_CONFIG_NOSYSTEM": "1"}


def git(repo: Path, env: dict[str, str], *args: str) -> str:
    return run(["git", *args], cwd=repo, what=f"git {args[0]} in {repo.name}", env=env)


def commit_all(repo: Path, env: dict[str, str], message: str) -> str:
    git(repo, env, "add", "--all")
    git(repo, env, "commit", "--quiet", "--no-verify", "-m", message)
    return git(repo, env, "rev-parse", "HEAD").strip()


def test_cruft_create_then_update(tmp_path: Path, git_env: dict[str, str]) -> None:
    if shutil.which("git") is None:
        pytest.skip("git is not installed")
    template = tmp_path / "template"
    shutil.copytree(ROOT, template, ignore=NOT_TEMPLATE)
    git(template, git_env, "init", "--quiet")
    first = commit_all(template, git_env, "template v1")

    out = tmp_path / "projects"
    out.mkdir()
    # The post-generation hook sees cruft's context and leaves git to the user: cruft renders
    # old and new template into temporary directories to diff them, and a .git in each breaks it.
    run(
        [str(CRUFT), "create", str(template), "--no-input"],
        cwd=out,
        what="cruft create",
        env=git_env,
    )
    project = out / "iris_classifier"
    state = json.loads((project / ".cruft.json").read_text(encoding="utf-8"))
    assert state["commit"] == first
    assert (project / ".cookiecutter.json").is_file()
    assert not (project / ".git").exists(), "the hook ran git init under cruft"
    git(project, git_env, "init", "--quiet")
    commit_all(project, git_env, "record the template state")
    run([str(CRUFT), "check"], cwd=project, what="cruft check", env=git_env)

    readme = template / "{{cookiecutter.project_slug}}" / "README.md"
    readme.write_text(readme.read_text(encoding="utf-8") + "\n" + README_LINE + "\n", "utf-8")
    (template / NEW_FILE).parent.mkdir()
    (template / NEW_FILE).write_text("# Upgrading {{ cookiecutter.project_slug }}\n", "utf-8")
    second = commit_all(template, git_env, "template v2")
    stale = subprocess.run(
        [str(CRUFT), "check"], cwd=project, env=git_env, capture_output=True, check=False
    )
    assert stale.returncode != 0, "cruft check missed the new template commit"

    run(
        [str(CRUFT), "update", "--skip-apply-ask"],
        cwd=project,
        what="cruft update",
        env=git_env,
    )
    readme_text = (project / "README.md").read_text(encoding="utf-8")
    assert "Upgraded template: Iris Classifier has a new paragraph." in readme_text
    assert (project / "docs" / "UPGRADING.md").read_text(encoding="utf-8") == (
        "# Upgrading iris_classifier\n"
    )
    state = json.loads((project / ".cruft.json").read_text(encoding="utf-8"))
    assert state["commit"] == second
    changed = sorted(
        line[3:] for line in git(project, git_env, "status", "--porcelain").splitlines()
    )
    assert changed == [".cruft.json", "README.md", "docs/UPGRADING.md"], changed
    assert list(project.rglob(".git")) == [project / ".git"], "a nested git repository leaked in"
    run([str(CRUFT), "check"], cwd=project, what="cruft check after the update", env=git_env)
