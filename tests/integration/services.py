"""Real Redis and PostgreSQL servers for the integration tests, started from the binaries on this machine.

Register with ``pytest_plugins = ["tests.integration.services"]`` in ``tests/conftest.py``.

Fixtures:
- ``redis_server`` / ``postgres_server`` (session): one server each, on a free loopback port in a temporary
  directory, stopped (process group killed) and the directory removed at the end of the run.
- ``redis_url`` / ``postgres_dsn`` (function): a clean place for one test: a Redis database index that was
  just FLUSHDB'd, and a PostgreSQL database created for the test and dropped after it.

A missing binary skips the tests that need it, except when ``CI=true``: then it fails them, so a CI machine
without the services cannot pass by skipping.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import glob
import itertools
import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Callable, Coroutine, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NoReturn, TypeVar

import asyncpg
import pytest
import redis.asyncio as aioredis

T = TypeVar("T")

LOOPBACK = "127.0.0.1"
READY_TIMEOUT_SECONDS = 30.0
STOP_TIMEOUT_SECONDS = 15.0
REDIS_DATABASES = 16
_redis_db_index = itertools.cycle(range(1, REDIS_DATABASES))


@dataclass(frozen=True)
class RedisServer:
    host: str
    port: int
    workdir: Path

    def url(self, db: int = 0) -> str:
        return f"redis://{self.host}:{self.port}/{db}"


@dataclass(frozen=True)
class PostgresServer:
    host: str
    port: int
    user: str
    workdir: Path
    data_dir: Path

    def dsn(self, database: str = "postgres") -> str:
        return f"postgresql://{self.user}@{self.host}:{self.port}/{database}"


def service_missing(reason: str) -> NoReturn:
    """Skip locally; fail under CI, where a missing service must never pass silently."""
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"{reason} (CI=true: integration services are required)", pytrace=False)
    pytest.skip(reason)


def find_binary(name: str) -> str | None:
    found = shutil.which(name)
    if found:
        return found
    candidates = sorted(
        glob.glob(f"/usr/lib/postgresql/*/bin/{name}"),
        key=lambda path: int(Path(path).parts[-3]) if Path(path).parts[-3].isdigit() else 0,
    )
    return candidates[-1] if candidates else None


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((LOOPBACK, 0))
        return int(sock.getsockname()[1])


def run_coroutine(factory: Callable[[], Coroutine[Any, Any, T]]) -> T:
    """Run a coroutine to completion from sync code, in a worker thread with its own event loop (safe even
    when the calling thread already has a running loop)."""
    with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(lambda: asyncio.run(factory())).result()


def _log_tail(path: Path, limit: int = 2000) -> str:
    try:
        return path.read_text(errors="replace")[-limit:]
    except OSError:
        return "<no log>"


def _stop(proc: subprocess.Popen[bytes], *, first_signal: signal.Signals) -> None:
    """Signal the whole process group, wait, then SIGKILL whatever is left."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, first_signal)
    try:
        proc.wait(timeout=STOP_TIMEOUT_SECONDS)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=STOP_TIMEOUT_SECONDS)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)  # stragglers that outlived the leader


def _wait_until(
    ready: Callable[[], bool], *, proc: subprocess.Popen[bytes], what: str, log_path: Path
) -> None:
    deadline = time.monotonic() + READY_TIMEOUT_SECONDS
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{what} exited with {proc.returncode} while starting:\n{_log_tail(log_path)}")
        if ready():
            return
        time.sleep(0.1)
    raise RuntimeError(f"{what} was not ready within {READY_TIMEOUT_SECONDS:.0f}s:\n{_log_tail(log_path)}")


def _redis_answers(port: int) -> bool:
    try:
        with socket.create_connection((LOOPBACK, port), timeout=1.0) as sock:
            sock.sendall(b"PING\r\n")
            return sock.recv(64).startswith(b"+PONG")
    except OSError:
        return False


@pytest.fixture(scope="session")
def redis_server() -> Iterator[RedisServer]:
    binary = find_binary("redis-server")
    if binary is None:
        service_missing("redis-server is not installed (apt-get install -y redis-server)")
    workdir = Path(tempfile.mkdtemp(prefix="fm-redis-"))
    port = free_port()
    log_path = workdir / "redis.log"
    command = [
        binary,
        "--port", str(port),
        "--bind", LOOPBACK,
        "--dir", str(workdir),
        "--save", "",
        "--appendonly", "no",
        "--protected-mode", "no",
        "--databases", str(REDIS_DATABASES),
        "--logfile", str(log_path),
    ]  # fmt: skip
    proc = subprocess.Popen(
        command,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        _wait_until(lambda: _redis_answers(port), proc=proc, what="redis-server", log_path=log_path)
        yield RedisServer(host=LOOPBACK, port=port, workdir=workdir)
    finally:
        _stop(proc, first_signal=signal.SIGTERM)
        shutil.rmtree(workdir, ignore_errors=True)


def _as_postgres_user() -> tuple[list[str], pwd.struct_passwd | None]:
    """The command prefix that drops root to the ``postgres`` user (PostgreSQL refuses to run as root)."""
    if os.geteuid() != 0:
        return [], None
    try:
        account = pwd.getpwnam("postgres")
    except KeyError:
        service_missing("running as root and there is no 'postgres' system user to run PostgreSQL as")
    setpriv = shutil.which("setpriv")
    if setpriv:  # execs in place, so the server is the process we started
        return [setpriv, "--reuid", "postgres", "--regid", "postgres", "--init-groups", "--"], account
    runuser = shutil.which("runuser")
    if runuser:
        return [runuser, "-u", "postgres", "--"], account
    service_missing("running as root and neither setpriv nor runuser is available to drop to 'postgres'")


async def _postgres_answers(dsn: str) -> bool:
    try:
        conn = await asyncpg.connect(dsn, timeout=2.0)
    except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError, TimeoutError):
        return False
    await conn.close()
    return True


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    initdb = find_binary("initdb")
    postgres = find_binary("postgres")
    if initdb is None or postgres is None:
        service_missing(
            "PostgreSQL server binaries (initdb, postgres) are not installed (apt-get install -y postgresql)"
        )
    prefix, account = _as_postgres_user()
    workdir = Path(tempfile.mkdtemp(prefix="fm-pg-"))
    data_dir = workdir / "data"
    log_path = workdir / "postgres.log"
    proc: subprocess.Popen[bytes] | None = None
    try:
        if account is not None:
            os.chown(workdir, account.pw_uid, account.pw_gid)
        init = subprocess.run(
            [
                *prefix,
                initdb,
                "-D",
                str(data_dir),
                "-U",
                "postgres",
                "-A",
                "trust",
                "-E",
                "UTF8",
                "--no-locale",
                "--no-sync",
            ],
            stdin=subprocess.DEVNULL,
            capture_output=True,
            timeout=120,
            check=False,
        )
        if init.returncode != 0:
            raise RuntimeError(
                f"initdb failed ({init.returncode}):\n{init.stderr.decode(errors='replace')[-2000:]}"
            )
        port = free_port()
        settings = {
            "listen_addresses": LOOPBACK,
            "unix_socket_directories": str(workdir),
            "fsync": "off",
            "synchronous_commit": "off",
            "full_page_writes": "off",
            "max_connections": "100",
        }
        command = [*prefix, postgres, "-D", str(data_dir), "-p", str(port)]
        for name, value in settings.items():
            command += ["-c", f"{name}={value}"]
        with log_path.open("wb") as log_file:
            proc = subprocess.Popen(
                command,
                stdin=subprocess.DEVNULL,
                stdout=log_file,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        server = PostgresServer(host=LOOPBACK, port=port, user="postgres", workdir=workdir, data_dir=data_dir)
        _wait_until(
            lambda: run_coroutine(lambda: _postgres_answers(server.dsn())),
            proc=proc,
            what="postgres",
            log_path=log_path,
        )
        yield server
    finally:
        if proc is not None:
            _stop(proc, first_signal=signal.SIGINT)  # SIGINT = fast shutdown
        shutil.rmtree(workdir, ignore_errors=True)


@pytest.fixture
async def redis_url(redis_server: RedisServer) -> AsyncIterator[str]:
    """A Redis URL on a database index that is empty for this test."""
    url = redis_server.url(next(_redis_db_index))
    client = aioredis.Redis.from_url(url, socket_timeout=5.0)
    try:
        await client.flushdb()
        yield url
        await client.flushdb()
    finally:
        await client.aclose()


@pytest.fixture
async def postgres_dsn(postgres_server: PostgresServer) -> AsyncIterator[str]:
    """A DSN to a database created for this test (from template0) and dropped after it."""
    name = f"fm_test_{uuid.uuid4().hex[:12]}"
    admin = await asyncpg.connect(postgres_server.dsn(), timeout=10.0)
    try:
        await admin.execute(f"CREATE DATABASE \"{name}\" TEMPLATE template0 ENCODING 'UTF8'")
    finally:
        await admin.close()
    try:
        yield postgres_server.dsn(name)
    finally:
        admin = await asyncpg.connect(postgres_server.dsn(), timeout=10.0)
        try:
            await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        finally:
            await admin.close()
