"""A real OpenID Connect provider for the boot tests: ``oidc-provider-mock`` (PyPI) as a process.

It publishes a discovery document and a key set, and issues ID tokens (RS256, signed with a key
it makes at start-up, so a restart is a key rotation) through the authorization-code flow, which
the helper here walks without a browser. Its tokens carry custom user claims, so a user given
``{"scope": "predict"}`` gets a token with that scope, and ``aud`` is the client id asked for.
"""

from __future__ import annotations

import subprocess
import sys
import time
import urllib.parse
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from tests.conftest import _STARTED, Service, free_port

# The baked default project's name: the audience its services are told to expect.
AUDIENCE = "iris-classifier"
REDIRECT = "http://127.0.0.1/callback"


@dataclass
class Provider:
    service: Service

    @property
    def issuer(self) -> str:
        return f"http://127.0.0.1:{self.service.port}"

    def token(self, sub: str = "prober", scope: str = "predict", audience: str = AUDIENCE) -> str:
        """An ID token for ``sub`` with ``scope``, for the client ``audience``."""
        with httpx.Client(base_url=self.issuer, timeout=30) as client:
            client.put(f"/users/{sub}", json={"scope": scope}).raise_for_status()
            query = {
                "client_id": audience,
                "redirect_uri": REDIRECT,
                "response_type": "code",
                "scope": "openid",
            }
            login = client.post("/oauth2/authorize", params=query, data={"sub": sub})
            assert login.status_code == 302, login.text
            code = urllib.parse.parse_qs(urllib.parse.urlparse(login.headers["location"]).query)
            form = {
                "grant_type": "authorization_code",
                "code": code["code"][0],
                "redirect_uri": REDIRECT,
                "client_id": audience,
                "client_secret": "unused",
            }
            tokens = client.post("/oauth2/token", data=form)
            assert tokens.status_code == 200, tokens.text
            token: str = tokens.json()["id_token"]
            return token


def start_provider(folder: Path, services: list[Service], port: int | None = None) -> Provider:
    """Start the provider on a loopback port (stopped with ``services``); wait until it answers."""
    port = port or free_port()
    log = folder / f"oidc-provider-{port}.log"
    process = subprocess.Popen(
        [sys.executable, "-m", "oidc_provider_mock", "--host", "127.0.0.1", "--port", str(port)],
        stdout=log.open("w"),
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    _STARTED.append(process)
    service = Service(process, port, log, f"oidc-provider-mock on {port}")
    services.append(service)
    deadline = time.monotonic() + 60
    with httpx.Client(timeout=5) as client:
        while time.monotonic() < deadline:
            if process.poll() is not None:
                pytest.fail(f"{service.what}: exited {process.returncode}\n{service.output()}")
            try:
                url = f"http://127.0.0.1:{port}/.well-known/openid-configuration"
                if client.get(url).status_code == 200:
                    return Provider(service)
            except httpx.TransportError:
                pass
            time.sleep(0.05)  # poll interval, not synchronisation: the deadline decides
    pytest.fail(f"{service.what}: no discovery document within 60 s\n{service.output()}")
