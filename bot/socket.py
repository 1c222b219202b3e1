"""Socket Mode: the bot over a WebSocket that Slack opens for us (``apps.connections.open`` with the
app-level token), for workspaces that cannot reach a public URL. Same Bolt app, same listeners."""

from __future__ import annotations

import asyncio
import logging

from slack_bolt.adapter.socket_mode.aiohttp import AsyncSocketModeHandler

from bot.app import SlackBot
from core.errors import InputError
from faultmaven.services import Services
from faultmaven.settings import Settings

log = logging.getLogger(__name__)


class SocketModeRunner:
    """Start the services and the bot, connect, and run until ``stop`` is set; then shut down in order."""

    def __init__(self, settings: Settings, services: Services) -> None:
        if settings.slack_app_token is None:
            raise InputError("Socket Mode needs an app-level token: set SLACK_APP_TOKEN (xapp-…).")
        self.settings = settings
        self.services = services
        self.bot: SlackBot | None = None
        self.handler: AsyncSocketModeHandler | None = None
        self.connected = asyncio.Event()

    async def run(self, stop: asyncio.Event) -> None:
        assert self.settings.slack_app_token is not None
        await self.services.start()
        try:
            self.bot = SlackBot(self.settings, self.services)
            self.handler = AsyncSocketModeHandler(
                self.bot.app,
                app_token=self.settings.slack_app_token.get_secret_value(),
                web_client=self.bot.client,
            )
            await self.handler.connect_async()  # type: ignore[no-untyped-call]
            self.connected.set()
            log.info("Slack Socket Mode connected")
            await stop.wait()
        finally:
            if self.handler is not None:
                await self.handler.close_async()  # type: ignore[no-untyped-call]
            if self.bot is not None:
                await self.bot.close()
            await self.services.close()
            log.info("Slack Socket Mode stopped")
