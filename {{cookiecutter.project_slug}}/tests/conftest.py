"""Shared fixtures: an app built from explicit settings, and a client with valid credentials."""

from __future__ import annotations
{% if cookiecutter.auth != "none" %}
import itertools
{%- endif %}
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from {{ cookiecutter.project_slug }}.main import create_app
from {{ cookiecutter.project_slug }}.settings import Settings
{%- if cookiecutter.auth == "oidc" %}

from .identity_provider import AUDIENCE, IdentityProvider
{%- endif %}

IRIS_ROW = [5.1, 3.5, 1.4, 0.2]
{%- if cookiecutter.auth == "jwt" %}
SECRET = "test-secret-key-that-is-long-enough-0123456789"
PASSWORD = "correct horse battery staple"


@pytest.fixture(autouse=True, scope="session")
def cheap_password_hashing() -> Iterator[None]:
    """Argon2 at its lowest cost while testing, as Django projects swap in a fast hasher for
    their tests. Nearly every test logs in, so hashes one password and checks it, and at the
    production cost (a tenth of a second each) that was most of this suite's time. The hashes
    are still Argon2id, made and checked by the same code."""
    from pwdlib import PasswordHash
    from pwdlib.hashers.argon2 import Argon2Hasher

    from {{ cookiecutter.project_slug }}.security import passwords

    cheap = PasswordHash((Argon2Hasher(time_cost=1, memory_cost=8, parallelism=1),))
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(passwords, "_hasher", cheap)
        passwords._dummy_hash.cache_clear()
        yield
    passwords._dummy_hash.cache_clear()
{%- endif %}


{%- if cookiecutter.auth == "oidc" %}


@pytest.fixture
def provider() -> Iterator[IdentityProvider]:
    """A real identity provider on a loopback port, with fresh keys for each test."""
    provider = IdentityProvider()
    yield provider
    provider.stop()
{%- endif %}


@pytest.fixture
def make_settings(tmp_path: Path{% if cookiecutter.auth == "oidc" %}, provider: IdentityProvider{% endif %}) -> Any:
    def make(**overrides: Any) -> Settings:
        values: dict[str, Any] = {
            "log_level": "warning",
{%- if cookiecutter.auth == "oidc" %}
            "oidc_issuer": provider.issuer,
            "oidc_audience": AUDIENCE,
{%- endif %}
{%- if cookiecutter.auth in ["jwt", "api_key"] %}
            "database_url": f"sqlite:///{tmp_path / 'app.db'}",
{%- endif %}
{%- if cookiecutter.auth == "jwt" %}
            "secret_key": SECRET,
{%- endif %}
        }
        values.update(overrides)
        return Settings(_env_file=None, **values)

    return make


@pytest.fixture
def settings(make_settings: Any) -> Settings:
    result: Settings = make_settings()
    return result


@pytest.fixture
def anonymous(settings: Settings) -> Iterator[TestClient]:
    """A client of a started app (lifespan run, model loaded) that sends no credentials."""
    with TestClient(create_app(settings)) as client:
        yield client


@pytest.fixture
def credentials(anonymous: TestClient{% if cookiecutter.auth == "oidc" %}, provider: IdentityProvider{% endif %}) -> Callable[..., dict[str, str]]:
    """Headers with credentials that grant ``scopes``, of the kind this service uses."""
{%- if cookiecutter.auth == "none" %}
    return lambda *scopes: {}
{%- else %}
    # The first caller has the name that the auth kind's own tests use.
    names = itertools.chain(["{{ {'jwt': 'alice', 'api_key': 'tester'}.get(cookiecutter.auth, 'client-1') }}"], (f"caller-{n}" for n in itertools.count(1)))

    def make(*scopes: str) -> dict[str, str]:
        name = next(names)
{%- if cookiecutter.auth == "jwt" %}
        anonymous.app.state.auth.users.add(name, PASSWORD, list(scopes))  # type: ignore[attr-defined]
        response = anonymous.post("/token", data={"username": name, "password": PASSWORD})
        assert response.status_code == 200, response.text
        return {"Authorization": f"Bearer {response.json()['access_token']}"}
{%- elif cookiecutter.auth == "api_key" %}
        key = anonymous.app.state.auth.keys.add(name, list(scopes))  # type: ignore[attr-defined]
        return {"X-API-Key": key}
{%- else %}
        return {"Authorization": f"Bearer {provider.token(' '.join(scopes), sub=name)}"}
{%- endif %}

    return make
{%- endif %}


@pytest.fixture
def auth_headers(credentials: Callable[..., dict[str, str]]) -> dict[str, str]:
    """Credentials with the predict scope, of the kind this service uses."""
    return credentials("predict")


@pytest.fixture
def client(anonymous: TestClient, auth_headers: dict[str, str]) -> TestClient:
    """A client of a started app that sends valid credentials with every request."""
    anonymous.headers.update(auth_headers)
    return anonymous
