"""Slack's HTTP endpoints on the shared aiohttp server.

``slack_routes`` is an extension for ``handlers.app.create_app(..., extensions=[slack_routes])``: it adds
``POST /slack/events`` (events, slash commands, interactivity — signatures checked by Bolt with the signing
secret) and, in OAuth mode, ``GET /slack/install`` and ``GET /slack/oauth_redirect``. Answers still running
at shutdown get time to finish before the shared services close."""

from __future__ import annotations

import logging

from aiohttp import web
from slack_bolt.adapter.aiohttp import to_aiohttp_response, to_bolt_request

from bot.app import SlackBot, oauth_mode, slack_configured
from handlers.keys import SERVICES_KEY, SETTINGS_KEY

log = logging.getLogger(__name__)

SLACK_BOT_KEY = web.AppKey("faultmaven.slack_bot", SlackBot)
EVENTS_PATH = "/slack/events"
SHUTDOWN_GRACE_SECONDS = 25.0


def slack_routes(app: web.Application) -> None:
    """Mount the Slack endpoints when Slack is configured; otherwise leave the app as it is."""
    settings = app[SETTINGS_KEY]
    if not slack_configured(settings):
        log.info("Slack not configured; /slack/events not mounted")
        return
    if settings.slack_signing_secret is None:
        log.warning("Slack is configured without SLACK_SIGNING_SECRET; /slack/events not mounted")
        return
    bot = SlackBot(settings, app[SERVICES_KEY])
    app[SLACK_BOT_KEY] = bot

    async def events(request: web.Request) -> web.Response:
        bolt_request = await to_bolt_request(request)
        response = await bot.app.async_dispatch(bolt_request)
        return await to_aiohttp_response(response)

    app.router.add_post(EVENTS_PATH, events)
    if oauth_mode(settings):
        flow = bot.app.oauth_flow
        assert flow is not None

        async def install(request: web.Request) -> web.Response:
            return await to_aiohttp_response(await flow.handle_installation(await to_bolt_request(request)))

        async def oauth_redirect(request: web.Request) -> web.Response:
            return await to_aiohttp_response(await flow.handle_callback(await to_bolt_request(request)))

        app.router.add_get(flow.install_path, install)
        app.router.add_get(flow.redirect_uri_path, oauth_redirect)

    async def finish(_: web.Application) -> None:
        await bot.close(grace_seconds=SHUTDOWN_GRACE_SECONDS)

    app.on_shutdown.append(finish)
    log.info("Slack endpoints mounted", extra={"oauth": oauth_mode(settings)})
