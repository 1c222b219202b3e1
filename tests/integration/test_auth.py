"""Bearer-token authentication and RBAC over real HTTP: HS256 with a shared secret, RS256 with a JWKS served
by a local aiohttp server, and the audit trail of denied and allowed actions."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import jwt
import pytest
from aiohttp import web
from cryptography.hazmat.primitives.asymmetric import rsa
from hypothesis import given, settings
from hypothesis import strategies as st
from jwt.algorithms import RSAAlgorithm

from core.errors import AuthenticationError
from handlers.auth import Authenticator, Principal
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
)

pytestmark = pytest.mark.integration

QUERY = {
    "user_id": "someone-else",
    "query": "payments p99 latency doubled after the 09:30 deploy",
    "logs": [
        "2024-05-14T09:31:02Z WARN payments-5d8 upstream ledger slow: 2450ms (threshold 1000ms)",
        "2024-05-14T09:31:07Z ERROR payments-5d8 request timeout after 5000ms calling ledger:8443",
    ],
    "metrics": {"latency_p99_ms": 2480, "error_rate": 0.07},
}


def _hs_settings(tmp_path: Path, **overrides: Any) -> Any:
    return make_settings(
        tmp_path, auth_jwt_secret=JWT_SECRET, auth_issuer=ISSUER, auth_audience=AUDIENCE, **overrides
    )


@pytest.fixture
async def server(tmp_path: Path) -> AsyncIterator[LiveServer]:
    async with live_server(_hs_settings(tmp_path)) as live:
        yield live


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


async def _ask(http: aiohttp.ClientSession, url: str, token: str) -> dict[str, Any]:
    async with http.post(f"{url}/api/query", json=QUERY, headers=bearer(token)) as resp:
        assert resp.status == 200, await resp.text()
        data: dict[str, Any] = await resp.json()
        return data


@pytest.mark.parametrize(
    ("headers", "needle"),
    [
        ({}, "needs a bearer token"),
        ({"Authorization": "Basic YWxpY2U6cGFzcw=="}, "Bearer <JWT>"),
        ({"Authorization": "Bearer not-a-jwt"}, "not a well-formed JWT"),
        (bearer(mint(expires_in=-120)), "expired"),
        (bearer(mint(audience="some-other-api")), "audience"),
        (bearer(mint(issuer="https://evil.example/")), "untrusted issuer"),
        (bearer(mint(secret="a-different-secret-of-enough-length-0123")), "invalid"),
        (
            bearer(jwt.encode({"sub": "x", "iss": ISSUER, "aud": AUDIENCE}, JWT_SECRET, algorithm="HS256")),
            "'exp'",
        ),
        (
            bearer(
                jwt.encode(
                    {"sub": "mallory", "iss": ISSUER, "aud": AUDIENCE, "exp": 9999999999},
                    "",
                    algorithm="none",
                )
            ),
            "'none' are not accepted",
        ),
    ],
)
async def test_bad_credentials_are_401(
    server: LiveServer, http: aiohttp.ClientSession, headers: dict[str, str], needle: str
) -> None:
    async with http.post(f"{server.url}/api/query", json=QUERY, headers=headers) as resp:
        assert resp.status == 401
        assert resp.content_type == "application/problem+json"
        assert resp.headers["WWW-Authenticate"].startswith("Bearer")
        problem = json.loads(await resp.text())
    assert problem["code"] == "unauthenticated"
    assert needle in problem["detail"]


async def test_health_and_metrics_need_no_token(server: LiveServer, http: aiohttp.ClientSession) -> None:
    for path in ("/healthz", "/readyz", "/metrics", "/api/openapi.json"):
        async with http.get(f"{server.url}{path}") as resp:
            assert resp.status == 200, path


async def test_viewer_queries_and_reads_but_cannot_give_feedback(
    server: LiveServer, http: aiohttp.ClientSession
) -> None:
    viewer = mint(sub="vera", role="viewer")
    answer = await _ask(http, server.url, viewer)
    session_id = answer["session_id"]
    async with http.get(f"{server.url}/api/sessions/{session_id}", headers=bearer(viewer)) as resp:
        assert resp.status == 200
        session = await resp.json()
    assert session["turns"][0]["user_id"] == "vera"  # the token's sub, not the body's user_id
    async with http.get(
        f"{server.url}/api/incidents", params={"q": "ledger"}, headers=bearer(viewer)
    ) as resp:
        assert resp.status == 200

    feedback = {"item_id": "anything", "item_kind": "next_step", "verdict": "accept"}
    async with http.post(
        f"{server.url}/api/sessions/{session_id}/feedback", json=feedback, headers=bearer(viewer)
    ) as resp:
        assert resp.status == 403
        problem = json.loads(await resp.text())
    assert problem["code"] == "forbidden" and "viewer" in problem["detail"]
    resolve = {"root_cause": "ledger slow", "fix": "scaled ledger"}
    async with http.post(
        f"{server.url}/api/sessions/{session_id}/resolve", json=resolve, headers=bearer(viewer)
    ) as resp:
        assert resp.status == 403
    async with http.get(f"{server.url}/api/admin/audit", headers=bearer(viewer)) as resp:
        assert resp.status == 403


async def test_responder_gives_feedback_and_resolves_admin_reads_audit(
    server: LiveServer, http: aiohttp.ClientSession
) -> None:
    responder = mint(sub="rita", role="responder")
    admin = mint(sub="ada", role="admin")
    viewer = mint(sub="vera", role="viewer")
    answer = await _ask(http, server.url, responder)
    session_id = answer["session_id"]
    items = [("next_step", s["id"]) for s in answer["next_steps"]] + [
        ("root_cause", c["id"]) for c in answer["root_causes"]
    ]
    assert items
    kind, item_id = items[0]
    feedback = {"item_id": item_id, "item_kind": kind, "verdict": "accept", "user_id": "spoofed"}
    async with http.post(
        f"{server.url}/api/sessions/{session_id}/feedback", json=feedback, headers=bearer(responder)
    ) as resp:
        assert resp.status == 200, await resp.text()
        session = await resp.json()
    assert session["feedback"][-1]["user_id"] == "rita"

    async with http.post(  # a viewer's denied attempt, to find in the audit trail
        f"{server.url}/api/sessions/{session_id}/feedback", json=feedback, headers=bearer(viewer)
    ) as resp:
        assert resp.status == 403

    resolve = {"root_cause": "ledger connection pool exhausted after deploy", "fix": "raised pool size to 50"}
    async with http.post(
        f"{server.url}/api/sessions/{session_id}/resolve", json=resolve, headers=bearer(responder)
    ) as resp:
        assert resp.status == 200, await resp.text()
        case = await resp.json()
    assert case["resolved_by"] == "rita"

    async with http.get(f"{server.url}/api/admin/audit", headers=bearer(admin)) as resp:
        assert resp.status == 200
        events = (await resp.json())["events"]
    # the HTTP edge's events carry the outcome, role and request id (the engine may add its own events)
    edge = [e for e in events if "outcome" in e["detail"]]
    by_action = {(e["action"], e["actor"], e["detail"]["outcome"]) for e in edge}
    assert ("query", "rita", "ok") in by_action
    assert ("feedback", "rita", "ok") in by_action
    assert ("feedback", "vera", "forbidden") in by_action
    assert ("resolve", "rita", "ok") in by_action
    assert all(e["detail"]["request_id"] and e["detail"]["role"] for e in edge)
    assert all(e["session_id"] == session_id for e in edge if e["action"] in {"feedback", "resolve"})
    dumped = json.dumps(events)
    assert JWT_SECRET not in dumped and "ledger:8443" not in dumped

    async with http.get(
        f"{server.url}/api/admin/audit", params={"action": "admin:read_audit"}, headers=bearer(admin)
    ) as resp:
        assert resp.status == 200
        again = (await resp.json())["events"]
    assert again and again[0]["actor"] == "ada"


async def test_role_claim_forms(server: LiveServer, http: aiohttp.ClientSession) -> None:
    no_role = mint(sub="nora", role=None)  # default role: viewer
    async with http.get(f"{server.url}/api/admin/audit", headers=bearer(no_role)) as resp:
        assert resp.status == 403
    await _ask(http, server.url, no_role)
    several = mint(sub="sam", role=None, extra={"faultmaven_role": ["viewer", "admin"]})
    async with http.get(f"{server.url}/api/admin/audit", headers=bearer(several)) as resp:
        assert resp.status == 200
    unknown = mint(sub="ursula", role="superuser")
    async with http.post(f"{server.url}/api/query", json=QUERY, headers=bearer(unknown)) as resp:
        assert resp.status == 403
        assert "no known role" in (await resp.json())["detail"]


async def test_openapi_documents_bearer_security(server: LiveServer, http: aiohttp.ClientSession) -> None:
    async with http.get(f"{server.url}/api/openapi.json") as resp:
        doc = await resp.json()
    assert doc["components"]["securitySchemes"]["bearerAuth"]["scheme"] == "bearer"
    query = doc["paths"]["/api/query"]["post"]
    assert query["security"] == [{"bearerAuth": []}]
    assert {"401", "403"} <= set(query["responses"])
    assert "security" not in doc["paths"]["/healthz"]["get"]
    assert "user_id" not in doc["components"]["schemas"]["QueryRequest"].get("required", [])


async def test_rate_limit_is_per_user(tmp_path: Path) -> None:
    settings = _hs_settings(tmp_path, rate_limit_per_minute=2)
    async with live_server(settings) as live, aiohttp.ClientSession() as http:
        alice, bob = mint(sub="alice"), mint(sub="bob")
        for _ in range(2):
            async with http.get(f"{live.url}/api/incidents", headers=bearer(alice)) as resp:
                assert resp.status == 200
        async with http.get(f"{live.url}/api/incidents", headers=bearer(alice)) as resp:
            assert resp.status == 429
            assert int(resp.headers["Retry-After"]) >= 1
        async with http.get(f"{live.url}/api/incidents", headers=bearer(bob)) as resp:
            assert resp.status == 200


# ------------------------------------------------------------------------------------------- RS256


class Jwks:
    """An identity provider's key endpoint on loopback, counting fetches."""

    def __init__(self) -> None:
        self.key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self.kid = "test-key-1"
        self.hits = 0
        self.url = ""
        self._runner: web.AppRunner | None = None

    async def _serve(self, request: web.Request) -> web.Response:
        self.hits += 1
        public = json.loads(RSAAlgorithm.to_jwk(self.key.public_key()))
        public.update({"kid": self.kid, "use": "sig", "alg": "RS256"})
        return web.json_response({"keys": [public]})

    async def start(self) -> None:
        app = web.Application()
        app.router.add_get("/.well-known/jwks.json", self._serve)
        self._runner = web.AppRunner(app)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        port = bound_port(self._runner)
        self.url = f"http://127.0.0.1:{port}/.well-known/jwks.json"

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    def token(
        self, *, sub: str, role: str, key: Any = None, kid: str | None = None, expires_in: int = 300
    ) -> str:
        now = int(time.time())
        claims = {
            "sub": sub,
            "iss": ISSUER,
            "aud": AUDIENCE,
            "iat": now,
            "exp": now + expires_in,
            "faultmaven_role": role,
        }
        return jwt.encode(claims, key or self.key, algorithm="RS256", headers={"kid": kid or self.kid})


@pytest.fixture
async def jwks() -> AsyncIterator[Jwks]:
    provider = Jwks()
    await provider.start()
    try:
        yield provider
    finally:
        await provider.stop()


async def test_rs256_via_jwks(tmp_path: Path, jwks: Jwks) -> None:
    settings = make_settings(tmp_path, auth_jwks_url=jwks.url, auth_issuer=ISSUER, auth_audience=AUDIENCE)
    async with live_server(settings) as live, aiohttp.ClientSession() as http:
        good = jwks.token(sub="rhea", role="responder")
        for _ in range(3):
            answer = await _ask(http, live.url, good)
        assert jwks.hits == 1, "the key set should be fetched once and cached"
        async with http.get(f"{live.url}/api/sessions/{answer['session_id']}", headers=bearer(good)) as resp:
            assert (await resp.json())["turns"][0]["user_id"] == "rhea"

        stranger = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        forged = jwks.token(sub="rhea", role="admin", key=stranger)
        async with http.post(f"{live.url}/api/query", json=QUERY, headers=bearer(forged)) as resp:
            assert resp.status == 401
        unknown_kid = jwks.token(sub="rhea", role="admin", key=stranger, kid="rotated-away")
        for _ in range(3):
            async with http.post(f"{live.url}/api/query", json=QUERY, headers=bearer(unknown_kid)) as resp:
                assert resp.status == 401
                assert "trusted key set" in (await resp.json())["detail"]
        assert jwks.hits == 1, "made-up key ids must not refetch the key set on every request"
        expired = jwks.token(sub="rhea", role="responder", expires_in=-300)
        async with http.post(f"{live.url}/api/query", json=QUERY, headers=bearer(expired)) as resp:
            assert resp.status == 401
        # an HS256 token is refused when only a JWKS is configured (no algorithm confusion)
        async with http.post(f"{live.url}/api/query", json=QUERY, headers=bearer(mint())) as resp:
            assert resp.status == 401


async def test_jwks_unreachable_is_503(tmp_path: Path, jwks: Jwks) -> None:
    url = jwks.url
    token = jwks.token(sub="rhea", role="viewer")
    await jwks.stop()
    settings = make_settings(tmp_path, auth_jwks_url=url, auth_issuer=ISSUER, auth_audience=AUDIENCE)
    async with (
        live_server(settings) as live,
        aiohttp.ClientSession() as http,
        http.post(f"{live.url}/api/query", json=QUERY, headers=bearer(token)) as resp,
    ):
        assert resp.status == 503
        problem = await resp.json(content_type=None)
    assert problem["code"] == "dependency_unavailable" and "key set" in problem["detail"]


# --------------------------------------------------------------------------- header parsing (no network)


@settings(max_examples=300, deadline=None)
@given(
    header=st.one_of(
        st.none(),
        st.text(max_size=200),
        st.builds(lambda s: f"Bearer {s}", st.text(max_size=200)),
        st.builds(lambda s: f"bearer {s}.{s}.{s}", st.text(alphabet="abcXYZ019-_=", max_size=60)),
    )
)
def test_any_authorization_header_is_a_principal_or_a_401(header: str | None) -> None:
    authenticator = Authenticator(_hs_settings(Path("/nonexistent-data-dir")))
    try:
        principal = asyncio.run(authenticator.authenticate(header))
    except AuthenticationError as exc:
        assert exc.http_status == 401 and exc.user_message
    else:  # only a correctly signed token gets through, and random text is never one
        raise AssertionError(f"accepted {principal!r} for {header!r}")


def test_valid_token_parses_and_whitespace_is_tolerated() -> None:
    authenticator = Authenticator(_hs_settings(Path("/nonexistent-data-dir")))
    token = mint(sub="carol", role="responder")
    principal = asyncio.run(authenticator.authenticate(f"  bearer   {token}  "))
    assert principal == Principal(user_id="carol", role="responder", authenticated=True)


def test_a_verified_token_is_remembered_only_until_it_expires() -> None:
    import handlers.auth as auth_module

    authenticator = Authenticator(_hs_settings(Path("/nonexistent-data-dir")))
    # expired 2 s short of the leeway: accepted for 2 more seconds
    token = mint(sub="dave", role="responder", expires_in=2 - auth_module._LEEWAY_SECONDS)
    first = asyncio.run(authenticator.authenticate(f"Bearer {token}"))
    assert asyncio.run(authenticator.authenticate(f"Bearer {token}")) == first  # from memory
    # another token for the same user is verified on its own
    forged = mint(sub="dave", role="admin", secret="not-the-server-secret-0123456789abcdef")
    with pytest.raises(AuthenticationError, match="invalid"):
        asyncio.run(authenticator.authenticate(f"Bearer {forged}"))
    time.sleep(2.5)  # past expiry plus leeway the remembered verdict no longer counts
    with pytest.raises(AuthenticationError, match="expired"):
        asyncio.run(authenticator.authenticate(f"Bearer {token}"))


def test_a_remembered_token_is_checked_again_after_a_minute(monkeypatch: pytest.MonkeyPatch) -> None:
    import handlers.auth as auth_module

    authenticator = Authenticator(_hs_settings(Path("/nonexistent-data-dir")))
    token = mint(sub="erin", role="viewer", expires_in=3600)
    asyncio.run(authenticator.authenticate(f"Bearer {token}"))
    calls: list[str] = []
    original = authenticator._verify

    async def counting(raw: str) -> dict[str, Any]:
        calls.append(raw)
        return await original(raw)

    monkeypatch.setattr(authenticator, "_verify", counting)
    asyncio.run(authenticator.authenticate(f"Bearer {token}"))
    assert calls == []
    later = time.time() + auth_module.VERIFIED_TOKEN_SECONDS + 1
    monkeypatch.setattr(time, "time", lambda: later)  # the token itself stays valid for PyJWT's clock
    asyncio.run(authenticator.authenticate(f"Bearer {token}"))
    assert calls == [token]
