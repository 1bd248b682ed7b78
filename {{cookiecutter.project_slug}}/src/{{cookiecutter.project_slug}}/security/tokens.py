"""Short-lived signed access tokens (JWT, HMAC) with every claim checked on the way in."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import jwt


@dataclass(frozen=True)
class TokenService:
    secret: bytes
    algorithm: str
    issuer: str
    audience: str
    expire: timedelta
    leeway_s: int

    def issue(self, subject: str, scopes: list[str]) -> tuple[str, int]:
        """A signed token for ``subject`` and its lifetime in seconds."""
        now = datetime.now(UTC)
        claims = {
            "sub": subject,
            "scope": " ".join(scopes),
            "iss": self.issuer,
            "aud": self.audience,
            "iat": now,
            "exp": now + self.expire,
        }
        token = jwt.encode(claims, self.secret, algorithm=self.algorithm)
        return token, int(self.expire.total_seconds())

    def decode(self, token: str) -> dict[str, Any]:
        """The token's claims; raises ``jwt.InvalidTokenError`` for anything not quite right.

        Only the one configured algorithm is accepted (never ``none``, never a different
        HMAC size), and exp, iat, sub, iss and aud must all be present and valid.
        """
        claims: dict[str, Any] = jwt.decode(
            token,
            self.secret,
            algorithms=[self.algorithm],
            audience=self.audience,
            issuer=self.issuer,
            leeway=self.leeway_s,
            options={"require": ["exp", "iat", "sub", "iss", "aud"]},
        )
        if not isinstance(claims.get("sub"), str) or not isinstance(claims.get("scope", ""), str):
            raise jwt.InvalidTokenError("malformed sub or scope claim")
        return claims
