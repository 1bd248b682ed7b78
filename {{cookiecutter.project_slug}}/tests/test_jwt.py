"""Hostile tests for logins and bearer tokens: every bad credential is a 401, never a 500."""

from __future__ import annotations

import base64
import json
import sqlite3
from datetime import UTC, datetime, timedelta
from typing import Any

import jwt
import pytest
from fastapi.testclient import TestClient

from {{ cookiecutter.project_slug }}.main import create_app
from {{ cookiecutter.project_slug }}.security.database import Database
from {{ cookiecutter.project_slug }}.security.principal import Principal, PrincipalCache
from {{ cookiecutter.project_slug }}.security.users import UserStore
from {{ cookiecutter.project_slug }}.settings import Settings

from .conftest import IRIS_ROW, PASSWORD, SECRET

PREDICT = {"instances": [IRIS_ROW]}


def claims(**overrides: Any) -> dict[str, Any]:
    now = datetime.now(UTC)
    values: dict[str, Any] = {
        "sub": "alice",
        "scope": "predict",
        "iss": "{{ cookiecutter.project_slug.replace('_', '-') }}",
        "aud": "{{ cookiecutter.project_slug.replace('_', '-') }}",
        "iat": now,
        "exp": now + timedelta(minutes=5),
    }
    values.update(overrides)
    return {k: v for k, v in values.items() if v is not None}


def forge(key: str = SECRET, algorithm: str = "HS256", **overrides: Any) -> str:
    return jwt.encode(claims(**overrides), key, algorithm=algorithm)


def b64(data: dict[str, Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()


def alg_none_token() -> str:
    body = claims()
    body["iat"] = int(body["iat"].timestamp())
    body["exp"] = int(body["exp"].timestamp())
    return f"{b64({'alg': 'none', 'typ': 'JWT'})}.{b64(body)}."


def tampered_token() -> str:
    header, payload, signature = forge().split(".")
    flipped = ("A" if signature[0] != "A" else "B") + signature[1:]
    return f"{header}.{payload}.{flipped}"


BAD_TOKENS = {
    "alg none": alg_none_token,
    "wrong key": lambda: forge(key="another-secret-key-that-is-32-bytes-long!"),
    "tampered signature": tampered_token,
    "expired": lambda: forge(
        exp=datetime.now(UTC) - timedelta(minutes=5), iat=datetime.now(UTC) - timedelta(minutes=20)
    ),
    "no exp": lambda: forge(exp=None),
    "no iat": lambda: forge(iat=None),
    "no sub": lambda: forge(sub=None),
    "wrong issuer": lambda: forge(iss="someone-else"),
    "wrong audience": lambda: forge(aud="another-service"),
    "HS384 when HS256 is configured": lambda: forge(algorithm="HS384"),
    "unknown user": lambda: forge(sub="mallory"),
    "garbage": lambda: "not-a-token",
    "empty segments": lambda: "..",
    "non-ascii": lambda: "é.é.é",
}


@pytest.mark.parametrize("make_token", BAD_TOKENS.values(), ids=BAD_TOKENS.keys())
def test_bad_tokens_are_401(
    anonymous: TestClient, auth_headers: dict[str, str], make_token: Any
) -> None:
    response = anonymous.post(
        "/predict", json=PREDICT, headers={"Authorization": f"Bearer {make_token()}".encode()}
    )
    assert response.status_code == 401, response.text
    assert response.headers["www-authenticate"].startswith("Bearer")
    assert response.json()["detail"]


@pytest.mark.parametrize(
    "header",
    [None, "Basic YWxpY2U6cGFzc3dvcmQ=", "Bearer", "Bearer ", "bearer", "Token abc"],
    ids=["missing", "basic scheme", "bearer without token", "bearer space", "lowercase", "other"],
)
def test_missing_or_wrong_scheme_is_401(anonymous: TestClient, header: str | None) -> None:
    headers = {"Authorization": header} if header is not None else {}
    response = anonymous.post("/predict", json=PREDICT, headers=headers)
    assert response.status_code == 401
    assert "www-authenticate" in response.headers


def test_oversized_token_is_refused_before_parsing(
    anonymous: TestClient, auth_headers: dict[str, str]
) -> None:
    # Correctly signed, so only the size limit can refuse it.
    headers = {"Authorization": f"Bearer {forge(padding='x' * 5000)}"}
    response = anonymous.post("/predict", json=PREDICT, headers=headers)
    assert response.status_code == 401
    assert response.headers["www-authenticate"].startswith("Bearer")


@pytest.mark.parametrize(
    "username",
    ["al\x00ice", "a" * 10_000, "alice\u202e", "alice' OR '1'='1", "ålice"],
    ids=["nul byte", "10k characters", "bidi override", "sql quote", "non-ascii"],
)
def test_odd_user_names_are_401(
    anonymous: TestClient, auth_headers: dict[str, str], username: str
) -> None:
    response = anonymous.post("/token", data={"username": username, "password": PASSWORD})
    assert response.status_code == 401
    assert response.json() == {"detail": "Incorrect username or password"}


def test_valid_token_predicts(client: TestClient) -> None:
    assert client.post("/predict", json=PREDICT).status_code == 200
    assert client.get("/model").status_code == 200


def test_token_response_shape(anonymous: TestClient, auth_headers: dict[str, str]) -> None:
    response = anonymous.post("/token", data={"username": "alice", "password": PASSWORD})
    body = response.json()
    assert body["token_type"] == "bearer"
    assert body["expires_in"] == 15 * 60
    decoded = jwt.decode(
        body["access_token"], SECRET, algorithms=["HS256"], audience=claims()["aud"]
    )
    assert decoded["sub"] == "alice"


@pytest.mark.parametrize(
    ("username", "password"),
    [("alice", "wrong password"), ("nobody", PASSWORD), ("alice", ""), ("", "")],
)
def test_bad_login_is_one_401(
    anonymous: TestClient, auth_headers: dict[str, str], username: str, password: str
) -> None:
    response = anonymous.post("/token", data={"username": username, "password": password})
    assert response.status_code in (401, 422)
    if response.status_code == 401:
        assert response.json() == {"detail": "Incorrect username or password"}
        assert response.headers["www-authenticate"] == "Bearer"


def test_missing_scope_is_403(anonymous: TestClient) -> None:
    anonymous.app.state.auth.users.add("viewer", PASSWORD, ["admin"])  # type: ignore[attr-defined]
    token = anonymous.post("/token", data={"username": "viewer", "password": PASSWORD})
    headers = {"Authorization": f"Bearer {token.json()['access_token']}"}
    response = anonymous.post("/predict", json=PREDICT, headers=headers)
    assert response.status_code == 403
    assert anonymous.get("/users/me", headers=headers).json() == {
        "name": "viewer",
        "scopes": ["admin"],
    }


def test_token_scope_can_be_narrowed(anonymous: TestClient, auth_headers: dict[str, str]) -> None:
    token = anonymous.post(
        "/token", data={"username": "alice", "password": PASSWORD, "scope": "admin"}
    )
    headers = {"Authorization": f"Bearer {token.json()['access_token']}"}
    assert anonymous.post("/predict", json=PREDICT, headers=headers).status_code == 403


def test_disabled_user_cannot_log_in_or_use_tokens(make_settings: Any) -> None:
    # With the active-user cache off, disabling takes effect on the very next request.
    with TestClient(create_app(make_settings(user_cache_ttl_s=0))) as client:
        client.app.state.auth.users.add("alice", PASSWORD, ["predict"])  # type: ignore[attr-defined]
        token = client.post("/token", data={"username": "alice", "password": PASSWORD})
        headers = {"Authorization": f"Bearer {token.json()['access_token']}"}
        assert client.post("/predict", json=PREDICT, headers=headers).status_code == 200
        client.app.state.auth.users.disable("alice")  # type: ignore[attr-defined]
        assert client.post("/predict", json=PREDICT, headers=headers).status_code == 401
        response = client.post("/token", data={"username": "alice", "password": PASSWORD})
        assert response.status_code == 401


def test_active_user_cache_forgets_a_disabled_user_after_its_ttl(settings: Settings) -> None:
    now = [1000.0]
    store = UserStore(Database(settings.database_url))
    store.add("alice", PASSWORD, ["predict"])
    cache = PrincipalCache(store.active, ttl_s=5, clock=lambda: now[0])
    assert cache.active("alice") == Principal("alice", frozenset({"predict"}))
    store.disable("alice")
    now[0] += 4.9
    assert cache.active("alice") is not None, "within the TTL the cached answer stands"
    now[0] += 0.2
    assert cache.active("alice") is None
    assert cache.active("nobody") is None


def test_failed_logins_are_rate_limited(make_settings: Any) -> None:
    with TestClient(create_app(make_settings(login_rate_limit="3/minute"))) as limited:
        for _ in range(3):
            bad = limited.post("/token", data={"username": "x", "password": "wrong password"})
            assert bad.status_code == 401
        blocked = limited.post("/token", data={"username": "x", "password": "wrong password"})
        assert blocked.status_code == 429
        assert int(blocked.headers["retry-after"]) >= 1


def test_database_holds_no_plaintext_password(client: TestClient, settings: Settings) -> None:
    path = settings.database_url.removeprefix("sqlite:///")
    with sqlite3.connect(path) as db:
        dump = "\n".join(db.iterdump())
    assert PASSWORD not in dump
    assert "$argon2id$" in dump


def test_short_secret_is_refused(make_settings: Any) -> None:
    from pydantic import ValidationError

    with pytest.raises(ValidationError, match="at least 32 bytes"):
        make_settings(secret_key="short")


def test_app_refuses_to_start_without_secret(monkeypatch: pytest.MonkeyPatch) -> None:
    from {{ cookiecutter.project_slug }}.settings import ConfigError

    monkeypatch.delenv("APP_SECRET_KEY", raising=False)
    monkeypatch.chdir("/")
    with pytest.raises(ConfigError, match="APP_SECRET_KEY: is required"):
        create_app()


def test_verified_token_cache_honours_expiry_and_size() -> None:
    from {{ cookiecutter.project_slug }}.security.principal import VerifiedTokens

    now = [1000.0]
    cache = VerifiedTokens(max_entries=2, clock=lambda: now[0])
    cache.put("a", {"exp": 1010, "sub": "alice"})
    assert cache.get("a") == {"exp": 1010, "sub": "alice"}
    assert cache.get("a-changed") is None
    now[0] = 1010.0
    assert cache.get("a") is None, "an expired token must not be served from the cache"
    cache.put("b", {"exp": 2000})
    cache.put("c", {"exp": 2000})
    cache.put("d", {"exp": 2000})
    assert cache.get("b") is None and cache.get("d") is not None


def test_cached_token_of_a_disabled_user_is_refused(make_settings: Any) -> None:
    with TestClient(create_app(make_settings(user_cache_ttl_s=0))) as app_client:
        users = app_client.app.state.auth.users  # type: ignore[attr-defined]
        users.add("carol", PASSWORD, ["predict"])
        token = app_client.post("/token", data={"username": "carol", "password": PASSWORD})
        headers = {"Authorization": f"Bearer {token.json()['access_token']}"}
        assert app_client.post("/predict", json=PREDICT, headers=headers).status_code == 200
        users.disable("carol")
        assert app_client.post("/predict", json=PREDICT, headers=headers).status_code == 401


def login(client: TestClient) -> str:
    response = client.post("/token", data={"username": "alice", "password": PASSWORD})
    assert response.status_code == 200, response.text
    token: str = response.json()["access_token"]
    return token


def predicts(client: TestClient, token: str) -> int:
    headers = {"Authorization": f"Bearer {token}"}
    status: int = client.post("/predict", json=PREDICT, headers=headers).status_code
    return status


def test_secret_rotation_keeps_live_tokens_then_retires_the_old_key(make_settings: Any) -> None:
    new_secret = "a-new-secret-key-after-rotation-0123456789"
    with TestClient(create_app(make_settings())) as before:
        before.app.state.auth.users.add("alice", PASSWORD, ["predict"])  # type: ignore[attr-defined]
        old_token = login(before)
    old_kid = jwt.get_unverified_header(old_token)["kid"]
    assert SECRET not in old_kid

    rotated = make_settings(secret_key=new_secret, previous_secret_keys=SECRET)
    with TestClient(create_app(rotated)) as during:
        assert predicts(during, old_token) == 200  # a live token survives the rotation
        new_token = login(during)
        assert jwt.get_unverified_header(new_token)["kid"] != old_kid  # signed with the new key
        assert predicts(during, new_token) == 200
        # A retired key verifies, never signs: a token it signs now is still only as good as
        # its claims, and one naming an unknown key is refused.
        unknown = jwt.encode(claims(), new_secret, headers={"kid": "0123456789abcdef"})
        assert predicts(during, unknown) == 401

    retired = make_settings(secret_key=new_secret)
    with TestClient(create_app(retired)) as after:
        assert predicts(after, old_token) == 401  # the retired key's tokens stop working
        assert predicts(after, new_token) == 200


def test_short_previous_key_is_refused(make_settings: Any) -> None:
    with pytest.raises(ValueError, match="at least 32 bytes"):
        make_settings(previous_secret_keys=f"{SECRET},too-short")
