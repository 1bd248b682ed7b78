"""Hostile tests for API keys: header only, digests only, revocation, scopes."""

from __future__ import annotations

import sqlite3

import pytest
from fastapi.testclient import TestClient

from {{ cookiecutter.project_slug }}.settings import Settings

from .conftest import IRIS_ROW

PREDICT = {"instances": [IRIS_ROW]}


def test_valid_key_predicts(client: TestClient) -> None:
    assert client.post("/predict", json=PREDICT).status_code == 200
    assert client.get("/model").status_code == 200


@pytest.mark.parametrize(
    "headers",
    [{}, {"X-API-Key": ""}, {"X-API-Key": "sk_not-a-real-key"}, {"Authorization": "Bearer x"}],
    ids=["missing", "empty", "unknown key", "bearer instead"],
)
def test_bad_keys_are_401(anonymous: TestClient, headers: dict[str, str]) -> None:
    response = anonymous.post("/predict", json=PREDICT, headers=headers)
    assert response.status_code == 401
    assert response.headers["www-authenticate"].startswith("APIKey")


def test_oversized_key_is_refused_without_a_lookup(
    anonymous: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    def lookup(key: str) -> None:
        raise AssertionError("an oversized key reached the database")

    monkeypatch.setattr(anonymous.app.state.auth.keys, "principal", lookup)  # type: ignore[attr-defined]
    response = anonymous.post("/predict", json=PREDICT, headers={"X-API-Key": "sk_" + "a" * 5000})
    assert response.status_code == 401
    assert response.headers["www-authenticate"].startswith("APIKey")


def test_key_in_query_string_is_ignored(
    anonymous: TestClient, auth_headers: dict[str, str]
) -> None:
    key = auth_headers["X-API-Key"]
    for name in ("api_key", "X-API-Key", "key"):
        response = anonymous.post(f"/predict?{name}={key}", json=PREDICT)
        assert response.status_code == 401


def test_revoked_key_is_401(client: TestClient) -> None:
    client.app.state.auth.keys.revoke("tester")  # type: ignore[attr-defined]
    assert client.post("/predict", json=PREDICT).status_code == 401


def test_missing_scope_is_403(anonymous: TestClient) -> None:
    key = anonymous.app.state.auth.keys.add("ops", ["admin"])  # type: ignore[attr-defined]
    response = anonymous.post("/predict", json=PREDICT, headers={"X-API-Key": key})
    assert response.status_code == 403


def test_database_holds_only_digests(client: TestClient, settings: Settings) -> None:
    key = client.headers["X-API-Key"]
    path = settings.database_url.removeprefix("sqlite:///")
    with sqlite3.connect(path) as db:
        dump = "\n".join(db.iterdump())
    assert key not in dump
    assert key[3:] not in dump
