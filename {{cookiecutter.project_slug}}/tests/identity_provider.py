"""A small OpenID Connect provider for tests: discovery document and key set over real HTTP.

It serves ``/.well-known/openid-configuration`` and ``/jwks`` on a loopback port from a thread,
and signs tokens with its private keys, so the service fetches and checks keys exactly as it
does against Keycloak or Entra ID. ``rotate`` publishes a new key (and can retire the old one);
``stop``/``start`` make the provider unreachable and back.
"""

from __future__ import annotations

import functools
import json
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import jwt
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from jwt.algorithms import ECAlgorithm, RSAAlgorithm

AUDIENCE = "{{ cookiecutter.project_slug.replace('_', '-') }}"

PrivateKey = rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey

# Keys of closed providers, by algorithm family, for the next provider to sign with. Making an
# RSA key takes a tenth of a second or more, and every test starts a provider of its own: that
# was most of this suite's time. Two providers that run at once never share a key.
_SPARE_KEYS: dict[str, list[PrivateKey]] = {"RS": [], "ES": []}


class IdentityProvider:
    def __init__(self) -> None:
        self.keys: dict[str, tuple[str, PrivateKey]] = {}  # kid -> (alg, private key)
        self.current = self.add_key("RS256")
        self.add_key("ES256")
        self.jwks_requests = 0
        self._server: ThreadingHTTPServer | None = None
        self.port = 0
        self.start()

    @property
    def issuer(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def add_key(self, algorithm: str) -> str:
        kid = uuid.uuid4().hex[:12]
        spare = _SPARE_KEYS[algorithm[:2]]
        if spare:
            self.keys[kid] = (algorithm, spare.pop())
        elif algorithm.startswith("ES"):
            self.keys[kid] = (algorithm, ec.generate_private_key(ec.SECP256R1()))
        else:
            self.keys[kid] = (algorithm, rsa.generate_private_key(65537, 2048))
        return kid

    def kid_for(self, algorithm: str) -> str:
        return next(kid for kid, (alg, _) in self.keys.items() if alg == algorithm)

    def rotate(self, retire_old: bool = False) -> str:
        """Sign with a new RS256 key from now on; publish the old one still unless retired."""
        old = self.current
        self.current = self.add_key("RS256")
        if retire_old:
            del self.keys[old]
        return self.current

    def jwks(self) -> dict[str, Any]:
        keys = []
        for kid, (algorithm, private) in self.keys.items():
            if isinstance(private, ec.EllipticCurvePrivateKey):
                jwk = ECAlgorithm.to_jwk(private.public_key(), as_dict=True)
            else:
                jwk = RSAAlgorithm.to_jwk(private.public_key(), as_dict=True)
            keys.append({**jwk, "kid": kid, "use": "sig", "alg": algorithm})
        return {"keys": keys}

    def token(
        self,
        scope: str = "predict",
        kid: str | None = None,
        headers: dict[str, Any] | None = None,
        with_kid: bool = True,
        **claims: Any,
    ) -> str:
        """A token signed by this provider; ``claims`` override or (as None) remove defaults.

        ``with_kid=False`` leaves the key id out, as some providers do.
        """
        kid = kid or self.current
        algorithm, private = self.keys[kid]
        now = int(time.time())
        body: dict[str, Any] = {
            "iss": self.issuer,
            "aud": AUDIENCE,
            "sub": "client-1",
            "scope": scope,
            "iat": now,
            "exp": now + 300,
        }
        body.update(claims)
        body = {name: value for name, value in body.items() if value is not None}
        header = {"kid": kid} if with_kid else {}
        return jwt.encode(body, private, algorithm=algorithm, headers={**header, **(headers or {})})

    def start(self) -> None:
        provider = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                if self.path == "/.well-known/openid-configuration":
                    document = {"issuer": provider.issuer, "jwks_uri": provider.issuer + "/jwks"}
                elif self.path == "/jwks":
                    provider.jwks_requests += 1
                    document = provider.jwks()
                else:
                    self.send_error(404)
                    return
                body = json.dumps(document).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self.port = self._server.server_address[1]
        # shutdown() waits for the loop's next poll: the default half second was most of the
        # suite's time, one provider per test.
        serve = functools.partial(self._server.serve_forever, poll_interval=0.01)
        threading.Thread(target=serve, daemon=True).start()

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def close(self) -> None:
        """Stop for good, and hand the keys on to the next provider."""
        self.stop()
        for algorithm, private in self.keys.values():
            _SPARE_KEYS[algorithm[:2]].append(private)
        self.keys.clear()
