"""Reject answers that cannot produce a working project, before anything is written.

Each rule prints one line that names the variable and says how to fix it, then the hook
exits non-zero so that cookiecutter removes the half-made directory.
Standard library only: hooks run in whatever environment cookiecutter runs in.
"""

from __future__ import annotations

import keyword
import re
import sys

SLUG_PATTERN = re.compile(r"^[a-z][a-z0-9_]*$")
MIN_PYTHON = (3, 11)


def slug_error(slug: str) -> str | None:
    """Return why ``slug`` cannot be a Python package name, or None when it can."""
    if keyword.iskeyword(slug):
        return f"project_slug {slug!r} is a Python keyword and cannot name a package"
    if SLUG_PATTERN.match(slug):
        return None
    return (
        f"project_slug {slug!r} is not a valid package name: use lower-case letters, digits and "
        "underscores, starting with a letter (for example project_slug=iris_classifier)"
    )


def kubernetes_error(use_kubernetes: bool, use_docker: bool) -> str | None:
    """Kubernetes manifests deploy the container image, so they need the Dockerfile."""
    if use_kubernetes and not use_docker:
        return "use_kubernetes=true needs use_docker=true: the manifests deploy the Docker image"
    return None


def serverless_error(use_serverless: bool, use_docker: bool) -> str | None:
    """The Lambda function runs the project's Docker image, so it needs the Dockerfile."""
    if use_serverless and not use_docker:
        return "use_serverless=true needs use_docker=true: the Lambda function is the Docker image"
    return None


def python_error(version: tuple[int, int]) -> str | None:
    """The baked project and its tooling need Python 3.11 or newer."""
    if version < MIN_PYTHON:
        found = ".".join(map(str, version))
        return f"Python {found} is too old to bake this template: use Python 3.11 or newer"
    return None


def as_bool(value: str) -> bool:
    """Cookiecutter renders JSON booleans as 'True'/'False'; accept the usual spellings too."""
    return value.strip().lower() in {"true", "1", "yes", "y", "on"}


def main() -> int:
    errors = [
        python_error(sys.version_info[:2]),
        slug_error("{{ cookiecutter.project_slug }}"),
        kubernetes_error(
            as_bool("{{ cookiecutter.use_kubernetes }}"), as_bool("{{ cookiecutter.use_docker }}")
        ),
        serverless_error(
            as_bool("{{ cookiecutter.use_serverless }}"), as_bool("{{ cookiecutter.use_docker }}")
        ),
    ]
    messages = [error for error in errors if error]
    for message in messages:
        print(f"ERROR: {message}", file=sys.stderr)
    return 1 if messages else 0


if __name__ == "__main__":
    sys.exit(main())
