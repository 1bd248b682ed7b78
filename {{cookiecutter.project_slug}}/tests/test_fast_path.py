"""``POST /predict`` answered ahead of the router gives what the router's route gives.

The same requests go to the service as built, and to one whose fast path is taken out (so the
router serves the route); status, JSON body and the headers that matter must be equal.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any, cast

import pytest
from fastapi.testclient import TestClient

from {{ cookiecutter.project_slug }}.fast_path import PredictFastPath
from {{ cookiecutter.project_slug }}.main import create_app

from .conftest import IRIS_ROW

RECORD = {"sepal_length": 5.1, "sepal_width": 3.5, "petal_length": 1.4, "petal_width": 0.2}
JSON = {"Content-Type": "application/json"}
ONE_ROW = b'{"instances": [[5.1, 3.5, 1.4, 0.2]]}'
ELEVEN_ROWS = b'{"instances": [' + b",".join([b"[1,2,3,4]"] * 11) + b"]}"
# (method, body, extra headers, send credentials?)
REQUESTS: dict[str, tuple[str, bytes, dict[str, str], bool]] = {
    "rows": ("POST", b'{"instances": [[5.1, 3.5, 1.4, 0.2], [6.7, 3.0, 5.2, 2.3]]}', JSON, True),
    "records": ("POST", json.dumps({"instances": [RECORD]}).encode(), JSON, True),
    "probabilities": (
        "POST", b'{"instances": [[5.1, 3.5, 1.4, 0.2]], "probabilities": true}', JSON, True,
    ),
    "not JSON": ("POST", b"{instances", JSON, True),
    "wrong row length": ("POST", b'{"instances": [[1, 2, 3]]}', JSON, True),
    "unknown field": ("POST", b'{"instances": [[5.1, 3.5, 1.4, 0.2]], "x": 1}', JSON, True),
    "no instances": ("POST", b'{"instances": []}', JSON, True),
    "too many rows": ("POST", ELEVEN_ROWS, JSON, True),
    "text/plain": ("POST", ONE_ROW, {"Content-Type": "text/plain"}, True),
    "body too large": ("POST", b'{"instances": [' + b"1" * 5000 + b"]}", JSON, True),
    "no credentials": ("POST", ONE_ROW, JSON, False),
    "GET": ("GET", b"", {}, True),
}  # fmt: skip


@pytest.fixture
def both(make_settings: Any, auth_headers: dict[str, str]) -> Iterator[list[TestClient]]:
    settings = make_settings(max_rows=10, max_body_bytes=4096)
    fast = create_app(settings)
    general = create_app(settings)
    general.user_middleware = [
        m for m in general.user_middleware if cast(object, m.cls) is not PredictFastPath
    ]
    assert len(general.user_middleware) == len(fast.user_middleware) - 1
    with TestClient(fast) as one, TestClient(general) as other:
        yield [one, other]


@pytest.mark.parametrize("name", list(REQUESTS))
def test_the_fast_path_answers_as_the_router_does(
    both: list[TestClient], auth_headers: dict[str, str], name: str
) -> None:
    method, body, headers, credentials = REQUESTS[name]
    if credentials:
        headers = {**headers, **auth_headers}
    answers = [client.request(method, "/predict", content=body, headers=headers) for client in both]
    fast, general = answers
    assert fast.status_code == general.status_code, (name, fast.text, general.text)
    assert fast.json() == general.json(), name
    for header in ("content-type", "www-authenticate", "allow", "retry-after"):
        assert fast.headers.get(header) == general.headers.get(header), (name, header)
    assert fast.headers["x-request-id"] and general.headers["x-request-id"]


def test_the_fast_path_is_taken(both: list[TestClient], auth_headers: dict[str, str]) -> None:
    """The check above can fail: without the fast path, the router serves the route."""
    fast, general = both
    taken: list[str] = []
    original = PredictFastPath.__call__

    async def spy(self: PredictFastPath, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "http":
            taken.append(scope["path"])
        await original(self, scope, receive, send)

    body = {"instances": [IRIS_ROW]}
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(PredictFastPath, "__call__", spy)
        assert fast.post("/predict", json=body, headers=auth_headers).status_code == 200
        assert general.post("/predict", json=body, headers=auth_headers).status_code == 200
    assert taken == ["/predict"]
