"""Remove the files of every feature the answers switched off, then tidy the new project.

All optional files are listed once, in ``OPTIONAL_PATHS``: a feature's files are deleted when
its predicate is false for the answers given. The project's ``uv.lock`` is picked from the locks
stored in ``.locks/`` (one per dependency set, made by ``make locks`` in the template) and given
the project's name and version. Standard library only, offline, deterministic.
"""

from __future__ import annotations

import re
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
        [
            f"{PACKAGE}/model/sklearn.py",
            f"{PACKAGE}/preprocessing.py",
            "tests/test_sklearn_model.py",
        ],
    ),
    "onnx": (
        lambda a: a["model_framework"] == "onnx",
        [
            f"{PACKAGE}/model/onnx.py",
            f"{PACKAGE}/model/onnx_proto.py",
            f"{PACKAGE}/model/demo.onnx",
            "tests/test_onnx_model.py",
        ],
    ),
    "auth": (
        lambda a: a["auth"] != "none",
        [f"{PACKAGE}/security"],
    ),
    "database": (
        lambda a: a["auth"] in {"jwt", "api_key"},
        [f"{PACKAGE}/security/database.py"],
    ),
    "jwt": (
        lambda a: a["auth"] == "jwt",
        [
            f"{PACKAGE}/security/passwords.py",
            f"{PACKAGE}/security/tokens.py",
            f"{PACKAGE}/security/users.py",
            f"{PACKAGE}/security/jwt.py",
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
    "oidc": (
        lambda a: a["auth"] == "oidc",
        [f"{PACKAGE}/security/oidc.py", "tests/test_oidc.py", "tests/identity_provider.py"],
    ),
    "prometheus": (
        lambda a: is_true(a["use_prometheus"]),
        [
            f"{PACKAGE}/observability/metrics.py",
            f"{PACKAGE}/observability/multiprocess.py",
            f"{PACKAGE}/observability/model_metrics.py",
            f"{PACKAGE}/observability/reference.py",
            f"{PACKAGE}/observability/demo.reference.json",
            "tests/test_metrics.py",
            "tests/test_model_metrics.py",
            "monitoring",
        ],
    ),
    "opentelemetry": (
        lambda a: is_true(a["use_opentelemetry"]),
        [f"{PACKAGE}/observability/tracing.py", "tests/test_tracing.py"],
    ),
    "docker": (
        lambda a: is_true(a["use_docker"]),
        ["Dockerfile", ".dockerignore", "docker-compose.yml"],
    ),
    "github": (lambda a: a["ci"] == "github", [".github"]),
    "gitlab": (lambda a: a["ci"] == "gitlab", [".gitlab-ci.yml"]),
    "kubernetes": (lambda a: is_true(a["use_kubernetes"]), ["deploy"]),
    "serverless": (
        lambda a: is_true(a["use_serverless"]),
        [f"{PACKAGE}/serverless.py", "template.yaml", "tests/test_serverless.py"],
    ),
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


# --- uv.lock ---------------------------------------------------------------------------------
# The lock depends only on the dependency set (framework x auth x metrics x serverless), and on
# the project's own name and version, which appear in its root [[package]] block only.
# `make locks` stores one lock per set, made for the default name and version; the hook renames
# that block.

LOCKS_DIR = ".locks"
PACKAGE_SEPARATOR = "\n\n[[package]]\n"
ROOT_SOURCE = 'source = { editable = "." }'
NAME_VERSION = re.compile(r'\Aname = "(?P<name>[^"]+)"\nversion = "(?P<version>[^"]*)"\n')

# PEP 440, as packaging.version spells it; uv writes versions in this canonical form.
PEP440 = re.compile(
    r"""^\s*v?
    (?:(?P<epoch>[0-9]+)!)?
    (?P<release>[0-9]+(?:\.[0-9]+)*)
    (?:[-_.]?(?P<pre_l>alpha|a|beta|b|preview|pre|c|rc)[-_.]?(?P<pre_n>[0-9]+)?)?
    (?:-(?P<post_n1>[0-9]+)|[-_.]?(?P<post_l>post|rev|r)[-_.]?(?P<post_n2>[0-9]+)?)?
    (?:[-_.]?(?P<dev_l>dev)[-_.]?(?P<dev_n>[0-9]+)?)?
    (?:\+(?P<local>[a-z0-9]+(?:[-_.][a-z0-9]+)*))?
    \s*$""",
    re.VERBOSE | re.IGNORECASE,
)
PRE_LETTERS = {"alpha": "a", "beta": "b", "c": "rc", "pre": "rc", "preview": "rc"}


# The answers that change a baked project's dependencies, and so which stored lock it gets.
DEPENDENCY_ANSWERS = (
    "model_framework",
    "auth",
    "use_prometheus",
    "use_serverless",
    "use_opentelemetry",
)


def lock_name(answers: Answers) -> str:
    """The stored lock for the answers' dependency set, e.g. ``sklearn-jwt-metrics.lock``.

    Serverless variants add Mangum and the Lambda runtime client: ``...-serverless.lock``;
    traced ones the OpenTelemetry SDK and its OTLP exporter: ``...-otel.lock``.
    """
    metrics = "metrics" if is_true(answers["use_prometheus"]) else "nometrics"
    serverless = "-serverless" if is_true(answers["use_serverless"]) else ""
    otel = "-otel" if is_true(answers["use_opentelemetry"]) else ""
    return f"{answers['model_framework']}-{answers['auth']}-{metrics}{serverless}{otel}.lock"


def distribution_name(slug: str) -> str:
    """The project's name as uv writes it: the pyproject name (slug with ``-``), normalised."""
    return re.sub(r"[-_.]+", "-", slug).lower()


def canonical_version(version: str) -> str:
    """``version`` in PEP 440 canonical form (``1.0.0-RC1`` -> ``1.0.0rc1``); as is if invalid."""
    match = PEP440.match(version)
    if match is None:
        return version
    part = match.groupdict()
    text = f"{part['epoch']}!" if part["epoch"] and int(part["epoch"]) else ""
    text += ".".join(str(int(number)) for number in part["release"].split("."))
    if part["pre_l"]:
        letter = part["pre_l"].lower()
        text += f"{PRE_LETTERS.get(letter, letter)}{int(part['pre_n'] or 0)}"
    if part["post_n1"] or part["post_l"]:
        text += f".post{int(part['post_n1'] or part['post_n2'] or 0)}"
    if part["dev_l"]:
        text += f".dev{int(part['dev_n'] or 0)}"
    if part["local"]:
        pieces = re.split(r"[-_.]", part["local"].lower())
        text += "+" + ".".join(str(int(p)) if p.isdigit() else p for p in pieces)
    return text


def lock_for_project(lock: str, name: str, version: str) -> str:
    """``lock`` with its root package renamed to ``name`` at ``version``, in uv's order.

    uv lists packages sorted by name; ``uv lock --check`` accepts any order, but the next
    ``uv lock`` would then move the block, so it goes where uv would put it.
    """
    head, *blocks = lock.rstrip("\n").split(PACKAGE_SEPARATOR)
    roots = [i for i, block in enumerate(blocks) if f"\n{ROOT_SOURCE}\n" in block]
    if len(roots) != 1:
        raise ValueError(f"expected one package with {ROOT_SOURCE}, found {len(roots)}")
    root = blocks.pop(roots[0])
    if NAME_VERSION.match(root) is None:
        raise ValueError("the root package does not start with its name and version")
    root = NAME_VERSION.sub(f'name = "{name}"\nversion = "{version}"\n', root, count=1)
    names = []
    for block in blocks:
        found = NAME_VERSION.match(block) or re.match(r'name = "([^"]+)"', block)
        if found is None:
            raise ValueError(f"a package block without a name: {block[:60]!r}")
        names.append(found.group(1))
    position = sum(1 for other in names if other <= name)
    blocks.insert(position, root)
    return head + "".join(PACKAGE_SEPARATOR + block for block in blocks) + "\n"


def install_lock(root: Path, answers: Answers, slug: str, version: str) -> str | None:
    """Write ``uv.lock`` from the stored lock of this dependency set, then remove ``.locks/``.

    Returns None when the lock is in place, otherwise one line that says why it is not (the
    project still works without it: ``uv lock`` makes one).
    """
    locks = root / LOCKS_DIR
    stored = locks / lock_name(answers)
    try:
        if not stored.is_file():
            return f"no stored lock {stored.name} in the template: skipped uv.lock (run 'uv lock')"
        text = stored.read_text(encoding="utf-8")
        try:
            text = lock_for_project(text, distribution_name(slug), canonical_version(version))
        except ValueError as exc:
            return f"{stored.name} is not a uv.lock this hook can adapt ({exc}): run 'uv lock'"
        with open(root / "uv.lock", "w", encoding="utf-8", newline="\n") as file:
            file.write(text)
        return None
    finally:
        shutil.rmtree(locks, ignore_errors=True)


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
        "use_serverless": "{{ cookiecutter.use_serverless }}",
        "use_open_inference_protocol": "{{ cookiecutter.use_open_inference_protocol }}",
        "use_opentelemetry": "{{ cookiecutter.use_opentelemetry }}",
        "license": "{{ cookiecutter.license }}",
    }
    root = Path.cwd()
    remove_paths(root, paths_to_remove(answers))
    problem = install_lock(
        root, answers, "{{ cookiecutter.project_slug }}", "{{ cookiecutter.version }}"
    )
    if problem:
        print(problem, file=sys.stderr)
    # Only cruft puts the template's commit into the context.
    made_by_cruft = "{{ cookiecutter._commit | default('') }}" != ""
    print(init_git(root, made_by_cruft), file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
