"""Per-client quotas (APP_RATE_LIMIT): 429 with Retry-After and RateLimit-* headers."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

from {{ cookiecutter.project_slug }}.main import create_app
from {{ cookiecutter.project_slug }}.settings import ConfigError, Settings

from .conftest import IRIS_ROW

PREDICT = {"instances": [IRIS_ROW]}


@pytest.fixture
def limited(make_settings: Any, auth_headers: dict[str, str]) -> Iterator[TestClient]:
    with TestClient(create_app(make_settings(rate_limit="3/hour"))) as client:
        client.headers.update(auth_headers)
        yield client


def test_no_quota_by_default(client: TestClient) -> None:
    for _ in range(20):
        response = client.post("/predict", json=PREDICT)
        assert response.status_code == 200, response.text
        assert "ratelimit-limit" not in response.headers


def test_the_quota_answers_429_with_retry_after(limited: TestClient) -> None:
    statuses = [limited.post("/predict", json=PREDICT).status_code for _ in range(3)]
    assert statuses == [200, 200, 200]
    refused = limited.post("/predict", json=PREDICT)
    assert refused.status_code == 429, refused.text
    assert "quota" in refused.json()["detail"]
    assert 1 <= int(refused.headers["retry-after"]) <= 3600
    assert refused.headers["ratelimit-limit"] == "3"
    assert refused.headers["ratelimit-remaining"] == "0"
    assert refused.headers["ratelimit-reset"] == refused.headers["retry-after"]
    # Only inference is metered: the model's metadata and health still answer.
    assert limited.get("/model").status_code == 200
    assert limited.get("/health/ready").status_code == 200
{%- if cookiecutter.auth != "none" %}


def test_a_caller_without_credentials_is_401_not_charged(limited: TestClient) -> None:
    anonymous = TestClient(limited.app)  # the same running app, without credentials
    for _ in range(5):
        response = anonymous.post("/predict", json=PREDICT)
        assert response.status_code == 401, response.text
    assert limited.post("/predict", json=PREDICT).status_code == 200
{%- endif %}


def test_redis_down_fails_open(make_settings: Any, auth_headers: dict[str, str]) -> None:
    """Nothing listens on port 1: every request is served, unmetered, never a 500."""
    settings = make_settings(rate_limit="1/hour", rate_limit_storage="redis://127.0.0.1:1/0")
    with TestClient(create_app(settings)) as client:
        for _ in range(3):
            response = client.post("/predict", json=PREDICT, headers=auth_headers)
            assert response.status_code == 200, response.text


@pytest.mark.parametrize(
    ("values", "words"),
    [
        ({"rate_limit": "many per minute"}, "APP_RATE_LIMIT"),
        ({"rate_limit_storage": "memcached://localhost"}, "APP_RATE_LIMIT_STORAGE"),
    ],
)
def test_bad_quota_settings_stop_the_service(
    monkeypatch: pytest.MonkeyPatch, values: dict[str, str], words: str
) -> None:
    from {{ cookiecutter.project_slug }}.settings import load_settings

    for name, value in values.items():
        monkeypatch.setenv(f"APP_{name.upper()}", value)
    with pytest.raises(ConfigError, match=words):
        load_settings()
    assert Settings.model_fields["rate_limit"].default == ""
