"""The one aiohttp application: query API, health, metrics and OpenAPI. Other edges (Slack events, alert
webhooks) add their routes through ``extensions`` or on the returned app before it starts; they reach the
shared services with ``request.app[SERVICES_KEY]``."""

from __future__ import annotations

import ipaddress
import logging
import ssl
from collections.abc import AsyncIterator, Callable, Sequence

from aiohttp import web

from core.errors import InputError
from faultmaven.services import Services
from faultmaven.settings import Settings
from handlers.api import add_api_routes
from handlers.auth import Authenticator, auth_configured
from handlers.health import add_health_routes
from handlers.keys import AUTHENTICATOR_KEY, SERVICES_KEY, SETTINGS_KEY
from handlers.observe import observe_middleware
from handlers.problems import make_problem_middleware

log = logging.getLogger(__name__)

Extension = Callable[[web.Application], None]


def create_app(
    settings: Settings, services: Services, *, extensions: Sequence[Extension] = ()
) -> web.Application:
    """Build the application. ``services`` are started when the app starts and closed at shutdown."""
    app = web.Application(
        client_max_size=settings.max_request_bytes,
        middlewares=[
            observe_middleware,
            make_problem_middleware(max_request_bytes=settings.max_request_bytes),
        ],
    )
    app[SETTINGS_KEY] = settings
    app[SERVICES_KEY] = services
    app[AUTHENTICATOR_KEY] = Authenticator(settings)
    app.cleanup_ctx.append(_services_context)
    add_health_routes(app)
    add_api_routes(app)
    for extension in extensions:
        extension(app)
    return app


async def _services_context(app: web.Application) -> AsyncIterator[None]:
    settings = app[SETTINGS_KEY]
    if not auth_configured(settings):
        log.warning(
            "AUTHENTICATION IS DISABLED: every API caller is treated as admin. Set FAULTMAVEN_AUTH_JWT_SECRET "
            "or FAULTMAVEN_AUTH_JWKS_URL before exposing this server."
        )
    services = app[SERVICES_KEY]
    await services.start()
    try:
        yield
    finally:
        await services.close()


def is_loopback(host: str) -> bool:
    if host.strip().lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip().strip("[]")).is_loopback
    except ValueError:
        return False  # any other name may resolve to a public address


def check_bind_allowed(settings: Settings, host: str) -> None:
    """Refuse to serve an unauthenticated API on a non-loopback address unless explicitly allowed."""
    if auth_configured(settings) or is_loopback(host) or settings.allow_public_bind_without_auth:
        return
    raise InputError(
        f"Refusing to listen on {host!r} without authentication: anyone who can reach it would act as admin. "
        "Configure FAULTMAVEN_AUTH_JWT_SECRET or FAULTMAVEN_AUTH_JWKS_URL, bind to 127.0.0.1, or set "
        "FAULTMAVEN_ALLOW_PUBLIC_BIND_WITHOUT_AUTH=true if a proxy in front does authentication."
    )


def server_ssl_context(settings: Settings) -> ssl.SSLContext | None:
    """A TLS server context when both the certificate and the key are configured; None for plain HTTP."""
    cert, key = settings.tls_cert_file, settings.tls_key_file
    if cert is None and key is None:
        return None
    if cert is None or key is None:
        raise InputError("HTTPS needs both FAULTMAVEN_TLS_CERT_FILE and FAULTMAVEN_TLS_KEY_FILE.")
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    try:
        context.load_cert_chain(certfile=str(cert), keyfile=str(key))
    except (OSError, ssl.SSLError) as exc:
        raise InputError(
            f"Cannot load the TLS certificate {cert} / key {key}: {exc.__class__.__name__}. "
            "Check that both files exist, are PEM, and match."
        ) from exc
    return context
