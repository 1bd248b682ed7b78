"""Slow down password guessing: a budget of failed logins per client address.

Behind a reverse proxy every request comes from the proxy's address. Set
``APP_TRUST_FORWARDED_FOR=true`` only when a proxy you run sets ``X-Forwarded-For``: the service
then counts failures against the last address in that header, the one your proxy appended,
which a client cannot forge. Counts live in ``APP_RATE_LIMIT_STORAGE`` (``memory://`` is per
worker process; a ``redis://`` URL shares them between processes and replicas), as the quotas'
do. If Redis cannot be reached, logins are not limited (and a warning is logged) until it
answers again: the password check itself still runs, so nothing is let in without a password.
"""

from __future__ import annotations

import logging
import math
import time

from fastapi import HTTPException, Request, status
from limits import parse
from limits.storage import Storage, storage_from_string
from limits.strategies import MovingWindowRateLimiter

from ..quota import REDIS_TIMEOUT_S, WARN_EVERY_S, client_address

logger = logging.getLogger(__name__)


def storage(url: str) -> Storage:
    options: dict[str, float] = {}
    if url.startswith(("redis://", "rediss://")):
        options = {"socket_timeout": REDIS_TIMEOUT_S, "socket_connect_timeout": REDIS_TIMEOUT_S}
    result = storage_from_string(url, **options)
    if not isinstance(result, Storage):
        raise TypeError(f"not a synchronous storage: {url}")
    return result


class LoginLimiter:
    def __init__(self, rate: str, storage_url: str, trust_forwarded_for: bool) -> None:
        self._rate = parse(rate)
        self._limiter = MovingWindowRateLimiter(storage(storage_url))
        self._trust_forwarded_for = trust_forwarded_for
        self._warned_at = -math.inf

    def client_key(self, request: Request) -> str:
        return client_address(request, self._trust_forwarded_for)

    def check(self, key: str) -> None:
        """Refuse with 429 while this client has used up its failed-login budget."""
        try:
            if self._limiter.test(self._rate, "login", key):
                return
            reset_at = self._limiter.get_window_stats(self._rate, "login", key).reset_time
        except Exception as exc:  # the storage is down: not limited (see above)
            self._storage_failed(exc)
            return
        retry_after = max(1, math.ceil(reset_at - time.time()))
        raise HTTPException(
            status.HTTP_429_TOO_MANY_REQUESTS,
            detail="too many failed logins; try again later",
            headers={"Retry-After": str(retry_after)},
        )

    def failed(self, key: str) -> None:
        try:
            self._limiter.hit(self._rate, "login", key)
        except Exception as exc:
            self._storage_failed(exc)

    def _storage_failed(self, exc: Exception) -> None:
        now = time.monotonic()
        if now - self._warned_at >= WARN_EVERY_S:
            self._warned_at = now
            logger.warning("login limit storage unreachable, not limiting: %r", exc)
