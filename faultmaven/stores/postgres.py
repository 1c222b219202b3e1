"""The durable history in PostgreSQL through an asyncpg pool: models in JSONB columns, ``timestamptz``
times, a trigram index for incident search. Migrations run at start-up in one transaction holding an
advisory lock, so replicas starting together apply each file exactly once."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, datetime
from typing import Any, TypeVar

import asyncpg

from core.answers import Feedback, IncidentCase
from core.errors import DependencyError, NotFoundError
from faultmaven.crypto import KeyRing
from faultmaven.stores.base import (
    COMMAND_TIMEOUT_SECONDS,
    CONNECT_TIMEOUT_SECONDS,
    MAX_AUDIT_LIMIT,
    MAX_INCIDENT_LIMIT,
    AuditEvent,
    incident_columns,
    like_pattern,
    new_id,
    search_terms,
    to_utc,
)
from faultmaven.stores.group_commit import GroupCommit
from faultmaven.stores.migrations import load_migrations

log = logging.getLogger(__name__)

T = TypeVar("T")

# pg_advisory_xact_lock key for schema migrations: the ASCII of "FMMIGRAT" as a signed 64-bit integer.
MIGRATION_LOCK_KEY = int.from_bytes(b"FMMIGRAT", "big", signed=True)
MIGRATIONS_PREFIX = "postgres_"
_DB_ERRORS = (asyncpg.PostgresError, asyncpg.InterfaceError, OSError, TimeoutError)


def _failure(op: str, exc: BaseException) -> DependencyError:
    sqlstate = getattr(exc, "sqlstate", None)
    log.error(
        "postgres call failed", extra={"op": op, "error": type(exc).__name__, "sqlstate": sqlstate or ""}
    )
    return DependencyError(
        "The history store is unavailable; try again shortly.", detail=f"{op}: {type(exc).__name__}"
    )


async def apply_migrations(pool: asyncpg.Pool, *, timeout_seconds: float = 60.0) -> list[str]:
    """Apply pending ``postgres_*.sql`` migrations; return the versions this call applied."""
    migrations = load_migrations(MIGRATIONS_PREFIX)
    applied: list[str] = []
    async with pool.acquire(timeout=timeout_seconds) as conn, conn.transaction():
        await conn.execute("SELECT pg_advisory_xact_lock($1)", MIGRATION_LOCK_KEY, timeout=timeout_seconds)
        await conn.execute(
            "CREATE TABLE IF NOT EXISTS schema_migrations ("
            " version text PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now())"
        )
        done = {row["version"] for row in await conn.fetch("SELECT version FROM schema_migrations")}
        for migration in migrations:
            if migration.version in done:
                continue
            await conn.execute(migration.sql, timeout=timeout_seconds)
            await conn.execute("INSERT INTO schema_migrations (version) VALUES ($1)", migration.version)
            applied.append(migration.version)
    if applied:
        log.info("applied postgres migrations", extra={"versions": ",".join(applied)})
    return applied


class PostgresHistoryStore:
    def __init__(
        self,
        pool: asyncpg.Pool,
        *,
        keyring: KeyRing,
        command_timeout_seconds: float = COMMAND_TIMEOUT_SECONDS,
    ) -> None:
        self._pool = pool
        self._keyring = keyring
        # audit rows of concurrent requests share one round trip and transaction
        self._audit_batches: GroupCommit[AuditEvent] = GroupCommit(self._write_audit)
        self._timeout = command_timeout_seconds

    @classmethod
    async def connect(
        cls,
        dsn: str,
        *,
        keyring: KeyRing,
        connect_timeout_seconds: float = CONNECT_TIMEOUT_SECONDS,
        command_timeout_seconds: float = COMMAND_TIMEOUT_SECONDS,
        min_size: int = 1,
        max_size: int = 10,
    ) -> PostgresHistoryStore:
        """Open a pool, apply migrations, and return the store; DependencyError (never the DSN) on failure."""
        try:
            pool = await asyncio.wait_for(
                asyncpg.create_pool(
                    dsn,
                    min_size=min_size,
                    max_size=max_size,
                    timeout=connect_timeout_seconds,
                    command_timeout=command_timeout_seconds,
                    server_settings={"application_name": "faultmaven"},
                ),
                timeout=connect_timeout_seconds * 2,
            )
        except _DB_ERRORS as exc:
            raise _failure("connect", exc) from exc
        except ValueError:
            raise DependencyError(
                "The configured PostgreSQL DSN is malformed; expected postgresql://user@host:port/database.",
                detail="connect: ValueError",
            ) from None
        try:
            await apply_migrations(pool)
        except _DB_ERRORS as exc:
            pool.terminate()
            raise _failure("migrate", exc) from exc
        except BaseException:
            pool.terminate()
            raise
        return cls(pool, keyring=keyring, command_timeout_seconds=command_timeout_seconds)

    async def _with_conn(self, fn: Callable[[asyncpg.Connection], Awaitable[T]], *, op: str) -> T:
        try:
            async with self._pool.acquire(timeout=self._timeout) as conn:
                return await fn(conn)
        except _DB_ERRORS as exc:
            raise _failure(op, exc) from exc

    async def record_feedback(self, feedback: Feedback) -> None:
        await self._with_conn(
            lambda conn: conn.execute(
                "INSERT INTO feedback (session_id, item_id, user_id, created_at, body) "
                "VALUES ($1, $2, $3, $4, $5::jsonb) "
                "ON CONFLICT ON CONSTRAINT feedback_once DO NOTHING",
                feedback.session_id,
                feedback.item_id,
                feedback.user_id,
                to_utc(feedback.created_at),
                feedback.model_dump_json(),
            ),
            op="record_feedback",
        )

    async def list_feedback(self, session_id: str) -> list[Feedback]:
        rows = await self._with_conn(
            lambda conn: conn.fetch(
                "SELECT body FROM feedback WHERE session_id = $1 ORDER BY created_at, id", session_id
            ),
            op="list_feedback",
        )
        return [Feedback.model_validate_json(row["body"]) for row in rows]

    async def save_incident(self, case: IncidentCase) -> None:
        await self._with_conn(
            lambda conn: conn.execute(
                "INSERT INTO incidents (id, team, session_id, category, title, search_text, body, created_at) "
                "VALUES ($1, $2, $3, $4, $5, $6, $7::jsonb, $8) ON CONFLICT (id) DO UPDATE SET "
                "team = EXCLUDED.team, session_id = EXCLUDED.session_id, category = EXCLUDED.category, "
                "title = EXCLUDED.title, search_text = EXCLUDED.search_text, body = EXCLUDED.body, "
                "created_at = EXCLUDED.created_at, updated_at = now()",
                *incident_columns(case),
                to_utc(case.created_at),
            ),
            op="save_incident",
        )

    async def get_incident(self, incident_id: str) -> IncidentCase | None:
        row = await self._with_conn(
            lambda conn: conn.fetchrow("SELECT body FROM incidents WHERE id = $1", incident_id),
            op="get_incident",
        )
        return None if row is None else IncidentCase.model_validate_json(row["body"])

    async def list_incidents(self, *, query: str | None = None, limit: int = 20) -> list[IncidentCase]:
        limit = max(1, min(limit, MAX_INCIDENT_LIMIT))
        terms = search_terms(query)
        clauses = [f"search_text ILIKE ${index} ESCAPE '\\'" for index in range(1, len(terms) + 1)]
        where = " AND ".join(clauses) or "TRUE"
        params: list[Any] = [like_pattern(term) for term in terms]
        params.append(limit)
        sql = f"SELECT body FROM incidents WHERE {where} ORDER BY created_at DESC, id LIMIT ${len(params)}"
        rows = await self._with_conn(lambda conn: conn.fetch(sql, *params), op="list_incidents")
        return [IncidentCase.model_validate_json(row["body"]) for row in rows]

    async def audit(self, event: AuditEvent) -> None:
        await self._audit_batches.submit(event)

    async def _write_audit(self, events: Sequence[AuditEvent]) -> None:
        rows = [
            (
                event.id,
                to_utc(event.at),
                event.actor,
                event.action,
                event.session_id,
                json.dumps(event.detail, ensure_ascii=False),
            )
            for event in events
        ]
        await self._with_conn(
            lambda conn: conn.executemany(
                "INSERT INTO audit_events (id, at, actor, action, session_id, detail) "
                "VALUES ($1, $2, $3, $4, $5, $6::jsonb) ON CONFLICT (id) DO NOTHING",
                rows,
            ),
            op="audit",
        )

    async def list_audit(self, *, limit: int = 100, action: str | None = None) -> list[AuditEvent]:
        limit = max(1, min(limit, MAX_AUDIT_LIMIT))
        columns = "id, at, actor, action, session_id, detail"
        if action is None:
            sql = f"SELECT {columns} FROM audit_events ORDER BY at DESC, id DESC LIMIT $1"
            params: list[Any] = [limit]
        else:
            sql = f"SELECT {columns} FROM audit_events WHERE action = $1 ORDER BY at DESC, id DESC LIMIT $2"
            params = [action, limit]
        rows = await self._with_conn(lambda conn: conn.fetch(sql, *params), op="list_audit")
        return [
            AuditEvent(
                id=row["id"],
                at=row["at"],
                actor=row["actor"],
                action=row["action"],
                session_id=row["session_id"],
                detail=json.loads(row["detail"]),
            )
            for row in rows
        ]

    async def save_payload(self, *, session_id: str, name: str, data: bytes) -> str:
        payload_id = new_id()
        envelope = await asyncio.to_thread(self._keyring.encrypt, data)
        await self._with_conn(
            lambda conn: conn.execute(
                "INSERT INTO payloads (id, session_id, name, size, key_id, envelope, created_at) "
                "VALUES ($1, $2, $3, $4, $5, $6, $7)",
                payload_id,
                session_id,
                name,
                len(data),
                self._keyring.primary_key_id,
                envelope,
                datetime.now(UTC),
            ),
            op="save_payload",
        )
        return payload_id

    async def load_payload(self, payload_id: str) -> bytes:
        row = await self._with_conn(
            lambda conn: conn.fetchrow("SELECT envelope FROM payloads WHERE id = $1", payload_id),
            op="load_payload",
        )
        if row is None:
            raise NotFoundError(f"No stored payload with id {payload_id!r}.")
        return await asyncio.to_thread(self._keyring.decrypt, bytes(row["envelope"]))

    async def ping(self) -> bool:
        try:
            value = await self._with_conn(lambda conn: conn.fetchval("SELECT 1"), op="ping")
        except DependencyError:
            return False
        return bool(value == 1)

    async def close(self) -> None:
        try:
            await asyncio.wait_for(self._pool.close(), timeout=self._timeout * 2)
        except TimeoutError:
            log.warning("postgres pool did not close in time; terminating its connections")
            self._pool.terminate()
