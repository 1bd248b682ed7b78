"""Per-client quotas on the inference routes: ``APP_RATE_LIMIT``, off when empty.

Each client has a budget of inference requests per window, counted with a sliding window
(``limits``' sliding-window counter: one small counter per client and window, smooth at the
window's edge), per authenticated principal, or per client address in a service without auth.
Beyond it the answer is 429 with ``Retry-After`` and the ``RateLimit-Limit``,
``RateLimit-Remaining`` and ``RateLimit-Reset`` headers; with metrics on, it is counted in
``inference_rejected_total{reason="rate_limited"}``.

Counts live in ``APP_RATE_LIMIT_STORAGE``: ``memory://`` counts per worker process (so
``--workers 4`` allows four times the rate); ``redis://`` shares them between processes and
replicas. If Redis cannot be reached the quota fails open: requests are served, unmetered, and a
warning is logged (at most every ``WARN_EVERY_S`` seconds) until Redis answers again. A quota is
a fairness tool; an outage of its counter store must not become an outage of the service.
"""

from __future__ import annotations

import logging
import math
import time
from typing import NoReturn

from fastapi import FastAPI, HTTPException, Request, status
from limits import RateLimitItem, parse_many
from limits.aio.storage import Storage
from limits.aio.strategies import SlidingWindowCounterRateLimiter
from limits.storage import storage_from_string

from .access import Principal
from .settings import Settings
from .state import ServiceState, service_state

logger = logging.getLogger(__name__)

NAMESPACE = "quota"
WARN_EVERY_S = 10.0
# A Redis that does not answer within this long counts as down: the request goes on unmetered.
REDIS_TIMEOUT_S = 0.25


def client_address(request: Request, trust_forwarded_for: bool) -> str:
    """The client's address; behind a proxy you run, the last ``X-Forwarded-For`` hop (the one
    the proxy appended, which a client cannot forge)."""
    if trust_forwarded_for:
        forwarded = request.headers.get("x-forwarded-for", "")
        hops = [hop.strip() for hop in forwarded.split(",") if hop.strip()]
        if hops:
            return hops[-1]
    return request.client.host if request.client else "unknown"


def async_storage(url: str) -> Storage:
    """The ``limits`` asyncio storage for a ``memory://`` or ``redis://`` URL."""
    options: dict[str, float | str] = {}
    if url.startswith(("redis://", "rediss://")):
        options = {
            "implementation": "redispy",
            "socket_timeout": REDIS_TIMEOUT_S,
            "socket_connect_timeout": REDIS_TIMEOUT_S,
        }
    storage = storage_from_string(f"async+{url}", **options)
    if not isinstance(storage, Storage):
        raise TypeError(f"not an asyncio storage: {url}")
    return storage


class RateLimitQuota:
    def __init__(self, rate: str, storage_url: str, trust_forwarded_for: bool) -> None:
        self.limits: list[RateLimitItem] = parse_many(rate)
        self._limiter = SlidingWindowCounterRateLimiter(async_storage(storage_url))
        self._trust_forwarded_for = trust_forwarded_for
        self._warned_at = -math.inf

    def key(self, request: Request, principal: Principal | None) -> str:
        if principal is not None:
            return f"principal:{principal.name}"
        return f"address:{client_address(request, self._trust_forwarded_for)}"

    async def charge(self, request: Request, principal: Principal | None) -> None:
        """Count one request against the caller's budget; 429 when it is used up."""
        key = self.key(request, principal)
        for limit in self.limits:
            try:
                allowed = await self._limiter.hit(limit, NAMESPACE, key)
                if allowed:
                    continue
                stats = await self._limiter.get_window_stats(limit, NAMESPACE, key)
            except Exception as exc:  # the storage is down: serve, unmetered (see above)
                self._storage_failed(exc)
                return
            self._reject(request, limit, stats.reset_time)

    def _reject(self, request: Request, limit: RateLimitItem, reset_at: float) -> NoReturn:
        state: ServiceState = service_state(request)
        if state.observer is not None:
            state.observer.rejected("rate_limited")
        reset_in = max(1, math.ceil(reset_at - time.time()))
        raise HTTPException(
            status.HTTP_429_TOO_MANY_REQUESTS,
            detail=f"quota exceeded: {limit}; retry after {reset_in} s",
            headers={
                "Retry-After": str(reset_in),
                "RateLimit-Limit": str(limit.amount),
                "RateLimit-Remaining": "0",
                "RateLimit-Reset": str(reset_in),
            },
        )

    def _storage_failed(self, exc: Exception) -> None:
        now = time.monotonic()
        if now - self._warned_at >= WARN_EVERY_S:
            self._warned_at = now
            logger.warning("quota storage unreachable, serving without quota: %r", exc)


def install(app: FastAPI, settings: Settings) -> None:
    """Charge every inference request to its client's quota, when ``APP_RATE_LIMIT`` is set."""
    if not settings.rate_limit:
        return
    state: ServiceState = app.state.service
    state.quota = RateLimitQuota(
        settings.rate_limit, settings.rate_limit_storage, settings.trust_forwarded_for
    )
