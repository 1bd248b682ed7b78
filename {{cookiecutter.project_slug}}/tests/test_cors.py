"""CORS: only the origins in APP_CORS_ORIGINS get CORS headers; by default none does."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

from {{ cookiecutter.project_slug }}.main import create_app

ALLOWED = "https://app.example.com"
PREFLIGHT = {
    "Access-Control-Request-Method": "POST",
    "Access-Control-Request-Headers": "content-type, authorization",
}


@pytest.fixture
def cors_client(make_settings: Any) -> Iterator[TestClient]:
    settings = make_settings(cors_origins=f"{ALLOWED}, https://other.example.com")
    with TestClient(create_app(settings)) as client:
        yield client


def test_preflight_from_an_allowed_origin(cors_client: TestClient) -> None:
    response = cors_client.options("/predict", headers={"Origin": ALLOWED, **PREFLIGHT})
    assert response.status_code == 200, response.text
    assert response.headers["access-control-allow-origin"] == ALLOWED
    assert "POST" in response.headers["access-control-allow-methods"]
    allowed_headers = response.headers["access-control-allow-headers"].lower()
    assert "content-type" in allowed_headers
    assert "authorization" in allowed_headers
    assert "access-control-allow-credentials" not in response.headers


def test_preflight_from_another_origin_is_refused(cors_client: TestClient) -> None:
    origin = "https://evil.example.net"
    response = cors_client.options("/predict", headers={"Origin": origin, **PREFLIGHT})
    assert response.status_code == 400
    assert "access-control-allow-origin" not in response.headers


def test_simple_request_from_an_allowed_origin_is_readable(cors_client: TestClient) -> None:
    response = cors_client.get("/health/live", headers={"Origin": ALLOWED})
    assert response.headers["access-control-allow-origin"] == ALLOWED
    assert "x-request-id" in response.headers["access-control-expose-headers"].lower()


def test_no_cors_headers_by_default(anonymous: TestClient) -> None:
    preflight = anonymous.options("/predict", headers={"Origin": ALLOWED, **PREFLIGHT})
    assert not any(name.startswith("access-control-") for name in preflight.headers)
    simple = anonymous.get("/health/live", headers={"Origin": ALLOWED})
    assert simple.status_code == 200
    assert not any(name.startswith("access-control-") for name in simple.headers)
