"""Password hashing with Argon2 (pwdlib), with equal work for unknown users."""

from __future__ import annotations

from functools import cache

from pwdlib import PasswordHash

_hasher = PasswordHash.recommended()


@cache
def _dummy_hash() -> str:
    """Verifying against this when the user does not exist makes a failed login take the same
    time whether or not the name is known, so response times do not reveal user names. Made on
    first use: hashing costs a tenth of a second that start-up need not pay."""
    return _hasher.hash("dummy password used only for timing")


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def verify_password(password: str, password_hash: str | None) -> bool:
    if password_hash is None:
        _hasher.verify(password, _dummy_hash())
        return False
    return _hasher.verify(password, password_hash)
