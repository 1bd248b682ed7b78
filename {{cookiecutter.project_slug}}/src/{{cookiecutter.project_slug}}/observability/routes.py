"""Label requests by route template, so that /users/1 and /users/2 are one series."""

from __future__ import annotations

from starlette.types import Scope

UNMATCHED = "unmatched"


def route_template(scope: Scope) -> str:
    """The path template the router matched, or one shared label for everything else."""
    route = scope.get("route")
    path = getattr(route, "path", None)
    return path if isinstance(path, str) else UNMATCHED
