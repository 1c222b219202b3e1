"""Typed keys for what the application and each request carry. Routes added by other modules (Slack,
webhooks) read the shared services through these."""

from __future__ import annotations

from aiohttp import web

from faultmaven.services import Services
from faultmaven.settings import Settings
from handlers.auth import Authenticator, Principal

SETTINGS_KEY = web.AppKey("faultmaven.settings", Settings)
SERVICES_KEY = web.AppKey("faultmaven.services", Services)
AUTHENTICATOR_KEY = web.AppKey("faultmaven.authenticator", Authenticator)

PRINCIPAL_REQUEST_KEY = web.RequestKey("faultmaven.principal", Principal)


def services_of(request: web.Request) -> Services:
    return request.app[SERVICES_KEY]


def principal_of(request: web.Request) -> Principal | None:
    return request.get(PRINCIPAL_REQUEST_KEY)
