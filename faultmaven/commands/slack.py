"""`faultmaven slack`: run the Slack bot.

Without options it serves the HTTP service with Slack's endpoints mounted (``POST /slack/events``; with
OAuth, ``/slack/install`` and ``/slack/oauth_redirect``) — Slack must reach it at a public URL.
``--socket-mode`` connects out to Slack over a WebSocket instead (needs ``SLACK_APP_TOKEN``)."""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal

from bot.app import slack_configured
from bot.http import slack_routes
from bot.socket import SocketModeRunner
from core.errors import InputError
from faultmaven.commands.serve import listen_address, run_server, server_url
from faultmaven.services import Services
from faultmaven.settings import Settings
from handlers.app import create_app, server_ssl_context

log = logging.getLogger(__name__)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--socket-mode",
        action="store_true",
        help="Connect to Slack over Socket Mode (SLACK_APP_TOKEN) instead of serving /slack/events.",
    )
    parser.add_argument("--host", default=None, help="HTTP mode: address to listen on (default from config).")
    parser.add_argument(
        "--port", type=int, default=None, help="HTTP mode: port to listen on (default from config)."
    )


def run(args: argparse.Namespace, settings: Settings) -> int:
    if not slack_configured(settings):
        raise InputError(
            "Slack is not configured: set SLACK_BOT_TOKEN and SLACK_SIGNING_SECRET (one workspace), or "
            "FAULTMAVEN_SLACK_CLIENT_ID and FAULTMAVEN_SLACK_CLIENT_SECRET (OAuth installs)."
        )
    if args.socket_mode:
        return asyncio.run(_socket_mode(settings))
    if settings.slack_signing_secret is None:
        raise InputError(
            "HTTP mode needs SLACK_SIGNING_SECRET to verify Slack's requests (or use --socket-mode)."
        )
    host, port = listen_address(args, settings)
    ssl_context = server_ssl_context(settings)
    app = create_app(settings, Services(settings), extensions=[slack_routes])
    log.info(
        "serving Slack events",
        extra={"url": server_url(host, port, ssl_context=ssl_context) + "/slack/events"},
    )
    run_server(app, host=host, port=port, ssl_context=ssl_context)
    return 0


async def _socket_mode(settings: Settings) -> int:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    runner = SocketModeRunner(settings, Services(settings))
    await runner.run(stop)
    return 0
