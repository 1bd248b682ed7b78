"""Tokens from an OpenID Connect provider: what is accepted, what is refused, and key rotation.

The provider is a real HTTP server on a loopback port (``identity_provider.py``): the service
reads its discovery document and key set exactly as it would Keycloak's or Entra ID's.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from collections.abc import Iterator
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from fastapi.testclient import TestClient
from pydantic import ValidationError

from {{ cookiecutter.project_slug }}.main import create_app

from .conftest import IRIS_ROW
from .identity_provider import IdentityProvider

BODY = {"instances": [IRIS_ROW]}


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def predict(client: TestClient, token: str) -> Any:
    return client.post("/predict", json=BODY, headers=bearer(token))


@pytest.fixture
def fast_refresh(make_settings: Any) -> Iterator[TestClient]:
    """A service that may fetch the provider's keys again at once (no refresh interval)."""
    with TestClient(create_app(make_settings(oidc_refresh_interval_s=0))) as client:
        yield client


def segment(data: dict[str, Any] | bytes) -> str:
    raw = data if isinstance(data, bytes) else json.dumps(data).encode()
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def test_provider_tokens_are_accepted(anonymous: TestClient, provider: IdentityProvider) -> None:
    for algorithm in ("RS256", "ES256"):
        response = predict(anonymous, provider.token(kid=provider.kid_for(algorithm)))
        assert response.status_code == 200, (algorithm, response.text)
        assert response.json()["predictions"] == ["setosa"]


@pytest.mark.parametrize(
    "claims",
    [
        {"scp": "predict", "scope": None},  # Entra ID
        {"scp": ["openid", "predict"], "scope": None},  # Okta
        {"scope": "openid profile predict"},
    ],
    ids=["scp-string", "scp-list", "scope-among-others"],
)
def test_scope_claims_of_the_common_providers(
    anonymous: TestClient, provider: IdentityProvider, claims: dict[str, Any]
) -> None:
    assert predict(anonymous, provider.token(**claims)).status_code == 200


def test_missing_scope_is_403(anonymous: TestClient, provider: IdentityProvider) -> None:
    response = predict(anonymous, provider.token(scope="openid profile"))
    assert response.status_code == 403
    assert "predict" in response.json()["detail"]
    assert 'error="insufficient_scope"' in response.headers["www-authenticate"]


def test_scope_names_follow_the_settings(make_settings: Any, provider: IdentityProvider) -> None:
    settings = make_settings(oidc_predict_scope="api://model/Model.Predict")
    with TestClient(create_app(settings)) as client:
        assert predict(client, provider.token(scope="api://model/Model.Predict")).status_code == 200
        assert predict(client, provider.token(scope="predict")).status_code == 403


def test_no_token_is_401_with_a_challenge(anonymous: TestClient) -> None:
    for headers in ({}, {"Authorization": "Basic YWxpY2U6c2VjcmV0"}, {"Authorization": "Bearer"}):
        response = anonymous.post("/predict", json=BODY, headers=headers)
        assert response.status_code == 401, headers
        assert response.headers["www-authenticate"] == "Bearer"
        assert response.json() == {"detail": "Not authenticated"}


def public_key_pem(provider: IdentityProvider) -> bytes:
    private = provider.keys[provider.current][1]
    return private.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def forged(provider: IdentityProvider, algorithm: str, key: bytes | None) -> str:
    """A token with the provider's claims and key id, signed with ``algorithm`` and ``key``."""
    header = segment({"alg": algorithm, "typ": "JWT", "kid": provider.current})
    payload = jwt_payload(provider.token())
    signing_input = f"{header}.{payload}"
    if key is None:
        return signing_input + "."
    signature = hmac.new(key, signing_input.encode(), hashlib.sha256).digest()
    return f"{signing_input}.{segment(signature)}"


def jwt_payload(token: str) -> str:
    return token.split(".")[1]


def test_refused_tokens_are_401(anonymous: TestClient, provider: IdentityProvider) -> None:
    other = IdentityProvider()  # another issuer, with keys of its own
    try:
        stranger = other.token()
        impostor = other.token(kid=other.current, iss=provider.issuer)
    finally:
        other.stop()
    valid = provider.token()
    refused = {
        "another issuer": stranger,
        "another issuer's key, our iss": impostor,
        "our key, another iss": provider.token(iss="https://elsewhere.example"),
        "another audience": provider.token(aud="another-service"),
        "expired": provider.token(exp=1_000_000_000, iat=999_999_000),
        "no exp": provider.token(exp=None),
        "no aud": provider.token(aud=None),
        "no iss": provider.token(iss=None),
        "alg none": forged(provider, "none", None),
        "HS256 with the public key as secret": forged(provider, "HS256", public_key_pem(provider)),
        "unknown kid": provider.token(headers={"kid": "no-such-key"}),
        "tampered payload": valid.rsplit(".", 2)[0] + "." + jwt_payload(stranger) + ".x",
        "not a JWT": "not-a-token",
        "too long": "a" * 20_000,
    }
    for what, token in refused.items():
        response = predict(anonymous, token)
        assert response.status_code == 401, (what, response.text)
        assert response.json() == {"detail": "Invalid or expired token"}, what
        assert response.headers["www-authenticate"] == 'Bearer error="invalid_token"', what
    assert predict(anonymous, valid).status_code == 200


def test_unknown_key_ids_fetch_the_keys_at_most_once_per_interval(
    anonymous: TestClient, provider: IdentityProvider
) -> None:
    fetched = provider.jwks_requests
    for n in range(20):
        assert (
            predict(anonymous, provider.token(headers={"kid": f"made-up-{n}"})).status_code == 401
        )
    # The default interval is a minute: twenty unknown ids cause no fetch at all, because the
    # keys were fetched at start-up moments ago.
    assert provider.jwks_requests == fetched


def test_rotation_at_the_provider(fast_refresh: TestClient, provider: IdentityProvider) -> None:
    before = provider.token()
    assert predict(fast_refresh, before).status_code == 200
    fetched = provider.jwks_requests

    provider.rotate()  # new key signs; the old one is still published
    after = provider.token()
    assert predict(fast_refresh, after).status_code == 200
    assert provider.jwks_requests == fetched + 1  # the unknown kid fetched the keys once
    assert predict(fast_refresh, before).status_code == 200  # live tokens keep working
    assert predict(fast_refresh, after).status_code == 200
    assert provider.jwks_requests == fetched + 1

    provider.rotate(retire_old=True)  # the key of "after" is withdrawn
    newest = provider.token()
    assert predict(fast_refresh, newest).status_code == 200
    assert predict(fast_refresh, after).status_code == 401  # no longer published: refused
    assert predict(fast_refresh, before).status_code == 200  # its key still is


def test_rotation_of_a_provider_that_names_no_key(
    make_settings: Any, provider: IdentityProvider
) -> None:
    del provider.keys[provider.kid_for("ES256")]  # one key, and tokens without a kid
    with TestClient(create_app(make_settings(oidc_refresh_interval_s=0))) as client:
        before = provider.token(with_kid=False)
        assert predict(client, before).status_code == 200
        provider.rotate(retire_old=True)
        # The signature fails with the key held; the keys are fetched again and it passes.
        assert predict(client, provider.token(with_kid=False)).status_code == 200
        assert predict(client, before).status_code == 401


def test_provider_down_later_keeps_the_keys(make_settings: Any, provider: IdentityProvider) -> None:
    settings = make_settings(oidc_refresh_interval_s=0, oidc_keys_max_age_s=0.001)
    with TestClient(create_app(settings)) as client:
        token = provider.token()
        provider.stop()
        # The keys are past their age: each request tries to fetch them again, and fails.
        for _ in range(3):
            assert predict(client, token).status_code == 200
        assert predict(client, provider.token(headers={"kid": "unknown"})).status_code == 401


def test_provider_down_at_start_is_503_until_it_answers(
    make_settings: Any, provider: IdentityProvider
) -> None:
    provider.stop()
    settings = make_settings(oidc_refresh_interval_s=0)
    with TestClient(create_app(settings)) as client:
        assert client.get("/health/live").status_code == 200
        response = predict(client, provider.token())
        assert response.status_code == 503
        assert "identity provider" in response.json()["detail"]
        assert int(response.headers["retry-after"]) >= 1
        provider.start()  # same port
        assert predict(client, provider.token()).status_code == 200


def test_retry_after_counts_down_the_refresh_interval(
    make_settings: Any, provider: IdentityProvider
) -> None:
    provider.stop()
    with TestClient(create_app(make_settings(oidc_refresh_interval_s=60))) as client:
        response = predict(client, provider.token())
        assert response.status_code == 503
        assert 55 <= int(response.headers["retry-after"]) <= 60


def test_openapi_names_the_provider(anonymous: TestClient, provider: IdentityProvider) -> None:
    schema = anonymous.get("/openapi.json").json()
    scheme = schema["components"]["securitySchemes"]["OpenIdConnect"]
    assert scheme["type"] == "openIdConnect"
    assert scheme["openIdConnectUrl"] == provider.issuer + "/.well-known/openid-configuration"
    assert schema["paths"]["/predict"]["post"]["security"] == [{"OpenIdConnect": []}]
    assert not [path for path in schema["paths"] if "token" in path]  # no login route


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("oidc_algorithms", "HS256"),
        ("oidc_algorithms", "RS256,none"),
        ("oidc_algorithms", ""),
        ("oidc_issuer", "file:///etc/passwd"),
        ("oidc_jwks_url", "ftp://example.com/keys"),
    ],
)
def test_unsafe_settings_are_refused(make_settings: Any, name: str, value: str) -> None:
    with pytest.raises(ValidationError, match=name):
        make_settings(**{name: value})
