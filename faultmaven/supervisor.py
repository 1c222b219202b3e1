"""Several server processes on one port: a parent that forks ``count`` workers, restarts one that dies,
and stops them all on SIGTERM/SIGINT.

Each worker is a whole server (its own event loop, stores and analysis), so a 2-core machine serves on both
cores. The parent owns the listening socket: it accepts each connection and hands it to the workers in turn
(see ``faultmaven.handoff``), so they hold equal shares of the connections. State that must be shared lives
in the stores (SQLite files with WAL, or Redis and PostgreSQL), exactly as between replicas on different
machines.

The parent forks before it has an event loop or threads; after that it only accepts, hands over and waits.
Each worker says when it is ready (through a pipe). One that exits before that failed to start (an
unreachable database): the parent then stops the others and exits 1 instead of restarting it in a loop. A
worker that dies after it was ready is replaced, at most ``MAX_RESTARTS`` times per
``RESTART_WINDOW_SECONDS``.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import logging
import os
import selectors
import signal
import socket
import sys
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from types import FrameType

from core.errors import InputError
from faultmaven.handoff import channel_pair, hand_over

log = logging.getLogger(__name__)

MAX_RESTARTS = 5
RESTART_WINDOW_SECONDS = 60.0
POLL_SECONDS = 0.1
KILL_GRACE_SECONDS = 5.0
LISTEN_BACKLOG = 1024
ACCEPT_BATCH = 64  # connections accepted per wake-up before looking at the workers again
_PR_SET_PDEATHSIG = 1  # from <sys/prctl.h>


@dataclass
class _Worker:
    index: int
    pid: int
    started: float
    ready_pipe: int  # read end; the worker writes one byte once it serves
    channel: socket.socket | None  # the supervisor's end of the worker's connection channel
    ready: bool = False

    def poll_ready(self) -> bool:
        if not self.ready:
            with contextlib.suppress(BlockingIOError):
                self.ready = bool(os.read(self.ready_pipe, 1))
        return self.ready

    def close(self) -> None:
        os.close(self.ready_pipe)
        if self.channel is not None:
            self.channel.close()


def listen(host: str, port: int, *, backlog: int = LISTEN_BACKLOG) -> socket.socket:
    """The listening socket the supervisor accepts on; a clear error when the address is taken or refused.

    No SO_REUSEPORT: a second server (an old one still running as the same user) must not share the port
    silently and take half of the connections."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    listener = socket.socket(family, socket.SOCK_STREAM)
    try:
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind((host, port))
        listener.listen(backlog)
    except OSError as exc:
        listener.close()
        if exc.errno == errno.EADDRINUSE:
            raise InputError(
                f"Cannot listen on {host}:{port}: something is already listening there."
            ) from None
        raise InputError(f"Cannot listen on {host}:{port}: {exc.strerror or type(exc).__name__}.") from None
    listener.setblocking(False)
    return listener


ReadyCallback = Callable[[], None]
WorkerMain = Callable[[int, ReadyCallback, "socket.socket | None"], int]


class _Dispatcher:
    """Accepts on the listener and hands each connection to the next worker in turn (skipping one that is
    gone or not reading); a connection no worker can take is closed."""

    def __init__(self, listener: socket.socket) -> None:
        self.listener: socket.socket | None = listener
        self._turn = 0

    def accept_all(self, workers: dict[int, _Worker]) -> None:
        if self.listener is None:
            return
        for _ in range(ACCEPT_BATCH):
            try:
                connection, _address = self.listener.accept()
            except (BlockingIOError, InterruptedError):
                return
            except OSError as exc:  # e.g. EMFILE: leave the rest in the backlog until the next round
                log.error("accepting a connection failed", extra={"error": type(exc).__name__})
                return
            with connection:
                self._hand_to_one(connection, workers)

    def _hand_to_one(self, connection: socket.socket, workers: dict[int, _Worker]) -> None:
        live = [worker for worker in sorted(workers.values(), key=lambda w: w.index) if worker.channel]
        # a replacement that is still starting gets connections only when no worker serves yet
        candidates = [worker for worker in live if worker.poll_ready()] or live
        for offset in range(len(candidates)):
            worker = candidates[(self._turn + offset) % len(candidates)]
            assert worker.channel is not None
            try:
                hand_over(worker.channel, connection)
            except OSError:  # gone (it is reaped soon) or not reading: try the next one
                continue
            self._turn += offset + 1
            return
        log.warning("no server worker could take a connection; closing it")

    def close(self) -> None:
        if self.listener is not None:
            self.listener.close()
            self.listener = None


def supervise(
    count: int,
    run_worker: WorkerMain,
    *,
    shutdown_timeout: float,
    listener: socket.socket | None = None,
) -> int:
    """Fork ``count`` processes running ``run_worker(index, ready, inbox)`` (it calls ``ready()`` once it
    serves; its return value is the process's exit code) and supervise them until a stop signal; returns
    the parent's exit code. With a ``listener`` the parent accepts on it and hands the connections to the
    workers, each through its ``inbox`` (see ``faultmaven.handoff``); without one ``inbox`` is None."""
    if count < 1:
        raise InputError(f"--workers must be 1 or more, not {count}.")
    workers: dict[int, _Worker] = {}
    restarts: deque[float] = deque()
    stop_requested: list[int] = []
    failed = False
    dispatcher = _Dispatcher(listener) if listener is not None else None
    selector = selectors.DefaultSelector()
    if listener is not None:
        selector.register(listener, selectors.EVENT_READ)

    def spawn(index: int) -> None:
        sys.stdout.flush()
        sys.stderr.flush()
        read_end, write_end = os.pipe()
        channel, inbox = channel_pair() if listener is not None else (None, None)
        parent = os.getpid()
        pid = os.fork()
        if pid == 0:  # the worker: default signal handling (the server installs its own), then serve
            signal.signal(signal.SIGTERM, signal.SIG_DFL)
            signal.signal(signal.SIGINT, signal.SIG_DFL)
            _stop_with_parent(parent)
            os.close(read_end)
            selector.close()
            if dispatcher is not None:
                dispatcher.close()
            if channel is not None:
                channel.close()
            for other in workers.values():
                other.close()

            def ready() -> None:
                with contextlib.suppress(OSError):
                    os.write(write_end, b"r")

            code = 1
            try:
                code = run_worker(index, ready, inbox)
            except BaseException:
                log.exception("server worker failed", extra={"worker": index})
            finally:
                logging.shutdown()
                os._exit(code)
        os.close(write_end)
        if inbox is not None:
            inbox.close()
        os.set_blocking(read_end, False)
        workers[pid] = _Worker(
            index=index, pid=pid, started=time.monotonic(), ready_pipe=read_end, channel=channel
        )

    def request_stop(signum: int, _frame: FrameType | None) -> None:
        if not stop_requested:
            log.info("stopping server workers", extra={"signal": signal.Signals(signum).name})
        stop_requested.append(signum)
        _signal_all(workers, signal.SIGTERM)

    def stop_accepting() -> None:
        if dispatcher is not None and dispatcher.listener is not None:
            selector.unregister(dispatcher.listener)
            dispatcher.close()  # new connections are refused from now on

    previous = {sig: signal.signal(sig, request_stop) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        for index in range(count):
            spawn(index)
        log.info("server workers started", extra={"workers": count, "pids": sorted(workers)})
        stop_deadline: float | None = None
        while workers:
            if (stop_requested or failed) and stop_deadline is None:
                stop_accepting()
                stop_deadline = time.monotonic() + shutdown_timeout + KILL_GRACE_SECONDS
            if stop_deadline is not None and time.monotonic() > stop_deadline:
                log.error(
                    "server workers did not stop in time; killing them", extra={"pids": sorted(workers)}
                )
                _signal_all(workers, signal.SIGKILL)
                stop_deadline = float("inf")
            reaped = _reap(workers)
            if reaped is None:
                _wait_for_connections(selector, dispatcher, workers)
                continue
            worker, status = reaped
            was_ready = worker.poll_ready()
            worker.close()
            if stop_requested or failed:
                continue
            code = os.waitstatus_to_exitcode(status)
            uptime = time.monotonic() - worker.started
            if not was_ready:
                log.error(
                    "a server worker exited while starting; stopping the others",
                    extra={"worker": worker.index, "exit_code": code, "uptime_s": round(uptime, 2)},
                )
                failed = True
                _signal_all(workers, signal.SIGTERM)
                continue
            now = time.monotonic()
            while restarts and now - restarts[0] > RESTART_WINDOW_SECONDS:
                restarts.popleft()
            if len(restarts) >= MAX_RESTARTS:
                log.error(
                    "server workers keep dying; stopping",
                    extra={"restarts": len(restarts), "window_s": RESTART_WINDOW_SECONDS},
                )
                failed = True
                _signal_all(workers, signal.SIGTERM)
                continue
            restarts.append(now)
            log.warning(
                "a server worker died; starting a replacement",
                extra={"worker": worker.index, "exit_code": code, "uptime_s": round(uptime, 1)},
            )
            spawn(worker.index)
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        stop_accepting()
        selector.close()
    return 1 if failed else 0


def _wait_for_connections(
    selector: selectors.BaseSelector, dispatcher: _Dispatcher | None, workers: dict[int, _Worker]
) -> None:
    """Up to POLL_SECONDS: hand over connections as they arrive (then look for exited workers again)."""
    if dispatcher is None or dispatcher.listener is None:
        time.sleep(POLL_SECONDS)
        return
    if selector.select(timeout=POLL_SECONDS):
        dispatcher.accept_all(workers)


def _stop_with_parent(parent: int) -> None:
    """Have the kernel send this worker SIGTERM when the supervisor dies, even by SIGKILL, so no orphan
    keeps serving on the port (Linux ``PR_SET_PDEATHSIG``; elsewhere the worker outlives it)."""
    with contextlib.suppress(OSError, AttributeError):
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)
    if os.getppid() != parent:  # it died before the request took effect
        os._exit(1)


def _reap(workers: dict[int, _Worker]) -> tuple[_Worker, int] | None:
    """One exited worker and its wait status, or None when none has exited."""
    try:
        pid, status = os.waitpid(-1, os.WNOHANG)
    except ChildProcessError:  # no children left (should not happen while ``workers`` is non-empty)
        workers.clear()
        return None
    if pid == 0:
        return None
    worker = workers.pop(pid, None)
    if worker is None:  # a grandchild re-parented to us, or an analysis process: not ours to restart
        return None
    return worker, status


def _signal_all(workers: dict[int, _Worker], sig: signal.Signals) -> None:
    for pid in list(workers):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, sig)
