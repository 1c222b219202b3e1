"""Connections accepted by the supervisor and handed to a worker over a Unix socket pair.

With several workers the supervisor owns the listening socket: it accepts each connection and passes the
descriptor (SCM_RIGHTS) to the workers in turn, so every worker holds the same number of connections. With
SO_REUSEPORT the kernel spread them by a hash of the client's address and port instead: 32 keep-alive
connections often split 20 / 12, and the busier worker's queue set the latency of the whole server.

The supervisor side is ``hand_over``; a worker serves what it receives through ``HandedConnectionsSite``
(an aiohttp site, like the TCP one) and ``serve_handed_connections`` (``web.run_app`` for that site).
"""

from __future__ import annotations

import asyncio
import logging
import signal
import socket
import ssl
from typing import TYPE_CHECKING

from aiohttp import web

if TYPE_CHECKING:
    from aiohttp.web_runner import BaseRunner

log = logging.getLogger(__name__)

# one byte of payload per message carries one descriptor (a message may not be empty)
_TOKEN = b"c"
_RECEIVE_BATCH = 64


def channel_pair() -> tuple[socket.socket, socket.socket]:
    """The (supervisor end, worker end) of one worker's channel. SEQPACKET keeps each descriptor in its own
    message; the supervisor's end never blocks (a worker that stopped reading must not stall the others)."""
    supervisor_end, worker_end = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    supervisor_end.setblocking(False)
    return supervisor_end, worker_end


def hand_over(channel: socket.socket, connection: socket.socket) -> None:
    """Pass ``connection`` to the worker at the other end of ``channel``. Raises OSError when the worker is
    gone (EPIPE, ECONNREFUSED) or its channel is full (BlockingIOError); the caller still owns the connection
    then. The caller closes its copy after a success."""
    socket.send_fds(channel, [_TOKEN], [connection.fileno()])


class HandedConnectionsSite(web.BaseSite):
    """Serves the connections that arrive on ``inbox`` (the worker end of ``channel_pair``)."""

    def __init__(
        self, runner: BaseRunner, inbox: socket.socket, *, ssl_context: ssl.SSLContext | None = None
    ) -> None:
        super().__init__(runner, ssl_context=ssl_context)
        self._inbox = inbox
        self._reading = False
        self._starting: set[asyncio.Task[object]] = set()

    @property
    def name(self) -> str:
        return f"{'https' if self._ssl_context else 'http'} connections handed over by the supervisor"

    async def start(self) -> None:
        await super().start()
        self._inbox.setblocking(False)
        asyncio.get_running_loop().add_reader(self._inbox.fileno(), self._receive)
        self._reading = True

    async def stop(self) -> None:
        self._stop_reading()
        for task in list(self._starting):
            task.cancel()
        await asyncio.gather(*self._starting, return_exceptions=True)
        await super().stop()

    def _stop_reading(self) -> None:
        if self._reading:
            self._reading = False
            asyncio.get_running_loop().remove_reader(self._inbox.fileno())

    def _receive(self) -> None:
        loop = asyncio.get_running_loop()
        for _ in range(_RECEIVE_BATCH):  # then let the loop serve what it already has
            try:
                message, fds, flags, _address = socket.recv_fds(self._inbox, 1, 1)
            except (BlockingIOError, InterruptedError):
                return
            except OSError as exc:
                log.error("the supervisor's channel failed", extra={"error": type(exc).__name__})
                self._stop_reading()
                return
            if not message and not fds:  # the supervisor closed its end: nothing more will come
                self._stop_reading()
                return
            if flags & socket.MSG_CTRUNC:  # the descriptor did not fit (this process is at its fd limit)
                log.error("a handed-over connection was dropped: too many open files")
            for fd in fds:
                self._serve(loop, socket.socket(fileno=fd))

    def _serve(self, loop: asyncio.AbstractEventLoop, connection: socket.socket) -> None:
        server = self._runner.server
        if server is None:  # the runner is shutting down
            connection.close()
            return
        connection.setblocking(False)
        task: asyncio.Task[object] = loop.create_task(
            loop.connect_accepted_socket(server, connection, ssl=self._ssl_context)
        )
        self._starting.add(task)
        task.add_done_callback(self._started)

    def _started(self, task: asyncio.Task[object]) -> None:
        self._starting.discard(task)
        if task.cancelled():
            return
        exc = task.exception()
        if exc is not None:  # e.g. the client left, or a TLS handshake failed: that connection only
            log.info("a handed-over connection could not start", extra={"error": type(exc).__name__})


def serve_handed_connections(
    app: web.Application,
    *,
    inbox: socket.socket,
    ssl_context: ssl.SSLContext | None,
    shutdown_timeout: float,
) -> None:
    """Serve ``app`` on the connections that arrive on ``inbox`` until SIGINT/SIGTERM, then shut down as
    ``web.run_app`` does: stop taking connections, give requests in flight ``shutdown_timeout`` seconds, run
    the app's cleanup. A second stop signal while that runs changes nothing: a service manager that signals
    every process of the server (systemd's default) reaches a worker twice, once directly and once through
    the supervisor, and the cleanup (pending audit records, closing the stores) must not be cut short."""

    async def main() -> None:
        runner = web.AppRunner(app, handle_signals=False, access_log=None, shutdown_timeout=shutdown_timeout)
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(signum, stop.set)
        await runner.setup()
        try:
            await HandedConnectionsSite(runner, inbox, ssl_context=ssl_context).start()
            await stop.wait()
        finally:
            await runner.cleanup()

    asyncio.run(main())
