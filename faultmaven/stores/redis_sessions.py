"""Hot state in Redis: sessions as JSON with a TTL, idempotency keys (``SET NX EX``), and fixed-window rate
limits (one Lua script: INCR, PEXPIRE on the first hit, PTTL). Every key lives under ``faultmaven:``."""

from __future__ import annotations

import logging
from collections.abc import Awaitable
from typing import Any, TypeVar

import redis.asyncio as aioredis
from redis.exceptions import RedisError

from core.answers import Session
from core.errors import DependencyError
from faultmaven.stores.base import (
    COMMAND_TIMEOUT_SECONDS,
    CONNECT_TIMEOUT_SECONDS,
    RateDecision,
    session_body,
    stored_session,
)

log = logging.getLogger(__name__)

T = TypeVar("T")

KEY_PREFIX = "faultmaven:"

# KEYS[1] = counter; ARGV[1] = window in ms. Returns {hits in this window, ms until the window resets}.
_RATE_LIMIT_SCRIPT = """
local hits = redis.call('INCR', KEYS[1])
local ttl = redis.call('PTTL', KEYS[1])
if hits == 1 or ttl < 0 then
    redis.call('PEXPIRE', KEYS[1], ARGV[1])
    ttl = tonumber(ARGV[1])
end
return {hits, ttl}
"""


class RedisSessionStore:
    def __init__(self, client: aioredis.Redis, *, ttl_seconds: int, prefix: str = KEY_PREFIX) -> None:
        self._client = client
        self._ttl_seconds = ttl_seconds
        self._prefix = prefix
        self._rate_script = client.register_script(_RATE_LIMIT_SCRIPT)

    @classmethod
    async def connect(
        cls,
        url: str,
        *,
        ttl_seconds: int,
        connect_timeout_seconds: float = CONNECT_TIMEOUT_SECONDS,
        command_timeout_seconds: float = COMMAND_TIMEOUT_SECONDS,
        prefix: str = KEY_PREFIX,
        max_connections: int = 50,
    ) -> RedisSessionStore:
        """Connect and check the server answers; DependencyError (never the URL) if it does not."""
        if ttl_seconds < 1:
            raise ValueError("ttl_seconds must be at least 1")
        # A blocking pool: a burst of concurrent calls waits (up to the command timeout) for a free
        # connection instead of failing at once when every connection is busy.
        try:
            pool = aioredis.BlockingConnectionPool.from_url(
                url,
                max_connections=max_connections,
                timeout=command_timeout_seconds,
                socket_connect_timeout=connect_timeout_seconds,
                socket_timeout=command_timeout_seconds,
                health_check_interval=30,
                decode_responses=False,
            )
        except ValueError:
            raise DependencyError(
                "The configured Redis URL is malformed; expected redis://, rediss:// or unix://.",
                detail="connect: ValueError",
            ) from None
        client = aioredis.Redis.from_pool(pool)
        store = cls(client, ttl_seconds=ttl_seconds, prefix=prefix)
        try:
            await store._call(client.ping(), op="connect")
        except DependencyError:
            await client.aclose()
            raise
        return store

    def _key(self, kind: str, name: str) -> str:
        return f"{self._prefix}{kind}:{name}"

    async def _call(self, awaitable: Awaitable[T], *, op: str) -> T:
        try:
            return await awaitable
        except (RedisError, OSError, TimeoutError) as exc:
            log.error("redis call failed", extra={"op": op, "error": type(exc).__name__})
            raise DependencyError(
                "The session store is unavailable; try again shortly.", detail=f"{op}: {type(exc).__name__}"
            ) from exc

    async def get_session(self, session_id: str) -> Session | None:
        raw: bytes | str | None = await self._call(
            self._client.get(self._key("session", session_id)), op="get_session"
        )
        if raw is None:
            return None
        return stored_session(raw, session_id=session_id, logger=log)

    async def save_session(self, session: Session) -> None:
        await self._call(
            self._client.set(self._key("session", session.id), session_body(session), ex=self._ttl_seconds),
            op="save_session",
        )

    async def delete_session(self, session_id: str) -> None:
        await self._call(self._client.delete(self._key("session", session_id)), op="delete_session")

    async def claim_idempotency_key(self, key: str, *, ttl_seconds: int) -> bool:
        if ttl_seconds < 1:
            raise ValueError("ttl_seconds must be at least 1")
        result = await self._call(
            self._client.set(self._key("idem", key), b"1", nx=True, ex=ttl_seconds),
            op="claim_idempotency_key",
        )
        return bool(result)

    async def hit_rate_limit(self, key: str, *, limit: int, window_seconds: int) -> RateDecision:
        if limit < 1 or window_seconds < 1:
            raise ValueError("limit and window_seconds must be at least 1")
        reply: Any = await self._call(
            self._rate_script(keys=[self._key("rate", key)], args=[window_seconds * 1000]),
            op="hit_rate_limit",
        )
        hits, ttl_ms = int(reply[0]), int(reply[1])
        allowed = hits <= limit
        return RateDecision(
            allowed=allowed,
            remaining=max(0, limit - hits),
            retry_after_seconds=0.0 if allowed else max(0.0, ttl_ms / 1000.0),
        )

    async def ping(self) -> bool:
        try:
            return bool(await self._call(self._client.ping(), op="ping"))
        except DependencyError:
            return False

    async def close(self) -> None:
        await self._client.aclose()
