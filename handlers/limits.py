"""Per-caller rate limits, counted in the session store so every replica shares one budget."""

from __future__ import annotations

import logging

from aiohttp import web

from core.errors import RateLimitedError
from faultmaven.services import Services
from handlers.auth import Principal

log = logging.getLogger(__name__)

RATE_WINDOW_SECONDS = 60


def rate_limit_key(request: web.Request, principal: Principal) -> str:
    """Authenticated callers are limited per user. Without auth the body's user_id is unverified (a client
    could pick a fresh one per request), so the client address is the budget instead."""
    if principal.authenticated:
        return f"api:user:{principal.user_id}"
    return f"api:addr:{request.remote or 'unknown'}"


async def enforce_rate_limit(request: web.Request, principal: Principal, services: Services) -> int:
    """Count this request; raise RateLimitedError (429 + Retry-After) past the per-minute budget.
    Returns how many requests are left in the window."""
    limit = services.settings.rate_limit_per_minute
    decision = await services.stores.sessions.hit_rate_limit(
        rate_limit_key(request, principal), limit=limit, window_seconds=RATE_WINDOW_SECONDS
    )
    if not decision.allowed:
        services.metrics.rate_limited.inc()
        log.info(
            "rate limited", extra={"actor": principal.user_id, "retry_after": decision.retry_after_seconds}
        )
        raise RateLimitedError(
            f"Too many requests: the limit is {limit} per minute. Retry after "
            f"{max(1, round(decision.retry_after_seconds))} seconds.",
            retry_after=decision.retry_after_seconds,
        )
    return decision.remaining
