"""`faultmaven serve`: the HTTP service: query API, health, metrics, OpenAPI, and Slack's HTTP endpoints
when Slack is configured."""

from __future__ import annotations

import argparse
import functools
import gc
import logging
import os
import shutil
import socket
import ssl
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from core.errors import InputError
from faultmaven.settings import Settings

if TYPE_CHECKING:
    from aiohttp import web

# The server's modules (aiohttp, prometheus_client, the stores) are imported when it starts, not when the
# command line is parsed: with several workers, prometheus_client must first learn where the workers share
# their metric values, and it reads that once, at import.
MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"

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
    parser.add_argument(
        "--workers",
        type=int,
        default=None,
        metavar="N",
        help="Serve from N processes, to use N cores: a supervisor accepts the connections, hands them to the "
        "workers in turn and restarts one that dies (default from config: FAULTMAVEN_WORKERS, 1).",
    )


def run(args: argparse.Namespace, settings: Settings) -> int:
    if args.workers is not None:
        settings = settings.model_copy(update={"workers": args.workers})
    if settings.workers < 1:
        raise InputError(f"--workers must be 1 or more, not {settings.workers}.")
    processes = settings.analysis_processes if args.analysis_processes is None else args.analysis_processes
    if processes < 0:
        raise InputError(f"--analysis-processes must be 0 or more, not {processes}.")
    if settings.workers > 1:
        return _run_workers(args, settings, processes=processes)
    host, port = listen_address(args, settings)
    ssl_context = _ssl_context(settings)
    app = _build_app(settings, processes=processes, metrics_dir=None)
    log.info("serving", extra={"url": server_url(host, port, ssl_context=ssl_context)})
    run_server(app, host=host, port=port, ssl_context=ssl_context)
    return 0


def _run_workers(args: argparse.Namespace, settings: Settings, *, processes: int) -> int:
    metrics_dir = Path(tempfile.mkdtemp(prefix="faultmaven-metrics-"))
    # before anything imports prometheus_client: it reads this once, here and in every forked worker
    os.environ[MULTIPROC_ENV] = str(metrics_dir)
    try:
        from faultmaven.handoff import serve_handed_connections
        from faultmaven.supervisor import listen, supervise

        host, port = listen_address(args, settings)
        ssl_context = _ssl_context(settings)  # a bad certificate fails here, once, not in every worker
        listener = listen(host, port)

        def worker(index: int, ready: Callable[[], None], inbox: socket.socket | None) -> int:
            assert inbox is not None  # supervise() hands every worker a channel when given a listener
            app = _build_app(settings, processes=processes, metrics_dir=metrics_dir)
            app.on_startup.append(functools.partial(_report_ready, ready=ready))
            log.info(
                "serving", extra={"url": server_url(host, port, ssl_context=ssl_context), "worker": index}
            )
            serve_handed_connections(
                app, inbox=inbox, ssl_context=ssl_context, shutdown_timeout=SHUTDOWN_TIMEOUT_SECONDS
            )
            return 0

        with listener:
            return supervise(
                settings.workers, worker, shutdown_timeout=SHUTDOWN_TIMEOUT_SECONDS, listener=listener
            )
    finally:
        shutil.rmtree(metrics_dir, ignore_errors=True)


def _ssl_context(settings: Settings) -> ssl.SSLContext | None:
    from handlers.app import server_ssl_context

    return server_ssl_context(settings)


def _build_app(settings: Settings, *, processes: int, metrics_dir: Path | None) -> web.Application:
    from bot.http import slack_routes  # mounts /slack/events only when Slack is configured
    from faultmaven.observability import Metrics
    from faultmaven.services import Services
    from handlers.app import create_app

    services = Services(settings, metrics=Metrics(multiprocess_dir=metrics_dir))
    app = create_app(settings, services, extensions=[slack_routes])
    if processes:
        app.on_startup.append(functools.partial(_start_analysis_processes, count=processes))
    app.on_startup.append(_freeze_startup_objects)
    return app


async def _freeze_startup_objects(app: web.Application) -> None:
    """What start-up built (knowledge base, compiled patterns, open stores) lives as long as the process:
    moved out of the cyclic collector's reach, it is no longer scanned by every full collection while
    requests run (about half of the collector's time under load). Only for the server process itself,
    never for an app built inside another program."""
    del app
    gc.collect()
    gc.freeze()


def listen_address(args: argparse.Namespace, settings: Settings) -> tuple[str, int]:
    """``--host`` and ``--port``, else the configured ones; refused when listening there is not allowed."""
    from handlers.app import check_bind_allowed

    host = args.host if args.host is not None else settings.host
    port = args.port if args.port is not None else settings.port
    check_bind_allowed(settings, host)
    return host, port


def server_url(host: str, port: int, *, ssl_context: ssl.SSLContext | None) -> str:
    """The base URL the server is reached at, for the start-up log line."""
    return f"{'https' if ssl_context else 'http'}://{host}:{port}"


def run_server(
    app: web.Application,
    *,
    host: str,
    port: int,
    ssl_context: ssl.SSLContext | None,
) -> None:
    """Serve until SIGINT/SIGTERM: in-flight requests get SHUTDOWN_TIMEOUT_SECONDS to finish, then the
    app's cleanup context closes the stores."""
    from aiohttp import web

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
    from handlers.keys import SERVICES_KEY

    troubleshooter = app[SERVICES_KEY].troubleshooter
    if isinstance(troubleshooter, TroubleshootingService):
        await troubleshooter.start_analysis_processes(count)


async def _report_ready(app: web.Application, *, ready: Callable[[], None]) -> None:
    """The last start-up step of a worker: its services are open; tell the supervisor."""
    del app
    ready()
