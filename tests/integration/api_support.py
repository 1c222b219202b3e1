"""Shared set-up for the HTTP API tests: settings in a temporary directory, the two storage modes, a live
server on 127.0.0.1 (the real app, real stores and the real troubleshooter), and token minting."""

from __future__ import annotations

import base64
import os
import time
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jwt
from aiohttp import web

from faultmaven.services import Services
from faultmaven.settings import Settings
from handlers.app import create_app

JWT_SECRET = "test-shared-secret-0123456789abcdef0123456789"
ISSUER = "https://idp.example.test/"
AUDIENCE = "faultmaven-api"


def make_settings(data_dir: Path, **overrides: Any) -> Settings:
    """Settings for a test, independent of the machine's environment and any .env file."""
    values: dict[str, Any] = {
        "data_dir": data_dir,
        "rate_limit_per_minute": 1000,
        "max_request_bytes": 64 * 1024,
        "outbound_timeout_seconds": 3.0,
    }
    values.update(overrides)
    return Settings(_env_file=None, **values)


def storage_overrides(mode: str, *, redis_url: str | None, postgres_dsn: str | None) -> dict[str, Any]:
    if mode == "embedded":
        return {}
    key = base64.b64encode(os.urandom(32)).decode()
    return {"redis_url": redis_url, "postgres_dsn": postgres_dsn, "encryption_keys": f"test1:{key}"}


def mint(
    *,
    sub: str = "alice",
    role: str | None = "viewer",
    secret: str = JWT_SECRET,
    issuer: str = ISSUER,
    audience: str = AUDIENCE,
    expires_in: int = 300,
    extra: Mapping[str, Any] | None = None,
) -> str:
    now = int(time.time())
    claims: dict[str, Any] = {"sub": sub, "iss": issuer, "aud": audience, "iat": now, "exp": now + expires_in}
    if role is not None:
        claims["faultmaven_role"] = role
    claims.update(extra or {})
    return jwt.encode(claims, secret, algorithm="HS256")


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def bound_port(runner: web.AppRunner) -> int:
    """The TCP port a runner's (single) site is listening on."""
    return int(runner.addresses[0][1])


@dataclass
class LiveServer:
    url: str
    app: web.Application
    services: Services


@asynccontextmanager
async def live_server(settings: Settings, *, ssl_context: Any = None) -> AsyncIterator[LiveServer]:
    """The real app on a real loopback TCP port."""
    services = Services(settings)
    app = create_app(settings, services)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    try:
        site = web.TCPSite(runner, "127.0.0.1", 0, ssl_context=ssl_context)
        await site.start()
        port = bound_port(runner)
        scheme = "https" if ssl_context is not None else "http"
        yield LiveServer(url=f"{scheme}://127.0.0.1:{port}", app=app, services=services)
    finally:
        await runner.cleanup()
