"""Request logs: one structured line per request, carrying the request id the client sees."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

from {{ cookiecutter.project_slug }}.main import create_app
from {{ cookiecutter.project_slug }}.observability.logging import (
    JsonFormatter,
    configure_logging,
)

from .conftest import IRIS_ROW

ACCESS_LOGGER = "{{ cookiecutter.project_slug }}.access"


@pytest.fixture(autouse=True)
def restore_root_logger() -> Iterator[None]:
    """configure_logging changes process-wide state; put it back for the next test."""
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)


@pytest.fixture
def logged(make_settings: Any, auth_headers: dict[str, str]) -> Iterator[TestClient]:
    """A started app logging at info level, with credentials."""
    with TestClient(create_app(make_settings(log_level="info")), headers=auth_headers) as client:
        yield client


def access_records(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.name == ACCESS_LOGGER]


def test_one_json_line_per_request_with_route_status_and_duration(
    logged: TestClient, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.clear()
    response = logged.post("/predict", json={"instances": [IRIS_ROW]})
    assert response.status_code == 200
    (record,) = access_records(caplog)
    line = JsonFormatter().format(record)
    assert "\n" not in line
    entry = json.loads(line)
    assert entry["level"] == "info"
    assert entry["logger"] == ACCESS_LOGGER
    assert entry["method"] == "POST"
    assert entry["route"] == "/predict"
    assert entry["status"] == 200
    assert isinstance(entry["duration_ms"], float) and entry["duration_ms"] >= 0
    assert entry["request_id"] == response.headers["x-request-id"]
    assert entry["time"].endswith("Z")


def test_route_is_the_template_and_errors_are_logged_with_their_status(
    logged: TestClient, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.clear()
    assert logged.get("/no/such/page/42").status_code == 404
    assert logged.post("/predict", json={"instances": [[1.0]]}).status_code == 422
    first, second = access_records(caplog)
    assert (first.route, first.status) == ("unmatched", 404)  # type: ignore[attr-defined]
    assert (second.route, second.status) == ("/predict", 422)  # type: ignore[attr-defined]


def test_request_id_is_honoured_or_generated(
    logged: TestClient, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.clear()
    given = logged.get("/health/live", headers={"X-Request-ID": "trace-abc-123"})
    assert given.headers["x-request-id"] == "trace-abc-123"
    made = [logged.get("/health/live").headers["x-request-id"] for _ in range(2)]
    assert made[0] != made[1]
    assert all(len(request_id) == 32 for request_id in made)
    ids = [r.request_id for r in access_records(caplog)]  # type: ignore[attr-defined]
    assert ids == ["trace-abc-123", *made]


@pytest.mark.parametrize("forged", ["x" * 129, "a\tb"])
def test_unprintable_or_long_request_ids_are_replaced(logged: TestClient, forged: str) -> None:
    returned = logged.get("/health/live", headers={"X-Request-ID": forged}).headers["x-request-id"]
    assert returned != forged
    assert len(returned) == 32


def test_uvicorn_access_log_is_off_so_requests_are_not_logged_twice(make_settings: Any) -> None:
    create_app(make_settings(log_level="info"))
    assert logging.getLogger("uvicorn.access").disabled
    assert not logging.getLogger("uvicorn").handlers


def test_reconfiguring_keeps_one_handler_and_foreign_handlers() -> None:
    root = logging.getLogger()
    foreign = logging.NullHandler()
    root.addHandler(foreign)
    configure_logging("info", "json")
    configured = root.handlers[:]
    configure_logging("warning", "console")
    configure_logging("info", "json")
    assert foreign in root.handlers
    assert len(root.handlers) == len(configured)
    assert root.level == logging.INFO


def test_console_format_is_one_readable_line(capsys: pytest.CaptureFixture[str]) -> None:
    configure_logging("info", "console")
    logging.getLogger(ACCESS_LOGGER).info("request", extra={"route": "/predict", "status": 200})
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert err == f"INFO    {ACCESS_LOGGER}: request route=/predict status=200"
