"""Measure how long one bake takes, per supported variant (a benchmark, not a test).

Run it with ``.venv/bin/python -m tests.measure_bake [--repeat N]``. It prints the median wall
time of ``cookiecutter(..., no_input=True)`` for every variant, once as users get it (the
post-generation hook makes a git commit) and once with no git identity (so the hook skips git),
which separates rendering from git. The target is 0.5 s per bake; this script reports, it does
not assert, because timings on a shared machine are noisy.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import statistics
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from cookiecutter.main import cookiecutter

from scripts.lock import quiet_hooks
from tests.variants import SUPPORTED, variant_id

ROOT = Path(__file__).resolve().parent.parent
TARGET_S = 0.5


@contextlib.contextmanager
def without_git_identity(home: Path) -> Iterator[None]:
    """Hide the git identity so that the post-generation hook skips ``git init``."""
    saved = {k: os.environ.get(k) for k in ("GIT_CONFIG_GLOBAL", "GIT_CONFIG_NOSYSTEM", "EMAIL")}
    os.environ["GIT_CONFIG_GLOBAL"] = str(home / "no-gitconfig")
    os.environ["GIT_CONFIG_NOSYSTEM"] = "1"
    os.environ.pop("EMAIL", None)
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def bake_seconds(context: dict[str, Any], repeat: int, workdir: Path) -> float:
    times = []
    for i in range(repeat):
        out = workdir / f"{variant_id(context)}-{i}"
        started = time.perf_counter()
        with quiet_hooks():
            cookiecutter(str(ROOT), no_input=True, output_dir=str(out), extra_context=context)
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3, help="bakes per variant (median)")
    args = parser.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        for context in SUPPORTED:
            with_git = bake_seconds(context, args.repeat, workdir / "git")
            with without_git_identity(workdir):
                no_git = bake_seconds(context, args.repeat, workdir / "nogit")
            rows.append((variant_id(context), with_git, no_git))
    width = max(len(name) for name, _, _ in rows)
    print(f"{'variant':<{width}}  with git  without git")
    for name, with_git, no_git in rows:
        print(f"{name:<{width}}  {with_git:7.3f}s  {no_git:10.3f}s")
    overall = statistics.median(r[1] for r in rows)
    render = statistics.median(r[2] for r in rows)
    verdict = "within" if overall <= TARGET_S else "OVER"
    print(f"median per bake: {overall:.3f}s with git, {render:.3f}s without git")
    print(f"{verdict} the {TARGET_S}s target")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
