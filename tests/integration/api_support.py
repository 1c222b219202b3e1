"""Shared set-up for the HTTP API tests: settings in a temporary directory, the two storage modes, a live
server on 127.0.0.1, and token minting.

The troubleshooter is the real one (``faultmaven.service.create_troubleshooter``) when it exists. Until the
lead's module lands, ``InterimTroubleshooter`` stands in: it keeps sessions, feedback and incidents in the
REAL stores, but its answers come from a few keyword rules, not the analysis core. Tests that check engine
output only check the contract (fields, ids, session continuity), so they keep passing on the real engine.
"""

from __future__ import annotations

import base64
import importlib.util
import os
import time
import uuid
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jwt
from aiohttp import web

from core.answers import (
    Answer,
    Feedback,
    IncidentCase,
    NextStep,
    Question,
    RankedCause,
    ResolveRequest,
    Session,
    SimilarIncident,
    Turn,
)
from core.errors import NotFoundError
from core.models import Category
from faultmaven.services import Services
from faultmaven.settings import Settings
from faultmaven.stores import Stores, open_stores
from handlers.app import create_app

REAL_ENGINE = importlib.util.find_spec("faultmaven.service") is not None

JWT_SECRET = "test-shared-secret-0123456789abcdef0123456789"
ISSUER = "https://idp.example.test/"
AUDIENCE = "faultmaven-api"


def make_settings(data_dir: Path, **overrides: Any) -> Settings:
    """Settings for a test, independent of the machine's environment and any .env file."""
    values: dict[str, Any] = {
        "data_dir": data_dir,
        "rate_limit_per_minute": 1000,
        "max_request_bytes": 64 * 1024,
        "outbound_timeout_seconds": 3.0,
    }
    values.update(overrides)
    return Settings(_env_file=None, **values)  # type: ignore[call-arg]


def storage_overrides(mode: str, *, redis_url: str | None, postgres_dsn: str | None) -> dict[str, Any]:
    if mode == "embedded":
        return {}
    key = base64.b64encode(os.urandom(32)).decode()
    return {"redis_url": redis_url, "postgres_dsn": postgres_dsn, "encryption_keys": f"test1:{key}"}


def mint(
    *,
    sub: str = "alice",
    role: str | None = "viewer",
    secret: str = JWT_SECRET,
    issuer: str = ISSUER,
    audience: str = AUDIENCE,
    expires_in: int = 300,
    extra: Mapping[str, Any] | None = None,
) -> str:
    now = int(time.time())
    claims: dict[str, Any] = {"sub": sub, "iss": issuer, "aud": audience, "iat": now, "exp": now + expires_in}
    if role is not None:
        claims["faultmaven_role"] = role
    claims.update(extra or {})
    return jwt.encode(claims, secret, algorithm="HS256")


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


class InterimTroubleshooter:
    """TEMPORARY stand-in until faultmaven.service exists (see module docstring). State is in real stores."""

    _RULES: tuple[tuple[str, Category, str], ...] = (
        ("outofmemory", Category.MEMORY_EXHAUSTION, "Check the pod's memory limit and heap usage"),
        ("oomkilled", Category.MEMORY_EXHAUSTION, "Check the pod's memory limit and heap usage"),
        ("timeout", Category.TIMEOUT, "Check the upstream dependency's latency"),
        ("connection refused", Category.DEPENDENCY_FAILURE, "Check that the dependency is up"),
        ("cpu", Category.CPU_SATURATION, "Check CPU throttling and hot code paths"),
    )

    def __init__(self, stores: Stores) -> None:
        self._stores = stores

    async def ask(self, question: Question) -> Answer:
        session = None
        if question.session_id:
            session = await self._stores.sessions.get_session(question.session_id)
        if session is None:
            session = Session(id=question.session_id or uuid.uuid4().hex)
        text = " ".join([question.query, *(line for log in question.logs for line in log.lines)]).lower()
        if any(s.name == "cpu_usage" and s.points and s.points[-1].value > 85 for s in question.metrics):
            text += " cpu"
        causes: list[RankedCause] = []
        steps: list[NextStep] = []
        for needle, category, step in self._RULES:
            if needle in text and all(c.category != category for c in causes):
                cause_id = f"{category.value}:interim"
                causes.append(RankedCause(id=cause_id, title=category.value, category=category, confidence=0.6))
                steps.append(NextStep(id=f"step:{category.value}", title=step, root_cause_id=cause_id))
        turn = len(session.turns) + 1
        answer = Answer(
            session_id=session.id,
            turn=turn,
            kind=question.kind,
            engine="deterministic",
            summary=f"{len(causes)} hypotheses",
            recommendations=[step.title for step in steps] or ["Share logs or metrics from the incident"],
            root_causes=causes,
            next_steps=steps,
        )
        session.turns.append(
            Turn(
                number=turn,
                question=question.query[:200],
                kind=question.kind,
                user_id=question.user_id,
                answer_summary=answer.summary,
                root_cause_ids=[c.id for c in causes],
                next_step_ids=[s.id for s in steps],
            )
        )
        session.last_answer = answer
        await self._stores.sessions.save_session(session)
        return answer

    async def feedback(self, feedback: Feedback) -> Session:
        session = await self.get_session(feedback.session_id)
        session.feedback.append(feedback)
        await self._stores.history.record_feedback(feedback)
        await self._stores.sessions.save_session(session)
        return session

    async def resolve(self, session_id: str, request: ResolveRequest) -> IncidentCase:
        session = await self.get_session(session_id)
        case = IncidentCase(
            id=uuid.uuid4().hex,
            title=request.title or request.root_cause[:80],
            session_id=session_id,
            category=request.category or Category.UNKNOWN,
            root_cause=request.root_cause,
            fix=request.fix,
            resolved_by=request.user_id,
        )
        await self._stores.history.save_incident(case)
        session.resolved = case
        await self._stores.sessions.save_session(session)
        return case

    async def get_session(self, session_id: str) -> Session:
        session = await self._stores.sessions.get_session(session_id)
        if session is None:
            raise NotFoundError(f"No session {session_id!r}.")
        return session

    async def forget(self, session_id: str) -> None:
        await self._stores.sessions.delete_session(session_id)

    async def search_incidents(self, query: str, *, limit: int = 5) -> list[SimilarIncident]:
        cases = await self._stores.history.list_incidents(query=query, limit=limit)
        return [
            SimilarIncident(id=c.id, title=c.title, score=1.0, category=c.category, root_cause=c.root_cause, fix=c.fix)
            for c in cases
        ]


async def build_services(settings: Settings) -> tuple[Services, Stores | None]:
    """Services for a test. With the real engine, Services opens and closes everything itself; otherwise
    the test opens the real stores and hands them in with the interim troubleshooter."""
    if REAL_ENGINE:
        return Services(settings), None
    stores = await open_stores(settings)
    return Services(settings, stores=stores, troubleshooter=InterimTroubleshooter(stores)), stores


@dataclass
class LiveServer:
    url: str
    app: web.Application
    services: Services


@asynccontextmanager
async def live_server(settings: Settings, *, ssl_context: Any = None) -> AsyncIterator[LiveServer]:
    """The real app on a real loopback TCP port."""
    services, own_stores = await build_services(settings)
    app = create_app(settings, services)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    try:
        site = web.TCPSite(runner, "127.0.0.1", 0, ssl_context=ssl_context)
        await site.start()
        sockets = site._server.sockets if site._server is not None else []  # type: ignore[union-attr]
        port = sockets[0].getsockname()[1]
        scheme = "https" if ssl_context is not None else "http"
        yield LiveServer(url=f"{scheme}://127.0.0.1:{port}", app=app, services=services)
    finally:
        await runner.cleanup()
        if own_stores is not None:
            await own_stores.close()
