"""Several server processes on one port: a parent that forks ``count`` workers, restarts one that dies,
and stops them all on SIGTERM/SIGINT.

Each worker is a whole server (its own event loop, stores and analysis); they share the listening port
through SO_REUSEPORT, so the kernel spreads connections across them and a 2-core machine serves on both
cores. State that must be shared lives in the stores (SQLite files with WAL, or Redis and PostgreSQL),
exactly as between replicas on different machines.

The parent forks before it has an event loop or threads, and does nothing after that but wait. Each
worker says when it is ready (through a pipe). One that exits before that failed to start (a port taken,
an unreachable database): the parent then stops the others and exits 1 instead of restarting it in a loop.
A worker that dies after it was ready is replaced, at most ``MAX_RESTARTS`` times per
``RESTART_WINDOW_SECONDS``.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import logging
import os
import signal
import socket
import sys
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from types import FrameType

from core.errors import InputError

log = logging.getLogger(__name__)

MAX_RESTARTS = 5
RESTART_WINDOW_SECONDS = 60.0
POLL_SECONDS = 0.1
KILL_GRACE_SECONDS = 5.0
_PR_SET_PDEATHSIG = 1  # from <sys/prctl.h>


@dataclass
class _Worker:
    index: int
    pid: int
    started: float
    ready_pipe: int  # read end; the worker writes one byte once it serves
    ready: bool = False

    def poll_ready(self) -> bool:
        if not self.ready:
            with contextlib.suppress(BlockingIOError):
                self.ready = bool(os.read(self.ready_pipe, 1))
        return self.ready


def check_port_free(host: str, port: int) -> None:
    """Fail early, and clearly, when something already listens on ``host:port``.

    SO_REUSEPORT would otherwise let a second server (an old one still running as the same user) share the
    port silently and take half of the connections. This probe binds without SO_REUSEPORT, which any
    existing listener refuses."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                raise InputError(
                    f"Cannot listen on {host}:{port}: something is already listening there."
                ) from None
            raise InputError(
                f"Cannot listen on {host}:{port}: {exc.strerror or type(exc).__name__}."
            ) from None


ReadyCallback = Callable[[], None]


def supervise(count: int, run_worker: Callable[[int, ReadyCallback], int], *, shutdown_timeout: float) -> int:
    """Fork ``count`` processes running ``run_worker(index, ready)`` (it calls ``ready()`` once it serves;
    its return value is the process's exit code) and supervise them until a stop signal; returns the
    parent's exit code."""
    if count < 1:
        raise InputError(f"--workers must be 1 or more, not {count}.")
    workers: dict[int, _Worker] = {}
    restarts: deque[float] = deque()
    stop_requested: list[int] = []
    failed = False

    def spawn(index: int) -> None:
        sys.stdout.flush()
        sys.stderr.flush()
        read_end, write_end = os.pipe()
        parent = os.getpid()
        pid = os.fork()
        if pid == 0:  # the worker: default signal handling (the server installs its own), then serve
            signal.signal(signal.SIGTERM, signal.SIG_DFL)
            signal.signal(signal.SIGINT, signal.SIG_DFL)
            _stop_with_parent(parent)
            os.close(read_end)
            for other in workers.values():
                os.close(other.ready_pipe)

            def ready() -> None:
                with contextlib.suppress(OSError):
                    os.write(write_end, b"r")

            code = 1
            try:
                code = run_worker(index, ready)
            except BaseException:
                log.exception("server worker failed", extra={"worker": index})
            finally:
                logging.shutdown()
                os._exit(code)
        os.close(write_end)
        os.set_blocking(read_end, False)
        workers[pid] = _Worker(index=index, pid=pid, started=time.monotonic(), ready_pipe=read_end)

    def request_stop(signum: int, _frame: FrameType | None) -> None:
        if not stop_requested:
            log.info("stopping server workers", extra={"signal": signal.Signals(signum).name})
        stop_requested.append(signum)
        _signal_all(workers, signal.SIGTERM)

    previous = {sig: signal.signal(sig, request_stop) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        for index in range(count):
            spawn(index)
        log.info("server workers started", extra={"workers": count, "pids": sorted(workers)})
        stop_deadline: float | None = None
        while workers:
            if (stop_requested or failed) and stop_deadline is None:
                stop_deadline = time.monotonic() + shutdown_timeout + KILL_GRACE_SECONDS
            if stop_deadline is not None and time.monotonic() > stop_deadline:
                log.error(
                    "server workers did not stop in time; killing them", extra={"pids": sorted(workers)}
                )
                _signal_all(workers, signal.SIGKILL)
                stop_deadline = float("inf")
            reaped = _reap(workers)
            if reaped is None:
                time.sleep(POLL_SECONDS)
                continue
            worker, status = reaped
            was_ready = worker.poll_ready()
            os.close(worker.ready_pipe)
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
    return 1 if failed else 0


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
