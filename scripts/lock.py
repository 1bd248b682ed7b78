"""Regenerate the ``uv.lock`` stored for every dependency set the template can bake.

Run it with ``make locks`` (or ``.venv/bin/python scripts/lock.py [--upgrade]``). A baked
project's lock depends only on its dependency set, model_framework x auth x use_prometheus x
use_serverless x use_opentelemetry (``requires-python`` is fixed, so python_version does not
matter), and on the project's own name and version, which the post-generation hook fills in.
For each set this
script bakes the template with the default name and version (the hook puts the currently stored
lock in place, if there is one), runs ``uv lock`` in the baked project, and stores the result as
``{{cookiecutter.project_slug}}/.locks/<framework>-<auth>-<metrics|nometrics>[-serverless][-otel].lock``.

``uv lock`` keeps every locked version that still satisfies ``pyproject.toml``, so after a
dependency change only what had to move moves; ``--upgrade`` takes the newest versions instead.
Needs access to the package index; tests/test_locks.py fails when a stored lock is stale.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.util
import itertools
import json
import os
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

from cookiecutter.main import cookiecutter

ROOT = Path(__file__).resolve().parent.parent
LOCKS = ROOT / "{{cookiecutter.project_slug}}" / ".locks"


def load_hook() -> ModuleType:
    """hooks/post_gen_project.py, for its ``lock_name`` (one naming rule for hook and script)."""
    spec = importlib.util.spec_from_file_location(
        "post_gen_project", ROOT / "hooks" / "post_gen_project.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def dependency_sets() -> list[dict[str, Any]]:
    """Every combination of the dependency answers, in cookiecutter.json's order."""
    config = json.loads((ROOT / "cookiecutter.json").read_text(encoding="utf-8"))
    names = load_hook().DEPENDENCY_ANSWERS
    values = []
    for name in names:
        value = config[name]
        values.append(value if isinstance(value, list) else [value, not value])
    return [dict(zip(names, combo, strict=True)) for combo in itertools.product(*values)]


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


def lock_one(answers: dict[str, Any], workdir: Path, upgrade: bool) -> str:
    """Bake ``answers`` with default name and version, lock it, and return the lock's text."""
    with quiet_hooks():
        project = Path(
            cookiecutter(str(ROOT), no_input=True, output_dir=str(workdir), extra_context=answers)
        )
    command = [sys.executable, "-m", "uv", "lock", "--quiet", "--python", sys.executable]
    if upgrade:
        command.append("--upgrade")
    result = subprocess.run(command, cwd=project, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise SystemExit(f"uv lock failed for {answers}:\n{result.stdout}{result.stderr}")
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
    wanted: set[str] = set()
    with tempfile.TemporaryDirectory() as tmp:
        for i, answers in enumerate(dependency_sets()):
            name = hook.lock_name({k: str(v) for k, v in answers.items()})
            wanted.add(name)
            text = lock_one(answers, Path(tmp) / str(i), args.upgrade)
            target = LOCKS / name
            before = target.read_text(encoding="utf-8") if target.exists() else None
            status = "new" if before is None else "unchanged" if before == text else "updated"
            if status != "unchanged":
                with open(target, "w", encoding="utf-8", newline="\n") as file:
                    file.write(text)
            packages = text.count("\n[[package]]\n")
            print(f"{name:<32} {packages:3d} packages  {len(text) // 1024:5d} KiB  {status}")
    for stale in sorted(set(p.name for p in LOCKS.iterdir()) - wanted):
        (LOCKS / stale).unlink()
        print(f"{stale:<32} removed (no such dependency set)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
