"""Remove the files of every feature the answers switched off, then tidy the new project.

All optional files are listed once, in ``OPTIONAL_PATHS``: a feature's files are deleted when
its predicate is false for the answers given. The project's ``uv.lock`` is cut from the superset
lock of its model framework stored in ``.locks/`` (made by ``make locks`` in the template): the
packages its own pyproject.toml reaches, under the project's name and version. Standard library
only, offline, deterministic.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import tomllib
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
        [f"{PACKAGE}/security", f"{PACKAGE}/api/admin.py"],
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
# A project's dependencies depend only on DEPENDENCY_ANSWERS. `make locks` (scripts/lock.py)
# stores one *superset* lock per model framework in .locks/: `uv lock` of the default project
# with the union of every option's requirements. The hook cuts from it the baked project's
# uv.lock: the packages its own pyproject.toml reaches (main and every extra, as uv locks them
# all), each package block kept verbatim but for the extras no one here asks for, and the root
# package block written anew for this pyproject.toml and the project's name and version.

LOCKS_DIR = ".locks"
PACKAGE_SEPARATOR = "\n\n[[package]]\n"
ROOT_SOURCE = 'source = { editable = "." }'
NAME_VERSION = re.compile(r'\Aname = "(?P<name>[^"]+)"\nversion = "(?P<version>[^"]*)"\n')
STALE = "run `make locks` in the template"
REQUIREMENT = re.compile(
    r"""^\s*(?P<name>[A-Za-z0-9](?:[A-Za-z0-9._-]*[A-Za-z0-9])?)\s*
    (?:\[(?P<extras>[^\]]*)\])?\s*
    (?P<specifier>[^;]*?)\s*
    (?:;\s*(?P<marker>.*?))?\s*$""",
    re.VERBOSE,
)
EXTRA_KEY = re.compile(r", extra = \[[^\]]*\]")

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


# The answers that change a baked project's dependencies. Only model_framework picks the
# stored lock; the others decide what the hook cuts from it.
DEPENDENCY_ANSWERS = (
    "model_framework",
    "auth",
    "use_prometheus",
    "use_serverless",
    "use_opentelemetry",
)


class StaleLock(ValueError):
    """The stored superset lock does not cover what the template's pyproject.toml requires."""


def superset_name(framework: str) -> str:
    """The stored superset lock of a model framework, e.g. ``sklearn.lock``."""
    return f"{framework}.lock"


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


# --- cutting a variant's lock from the superset ------------------------------------------------


def _normal(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _requirement_key(requirement: str, extra: str | None) -> tuple[str, tuple[str, ...], str, str]:
    """What identifies a pyproject requirement among uv's ``requires-dist`` entries."""
    match = REQUIREMENT.match(requirement)
    if match is None:
        raise ValueError(f"cannot read the requirement {requirement!r}")
    extras = tuple(sorted(_normal(e) for e in (match["extras"] or "").split(",") if e.strip()))
    marker = match["marker"] or ""
    if extra is not None:
        marker = f"({marker})" if " or " in marker else marker
        marker = f"{marker} and extra == '{extra}'" if marker else f"extra == '{extra}'"
    return _entry_key(_normal(match["name"]), extras, match["specifier"], marker)


def _entry_key(
    name: str, extras: tuple[str, ...], specifier: str, marker: str
) -> tuple[str, tuple[str, ...], str, str]:
    specifiers = ",".join(sorted(part.strip() for part in specifier.split(",") if part.strip()))
    return name, extras, re.sub(r"\s+", "", specifiers), re.sub(r"\s+", " ", marker.strip())


def _array_lines(block: str, key: str) -> list[str]:
    """The one-line items of the array ``key = [`` ... ``]`` in a package block, verbatim."""
    match = re.search(rf"^{re.escape(key)} = \[\n(.*?)^\]$", block, re.M | re.S)
    return match[1].splitlines() if match else []


def _with_extras(line: str, extras: set[str]) -> str:
    """A dependency line (``{ name = ..., extra = [...], ... }``) asking for ``extras`` only."""
    line = EXTRA_KEY.sub("", line)
    if extras:
        listed = ", ".join(f'"{e}"' for e in sorted(extras))
        line = re.sub(
            r'^(\s*\{ name = "[^"]+"(?:, version = "[^"]+")?(?:, source = \{[^}]*\})?)',
            rf"\1, extra = [{listed}]",
            line,
            count=1,
        )
    return line


def _drop_extras(block: str, keep: set[str]) -> str:
    """A package block without the optional-dependency tables of extras not in ``keep``."""
    match = re.search(r"\[package\.optional-dependencies\]\n(.*?)(?:\n\n|\Z)", block, re.S)
    if match is None:
        return block
    tables = re.findall(r"^(\S+) = \[\n.*?^\]$", match[1], re.M | re.S)
    bodies = re.findall(r"^\S+ = \[\n.*?^\]$", match[1], re.M | re.S)
    kept = [body for name, body in zip(tables, bodies, strict=True) if name in keep]
    section = "[package.optional-dependencies]\n" + "\n".join(kept) if kept else ""
    start, end = match.span()
    tail = block[end:]
    if not section:
        return (block[:start].rstrip("\n") + ("\n\n" + tail if tail else "")).rstrip("\n")
    return block[:start] + section + ("\n\n" + tail if tail else "")


def prune_lock(superset: str, project: dict[str, object]) -> str:
    """The uv.lock of a project whose ``[project]`` table is ``project``, cut from ``superset``.

    Raises ValueError, naming the requirement, when the superset does not cover the project.
    """
    head, *texts = superset.rstrip("\n").split(PACKAGE_SEPARATOR)
    blocks = [tomllib.loads("[[package]]\n" + text)["package"][0] for text in texts]
    roots = [i for i, text in enumerate(texts) if f"\n{ROOT_SOURCE}\n" in text]
    if len(roots) != 1:
        raise ValueError(f"expected one package with {ROOT_SOURCE}, found {len(roots)}")
    root, root_text = blocks[roots[0]], texts[roots[0]]
    by_name: dict[str, list[int]] = {}
    for i, block in enumerate(blocks):
        by_name.setdefault(block["name"], []).append(i)

    # The root: which requires-dist entries, and which edges with which extras.
    entries = root["metadata"]["requires-dist"]
    entry_lines = _array_lines(root_text, "requires-dist")
    keys = [
        _entry_key(
            e["name"],
            tuple(sorted(e.get("extras", []))),
            e.get("specifier", ""),
            e.get("marker", ""),
        )
        for e in entries
    ]
    wanted_entries: set[int] = set()
    main: dict[str, set[str]] = {}
    extras: dict[str, dict[str, set[str]]] = {}
    groups: list[tuple[str | None, list[str]]] = [(None, list(project.get("dependencies", [])))]
    optional = project.get("optional-dependencies", {})
    assert isinstance(optional, dict)
    groups += [(extra, list(requirements)) for extra, requirements in optional.items()]
    for extra, requirements in groups:
        asked = main if extra is None else extras.setdefault(_normal(extra), {})
        for requirement in requirements:
            key = _requirement_key(requirement, None if extra is None else _normal(extra))
            if key not in keys:
                where = f" (extra {extra})" if extra else ""
                raise StaleLock(f"the stored lock has no {requirement!r}{where}: {STALE}")
            wanted_entries.add(keys.index(key))
            asked.setdefault(key[0], set()).update(key[1])

    def edges(lines: list[str], asked: dict[str, set[str]]) -> list[str]:
        chosen = []
        for line in lines:
            name = re.search(r'name = "([^"]+)"', line)
            if name and name[1] in asked:
                chosen.append(_with_extras(line, asked[name[1]]))
        return chosen

    root_deps = edges(_array_lines(root_text, "dependencies"), main)
    optional_edges: dict[str, list[str]] = {}
    super_optional = root.get("optional-dependencies", {})
    for extra in sorted(super_optional):
        if extra in extras:
            optional_edges[extra] = edges(_array_lines(root_text, extra), extras[extra])

    # Everything the root's edges reach, and the extras asked of each package.
    asked_of: dict[int, set[str]] = {}

    def follow(edge: dict[str, object]) -> None:
        name = str(edge["name"])
        found = [
            i
            for i in by_name.get(name, [])
            if "version" not in edge or blocks[i]["version"] == edge["version"]
        ]
        if len(found) != 1:
            raise StaleLock(f"the stored lock has {len(found)} packages for {edge}: {STALE}")
        index = found[0]
        wanted = set(edge.get("extra", [])) if isinstance(edge.get("extra"), list) else set()
        new = index not in asked_of or not wanted <= asked_of[index]
        asked_of.setdefault(index, set()).update(wanted)
        if new:
            pending.append(index)

    pending: list[int] = []
    for line in root_deps + [line for lines in optional_edges.values() for line in lines]:
        follow(tomllib.loads(f"edge = {line.strip().rstrip(',')}")["edge"])
    while pending:
        index = pending.pop()
        block = blocks[index]
        for edge in block.get("dependencies", []):
            follow(edge)
        for extra in asked_of[index]:
            for edge in block.get("optional-dependencies", {}).get(extra, []):
                follow(edge)

    # The root block, as uv writes it.
    provides = ", ".join(f'"{_normal(extra)}"' for extra in optional)
    lines = [f'name = "{root["name"]}"', f'version = "{root["version"]}"', ROOT_SOURCE]
    if root_deps:
        lines += ["dependencies = [", *root_deps, "]"]
    if optional_edges:
        lines += ["", "[package.optional-dependencies]"]
        for extra, chosen in optional_edges.items():
            lines += [f"{extra} = [", *chosen, "]"]
    lines += ["", "[package.metadata]", "requires-dist = ["]
    lines += [line for i, line in enumerate(entry_lines) if i in wanted_entries]
    lines += ["]"]
    if optional:
        lines += [f"provides-extras = [{provides}]"]
    new_root = "\n".join(lines)

    kept = []
    for i, text in enumerate(texts):
        if i == roots[0]:
            kept.append(new_root)
        elif i in asked_of:
            kept.append(_drop_extras(text, asked_of[i]))
    return head + "".join(PACKAGE_SEPARATOR + text for text in kept) + "\n"


def install_lock(root: Path, answers: Answers, slug: str, version: str) -> str | None:
    """Write ``uv.lock``, cut from the stored superset lock of the project's model framework
    for its pyproject.toml, then remove ``.locks/``.

    Returns None when the lock is in place, otherwise one line that says why it is not (the
    project still works without it: ``uv lock`` makes one).
    """
    locks = root / LOCKS_DIR
    stored = locks / superset_name(answers["model_framework"])
    try:
        if not stored.is_file():
            return f"no stored lock {stored.name} in the template: skipped uv.lock (run 'uv lock')"
        text = stored.read_text(encoding="utf-8")
        try:
            with open(root / "pyproject.toml", "rb") as file:
                project = tomllib.load(file)["project"]
            text = prune_lock(text, project)
            text = lock_for_project(text, distribution_name(slug), canonical_version(version))
        except StaleLock as exc:
            return f"{stored.name}: {exc} (for its maintainers); skipped uv.lock (run 'uv lock')"
        except (ValueError, KeyError, OSError) as exc:
            return f"{stored.name} is not a uv.lock this hook can adapt ({exc!r}): run 'uv lock'"
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
