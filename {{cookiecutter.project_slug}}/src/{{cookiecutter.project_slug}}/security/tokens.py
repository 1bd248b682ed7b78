"""Short-lived signed access tokens (JWT, HMAC) with every claim checked on the way in.

Keys rotate without logging anyone out: every token names its key in the ``kid`` header (a
digest of the key, not the key), ``APP_SECRET_KEY`` signs new tokens, and the keys in
``APP_PREVIOUS_SECRET_KEYS`` still verify the tokens they signed until those expire. Remove a
previous key once ``APP_TOKEN_EXPIRE_MINUTES`` have passed since the rotation.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import jwt


def key_id(secret: bytes) -> str:
    """A key's name in token headers: says which key, reveals nothing of it."""
    return hashlib.sha256(b"key id:" + secret).hexdigest()[:16]


@dataclass(frozen=True)
class TokenService:
    secret: bytes
    algorithm: str
    issuer: str
    audience: str
    expire: timedelta
    leeway_s: int
    # Retired keys: they verify the tokens they signed, never sign.
    previous: tuple[bytes, ...] = ()
    _keys: dict[str, bytes] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        keys = {key_id(key): key for key in self.previous}
        keys[key_id(self.secret)] = self.secret
        object.__setattr__(self, "_keys", keys)

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
        headers = {"kid": key_id(self.secret)}
        token = jwt.encode(claims, self.secret, algorithm=self.algorithm, headers=headers)
        return token, int(self.expire.total_seconds())

    def decode(self, token: str) -> dict[str, Any]:
        """The token's claims; raises ``jwt.InvalidTokenError`` for anything not quite right.

        Only the one configured algorithm is accepted (never ``none``, never a different
        HMAC size), and exp, iat, sub, iss and aud must all be present and valid. The key is
        the one the ``kid`` header names; a token without one (made before keys had names) is
        checked with the current key.
        """
        kid = jwt.get_unverified_header(token).get("kid")
        key = self.secret if kid is None else self._keys.get(kid) if isinstance(kid, str) else None
        if key is None:
            raise jwt.InvalidTokenError("unknown key id")
        claims: dict[str, Any] = jwt.decode(
            token,
            key,
            algorithms=[self.algorithm],
            audience=self.audience,
            issuer=self.issuer,
            leeway=self.leeway_s,
            options={"require": ["exp", "iat", "sub", "iss", "aud"]},
        )
        if not isinstance(claims.get("sub"), str) or not isinstance(claims.get("scope", ""), str):
            raise jwt.InvalidTokenError("malformed sub or scope claim")
        return claims
