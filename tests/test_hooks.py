"""The hooks' helpers, as plain functions (they need no bake to test)."""

from __future__ import annotations

import importlib.util
import re
import tomllib
from pathlib import Path
from types import ModuleType

import pytest
from packaging.version import Version

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


def test_serverless_needs_docker() -> None:
    assert pre.serverless_error(True, False) is not None
    assert pre.serverless_error(True, True) is None
    assert pre.serverless_error(False, False) is None


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


def test_auth_none_removes_the_security_package_and_the_admin_routes() -> None:
    removed = post.paths_to_remove(answers(auth="none"))
    assert any(p.endswith("/security") for p in removed)
    assert any(p.endswith("/api/admin.py") for p in removed)


def test_features_off_remove_their_files() -> None:
    removed = post.paths_to_remove(
        answers(
            use_prometheus=False,
            use_docker=False,
            use_kubernetes=False,
            use_serverless=False,
            ci="none",
            use_open_inference_protocol=False,
            license="Proprietary",
        )
    )
    for path in ("monitoring", "Dockerfile", "docker-compose.yml", "deploy", ".github", "LICENSE"):
        assert path in removed
    assert "template.yaml" in removed


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
        use_serverless=False,
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


# --- uv.lock ------------------------------------------------------------------------------

STORED_LOCKS = TEMPLATE / post.LOCKS_DIR
SMALL_LOCK = """version = 1
revision = 3
requires-python = ">=3.11"

[[package]]
name = "alpha"
version = "1.0"
source = { registry = "https://pypi.org/simple" }

[[package]]
name = "iris-classifier"
version = "0.1.0"
source = { editable = "." }
dependencies = [
    { name = "alpha" },
    { name = "zulu" },
]

[package.metadata]
requires-dist = [
    { name = "alpha", specifier = ">=1" },
    { name = "zulu", specifier = ">=2" },
]

[[package]]
name = "zulu"
version = "2.0"
source = { registry = "https://pypi.org/simple" }
"""


def package_order(lock: str) -> list[tuple[str, str]]:
    return [(p["name"], p["version"]) for p in tomllib.loads(lock)["package"]]


@pytest.mark.parametrize(
    ("name", "order"),
    [
        ("aardvark", ["aardvark", "alpha", "zulu"]),
        ("iris-classifier", ["alpha", "iris-classifier", "zulu"]),
        ("beta", ["alpha", "beta", "zulu"]),
        ("zz-top", ["alpha", "zulu", "zz-top"]),
    ],
)
def test_lock_for_project_renames_the_root_in_sorted_place(name: str, order: list[str]) -> None:
    lock = post.lock_for_project(SMALL_LOCK, name, "2.3.4")
    assert [n for n, _ in package_order(lock)] == order
    assert (name, "2.3.4") in package_order(lock)
    # Everything but the root's name and version is kept, byte for byte.
    assert sorted(lock.splitlines()) == sorted(
        SMALL_LOCK.replace('"iris-classifier"', f'"{name}"')
        .replace('version = "0.1.0"', 'version = "2.3.4"')
        .splitlines()
    )


def test_lock_for_project_with_the_same_name_and_version_is_identity() -> None:
    assert post.lock_for_project(SMALL_LOCK, "iris-classifier", "0.1.0") == SMALL_LOCK


def test_lock_for_project_refuses_a_lock_without_one_root() -> None:
    no_root = SMALL_LOCK.replace('source = { editable = "." }', 'source = { virtual = "." }')
    with pytest.raises(ValueError, match="expected one package"):
        post.lock_for_project(no_root, "x", "1")


@pytest.mark.parametrize("stored", sorted(STORED_LOCKS.glob("*.lock")), ids=lambda p: p.stem)
def test_default_answers_leave_a_stored_lock_unchanged(stored: Path) -> None:
    """The superset locks are made for the default name and version (``make locks``)."""
    text = stored.read_text(encoding="utf-8")
    assert post.lock_for_project(text, "iris-classifier", "0.1.0") == text


def test_distribution_name() -> None:
    assert post.distribution_name("iris_classifier") == "iris-classifier"
    assert post.distribution_name("a__b_2") == "a-b-2"


@pytest.mark.parametrize(
    "version",
    [
        "0.1.0",
        "1.0",
        "01.020",
        "v1.2",
        "1.0.0-RC1",
        "1.0_a2",
        "1.0alpha",
        "1.0c1",
        "1.0preview2",
        "2!1.0",
        "0!1.0",
        "1.0.post",
        "1.0-1",
        "1.0rev3",
        "1.0.dev",
        "1.0-beta.3.post-4.dev5",
        "1.2+Local.01",
        "1.0+ub_untu-1",
    ],
)
def test_canonical_version_matches_packaging(version: str) -> None:
    assert post.canonical_version(version) == str(Version(version))


def test_canonical_version_keeps_what_is_not_a_version() -> None:
    assert post.canonical_version("not a version") == "not a version"


SMALL_SUPERSET = """version = 1
revision = 3
requires-python = ">=3.11"

[[package]]
name = "alpha"
version = "1.0"
source = { registry = "https://pypi.org/simple" }
dependencies = [
    { name = "gamma" },
]

[[package]]
name = "beta"
version = "1.0"
source = { registry = "https://pypi.org/simple" }

[package.optional-dependencies]
x = [
    { name = "delta" },
]
y = [
    { name = "epsilon" },
]

[[package]]
name = "delta"
version = "1.0"
source = { registry = "https://pypi.org/simple" }

[[package]]
name = "epsilon"
version = "1.0"
source = { registry = "https://pypi.org/simple" }

[[package]]
name = "gamma"
version = "1.0"
source = { registry = "https://pypi.org/simple" }

[[package]]
name = "iris-classifier"
version = "0.1.0"
source = { editable = "." }
dependencies = [
    { name = "alpha" },
    { name = "beta", extra = ["x", "y"] },
]

[package.optional-dependencies]
dev = [
    { name = "zulu" },
]

[package.metadata]
requires-dist = [
    { name = "alpha", specifier = ">=1" },
    { name = "beta", specifier = ">=1" },
    { name = "beta", extras = ["x"], specifier = ">=1" },
    { name = "beta", extras = ["y"], marker = "sys_platform == 'linux'", specifier = ">=1" },
    { name = "zulu", marker = "extra == 'dev'", specifier = ">=2" },
]
provides-extras = ["dev"]

[[package]]
name = "zulu"
version = "2.0"
source = { registry = "https://pypi.org/simple" }
"""
SMALL_SUPERSET_PROJECT = {
    "dependencies": ["alpha>=1", "beta>=1", "beta[x]>=1", "beta[y]>=1; sys_platform == 'linux'"],
    "optional-dependencies": {"dev": ["zulu>=2"]},
}


def test_prune_lock_with_every_requirement_is_identity() -> None:
    assert post.prune_lock(SMALL_SUPERSET, SMALL_SUPERSET_PROJECT) == SMALL_SUPERSET


def test_prune_lock_keeps_what_is_reached_and_the_extras_asked_for() -> None:
    project = {"dependencies": ["beta[x] >= 1"], "optional-dependencies": {"dev": ["zulu>=2"]}}
    lock = post.prune_lock(SMALL_SUPERSET, project)
    assert [n for n, _ in package_order(lock)] == ["beta", "delta", "iris-classifier", "zulu"]
    packages = {p["name"]: p for p in tomllib.loads(lock)["package"]}
    assert packages["beta"]["optional-dependencies"] == {"x": [{"name": "delta"}]}
    root = packages["iris-classifier"]
    assert root["dependencies"] == [{"name": "beta", "extra": ["x"]}]
    assert root["metadata"]["requires-dist"] == [
        {"name": "beta", "extras": ["x"], "specifier": ">=1"},
        {"name": "zulu", "marker": "extra == 'dev'", "specifier": ">=2"},
    ]
    assert root["optional-dependencies"] == {"dev": [{"name": "zulu"}]}
    # Kept blocks are the superset's, but for the tables of extras no one asks for.
    assert '[[package]]\nname = "delta"\nversion = "1.0"\n' in lock


def test_prune_lock_drops_the_extras_table_no_one_asks_for() -> None:
    project = {"dependencies": ["alpha>=1", "beta>=1"], "optional-dependencies": {}}
    lock = post.prune_lock(SMALL_SUPERSET, project)
    assert [n for n, _ in package_order(lock)] == ["alpha", "beta", "gamma", "iris-classifier"]
    assert "optional-dependencies" not in lock
    assert "provides-extras" not in lock
    beta = lock.split('name = "beta"\n')[1].split("[[package]]")[0]
    assert beta == 'version = "1.0"\nsource = { registry = "https://pypi.org/simple" }\n\n'


@pytest.mark.parametrize(
    "requirement",
    ["alpha>=2", "omega>=1", "beta[z]>=1", "beta[y]>=1", "alpha>=1; python_version < '4'"],
)
def test_prune_lock_refuses_what_the_superset_did_not_lock(requirement: str) -> None:
    with pytest.raises(ValueError, match="run `make locks`"):
        post.prune_lock(SMALL_SUPERSET, {"dependencies": [requirement]})


def test_superset_name_names_the_framework() -> None:
    assert post.superset_name(answers()["model_framework"]) == "sklearn.lock"
    assert post.superset_name("onnx") == "onnx.lock"


PYPROJECT = """[project]
name = "zeta-forecaster"
version = "2.3.4"
dependencies = ["alpha>=1", "beta>=1", "beta[x]>=1", "beta[y]>=1; sys_platform == 'linux'"]

[project.optional-dependencies]
dev = ["zulu>=2"]
"""


def test_install_lock_writes_uv_lock_and_removes_the_store(tmp_path: Path) -> None:
    store = tmp_path / post.LOCKS_DIR
    store.mkdir()
    (store / "sklearn.lock").write_text(SMALL_SUPERSET, encoding="utf-8")
    (store / "onnx.lock").write_text("other", encoding="utf-8")
    (tmp_path / "pyproject.toml").write_text(PYPROJECT, encoding="utf-8")
    assert post.install_lock(tmp_path, answers(), "zeta_forecaster", "2.3.4") is None
    order = package_order((tmp_path / "uv.lock").read_text())
    assert order[-2] == ("zeta-forecaster", "2.3.4")  # uv's order: before zulu
    assert len(order) == 7
    assert not store.exists()


def test_install_lock_without_a_stored_lock_says_so(tmp_path: Path) -> None:
    (tmp_path / post.LOCKS_DIR).mkdir()
    message = post.install_lock(tmp_path, answers(model_framework="onnx"), "x", "1.0")
    assert message is not None and "onnx.lock" in message
    assert "uv lock" in message
    assert not (tmp_path / "uv.lock").exists()
    assert not (tmp_path / post.LOCKS_DIR).exists()


@pytest.mark.parametrize("pyproject", [None, "", 'x = "not a project"\n', PYPROJECT + "[broken\n"])
def test_install_lock_without_a_readable_pyproject_says_so(
    tmp_path: Path, pyproject: str | None
) -> None:
    (tmp_path / post.LOCKS_DIR).mkdir()
    (tmp_path / post.LOCKS_DIR / "sklearn.lock").write_text(SMALL_SUPERSET, encoding="utf-8")
    if pyproject is not None:
        (tmp_path / "pyproject.toml").write_text(pyproject, encoding="utf-8")
    message = post.install_lock(tmp_path, answers(), "x", "1.0")
    assert message is not None and "uv lock" in message
    assert not (tmp_path / "uv.lock").exists()


def test_install_lock_with_a_stale_stored_lock_says_run_make_locks(tmp_path: Path) -> None:
    (tmp_path / post.LOCKS_DIR).mkdir()
    (tmp_path / post.LOCKS_DIR / "sklearn.lock").write_text(SMALL_SUPERSET, encoding="utf-8")
    (tmp_path / "pyproject.toml").write_text(PYPROJECT.replace("zulu>=2", "zulu>=3"))
    message = post.install_lock(tmp_path, answers(), "x", "1.0")
    assert message is not None and "make locks" in message and "zulu>=3" in message
    assert not (tmp_path / "uv.lock").exists()


def test_install_lock_with_a_broken_stored_lock_says_so(tmp_path: Path) -> None:
    (tmp_path / post.LOCKS_DIR).mkdir()
    (tmp_path / post.LOCKS_DIR / "sklearn.lock").write_text("version = 1\n")
    (tmp_path / "pyproject.toml").write_text(PYPROJECT, encoding="utf-8")
    message = post.install_lock(tmp_path, answers(), "x", "1.0")
    assert message is not None and "uv lock" in message
    assert not (tmp_path / "uv.lock").exists()
