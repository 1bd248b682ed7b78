"""Hostile tests for API keys: header only, digests only, revocation, scopes."""

from __future__ import annotations

import sqlite3
from typing import Any

import pytest
from fastapi.testclient import TestClient

from {{ cookiecutter.project_slug }}.main import create_app
from {{ cookiecutter.project_slug }}.security.database import Database
from {{ cookiecutter.project_slug }}.security.keys import KeyStore, digest
from {{ cookiecutter.project_slug }}.security.principal import Principal, PrincipalCache
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
    def lookup(credential: str) -> None:
        raise AssertionError("an oversized key reached the key cache or the database")

    for method in ("cached", "active"):
        monkeypatch.setattr(anonymous.app.state.auth.active_keys, method, lookup)  # type: ignore[attr-defined]
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


def test_revoking_a_key_in_use_stops_it_at_once_without_the_cache(
    make_settings: Any, auth_headers: dict[str, str]
) -> None:
    # Same database as the other app, so the same key works here.
    with TestClient(create_app(make_settings(key_cache_ttl_s=0))) as client:
        client.headers.update(auth_headers)
        assert client.post("/predict", json=PREDICT).status_code == 200
        client.app.state.auth.keys.revoke("tester")  # type: ignore[attr-defined]
        assert client.post("/predict", json=PREDICT).status_code == 401


def test_key_cache_forgets_a_revoked_key_after_its_ttl(settings: Settings) -> None:
    now = [1000.0]
    store = KeyStore(Database(settings.database_url))
    key = store.add("batch-job", ["predict"])
    cache = PrincipalCache(store.principal_by_digest, ttl_s=5, clock=lambda: now[0])
    assert cache.active(digest(key)) == Principal("batch-job", frozenset({"predict"}))
    store.revoke("batch-job")
    now[0] += 4.9
    assert cache.active(digest(key)) is not None, "within the TTL the cached answer stands"
    now[0] += 0.2
    assert cache.active(digest(key)) is None
    assert cache.active(digest("sk_never-issued")) is None


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
