"""The hooks' helpers, as plain functions (they need no bake to test)."""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path
from types import ModuleType

import pytest

from tests.variants import DEFAULTS, SUPPORTED, variant_id

HOOKS = Path(__file__).resolve().parent.parent / "hooks"


def load(name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(name, HOOKS / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


pre = load("pre_gen_project")
post = load("post_gen_project")


@pytest.mark.parametrize("slug", ["iris", "iris_classifier", "model2", "a"])
def test_good_slugs(slug: str) -> None:
    assert pre.slug_error(slug) is None


@pytest.mark.parametrize(
    "slug", ["", "2fast", "Iris", "iris-classifier", "iris classifier", "_x", "class"]
)
def test_bad_slugs(slug: str) -> None:
    message = pre.slug_error(slug)
    assert message is not None and repr(slug) in message


def test_kubernetes_needs_docker() -> None:
    assert pre.kubernetes_error(True, False) is not None
    assert pre.kubernetes_error(True, True) is None
    assert pre.kubernetes_error(False, False) is None


def test_python_version() -> None:
    assert pre.python_error((3, 10)) is not None
    assert pre.python_error((3, 11)) is None


@pytest.mark.parametrize(
    ("text", "value"), [("True", True), ("False", False), ("true", True), ("0", False)]
)
def test_booleans_as_rendered(text: str, value: bool) -> None:
    assert pre.as_bool(text) is value
    assert post.is_true(text) is value


def answers(**overrides: object) -> dict[str, str]:
    values = {**DEFAULTS, **overrides}
    return {k: str(v) for k, v in values.items()}


def test_defaults_remove_only_the_other_options() -> None:
    removed = post.paths_to_remove(answers())
    assert any(p.endswith("model/onnx.py") for p in removed)
    assert any(p.endswith("security/keys.py") for p in removed)
    assert ".gitlab-ci.yml" in removed
    assert not any(
        p.endswith("model/sklearn.py") or p.endswith("security/users.py") for p in removed
    )
    assert "Dockerfile" not in removed and "deploy" not in removed


def test_auth_none_removes_the_security_package() -> None:
    removed = post.paths_to_remove(answers(auth="none"))
    assert any(p.endswith("/security") for p in removed)


def test_features_off_remove_their_files() -> None:
    removed = post.paths_to_remove(
        answers(
            use_prometheus=False,
            use_docker=False,
            use_kubernetes=False,
            ci="none",
            use_open_inference_protocol=False,
            license="Proprietary",
        )
    )
    for path in ("monitoring", "Dockerfile", "docker-compose.yml", "deploy", ".github", "LICENSE"):
        assert path in removed


def test_remove_paths_handles_files_dirs_and_missing(tmp_path: Path) -> None:
    (tmp_path / "dir").mkdir()
    (tmp_path / "dir" / "f.txt").write_text("x")
    (tmp_path / "file.txt").write_text("x")
    post.remove_paths(tmp_path, ["dir", "file.txt", "not-there"])
    assert list(tmp_path.iterdir()) == []


def test_init_git_makes_one_commit(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GIT_CONFIG_GLOBAL", str(tmp_path / "gitconfig"))
    (tmp_path / "gitconfig").write_text("[user]\n\temail = t@example.com\n\tname = T\n")
    project = tmp_path / "project"
    project.mkdir()
    (project / "README.md").write_text("hi\n")
    message = post.init_git(project)
    assert "initialised" in message
    assert (project / ".git").is_dir()


def test_init_git_skips_without_identity(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GIT_CONFIG_GLOBAL", str(tmp_path / "empty"))
    monkeypatch.setenv("GIT_CONFIG_NOSYSTEM", "1")
    for var in ("GIT_AUTHOR_EMAIL", "GIT_COMMITTER_EMAIL", "EMAIL"):
        monkeypatch.delenv(var, raising=False)
    project = tmp_path / "project"
    project.mkdir()
    message = post.init_git(project)
    assert "skipped" in message
    assert not (project / ".git").exists()


TEMPLATE = HOOKS.parent / "{{cookiecutter.project_slug}}"
SLUG_EXPRESSION = re.compile(r"\{\{ *cookiecutter\.project_slug *\}\}")


def in_template(relative: str) -> Path:
    """Where a path of the baked project lives in the template directory."""
    return TEMPLATE / SLUG_EXPRESSION.sub("{{cookiecutter.project_slug}}", relative)


@pytest.mark.parametrize("feature", list(post.OPTIONAL_PATHS))
def test_every_optional_path_exists_in_the_template(feature: str) -> None:
    """A typo in the manifest would silently leave a disabled feature's file behind."""
    _, paths = post.OPTIONAL_PATHS[feature]
    assert paths, feature
    for relative in paths:
        assert in_template(relative).exists(), f"{feature}: {relative} is not in the template"


@pytest.mark.parametrize("feature", list(post.OPTIONAL_PATHS))
def test_each_feature_is_removed_exactly_when_its_answer_is_off(feature: str) -> None:
    keep, paths = post.OPTIONAL_PATHS[feature]
    for variant in SUPPORTED:
        given = answers(**variant)
        removed = post.paths_to_remove(given)
        for relative in paths:
            assert (relative in removed) is (not keep(given)), (feature, variant_id(variant))


def test_manifest_order_is_the_removal_order() -> None:
    everything_off = answers(
        model_framework="none",
        auth="none",
        use_prometheus=False,
        use_docker=False,
        ci="none",
        use_kubernetes=False,
        use_open_inference_protocol=False,
        license="Proprietary",
    )
    removed = post.paths_to_remove(everything_off)
    assert len(removed) == len(set(removed)), "a path is listed twice"
    listed = [p for keep, paths in post.OPTIONAL_PATHS.values() for p in paths]
    assert removed == [p for p in listed if p in removed]


def test_remove_paths_stays_inside_the_project(tmp_path: Path) -> None:
    project = tmp_path / "project"
    project.mkdir()
    (tmp_path / "outside.txt").write_text("keep me")
    post.remove_paths(project, ["missing/dir", "missing.txt"])
    assert (tmp_path / "outside.txt").read_text() == "keep me"


def test_unrendered_hook_main_reports_every_error(capsys: pytest.CaptureFixture[str]) -> None:
    """Unrendered, the hook sees the literal Jinja text: the slug check must refuse it."""
    assert pre.main() == 1
    lines = capsys.readouterr().err.splitlines()
    assert lines and all(line.startswith("ERROR: ") for line in lines)
    assert any("project_slug" in line for line in lines)


def test_python_error_names_the_version() -> None:
    message = pre.python_error((3, 9))
    assert message is not None and "3.9" in message and "3.11" in message


@pytest.mark.parametrize("text", ["True", "False"])
def test_hooks_agree_on_booleans(text: str) -> None:
    assert pre.as_bool(text) is post.is_true(text) is (text == "True")


def test_init_git_skips_under_cruft(tmp_path: Path) -> None:
    assert "cruft" in post.init_git(tmp_path, made_by_cruft=True)
    assert not (tmp_path / ".git").exists()
