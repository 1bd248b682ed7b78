"""Slow down password guessing: a budget of failed logins per client address.

Behind a reverse proxy every request comes from the proxy's address. Set
``APP_TRUST_FORWARDED_FOR=true`` only when a proxy you run sets ``X-Forwarded-For``: the service
then counts failures against the last address in that header, the one your proxy appended,
which a client cannot forge. Counts live in ``APP_RATE_LIMIT_STORAGE`` (``memory://`` is per
worker process; a ``redis://`` URL shares them between processes and replicas).
"""

from __future__ import annotations

import math
import time

from fastapi import HTTPException, Request, status
from limits import parse
from limits.storage import storage_from_string
from limits.strategies import MovingWindowRateLimiter


class LoginLimiter:
    def __init__(self, rate: str, storage_url: str, trust_forwarded_for: bool) -> None:
        self._rate = parse(rate)
        self._limiter = MovingWindowRateLimiter(storage_from_string(storage_url))
        self._trust_forwarded_for = trust_forwarded_for

    def client_key(self, request: Request) -> str:
        if self._trust_forwarded_for:
            forwarded = request.headers.get("x-forwarded-for", "")
            hops = [hop.strip() for hop in forwarded.split(",") if hop.strip()]
            if hops:
                return hops[-1]
        return request.client.host if request.client else "unknown"

    def check(self, key: str) -> None:
        """Refuse with 429 while this client has used up its failed-login budget."""
        if self._limiter.test(self._rate, "login", key):
            return
        reset_at = self._limiter.get_window_stats(self._rate, "login", key).reset_time
        retry_after = max(1, math.ceil(reset_at - time.time()))
        raise HTTPException(
            status.HTTP_429_TOO_MANY_REQUESTS,
            detail="too many failed logins; try again later",
            headers={"Retry-After": str(retry_after)},
        )

    def failed(self, key: str) -> None:
        self._limiter.hit(self._rate, "login", key)
