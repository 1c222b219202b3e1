"""`faultmaven serve`: the HTTP service: query API, health, metrics, OpenAPI, and Slack's HTTP endpoints
when Slack is configured."""

from __future__ import annotations

import argparse
import logging

from aiohttp import web

from faultmaven.services import Services
from faultmaven.settings import Settings
from handlers.app import check_bind_allowed, create_app, server_ssl_context

log = logging.getLogger(__name__)

SHUTDOWN_TIMEOUT_SECONDS = 30.0


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--host", default=None, help="Address to listen on (default from config: 127.0.0.1).")
    parser.add_argument(
        "--port", type=int, default=None, help="Port to listen on (default from config: 8080)."
    )


def run(args: argparse.Namespace, settings: Settings) -> int:
    host = args.host if args.host is not None else settings.host
    port = args.port if args.port is not None else settings.port
    check_bind_allowed(settings, host)
    ssl_context = server_ssl_context(settings)
    from bot.http import slack_routes  # mounts /slack/events only when Slack is configured

    app = create_app(settings, Services(settings), extensions=[slack_routes])
    scheme = "https" if ssl_context else "http"
    log.info("serving", extra={"url": f"{scheme}://{host}:{port}"})
    # run_app installs SIGINT/SIGTERM handlers: in-flight requests get SHUTDOWN_TIMEOUT_SECONDS to finish,
    # then the cleanup context closes the stores.
    web.run_app(
        app,
        host=host,
        port=port,
        ssl_context=ssl_context,
        shutdown_timeout=SHUTDOWN_TIMEOUT_SECONDS,
        access_log=None,
        print=None,
        handle_signals=True,
    )
    return 0
