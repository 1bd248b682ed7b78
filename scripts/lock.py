"""Regenerate the superset locks from which every baked project's ``uv.lock`` is cut.

Run it with ``make locks`` (or ``.venv/bin/python scripts/lock.py [--upgrade]``). A baked
project's dependencies depend only on model_framework x auth x use_prometheus x use_serverless
x use_opentelemetry (``requires-python`` is fixed, so python_version does not matter). For each
model framework this script renders the baked ``pyproject.toml`` of every combination of the
other dependency answers, takes the union of their requirements (main and per extra), bakes the
project with the default name and version, puts that union into its ``pyproject.toml``, runs
``uv lock`` there and stores the result as
``{{cookiecutter.project_slug}}/.locks/<framework>.lock``. The post-generation hook cuts from it
the packages the variant's own requirements reach (hooks/post_gen_project.py, ``prune_lock``).

``uv lock`` keeps every locked version that still satisfies the requirements (the stored lock
is put in place before it runs), so after a dependency change only what had to move moves;
``--upgrade`` takes the newest versions instead. Needs access to the package index;
tests/test_locks.py fails when a stored lock no longer covers what the template requires.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.util
import itertools
import json
import os
import re
import subprocess
import sys
import tempfile
import tomllib
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

from cookiecutter.environment import StrictEnvironment
from cookiecutter.main import cookiecutter

ROOT = Path(__file__).resolve().parent.parent
TEMPLATE = ROOT / "{{cookiecutter.project_slug}}"
LOCKS = TEMPLATE / ".locks"


def load_hook() -> ModuleType:
    """hooks/post_gen_project.py, for its naming rules (one rule for hook and script)."""
    spec = importlib.util.spec_from_file_location(
        "post_gen_project", ROOT / "hooks" / "post_gen_project.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def defaults() -> dict[str, Any]:
    """cookiecutter.json's defaults (first choice of a list), with the default slug."""
    config = json.loads((ROOT / "cookiecutter.json").read_text(encoding="utf-8"))
    context = {
        name: value[0] if isinstance(value, list) else value
        for name, value in config.items()
        if not name.startswith("_")
    }
    context["project_slug"] = "iris_classifier"
    return context


def dependency_sets() -> list[dict[str, Any]]:
    """Every combination of the dependency answers, in cookiecutter.json's order."""
    config = json.loads((ROOT / "cookiecutter.json").read_text(encoding="utf-8"))
    names = load_hook().DEPENDENCY_ANSWERS
    values = []
    for name in names:
        value = config[name]
        values.append(value if isinstance(value, list) else [value, not value])
    return [dict(zip(names, combo, strict=True)) for combo in itertools.product(*values)]


def rendered_project(answers: dict[str, Any]) -> dict[str, Any]:
    """The ``[project]`` table of the pyproject.toml a bake with ``answers`` writes."""
    context = {**defaults(), **answers}
    environment = StrictEnvironment(context={"cookiecutter": context}, keep_trailing_newline=True)
    text = (TEMPLATE / "pyproject.toml").read_text(encoding="utf-8")
    project: dict[str, Any] = tomllib.loads(
        environment.from_string(text).render(cookiecutter=context)
    )["project"]
    return project


def union(framework: str) -> tuple[list[str], dict[str, list[str]]]:
    """The requirements of every dependency set of ``framework``: main, and per extra."""
    main: list[str] = []
    extras: dict[str, list[str]] = {}
    for answers in dependency_sets():
        if answers["model_framework"] != framework:
            continue
        project = rendered_project(answers)
        main.extend(r for r in project["dependencies"] if r not in main)
        for extra, requirements in project.get("optional-dependencies", {}).items():
            known = extras.setdefault(extra, [])
            known.extend(r for r in requirements if r not in known)
    return main, extras


def toml_array(requirements: list[str]) -> str:
    return "[\n" + "".join(f"    {json.dumps(r)},\n" for r in requirements) + "]"


def superset_pyproject(text: str, main: list[str], extras: dict[str, list[str]]) -> str:
    """A baked ``pyproject.toml`` with its requirements replaced by the union."""
    text, found = re.subn(
        r"^dependencies = \[\n.*?^\]\n",
        f"dependencies = {toml_array(main)}\n",
        text,
        count=1,
        flags=re.M | re.S,
    )
    assert found == 1, "no `dependencies = [` array in the baked pyproject.toml"
    table = "".join(f"{name} = {toml_array(reqs)}\n" for name, reqs in extras.items())
    text, found = re.subn(
        r"^\[project\.optional-dependencies\]\n.*?(?=^\[)",
        f"[project.optional-dependencies]\n{table}\n",
        text,
        count=1,
        flags=re.M | re.S,
    )
    assert found == 1, "no [project.optional-dependencies] table in the baked pyproject.toml"
    return text


@contextlib.contextmanager
def quiet_hooks() -> Iterator[None]:
    """Silence the hooks' one-line notes (they write to file descriptor 2) for throw-away bakes."""
    saved = os.dup(2)
    with open(os.devnull, "w") as devnull:
        os.dup2(devnull.fileno(), 2)
        try:
            yield
        finally:
            os.dup2(saved, 2)
            os.close(saved)


def lock_superset(framework: str, workdir: Path, upgrade: bool) -> str:
    """Bake ``framework`` with every option on, widen its requirements to the union, lock it."""
    answers = {"model_framework": framework, "use_prometheus": True, "use_serverless": True}
    answers["use_opentelemetry"] = True
    with quiet_hooks():
        project = Path(
            cookiecutter(str(ROOT), no_input=True, output_dir=str(workdir), extra_context=answers)
        )
    pyproject = project / "pyproject.toml"
    main, extras = union(framework)
    pyproject.write_text(
        superset_pyproject(pyproject.read_text(encoding="utf-8"), main, extras), encoding="utf-8"
    )
    stored = LOCKS / load_hook().superset_name(framework)
    (project / "uv.lock").unlink(missing_ok=True)
    if stored.exists():
        (project / "uv.lock").write_text(stored.read_text(encoding="utf-8"), encoding="utf-8")
    command = [sys.executable, "-m", "uv", "lock", "--quiet", "--python", sys.executable]
    if upgrade:
        command.append("--upgrade")
    result = subprocess.run(command, cwd=project, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise SystemExit(f"uv lock failed for {framework}:\n{result.stdout}{result.stderr}")
    return (project / "uv.lock").read_text(encoding="utf-8")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--upgrade", action="store_true", help="take the newest allowed versions")
    args = parser.parse_args()
    hook = load_hook()
    os.environ["UV_PYTHON_DOWNLOADS"] = "never"
    # No git identity for the throw-away bakes: the hook then skips `git init`.
    os.environ["GIT_CONFIG_GLOBAL"] = os.devnull
    os.environ["GIT_CONFIG_NOSYSTEM"] = "1"
    LOCKS.mkdir(exist_ok=True)
    config = json.loads((ROOT / "cookiecutter.json").read_text(encoding="utf-8"))
    wanted: set[str] = set()
    with tempfile.TemporaryDirectory() as tmp:
        for framework in config["model_framework"]:
            name = hook.superset_name(framework)
            wanted.add(name)
            text = lock_superset(framework, Path(tmp) / framework, args.upgrade)
            target = LOCKS / name
            before = target.read_text(encoding="utf-8") if target.exists() else None
            status = "new" if before is None else "unchanged" if before == text else "updated"
            if status != "unchanged":
                with open(target, "w", encoding="utf-8", newline="\n") as file:
                    file.write(text)
            packages = text.count("\n[[package]]\n")
            print(f"{name:<16} {packages:3d} packages  {len(text) // 1024:5d} KiB  {status}")
    for stale in sorted(set(p.name for p in LOCKS.iterdir()) - wanted):
        (LOCKS / stale).unlink()
        print(f"{stale:<16} removed (no such framework)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
