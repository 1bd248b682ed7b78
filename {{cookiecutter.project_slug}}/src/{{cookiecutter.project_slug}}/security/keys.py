"""API keys for machine clients: stored only as SHA-256 digests, shown once at creation.

A key is 32 random bytes, so a fast digest is enough: unlike a password it cannot be guessed
from a dictionary, and a slow hash would add its cost to every request.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import String, select
from sqlalchemy.orm import Mapped, mapped_column

from .database import Base, Database, utcnow
from .principal import Principal, check_scopes, parse_scopes

KEY_PREFIX = "sk_"


class ApiKey(Base):
    __tablename__ = "api_keys"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(64), unique=True, index=True)
    key_digest: Mapped[str] = mapped_column(String(64), unique=True, index=True)
    hint: Mapped[str] = mapped_column(String(16))
    scopes: Mapped[str] = mapped_column(String(255), default="")
    revoked: Mapped[bool] = mapped_column(default=False)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


@dataclass(frozen=True)
class KeyView:
    name: str
    hint: str
    scopes: list[str]
    revoked: bool
    created_at: datetime


class ApiKeyError(ValueError):
    """A key command that cannot be carried out, with the reason."""


def digest(key: str) -> str:
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


class KeyStore:
    def __init__(self, database: Database) -> None:
        self._db = database

    def add(self, name: str, scopes: list[str]) -> str:
        """Create a key and return it; only its digest is stored, so it cannot be shown again."""
        if not name or len(name) > 64 or not name.isprintable():
            raise ApiKeyError("key names are 1 to 64 printable characters")
        scope_text = " ".join(check_scopes(scopes))
        key = KEY_PREFIX + secrets.token_urlsafe(32)
        with self._db.session() as session:
            if session.scalar(select(ApiKey.id).where(ApiKey.name == name)) is not None:
                raise ApiKeyError(f"a key named {name!r} already exists")
            session.add(ApiKey(name=name, key_digest=digest(key), hint=key[:7], scopes=scope_text))
        return key

    def list(self) -> list[KeyView]:
        with self._db.session() as session:
            keys = session.scalars(select(ApiKey).order_by(ApiKey.name)).all()
            return [
                KeyView(k.name, k.hint, sorted(parse_scopes(k.scopes)), k.revoked, k.created_at)
                for k in keys
            ]

    def revoke(self, name: str) -> None:
        with self._db.session() as session:
            key = session.scalar(select(ApiKey).where(ApiKey.name == name))
            if key is None:
                raise ApiKeyError(f"no key named {name!r}")
            key.revoked = True

    def principal(self, key: str) -> Principal | None:
        """The key's principal if it exists and is not revoked."""
        return self.principal_by_digest(digest(key))

    def principal_by_digest(self, wanted: str) -> Principal | None:
        with self._db.session() as session:
            row = session.scalar(select(ApiKey).where(ApiKey.key_digest == wanted))
            if row is None or row.revoked or not hmac.compare_digest(row.key_digest, wanted):
                return None
            return Principal(row.name, parse_scopes(row.scopes))
