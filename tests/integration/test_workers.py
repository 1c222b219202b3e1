"""`faultmaven serve --workers N`: several real server processes on one port behind the supervisor, and the
supervisor's own rules (restart a worker that dies, give up on one that cannot start, stop on SIGTERM),
each exercised in real child processes."""

from __future__ import annotations

import collections
import contextlib
import http.client
import json
import os
import signal
import socket
import ssl
import subprocess
import sys
import textwrap
import threading
import time
import urllib.request
from pathlib import Path

import jwt
import pytest

from tests.integration.certificates import self_signed_certificate
from tests.integration.services import free_port

ROOT = Path(__file__).resolve().parents[2]
SECRET = "workers-test-secret-0123456789abcdef0123456789"


def _children(pid: int) -> list[int]:
    path = Path(f"/proc/{pid}/task/{pid}/children")
    return [int(p) for p in path.read_text().split()] if path.exists() else []


def _wait_ready(proc: subprocess.Popen[bytes], port: int, *, tls: ssl.SSLContext | None = None) -> None:
    deadline = time.monotonic() + 60
    scheme = "https" if tls else "http"
    while True:
        try:
            with urllib.request.urlopen(
                f"{scheme}://127.0.0.1:{port}/readyz", timeout=2, context=tls
            ) as resp:
                if resp.status == 200:
                    return
        except OSError:
            pass
        assert proc.poll() is None, proc.stderr.read().decode() if proc.stderr else ""
        assert time.monotonic() < deadline, "server did not become ready"
        time.sleep(0.2)


def _post_query(port: int, token: str, query: str) -> dict[str, object]:
    body = json.dumps({"query": query, "logs": ["2024-05-14T14:06:01Z ERROR api connection refused"]})
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}/api/query",
        data=body.encode(),
        headers={"Content-Type": "application/json", "Authorization": f"Bearer {token}"},
    )
    with urllib.request.urlopen(request, timeout=30) as resp:
        assert resp.status == 200
        answer: dict[str, object] = json.loads(resp.read())
        return answer


def _metric_total(text: str, name: str, **labels: str) -> float:
    total = 0.0
    for line in text.splitlines():
        if not line.startswith(name + "{"):
            continue
        label_text = line[len(name) + 1 : line.index("}")]
        if all(f'{key}="{value}"' in label_text for key, value in labels.items()):
            total += float(line.rsplit(" ", 1)[1])
    return total


class _ServedWorkers:
    """``faultmaven serve --workers 2`` on ``port`` in its own process group (so a failed test can stop the
    whole group), with its JSON log lines collected as they come."""

    def __init__(self, port: int, env: dict[str, str]) -> None:
        self.port = port
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "faultmaven.cli", "serve", "--port", str(port), "--workers", "2"],
            env={**os.environ, "FAULTMAVEN_LOG_LEVEL": "INFO", **env},
            cwd=ROOT,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            start_new_session=True,
        )
        self.log_lines: list[str] = []
        stderr = self.proc.stderr
        assert stderr is not None
        self._reader = threading.Thread(
            target=lambda: self.log_lines.extend(line.decode() for line in iter(stderr.readline, b"")),
            daemon=True,
        )
        self._reader.start()

    def logged(self, message: str) -> int:
        return sum(f'"msg": "{message}"' in line for line in list(self.log_lines))

    def wait_logged(self, message: str, count: int, *, deadline: float, what: str) -> None:
        while self.logged(message) < count:
            assert time.monotonic() < deadline, what
            time.sleep(0.05)

    def wait_exit(self) -> int:
        """The supervisor's exit code, once it and its log are done."""
        code = self.proc.wait(timeout=60)
        self._reader.join(timeout=10)
        return code

    def kill_group(self) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait()


def test_two_workers_share_the_port_the_stores_and_the_metrics(tmp_path: Path) -> None:
    port = free_port()
    (tmp_path / "tmp").mkdir()
    server = _ServedWorkers(
        port,
        {
            "FAULTMAVEN_DATA_DIR": str(tmp_path / "data"),
            "FAULTMAVEN_AUTH_JWT_SECRET": SECRET,
            "TMPDIR": str(tmp_path / "tmp"),  # where the workers' shared metric files go
        },
    )
    proc = server.proc
    try:
        _wait_ready(proc, port)
        workers = _children(proc.pid)
        assert len(workers) == 2
        assert len(list((tmp_path / "tmp").glob("faultmaven-metrics-*"))) == 1
        now = int(time.time())
        token = jwt.encode(
            {"sub": "alice", "iat": now, "exp": now + 600, "faultmaven_role": "responder"},
            SECRET,
            algorithm="HS256",
        )
        # fresh connections each time: the supervisor hands them to both workers in turn
        answers = [_post_query(port, token, f"api refuses connections, attempt {i}") for i in range(24)]
        # a session made by one worker is readable through any worker: they share the SQLite stores
        session_id = str(answers[0]["session_id"])
        for _ in range(6):
            request = urllib.request.Request(
                f"http://127.0.0.1:{port}/api/sessions/{session_id}",
                headers={"Authorization": f"Bearer {token}"},
            )
            with urllib.request.urlopen(request, timeout=10) as resp:
                assert json.loads(resp.read())["id"] == session_id
        # whichever worker answers the scrape, the counts are the whole server's
        for _ in range(4):
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as resp:
                text = resp.read().decode()
            assert (
                _metric_total(text, "faultmaven_http_request_duration_seconds_count", route="/api/query")
                == 24
            )
        # a worker that dies after starting is replaced; the server keeps answering meanwhile. /readyz
        # answered from one worker: wait until both have started (one killed while starting would count as
        # a failed start, which stops the server)
        deadline = time.monotonic() + 30
        server.wait_logged("services started", 2, deadline=deadline, what="the second worker did not start")
        os.kill(workers[0], signal.SIGKILL)
        deadline = time.monotonic() + 30
        while workers[0] in _children(proc.pid):  # connections it held die with it; new ones must not
            assert time.monotonic() < deadline, "the killed worker was not reaped"
            time.sleep(0.05)
        while True:
            current = _children(proc.pid)
            if len(current) == 2 and workers[0] not in current:
                break
            assert time.monotonic() < deadline, f"no replacement worker: {current}"
            try:
                _post_query(port, token, "still there?")
            except OSError as exc:
                raise AssertionError(
                    f"no answer while a worker was replaced ({exc}); server log:\n"
                    + "".join(server.log_lines[-15:])
                ) from exc
            time.sleep(0.2)
        # the replacement opened its stores too
        server.wait_logged("services started", 3, deadline=deadline, what="the replacement did not start")
        proc.send_signal(signal.SIGTERM)
        assert server.wait_exit() == 0
        assert server.logged("a server worker died; starting a replacement") == 1
        assert server.logged("services closed") == 2  # both live workers shut down cleanly
        assert not any((tmp_path / "tmp").iterdir())  # the metric files went with the server
    finally:
        if proc.poll() is None:
            server.kill_group()


def test_workers_serve_https_on_the_connections_handed_to_them(tmp_path: Path) -> None:
    cert_path, key_path = self_signed_certificate(tmp_path)
    port = free_port()
    server = _ServedWorkers(
        port,
        {
            "FAULTMAVEN_DATA_DIR": str(tmp_path / "data"),
            "FAULTMAVEN_TLS_CERT_FILE": str(cert_path),
            "FAULTMAVEN_TLS_KEY_FILE": str(key_path),
        },
    )
    proc = server.proc
    tls = ssl.create_default_context(cafile=str(cert_path))
    try:
        _wait_ready(proc, port, tls=tls)
        for _ in range(4):  # fresh connections: both workers do the TLS handshake on what they are handed
            with urllib.request.urlopen(f"https://127.0.0.1:{port}/healthz", timeout=10, context=tls) as resp:
                assert resp.status == 200
        with pytest.raises(OSError):  # plain HTTP is not served on an HTTPS port
            urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=10).read()
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        assert server.wait_exit() == 0


def test_workers_shut_down_cleanly_when_every_process_is_signalled_twice(tmp_path: Path) -> None:
    """A service manager that signals the whole process group (systemd's default) reaches each worker
    directly and again through the supervisor; the second signal must not cut a worker's cleanup short."""
    port = free_port()
    server = _ServedWorkers(port, {"FAULTMAVEN_DATA_DIR": str(tmp_path)})
    try:
        _wait_ready(server.proc, port)
        # both workers past their start-up (a worker stopped while starting is a failed start)
        deadline = time.monotonic() + 30
        server.wait_logged("services started", 2, deadline=deadline, what="the workers did not start")
        # back to back, as a service manager does (a signal after the supervisor is done would end it by
        # the signal's default action, as any process that has finished handling stops)
        os.killpg(server.proc.pid, signal.SIGTERM)
        os.killpg(server.proc.pid, signal.SIGTERM)
        code = server.wait_exit()
    finally:
        if server.proc.poll() is None:
            server.kill_group()
    assert code == 0, "".join(server.log_lines[-15:])
    assert server.logged("services closed") == 2


def test_workers_stop_when_the_supervisor_is_killed(tmp_path: Path) -> None:
    port = free_port()
    server = _ServedWorkers(port, {"FAULTMAVEN_DATA_DIR": str(tmp_path)})
    proc = server.proc
    try:
        _wait_ready(proc, port)
        workers = _children(proc.pid)
        assert len(workers) == 2
        proc.kill()  # no chance to stop them itself
        proc.wait()
        deadline = time.monotonic() + 40
        while any(Path(f"/proc/{pid}").exists() for pid in workers):
            assert time.monotonic() < deadline, "workers outlived their supervisor"
            time.sleep(0.1)
        with pytest.raises(OSError):
            urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2)
    finally:
        server.kill_group()


def test_workers_refuse_a_port_already_in_use(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = subprocess.run(
            [sys.executable, "-m", "faultmaven.cli", "serve", "--port", str(port), "--workers", "2"],
            check=False,
            env={**os.environ, "FAULTMAVEN_DATA_DIR": str(tmp_path)},
            cwd=ROOT,
            capture_output=True,
            timeout=60,
        )
    assert result.returncode == 2
    assert (
        f"Cannot listen on 127.0.0.1:{port}: something is already listening there." in result.stderr.decode()
    )


def _start_supervised(tmp_path: Path, body: str, *, supervise_args: str = "") -> subprocess.Popen[str]:
    """Run ``supervise`` in a fresh interpreter with ``worker(index, ready, inbox)`` defined by ``body``."""
    script = tmp_path / "supervised.py"
    script.write_text(
        textwrap.dedent(
            """
            import logging, os, signal, sys, time
            from pathlib import Path
            from faultmaven.supervisor import listen, supervise
            logging.basicConfig(level=logging.INFO, stream=sys.stderr)
            state = Path(sys.argv[1])
            """
        )
        + textwrap.dedent(body)
        + textwrap.dedent(
            f"""
            sys.exit(supervise(2, worker, shutdown_timeout=2.0{supervise_args}))
            """
        )
    )
    return subprocess.Popen(
        [sys.executable, str(script), str(tmp_path)],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _run_supervised(
    tmp_path: Path, body: str, *, stop_after: float | None = None
) -> subprocess.CompletedProcess[str]:
    proc = _start_supervised(tmp_path, body)
    if stop_after is not None:
        time.sleep(stop_after)
        proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=60)
    return subprocess.CompletedProcess(proc.args, proc.returncode, out, err)


def test_supervisor_hands_connections_to_the_workers_in_turn(tmp_path: Path) -> None:
    port = free_port()
    proc = _start_supervised(
        tmp_path,
        f"""
        from aiohttp import web
        from faultmaven.handoff import serve_handed_connections
        listener = listen("127.0.0.1", {port})

        def worker(index, ready, inbox):
            async def who(request):
                return web.Response(text=f"{{index}} {{os.getpid()}}")

            async def started(app):
                ready()
                (state / f"ready-{{index}}").touch()

            app = web.Application()
            app.router.add_get("/who", who)
            app.on_startup.append(started)
            serve_handed_connections(app, inbox=inbox, ssl_context=None, shutdown_timeout=2.0)
            return 0
        """,
        supervise_args=", listener=listener",
    )
    try:
        deadline = time.monotonic() + 30
        while len(list(tmp_path.glob("ready-*"))) < 2:
            assert proc.poll() is None, proc.communicate()[1]
            assert time.monotonic() < deadline, "the workers did not start"
            time.sleep(0.05)
        connections = [http.client.HTTPConnection("127.0.0.1", port, timeout=10) for _ in range(10)]
        served_by: list[str] = []
        for connection in connections:
            for _ in range(2):  # a kept-alive connection stays with the worker it was handed to
                connection.request("GET", "/who")
                response = connection.getresponse()
                assert response.status == 200
                served_by.append(response.read().decode())
        for connection in connections:
            connection.close()
        assert served_by[0::2] == served_by[1::2]
        per_worker = collections.Counter(answer.split()[0] for answer in served_by[0::2])
        assert per_worker == {"0": 5, "1": 5}
        assert {int(answer.split()[1]) for answer in served_by} == set(_children(proc.pid))
    finally:
        proc.send_signal(signal.SIGTERM)
        _out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    with pytest.raises(OSError):  # the supervisor closed the listening socket
        socket.create_connection(("127.0.0.1", port), timeout=2).close()


def test_supervisor_gives_up_on_a_worker_that_cannot_start(tmp_path: Path) -> None:
    result = _run_supervised(
        tmp_path,
        """
        def worker(index, ready, inbox):
            if index == 1:
                return 3          # e.g. its database was unreachable: it never got ready
            ready()
            time.sleep(30)        # the healthy one is stopped by the supervisor
            return 0
        """,
    )
    assert result.returncode == 1
    assert "a server worker exited while starting; stopping the others" in result.stderr


def test_supervisor_restarts_a_worker_that_dies_later_and_stops_on_sigterm(tmp_path: Path) -> None:
    result = _run_supervised(
        tmp_path,
        """
        def worker(index, ready, inbox):
            marker = state / f"started-{index}-{os.getpid()}"
            marker.touch()
            ready()
            if index == 0 and len(list(state.glob("started-0-*"))) == 1:
                time.sleep(0.5)   # serves a while, then crashes
                return 1
            time.sleep(30)
            return 0
        """,
        stop_after=4.0,
    )
    assert result.returncode == 0, result.stderr
    assert len(list(tmp_path.glob("started-0-*"))) == 2  # the crashed worker was replaced once
    assert len(list(tmp_path.glob("started-1-*"))) == 1
    assert "a server worker died; starting a replacement" in result.stderr


def test_supervisor_kills_workers_that_ignore_sigterm(tmp_path: Path) -> None:
    started = time.monotonic()
    result = _run_supervised(
        tmp_path,
        """
        def worker(index, ready, inbox):
            signal.signal(signal.SIGTERM, signal.SIG_IGN)
            ready()
            time.sleep(60)
            return 0
        """,
        stop_after=1.5,
    )
    assert result.returncode == 0
    assert "did not stop in time; killing them" in result.stderr
    assert time.monotonic() - started < 30


@pytest.mark.parametrize("count", [0, -2])
def test_supervisor_refuses_no_workers(count: int) -> None:
    from core.errors import InputError
    from faultmaven.supervisor import supervise

    with pytest.raises(InputError, match="--workers must be 1 or more"):
        supervise(count, lambda index, ready, inbox: 0, shutdown_timeout=1.0)
