"""Storage ports and the records that cross them.

Two ports: ``SessionStore`` for hot state with TTLs (sessions, idempotency keys, rate-limit counters) and
``HistoryStore`` for what must last (feedback, resolved incidents, the audit trail, encrypted payloads).
Each has an embedded SQLite implementation and a production one (Redis, PostgreSQL).
"""

from __future__ import annotations

import asyncio
import logging
import uuid
import zlib
from datetime import UTC, datetime
from typing import Protocol, runtime_checkable

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from core.answers import Feedback, IncidentCase, Session

log = logging.getLogger(__name__)

CONNECT_TIMEOUT_SECONDS = 5.0
COMMAND_TIMEOUT_SECONDS = 5.0
MAX_INCIDENT_LIMIT = 500
MAX_AUDIT_LIMIT = 1000


def _utcnow() -> datetime:
    return datetime.now(UTC)


def new_id() -> str:
    return uuid.uuid4().hex


class RateDecision(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    allowed: bool
    remaining: int = Field(ge=0, description="Requests left in the current window.")
    retry_after_seconds: float = Field(ge=0.0, description="0 when allowed; else until the window resets.")


class AuditEvent(BaseModel):
    """Who did what, when. ``detail`` holds short strings only: never raw logs, never secrets."""

    model_config = ConfigDict(extra="forbid")

    id: str = Field(default_factory=new_id, min_length=1, max_length=100)
    at: datetime = Field(default_factory=_utcnow)
    actor: str = Field(min_length=1, max_length=200)
    action: str = Field(
        min_length=1, max_length=100, description='"query", "feedback", "resolve" or "admin:<what>".'
    )
    session_id: str | None = Field(default=None, max_length=200)
    detail: dict[str, str] = Field(default_factory=dict)


@runtime_checkable
class SessionStore(Protocol):
    """Hot state with TTLs: Redis in production, SQLite embedded."""

    async def get_session(self, session_id: str) -> Session | None: ...

    async def save_session(self, session: Session) -> None:
        """Store the session; its TTL starts again at every save."""
        ...

    async def delete_session(self, session_id: str) -> None: ...

    async def claim_idempotency_key(self, key: str, *, ttl_seconds: int) -> bool:
        """True for the first claim of ``key`` within ``ttl_seconds``, False for every later one (atomic)."""
        ...

    async def hit_rate_limit(self, key: str, *, limit: int, window_seconds: int) -> RateDecision:
        """Count one hit against a fixed window; allow the first ``limit`` hits of each window."""
        ...

    async def ping(self) -> bool: ...

    async def close(self) -> None: ...


@runtime_checkable
class HistoryStore(Protocol):
    """Durable records: PostgreSQL in production, SQLite embedded."""

    async def record_feedback(self, feedback: Feedback) -> None:
        """Durable and idempotent on (session_id, item_id, user_id, created_at)."""
        ...

    async def list_feedback(self, session_id: str) -> list[Feedback]: ...

    async def save_incident(self, case: IncidentCase) -> None:
        """Insert or replace by ``case.id``."""
        ...

    async def get_incident(self, incident_id: str) -> IncidentCase | None: ...

    async def list_incidents(self, *, query: str | None = None, limit: int = 20) -> list[IncidentCase]:
        """Newest first. ``query`` words must all appear (case-insensitive) in title, category, root
        cause, fix, symptoms or services."""
        ...

    async def audit(self, event: AuditEvent) -> None: ...

    async def list_audit(self, *, limit: int = 100, action: str | None = None) -> list[AuditEvent]:
        """Newest first."""
        ...

    async def save_payload(self, *, session_id: str, name: str, data: bytes) -> str:
        """Encrypt and store ``data``; return the payload id."""
        ...

    async def load_payload(self, payload_id: str) -> bytes:
        """Decrypted bytes; NotFoundError if unknown, DecryptionError if unreadable."""
        ...

    async def ping(self) -> bool: ...

    async def close(self) -> None: ...


class Stores:
    """Both stores and their lifecycle."""

    def __init__(self, *, sessions: SessionStore, history: HistoryStore) -> None:
        self.sessions = sessions
        self.history = history

    async def ping(self) -> dict[str, bool]:
        sessions_ok, history_ok = await asyncio.gather(self.sessions.ping(), self.history.ping())
        return {"sessions": sessions_ok, "history": history_ok}

    async def close(self) -> None:
        results = await asyncio.gather(self.sessions.close(), self.history.close(), return_exceptions=True)
        for result in results:
            if isinstance(result, BaseException):
                log.warning("error while closing a store", extra={"error": type(result).__name__})


def search_terms(query: str | None) -> list[str]:
    """Lower-cased words of an incident search, each to be matched as a substring."""
    if not query:
        return []
    return [word for word in query.lower().split() if word][:20]


def like_pattern(term: str) -> str:
    """``%term%`` with LIKE wildcards in ``term`` escaped by a backslash."""
    escaped = term.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


# zlib level 1: a session's JSON (about 18 kB after one answer) shrinks to about a quarter for ~50 us. Every
# question writes its session, and under load those bytes were most of what the disk (SQLite's WAL, then
# the checkpoint) or Redis had to take.
_SESSION_COMPRESSION_LEVEL = 1
_ZLIB_HEADER = b"\x78"  # the first byte of every zlib stream with the default window; JSON never starts so


def session_body(session: Session) -> bytes:
    """A session as the session stores write it: its JSON, zlib-compressed."""
    return zlib.compress(session.model_dump_json().encode(), _SESSION_COMPRESSION_LEVEL)


def stored_session(raw: str | bytes, *, session_id: str, logger: logging.Logger) -> Session | None:
    """A session as a session store holds it (compressed, or plain JSON as earlier versions wrote it); one
    written under an older schema, or damaged, is absent (a warning on the store's ``logger``), so the
    conversation starts afresh instead of failing every turn."""
    if isinstance(raw, bytes) and raw[:1] == _ZLIB_HEADER:
        try:
            raw = zlib.decompress(raw)
        except zlib.error:
            logger.warning(
                "stored session is damaged; treating it as absent", extra={"session_id": session_id}
            )
            return None
    try:
        return Session.model_validate_json(raw)
    except ValidationError as exc:
        logger.warning(
            "stored session does not match the current schema; treating it as absent",
            extra={"session_id": session_id, "errors": exc.error_count()},
        )
        return None


def incident_columns(case: IncidentCase) -> tuple[str, str, str | None, str, str, str, str]:
    """An incident's row in both history stores, in column order: id, team, session_id, category, title,
    search_text (lower-cased, which incident search relies on) and the JSON body. The timestamps follow,
    in each database's own form."""
    return (
        case.id,
        case.team,
        case.session_id,
        case.category.value,
        case.title,
        case.search_text().lower(),
        case.model_dump_json(),
    )


def to_utc(value: datetime) -> datetime:
    """Naive datetimes are taken as UTC."""
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
