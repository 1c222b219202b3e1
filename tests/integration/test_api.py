"""The HTTP service over real HTTP on 127.0.0.1, with the real stores in both storage modes."""

from __future__ import annotations

import argparse
import asyncio
import io
import json
import logging
import re
import ssl
import threading
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from core.errors import InputError
from faultmaven.commands import serve
from faultmaven.logconfig import JsonFormatter
from handlers.app import check_bind_allowed, server_ssl_context
from tests.integration.api_support import (
    AUDIENCE,
    ISSUER,
    JWT_SECRET,
    LiveServer,
    bearer,
    bound_port,
    live_server,
    make_settings,
    mint,
    storage_overrides,
)
from tests.integration.certificates import self_signed_certificate

pytestmark = pytest.mark.integration

PROBLEM = "application/problem+json"

SEED = {
    "user_id": "u-oncall-7",
    "query": "checkout pods keep restarting since the 14:05 deploy, what is going on?",
    "logs": [
        "2024-05-14T14:06:01Z ERROR checkout-7f9c java.lang.OutOfMemoryError: Java heap space",
        "2024-05-14T14:06:02Z WARN  checkout-7f9c GC overhead limit exceeded, heap=1986MB/2048MB",
        "2024-05-14T14:06:05Z ERROR kubelet Back-off restarting failed container checkout in pod checkout-7f9c",
        "2024-05-14T14:06:09Z ERROR checkout-7f9c upstream payments timeout after 5000ms",
    ],
    "metrics": {"cpu_usage": 92, "memory_usage": 97.5, "error_rate": 0.18},
}


@pytest.fixture(params=["embedded", "redis+postgres"])
def storage(request: pytest.FixtureRequest) -> dict[str, Any]:
    if request.param == "embedded":
        return {}
    return storage_overrides(
        "redis+postgres",
        redis_url=request.getfixturevalue("redis_url"),
        postgres_dsn=request.getfixturevalue("postgres_dsn"),
    )


@pytest.fixture
async def server(tmp_path: Path, storage: dict[str, Any]) -> AsyncIterator[LiveServer]:
    async with live_server(make_settings(tmp_path, **storage)) as live:
        yield live


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


async def _json(response: aiohttp.ClientResponse) -> dict[str, Any]:
    data = json.loads(await response.text())
    assert isinstance(data, dict)
    return data


# ------------------------------------------------------------------------------------------------ query


async def test_seed_payload_answers_and_session_continues(
    server: LiveServer, http: aiohttp.ClientSession
) -> None:
    async with http.post(
        f"{server.url}/api/query", json=SEED, headers={"X-Request-Id": "req-seed-1"}
    ) as resp:
        assert resp.status == 200, await resp.text()
        assert resp.headers["X-Request-Id"] == "req-seed-1"
        first = await _json(resp)
    assert isinstance(first["recommendations"], list) and first["recommendations"]
    assert all(isinstance(item, str) and item for item in first["recommendations"])
    assert first["turn"] == 1 and first["kind"] == "query_and_data"
    assert first["engine"] in {"deterministic", "llm"}
    session_id = first["session_id"]

    follow_up = {"user_id": "u-oncall-7", "query": "what should I check first?", "session_id": session_id}
    async with http.post(f"{server.url}/api/query", json=follow_up) as resp:
        assert resp.status == 200
        second = await _json(resp)
    assert second["session_id"] == session_id and second["turn"] == 2

    async with http.get(f"{server.url}/api/sessions/{session_id}") as resp:
        assert resp.status == 200
        session = await _json(resp)
    assert [turn["number"] for turn in session["turns"]] == [1, 2]
    assert session["turns"][0]["user_id"] == "u-oncall-7"


async def test_metrics_as_series_list(server: LiveServer, http: aiohttp.ClientSession) -> None:
    series = [
        {
            "name": "cpu_usage",
            "labels": {"service": "checkout"},
            "unit": "percent",
            "points": [
                {"timestamp": f"2024-05-14T14:0{i}:00Z", "value": value}
                for i, value in enumerate([35, 38, 36, 91, 95, 97])
            ],
        }
    ]
    body = {"user_id": "u1", "query": "cpu is pegged on checkout", "metrics": series}
    async with http.post(f"{server.url}/api/query", json=body) as resp:
        assert resp.status == 200, await resp.text()
        answer = await _json(resp)
    assert answer["kind"] == "query_and_data"


@pytest.mark.parametrize("storage", ["embedded"], indirect=True)
async def test_not_json_is_400_problem(server: LiveServer, http: aiohttp.ClientSession) -> None:
    async with http.post(
        f"{server.url}/api/query",
        data=b'{"user_id": "u1", "query": ',
        headers={"Content-Type": "application/json"},
    ) as resp:
        assert resp.status == 400
        assert resp.content_type == PROBLEM
        problem = await _json(resp)
    assert problem["code"] == "invalid_json" and problem["status"] == 400
    assert "not valid JSON" in problem["detail"]
    assert problem["request_id"] == resp.headers["X-Request-Id"]


@pytest.mark.parametrize("storage", ["embedded"], indirect=True)
@pytest.mark.parametrize(
    ("body", "path"),
    [
        ({"user_id": "u1", "logs": "one line, not a list"}, "logs"),
        ({"user_id": "u1", "logs": ["ok", 17]}, "logs[1]"),
        ({"user_id": "u1", "query": "x", "severity": "high"}, "severity"),
        ({"user_id": "", "query": "x"}, "user_id"),
        ({"user_id": "u1", "metrics": {"cpu_usage": "very high"}}, "metrics.cpu_usage"),
        ({"user_id": "u1", "metrics": [{"name": "cpu", "points": [{"value": "x"}]}]}, "metrics"),
        ({"query": "who am I?"}, "user_id"),
        (["not", "an", "object"], "(body)"),
    ],
)
async def test_schema_errors_are_422_naming_the_field(
    server: LiveServer, http: aiohttp.ClientSession, body: Any, path: str
) -> None:
    async with http.post(f"{server.url}/api/query", json=body) as resp:
        assert resp.status == 422, await resp.text()
        assert resp.content_type == PROBLEM
        problem = await _json(resp)
    assert problem["code"] == "validation_failed"
    locs = [item["loc"] for item in problem["errors"]]
    assert any(loc == path or loc.startswith(path) for loc in locs), locs
    assert path in problem["detail"]
    assert "very high" not in json.dumps(problem["errors"]) or path == "metrics.cpu_usage"


@pytest.mark.parametrize("storage", ["embedded"], indirect=True)
async def test_oversized_body_is_413_problem(server: LiveServer, http: aiohttp.ClientSession) -> None:
    limit = server.services.settings.max_request_bytes
    lines = ["2024-05-14T14:06:01Z INFO checkout request served in 12ms " + "x" * 60] * (limit // 60)
    async with http.post(f"{server.url}/api/query", json={"user_id": "u1", "logs": lines}) as resp:
        assert resp.status == 413
        assert resp.content_type == PROBLEM
        problem = await _json(resp)
    assert problem["code"] == "payload_too_large"
    assert str(limit) in problem["detail"]


async def test_rate_limit_429_with_retry_after(tmp_path: Path, storage: dict[str, Any]) -> None:
    settings = make_settings(tmp_path, rate_limit_per_minute=3, **storage)
    async with live_server(settings) as live, aiohttp.ClientSession() as http:
        statuses = []
        for _ in range(3):
            async with http.get(f"{live.url}/api/incidents") as resp:
                statuses.append(resp.status)
        assert statuses == [200, 200, 200]
        async with http.post(f"{live.url}/api/query", json=SEED) as resp:
            assert resp.status == 429
            assert resp.content_type == PROBLEM
            retry_after = int(resp.headers["Retry-After"])
            problem = await _json(resp)
        assert 1 <= retry_after <= 60
        assert problem["code"] == "rate_limited" and "3 per minute" in problem["detail"]
        async with http.get(f"{live.url}/healthz") as resp:  # health is never rate limited
            assert resp.status == 200
        async with http.get(f"{live.url}/metrics") as resp:
            assert "faultmaven_rate_limited_total 1.0" in await resp.text()


# ------------------------------------------------------------------------------ sessions and incidents


async def test_feedback_resolve_incidents_and_forget(server: LiveServer, http: aiohttp.ClientSession) -> None:
    async with http.post(f"{server.url}/api/query", json=SEED) as resp:
        answer = await _json(resp)
    session_id = answer["session_id"]
    items = [("next_step", s["id"]) for s in answer["next_steps"]] + [
        ("root_cause", c["id"]) for c in answer["root_causes"]
    ]
    assert items, "the seed incident should produce at least one step or cause to give feedback on"
    kind, item_id = items[0]
    feedback = {
        "item_id": item_id,
        "item_kind": kind,
        "verdict": "reject",
        "comment": "heap is fine",
        "user_id": "u2",
    }
    async with http.post(f"{server.url}/api/sessions/{session_id}/feedback", json=feedback) as resp:
        assert resp.status == 200, await resp.text()
        session = await _json(resp)
    assert session["feedback"][-1]["item_id"] == item_id
    assert session["feedback"][-1]["verdict"] == "reject"

    resolve = {
        "user_id": "u2",
        "title": "checkout OOM after deploy 2024-05-14",
        "root_cause": "The 14:05 deploy halved the JVM heap (-Xmx1g) while traffic stayed the same.",
        "fix": "Rolled back to the previous image; heap restored to 2g.",
        "category": "memory_exhaustion",
    }
    async with http.post(f"{server.url}/api/sessions/{session_id}/resolve", json=resolve) as resp:
        assert resp.status == 200, await resp.text()
        case = await _json(resp)
    assert case["session_id"] == session_id and case["category"] == "memory_exhaustion"
    async with http.post(f"{server.url}/api/sessions/{session_id}/resolve", json=resolve) as resp:
        assert resp.status == 409  # resolved once; a second resolve never overwrites the incident
        assert case["id"] in (await _json(resp))["detail"]

    async with http.get(f"{server.url}/api/incidents", params={"q": "heap deploy"}) as resp:
        assert resp.status == 200
        found = await _json(resp)
    assert case["id"] in [item["id"] for item in found["incidents"]]
    assert found["query"] == "heap deploy"

    async with http.get(f"{server.url}/api/incidents", params={"limit": "0"}) as resp:
        assert resp.status == 422
        assert (await _json(resp))["errors"][0]["loc"] == "limit"

    async with http.delete(f"{server.url}/api/sessions/{session_id}") as resp:
        assert resp.status == 204
    async with http.get(f"{server.url}/api/sessions/{session_id}") as resp:
        assert resp.status == 404
        assert resp.content_type == PROBLEM
        assert (await _json(resp))["code"] == "not_found"


@pytest.mark.parametrize("storage", ["embedded"], indirect=True)
async def test_unknown_session_route_and_method(server: LiveServer, http: aiohttp.ClientSession) -> None:
    async with http.get(f"{server.url}/api/sessions/no-such-session") as resp:
        assert resp.status == 404 and resp.content_type == PROBLEM
    async with http.get(f"{server.url}/api/nothing-here") as resp:
        assert resp.status == 404 and resp.content_type == PROBLEM
    async with http.put(f"{server.url}/api/query", json={}) as resp:
        assert resp.status == 405 and resp.content_type == PROBLEM
        assert "POST" in resp.headers["Allow"]
    feedback = {"item_id": "x", "item_kind": "next_step", "verdict": "accept", "user_id": "u1"}
    async with http.post(f"{server.url}/api/sessions/no-such-session/feedback", json=feedback) as resp:
        assert resp.status == 404


async def test_audit_records_actions_without_payloads(
    server: LiveServer, http: aiohttp.ClientSession
) -> None:
    async with http.post(
        f"{server.url}/api/query", json=SEED, headers={"X-Request-Id": "audit-req-1"}
    ) as resp:
        answer = await _json(resp)
    async with http.get(f"{server.url}/api/admin/audit", params={"action": "query"}) as resp:
        assert resp.status == 200, await resp.text()
        events = (await _json(resp))["events"]
    event = next(e for e in events if e["detail"].get("request_id") == "audit-req-1")
    assert event["actor"] == "u-oncall-7" and event["action"] == "query"
    assert event["session_id"] == answer["session_id"]
    assert event["detail"]["outcome"] == "ok" and event["detail"]["log_lines"] == "4"
    dumped = json.dumps(events)
    assert "OutOfMemoryError" not in dumped and "restarting" not in dumped


@pytest.mark.parametrize("storage", ["embedded"], indirect=True)
async def test_json_logs_carry_ids_but_no_payloads(server: LiveServer, http: aiohttp.ClientSession) -> None:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    old_level = root.level
    root.addHandler(handler)
    root.setLevel(logging.INFO)
    try:
        async with http.post(
            f"{server.url}/api/query", json=SEED, headers={"X-Request-Id": "log-req-9"}
        ) as resp:
            session_id = (await _json(resp))["session_id"]
        async with http.post(f"{server.url}/api/query", json={"user_id": "u1", "logs": 5}) as resp:
            assert resp.status == 422
    finally:
        root.removeHandler(handler)
        root.setLevel(old_level)
    lines = [json.loads(line) for line in stream.getvalue().splitlines() if line.strip()]
    access = [line for line in lines if line["msg"] == "request" and line.get("route") == "/api/query"]
    assert len(access) == 2
    first = access[0]
    assert first["request_id"] == "log-req-9" and first["session_id"] == session_id
    assert first["status"] == 200 and first["method"] == "POST" and first["duration_ms"] >= 0
    assert access[1]["status"] == 422 and access[1]["request_id"] != "log-req-9"
    text = stream.getvalue()
    assert "OutOfMemoryError" not in text and "Back-off restarting" not in text


# ------------------------------------------------------------------------------------ ops endpoints


async def test_healthz_readyz_and_metrics(server: LiveServer, http: aiohttp.ClientSession) -> None:
    async with http.get(f"{server.url}/healthz") as resp:
        assert resp.status == 200 and (await _json(resp))["status"] == "ok"
    async with http.get(f"{server.url}/readyz") as resp:
        assert resp.status == 200, await resp.text()
        ready = await _json(resp)
    assert ready == {"status": "ready", "checks": {"sessions": True, "history": True}}
    async with http.post(f"{server.url}/api/query", json=SEED) as resp:
        assert resp.status == 200
    async with http.get(f"{server.url}/metrics") as resp:
        assert resp.status == 200
        assert resp.content_type == "text/plain"
        text = await resp.text()
    assert (
        'faultmaven_http_request_duration_seconds_bucket{le="0.005",method="POST",route="/api/query",status="200"}'
        in text
    )
    assert "# TYPE faultmaven_engine_duration_seconds histogram" in text
    assert "# TYPE faultmaven_llm_tokens_total counter" in text
    assert "# TYPE faultmaven_feedback_total counter" in text
    # the troubleshooter records engine latency and answers on the same registry
    assert 'faultmaven_engine_duration_seconds_count{operation="ask"' in text
    assert "faultmaven_answers_total{" in text


@pytest.mark.parametrize("storage", ["embedded"], indirect=True)
async def test_readyz_503_names_the_failed_store(server: LiveServer, http: aiohttp.ClientSession) -> None:
    await server.services.stores.history.close()
    async with http.get(f"{server.url}/readyz") as resp:
        assert resp.status == 503
        assert resp.content_type == PROBLEM
        problem = await _json(resp)
    assert problem["code"] == "not_ready"
    assert "history" in problem["detail"] or "stores" in problem["detail"]
    assert problem["checks"].get("history", problem["checks"].get("stores")) is False


@pytest.mark.parametrize("storage", ["embedded"], indirect=True)
async def test_openapi_document(server: LiveServer, http: aiohttp.ClientSession) -> None:
    async with http.get(f"{server.url}/api/openapi.json") as resp:
        assert resp.status == 200
        doc = await _json(resp)
    assert doc["openapi"] == "3.1.0"
    assert {"/api/query", "/api/sessions/{id}", "/api/sessions/{id}/feedback", "/api/sessions/{id}/resolve",
            "/api/incidents", "/api/admin/audit", "/healthz", "/readyz", "/metrics"} <= set(doc["paths"])  # fmt: skip
    query = doc["paths"]["/api/query"]["post"]
    assert query["requestBody"]["content"]["application/json"]["schema"]["$ref"].startswith(
        "#/components/schemas/"
    )
    for status in ("200", "400", "413", "422", "429"):
        assert status in query["responses"]
    schemas = doc["components"]["schemas"]
    assert {"QueryRequest", "Problem", "MetricSeries"} <= set(schemas)
    assert "recommendations" in json.dumps(schemas)
    assert "securitySchemes" not in doc["components"]  # no auth configured on this server
    refs = set(re.findall(r'"\$ref": "([^"]+)"', json.dumps(doc)))
    assert refs, "schemas are referenced, not inlined"
    for ref in refs:
        assert ref.startswith("#/components/schemas/") and ref.rsplit("/", 1)[1] in schemas, ref
    for path, methods in doc["paths"].items():
        for method, operation in methods.items():
            assert "default" in operation["responses"], (method, path)
            if "{id}" in path:
                assert operation["parameters"][0]["in"] == "path"


# ------------------------------------------------------------------------------ schemathesis (threaded)


class ThreadedServer:
    """The live server on its own event loop in a thread, for synchronous clients (schemathesis)."""

    def __init__(self, tmp_path: Path, **overrides: Any) -> None:
        self._settings = make_settings(tmp_path, **overrides)
        self._loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._stop: asyncio.Event | None = None
        self.url = ""
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        self._loop.run_until_complete(self._serve())

    async def _serve(self) -> None:
        self._stop = asyncio.Event()
        try:
            async with live_server(self._settings) as live:
                self.url = live.url
                self._ready.set()
                await self._stop.wait()
        except BaseException as exc:
            self._error = exc
            self._ready.set()

    def __enter__(self) -> ThreadedServer:
        self._thread.start()
        assert self._ready.wait(30), "server did not start"
        if self._error is not None:
            raise self._error
        return self

    def __exit__(self, *exc: object) -> None:
        assert self._stop is not None
        self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(30)
        self._loop.close()


@pytest.mark.parametrize("auth", ["none", "bearer"])
def test_schemathesis_conformance(tmp_path: Path, auth: str) -> None:
    import schemathesis
    from hypothesis import HealthCheck, given, settings

    overrides: dict[str, Any] = {"rate_limit_per_minute": 100_000}
    headers: dict[str, str] = {}
    if auth == "bearer":  # an admin token may call everything; schemathesis also checks that no-token fails
        overrides.update(auth_jwt_secret=JWT_SECRET, auth_issuer=ISSUER, auth_audience=AUDIENCE)
        headers = bearer(mint(sub="schema-admin", role="admin", expires_in=3600))
    with ThreadedServer(tmp_path, **overrides) as live:
        schema = schemathesis.openapi.from_url(f"{live.url}/api/openapi.json")
        operations = [result.ok() for result in schema.get_all_operations()]  # type: ignore[union-attr]
        assert len(operations) >= 10
        tested = []
        for operation in operations:
            if operation.path in {"/metrics", "/api/openapi.json"}:
                continue  # free-form bodies: nothing for the schema to check

            @settings(max_examples=12, deadline=None, database=None,
                      suppress_health_check=list(HealthCheck), derandomize=True)  # fmt: skip
            @given(case=operation.as_strategy())
            def check(case: Any) -> None:
                case.call_and_validate(base_url=live.url, headers=headers, timeout=30)

            check()
            tested.append(f"{operation.method.upper()} {operation.path}")
        assert "POST /api/query" in tested and "POST /api/sessions/{id}/resolve" in tested


# ------------------------------------------------------------------------------------- HTTPS and bind


async def test_https_with_configured_certificate(tmp_path: Path) -> None:
    cert_path, key_path = self_signed_certificate(tmp_path)
    settings = make_settings(tmp_path, tls_cert_file=cert_path, tls_key_file=key_path)
    server_context = server_ssl_context(settings)
    assert server_context is not None
    client_context = ssl.create_default_context(cafile=str(cert_path))
    async with live_server(settings, ssl_context=server_context) as live, aiohttp.ClientSession() as http:
        assert live.url.startswith("https://")
        async with http.post(f"{live.url}/api/query", json=SEED, ssl=client_context) as resp:
            assert resp.status == 200
        plain = live.url.replace("https://", "http://")
        with pytest.raises(aiohttp.ClientError):
            async with http.get(f"{plain}/healthz") as resp:
                await resp.read()


def test_tls_misconfiguration_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="both"):
        server_ssl_context(make_settings(tmp_path, tls_cert_file=tmp_path / "cert.pem"))
    (tmp_path / "cert.pem").write_text("not a certificate")
    (tmp_path / "key.pem").write_text("not a key")
    with pytest.raises(InputError, match="Cannot load the TLS certificate"):
        server_ssl_context(
            make_settings(tmp_path, tls_cert_file=tmp_path / "cert.pem", tls_key_file=tmp_path / "key.pem")
        )


def test_public_bind_without_auth_is_refused(tmp_path: Path) -> None:
    settings = make_settings(tmp_path)
    for host in ("0.0.0.0", "::", "10.1.2.3", "api.internal.example"):
        with pytest.raises(InputError, match="without authentication"):
            check_bind_allowed(settings, host)
    for host in ("127.0.0.1", "localhost", "::1", "127.0.0.2"):
        check_bind_allowed(settings, host)
    check_bind_allowed(make_settings(tmp_path, allow_public_bind_without_auth=True), "0.0.0.0")
    check_bind_allowed(make_settings(tmp_path, auth_jwt_secret="s" * 32), "0.0.0.0")
    parser = argparse.ArgumentParser()
    serve.add_arguments(parser)
    with pytest.raises(InputError, match=r"Refusing to listen on '0\.0\.0\.0'"):
        serve.run(parser.parse_args(["--host", "0.0.0.0", "--port", "0"]), settings)


async def test_startup_warns_loudly_without_auth(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="handlers.app"):
        async with live_server(make_settings(tmp_path)):
            pass
    assert any("AUTHENTICATION IS DISABLED" in record.getMessage() for record in caplog.records)


# --------------------------------------------------------------------------------------------- tracing


async def test_traces_exported_over_otlp_http(tmp_path: Path) -> None:
    received: list[tuple[str, str, int]] = []

    async def collect(request: web.Request) -> web.Response:
        body = await request.read()
        received.append((request.path, request.content_type, len(body)))
        return web.Response(status=200)

    collector = web.Application()
    collector.router.add_post("/v1/traces", collect)
    runner = web.AppRunner(collector)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = bound_port(runner)
    try:
        settings = make_settings(tmp_path, otlp_endpoint=f"http://127.0.0.1:{port}")
        async with live_server(settings) as live, aiohttp.ClientSession() as http:
            async with http.post(f"{live.url}/api/query", json=SEED) as resp:
                assert resp.status == 200
            with live.services.tracing.stage("unit_of_work", attributes={"records": 4}):
                pass
        # closing the server flushed the batch processor (in a worker thread: give it the loop)
        for _ in range(50):
            if received:
                break
            await asyncio.sleep(0.1)
    finally:
        await runner.cleanup()
    assert received, "no spans reached the collector"
    path, content_type, size = received[0]
    assert path == "/v1/traces" and content_type == "application/x-protobuf" and size > 0


# ---------------------------------------------------------------------------------- serve (subprocess)


def test_serve_command_runs_and_stops_on_sigterm(tmp_path: Path) -> None:
    import os
    import signal
    import subprocess
    import sys
    import time
    import urllib.request

    from tests.integration.services import free_port

    port = free_port()
    env = {**os.environ, "FAULTMAVEN_DATA_DIR": str(tmp_path), "FAULTMAVEN_LOG_LEVEL": "INFO"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "faultmaven.cli", "serve", "--host", "127.0.0.1", "--port", str(port)],
        env=env,
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=2) as resp:
                    assert resp.status == 200
                    break
            except OSError:
                assert proc.poll() is None, proc.stderr.read().decode() if proc.stderr else ""
                assert time.monotonic() < deadline, "server did not become ready"
                time.sleep(0.2)
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=40) == 0
        stderr = proc.stderr.read().decode() if proc.stderr else ""
        assert "AUTHENTICATION IS DISABLED" in stderr
        assert "services closed" in stderr
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
