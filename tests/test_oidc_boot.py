"""auth=oidc served for real against a real OpenID Connect provider process.

The provider is ``oidc-provider-mock`` from PyPI (see ``tests/identity.py``), started on a
loopback port and stopped by PID, as is every service. Covered: its tokens are accepted; tokens
from another issuer, for another audience, with a symmetric ``alg`` or ``alg: none`` are 401;
the provider rotates its key (a restart makes a new one) while the service runs; the provider
goes down (the keys already fetched keep working); the provider is not there when the service
starts (503 with ``Retry-After``, then 200 once it answers).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import Baked, Service, baked_with, free_port, install_project, start_service
from tests.identity import AUDIENCE, Provider, start_provider
from tests.variants import DEFAULTS

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("oidc_boot")]

PREDICT = {"instances": [[5.1, 3.5, 1.4, 0.2]]}
# The dependency set of the default oidc variant of tests/test_boot.py: one shared install.
CONTEXT = {"auth": "oidc"}


@dataclass
class Installed:
    baked: Baked
    python: Path
    env: dict[str, str]

    def serve(self, services: list[Service], issuer: str, **settings: str) -> Service:
        env = {
            **self.env,
            "APP_LOG_LEVEL": "info",
            "APP_OIDC_ISSUER": issuer,
            "APP_OIDC_AUDIENCE": AUDIENCE,
            **settings,
        }
        service = start_service(self.python, self.baked.path, env, f"[{self.baked.name}] serve")
        services.append(service)
        service.wait_ready()
        return service


@pytest.fixture(scope="module")
def installed(cookies_session: Any, run_dir: Path) -> Installed:
    baked = baked_with(cookies_session, **{**DEFAULTS, **CONTEXT})
    python, env = install_project(run_dir / "venvs", baked)
    return Installed(baked, python, env)


@pytest.fixture
def provider(installed: Installed, services: list[Service]) -> Provider:
    return start_provider(installed.baked.path, services)


@pytest.fixture
def client(installed: Installed, provider: Provider, services: list[Service]) -> Iterator[Any]:
    service = installed.serve(services, provider.issuer)
    with service.client() as client:
        yield client


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def segment(data: dict[str, Any] | bytes) -> str:
    raw = data if isinstance(data, bytes) else json.dumps(data).encode()
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def resigned(token: str, algorithm: str, key: bytes | None) -> str:
    """``token``'s claims under a header naming ``algorithm``, HMAC-signed with ``key`` (or
    unsigned for ``none``): what an attacker who read the provider's public key could send."""
    header = segment({"typ": "JWT", "alg": algorithm})
    signing_input = f"{header}.{token.split('.')[1]}"
    if key is None:
        return signing_input + "."
    signature = hmac.new(key, signing_input.encode(), hashlib.sha256).digest()
    return f"{signing_input}.{segment(signature)}"


def test_provider_tokens_are_accepted_and_others_refused(
    installed: Installed, provider: Provider, client: httpx.Client, services: list[Service]
) -> None:
    token = provider.token()
    response = client.post("/predict", json=PREDICT, headers=bearer(token))
    assert response.status_code == 200, response.text
    assert response.json()["predictions"] == ["setosa"]
    assert client.get("/model", headers=bearer(token)).status_code == 200

    other = start_provider(installed.baked.path, services)  # another issuer, its own key
    public_jwk = httpx.get(f"{provider.issuer}/jwks").json()["keys"][0]
    refused = {
        "no scope": provider.token(sub="nobody", scope="openid"),
        "another issuer": other.token(),
        "another audience": provider.token(audience="another-service"),
        "HS256 keyed with the provider's public key": resigned(
            token, "HS256", json.dumps(public_jwk).encode()
        ),
        "HS256 keyed with its modulus": resigned(token, "HS256", public_jwk["n"].encode()),
        "alg none": resigned(token, "none", None),
        "tampered": token[:-4] + ("AAAA" if not token.endswith("AAAA") else "BBBB"),
    }
    for what, bad in refused.items():
        answer = client.post("/predict", json=PREDICT, headers=bearer(bad))
        expected = 403 if what == "no scope" else 401
        assert answer.status_code == expected, (what, answer.text)
        assert answer.headers["content-type"] == "application/json", what
        assert "bearer" in answer.headers["www-authenticate"].lower(), what
    assert client.post("/predict", json=PREDICT).status_code == 401


def test_key_rotation_at_the_provider_while_the_service_runs(
    installed: Installed, provider: Provider, services: list[Service]
) -> None:
    service = installed.serve(services, provider.issuer, APP_OIDC_REFRESH_INTERVAL_S="0")
    before = provider.token()
    with service.client() as client:
        assert client.post("/predict", json=PREDICT, headers=bearer(before)).status_code == 200

        # A restart of this provider is a rotation: a new key, the old one withdrawn.
        port = provider.service.port
        provider.service.stop()
        rotated = start_provider(installed.baked.path, services, port=port)
        after = rotated.token()
        answer = client.post("/predict", json=PREDICT, headers=bearer(after))
        assert answer.status_code == 200, answer.text
        # The old key is no longer published, so its tokens no longer pass.
        assert client.post("/predict", json=PREDICT, headers=bearer(before)).status_code == 401

        # The provider goes away: the keys already fetched keep working, also for a token
        # the service has not seen yet.
        unseen = rotated.token(sub="another-client")
        rotated.service.stop()
        for token in (after, unseen, unseen):
            assert client.post("/predict", json=PREDICT, headers=bearer(token)).status_code == 200
    log = service.output()
    assert "identity provider signing keys" in log, log


def test_provider_down_at_start_is_503_until_it_answers(
    installed: Installed, services: list[Service]
) -> None:
    port = free_port()  # nothing listens here yet
    issuer = f"http://127.0.0.1:{port}"
    service = installed.serve(services, issuer, APP_OIDC_REFRESH_INTERVAL_S="0.2")
    with service.client() as client:
        unsigned = resigned(segment({}) + "." + segment({"iss": issuer}) + ".x", "RS256", None)
        answer = client.post("/predict", json=PREDICT, headers=bearer(unsigned))
        assert answer.status_code == 503, answer.text
        assert answer.json()["detail"].startswith("cannot check tokens"), answer.text
        assert int(answer.headers["retry-after"]) >= 1
        assert client.get("/health/live").status_code == 200

        provider = start_provider(installed.baked.path, services, port=port)
        token = provider.token()
        deadline = time.monotonic() + 30
        while True:
            answer = client.post("/predict", json=PREDICT, headers=bearer(token))
            if answer.status_code != 503 or time.monotonic() > deadline:
                break
            time.sleep(0.05)  # poll interval, not synchronisation: the deadline decides
        assert answer.status_code == 200, answer.text
    assert "starting without the identity provider's keys" in service.output()
