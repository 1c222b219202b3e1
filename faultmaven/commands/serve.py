"""`faultmaven serve`: the HTTP service: query API, health, metrics, OpenAPI, and Slack's HTTP endpoints
when Slack is configured."""

from __future__ import annotations

import argparse
import functools
import logging
import ssl

from aiohttp import web

from core.errors import InputError
from faultmaven.services import Services
from faultmaven.settings import Settings
from handlers.app import check_bind_allowed, create_app, server_ssl_context
from handlers.keys import SERVICES_KEY

log = logging.getLogger(__name__)

SHUTDOWN_TIMEOUT_SECONDS = 30.0


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--host", default=None, help="Address to listen on (default from config: 127.0.0.1).")
    parser.add_argument(
        "--port", type=int, default=None, help="Port to listen on (default from config: 8080)."
    )
    parser.add_argument(
        "--analysis-processes",
        type=int,
        default=None,
        metavar="N",
        help="Run the log and metric analysis in N worker processes (uses N cores; each holds a copy of the "
        "knowledge base). 0 analyzes in this process (default from config: FAULTMAVEN_ANALYSIS_PROCESSES).",
    )


def run(args: argparse.Namespace, settings: Settings) -> int:
    host, port = listen_address(args, settings)
    ssl_context = server_ssl_context(settings)
    from bot.http import slack_routes  # mounts /slack/events only when Slack is configured

    processes = settings.analysis_processes if args.analysis_processes is None else args.analysis_processes
    if processes < 0:
        raise InputError(f"--analysis-processes must be 0 or more, not {processes}.")
    app = create_app(settings, Services(settings), extensions=[slack_routes])
    if processes:
        app.on_startup.append(functools.partial(_start_analysis_processes, count=processes))
    log.info("serving", extra={"url": server_url(host, port, ssl_context=ssl_context)})
    run_server(app, host=host, port=port, ssl_context=ssl_context)
    return 0


def listen_address(args: argparse.Namespace, settings: Settings) -> tuple[str, int]:
    """``--host`` and ``--port``, else the configured ones; refused when listening there is not allowed."""
    host = args.host if args.host is not None else settings.host
    port = args.port if args.port is not None else settings.port
    check_bind_allowed(settings, host)
    return host, port


def server_url(host: str, port: int, *, ssl_context: ssl.SSLContext | None) -> str:
    """The base URL the server is reached at, for the start-up log line."""
    return f"{'https' if ssl_context else 'http'}://{host}:{port}"


def run_server(app: web.Application, *, host: str, port: int, ssl_context: ssl.SSLContext | None) -> None:
    """Serve until SIGINT/SIGTERM: in-flight requests get SHUTDOWN_TIMEOUT_SECONDS to finish, then the
    app's cleanup context closes the stores."""
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


async def _start_analysis_processes(app: web.Application, *, count: int) -> None:
    """After the services started (the app's cleanup context runs first): move analysis to processes."""
    from faultmaven.service import TroubleshootingService

    troubleshooter = app[SERVICES_KEY].troubleshooter
    if isinstance(troubleshooter, TroubleshootingService):
        await troubleshooter.start_analysis_processes(count)
