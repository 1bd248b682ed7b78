"""Users who log in with a password: the table and what the service and CLI do with it."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import String, select
from sqlalchemy.orm import Mapped, mapped_column

from .database import Base, Database, utcnow
from .passwords import hash_password, verify_password
from .principal import Principal, check_scopes, parse_scopes


class User(Base):
    __tablename__ = "users"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(64), unique=True, index=True)
    password_hash: Mapped[str] = mapped_column(String(255))
    scopes: Mapped[str] = mapped_column(String(255), default="")
    disabled: Mapped[bool] = mapped_column(default=False)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


@dataclass(frozen=True)
class UserView:
    name: str
    scopes: list[str]
    disabled: bool
    created_at: datetime


class UserError(ValueError):
    """A user command that cannot be carried out, with the reason."""


def valid_name(name: str) -> bool:
    """1 to 64 printable characters: what the users table can hold on SQLite and PostgreSQL."""
    return 0 < len(name) <= 64 and name.isprintable()


class UserStore:
    def __init__(self, database: Database) -> None:
        self._db = database

    def add(self, name: str, password: str, scopes: list[str]) -> None:
        if not valid_name(name):
            raise UserError("user names are 1 to 64 printable characters")
        if len(password) < 8:
            raise UserError("passwords need at least 8 characters")
        scope_text = " ".join(check_scopes(scopes))
        with self._db.session() as session:
            if session.scalar(select(User.id).where(User.name == name)) is not None:
                raise UserError(f"user {name!r} already exists")
            session.add(User(name=name, password_hash=hash_password(password), scopes=scope_text))

    def list(self) -> list[UserView]:
        with self._db.session() as session:
            users = session.scalars(select(User).order_by(User.name)).all()
            return [
                UserView(u.name, sorted(parse_scopes(u.scopes)), u.disabled, u.created_at)
                for u in users
            ]

    def disable(self, name: str) -> None:
        with self._db.session() as session:
            user = session.scalar(select(User).where(User.name == name))
            if user is None:
                raise UserError(f"no user named {name!r}")
            user.disabled = True

    def authenticate(self, name: str, password: str) -> Principal | None:
        """The user's principal if the password is right and the user active, else None.

        A name no user can have (a NUL byte, which PostgreSQL refuses, or 10 kB of text) is
        not looked up, but its password is still hashed, so the answer takes the usual time.
        """
        if not valid_name(name):
            verify_password(password, None)
            return None
        with self._db.session() as session:
            user = session.scalar(select(User).where(User.name == name))
            stored = user.password_hash if user is not None else None
            if not verify_password(password, stored) or user is None or user.disabled:
                return None
            return Principal(user.name, parse_scopes(user.scopes))

    def active(self, name: str) -> Principal | None:
        """The principal of an active user, for checking a token's subject still exists."""
        with self._db.session() as session:
            user = session.scalar(select(User).where(User.name == name, User.disabled.is_(False)))
            return Principal(user.name, parse_scopes(user.scopes)) if user else None
