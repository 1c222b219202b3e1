"""The Slack bot's own small tables in the service's database — PostgreSQL (asyncpg) when ``postgres_dsn`` is
set, else an embedded SQLite file under ``data_dir``:

* multi-workspace OAuth installs: slack_sdk's ``AsyncInstallationStore`` and ``AsyncOAuthStateStore``.
  Installation records hold tokens, so each is stored encrypted with the service's key ring;
* each channel's latest FaultMaven thread, so ``/faultmaven status|resolve|forget`` (slash commands carry
  no thread) know which session they are about.

The database is opened on first use, so the store can be built synchronously with the Bolt app."""

from __future__ import annotations

import asyncio
import json
import logging
import secrets
import sqlite3
import time
from logging import Logger
from pathlib import Path
from typing import Any, Protocol

import asyncpg
from slack_sdk.oauth.installation_store.async_installation_store import AsyncInstallationStore
from slack_sdk.oauth.installation_store.models.bot import Bot
from slack_sdk.oauth.installation_store.models.installation import Installation
from slack_sdk.oauth.state_store.async_state_store import AsyncOAuthStateStore

from faultmaven.crypto import KeyRing, keyring_from_settings
from faultmaven.settings import Settings

log = logging.getLogger(__name__)

SQLITE_FILE = "slack.sqlite3"
STATE_TTL_SECONDS = 600
LATEST = ""  # the user_id of the row that holds a workspace's latest installation

_SQLITE_SCHEMA = (
    """CREATE TABLE IF NOT EXISTS slack_installations (
        kind TEXT NOT NULL, enterprise_id TEXT NOT NULL, team_id TEXT NOT NULL, user_id TEXT NOT NULL,
        installed_at REAL NOT NULL, body BLOB NOT NULL,
        PRIMARY KEY (kind, enterprise_id, team_id, user_id))""",
    "CREATE TABLE IF NOT EXISTS slack_oauth_states (state TEXT PRIMARY KEY, expires_at REAL NOT NULL)",
    """CREATE TABLE IF NOT EXISTS slack_threads (
        team_id TEXT NOT NULL, channel_id TEXT NOT NULL, session_id TEXT NOT NULL, thread_ts TEXT NOT NULL,
        updated_at REAL NOT NULL, PRIMARY KEY (team_id, channel_id))""",
)
_POSTGRES_SCHEMA = (
    """CREATE TABLE IF NOT EXISTS slack_installations (
        kind text NOT NULL, enterprise_id text NOT NULL, team_id text NOT NULL, user_id text NOT NULL,
        installed_at double precision NOT NULL, body bytea NOT NULL,
        PRIMARY KEY (kind, enterprise_id, team_id, user_id))""",
    "CREATE TABLE IF NOT EXISTS slack_oauth_states (state text PRIMARY KEY, expires_at double precision NOT NULL)",
    """CREATE TABLE IF NOT EXISTS slack_threads (
        team_id text NOT NULL, channel_id text NOT NULL, session_id text NOT NULL, thread_ts text NOT NULL,
        updated_at double precision NOT NULL, PRIMARY KEY (team_id, channel_id))""",
)


class _Backend(Protocol):
    async def put(self, key: tuple[str, str, str, str], *, installed_at: float, body: bytes) -> None: ...

    async def get(self, key: tuple[str, str, str, str]) -> bytes | None: ...

    async def delete(self, *, kind: str, enterprise_id: str, team_id: str, user_id: str | None) -> None: ...

    async def put_state(self, state: str, *, expires_at: float) -> None: ...

    async def take_state(self, state: str, *, now: float) -> bool: ...

    async def put_thread(self, team_id: str, channel_id: str, *, session_id: str, thread_ts: str) -> None: ...

    async def get_thread(self, team_id: str, channel_id: str) -> tuple[str, str] | None: ...

    async def close(self) -> None: ...


class _SqliteBackend:
    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self._conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False, timeout=5.0)
        self._conn.execute("PRAGMA journal_mode=WAL")
        for statement in _SQLITE_SCHEMA:
            self._conn.execute(statement)
        self._lock = asyncio.Lock()

    async def _run(self, sql: str, params: tuple[Any, ...]) -> list[tuple[Any, ...]]:
        def call() -> list[tuple[Any, ...]]:
            return list(self._conn.execute(sql, params).fetchall())

        async with self._lock:
            return await asyncio.to_thread(call)

    async def put(self, key: tuple[str, str, str, str], *, installed_at: float, body: bytes) -> None:
        await self._run(
            "INSERT OR REPLACE INTO slack_installations VALUES (?, ?, ?, ?, ?, ?)", (*key, installed_at, body)
        )

    async def get(self, key: tuple[str, str, str, str]) -> bytes | None:
        rows = await self._run(
            "SELECT body FROM slack_installations WHERE kind=? AND enterprise_id=? AND team_id=? AND user_id=?",
            key,
        )
        return bytes(rows[0][0]) if rows else None

    async def delete(self, *, kind: str, enterprise_id: str, team_id: str, user_id: str | None) -> None:
        if user_id is None:
            sql = "DELETE FROM slack_installations WHERE kind=? AND enterprise_id=? AND team_id=?"
            await self._run(sql, (kind, enterprise_id, team_id))
        else:
            sql = (
                "DELETE FROM slack_installations WHERE kind=? AND enterprise_id=? AND team_id=? AND user_id=?"
            )
            await self._run(sql, (kind, enterprise_id, team_id, user_id))

    async def put_state(self, state: str, *, expires_at: float) -> None:
        await self._run("INSERT INTO slack_oauth_states VALUES (?, ?)", (state, expires_at))

    async def take_state(self, state: str, *, now: float) -> bool:
        rows = await self._run("DELETE FROM slack_oauth_states WHERE state=? RETURNING expires_at", (state,))
        await self._run("DELETE FROM slack_oauth_states WHERE expires_at < ?", (now,))
        return bool(rows) and float(rows[0][0]) >= now

    async def put_thread(self, team_id: str, channel_id: str, *, session_id: str, thread_ts: str) -> None:
        await self._run(
            "INSERT OR REPLACE INTO slack_threads VALUES (?, ?, ?, ?, ?)",
            (team_id, channel_id, session_id, thread_ts, time.time()),
        )

    async def get_thread(self, team_id: str, channel_id: str) -> tuple[str, str] | None:
        rows = await self._run(
            "SELECT session_id, thread_ts FROM slack_threads WHERE team_id=? AND channel_id=?",
            (team_id, channel_id),
        )
        return (str(rows[0][0]), str(rows[0][1])) if rows else None

    async def close(self) -> None:
        async with self._lock:
            await asyncio.to_thread(self._conn.close)


class _PostgresBackend:
    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool

    @classmethod
    async def connect(cls, dsn: str, *, timeout_seconds: float) -> _PostgresBackend:
        pool = await asyncpg.create_pool(dsn, min_size=1, max_size=4, timeout=timeout_seconds)
        async with pool.acquire() as conn:
            for statement in _POSTGRES_SCHEMA:
                await conn.execute(statement)
        return cls(pool)

    async def put(self, key: tuple[str, str, str, str], *, installed_at: float, body: bytes) -> None:
        await self._pool.execute(
            "INSERT INTO slack_installations VALUES ($1, $2, $3, $4, $5, $6) "
            "ON CONFLICT (kind, enterprise_id, team_id, user_id) "
            "DO UPDATE SET installed_at = EXCLUDED.installed_at, body = EXCLUDED.body",
            *key,
            installed_at,
            body,
        )

    async def get(self, key: tuple[str, str, str, str]) -> bytes | None:
        value = await self._pool.fetchval(
            "SELECT body FROM slack_installations "
            "WHERE kind=$1 AND enterprise_id=$2 AND team_id=$3 AND user_id=$4",
            *key,
        )
        return bytes(value) if value is not None else None

    async def delete(self, *, kind: str, enterprise_id: str, team_id: str, user_id: str | None) -> None:
        if user_id is None:
            await self._pool.execute(
                "DELETE FROM slack_installations WHERE kind=$1 AND enterprise_id=$2 AND team_id=$3",
                kind,
                enterprise_id,
                team_id,
            )
        else:
            await self._pool.execute(
                "DELETE FROM slack_installations WHERE kind=$1 AND enterprise_id=$2 AND team_id=$3 AND user_id=$4",
                kind,
                enterprise_id,
                team_id,
                user_id,
            )

    async def put_state(self, state: str, *, expires_at: float) -> None:
        await self._pool.execute("INSERT INTO slack_oauth_states VALUES ($1, $2)", state, expires_at)

    async def take_state(self, state: str, *, now: float) -> bool:
        expires = await self._pool.fetchval(
            "DELETE FROM slack_oauth_states WHERE state=$1 RETURNING expires_at", state
        )
        await self._pool.execute("DELETE FROM slack_oauth_states WHERE expires_at < $1", now)
        return expires is not None and float(expires) >= now

    async def put_thread(self, team_id: str, channel_id: str, *, session_id: str, thread_ts: str) -> None:
        await self._pool.execute(
            "INSERT INTO slack_threads VALUES ($1, $2, $3, $4, $5) ON CONFLICT (team_id, channel_id) "
            "DO UPDATE SET session_id = EXCLUDED.session_id, thread_ts = EXCLUDED.thread_ts, "
            "updated_at = EXCLUDED.updated_at",
            team_id,
            channel_id,
            session_id,
            thread_ts,
            time.time(),
        )

    async def get_thread(self, team_id: str, channel_id: str) -> tuple[str, str] | None:
        row = await self._pool.fetchrow(
            "SELECT session_id, thread_ts FROM slack_threads WHERE team_id=$1 AND channel_id=$2",
            team_id,
            channel_id,
        )
        return (str(row["session_id"]), str(row["thread_ts"])) if row is not None else None

    async def close(self) -> None:
        await self._pool.close()


class SlackStore(AsyncInstallationStore, AsyncOAuthStateStore):
    """Installations (encrypted), one-time OAuth ``state`` values and channel threads in one small database."""

    def __init__(self, settings: Settings, *, backend: _Backend | None = None) -> None:
        self._settings = settings
        self._backend = backend
        self._keyring: KeyRing | None = None
        self._open_lock = asyncio.Lock()
        self._logger = log

    async def _db(self) -> _Backend:
        if self._backend is not None:
            return self._backend
        async with self._open_lock:
            if self._backend is None:
                settings = self._settings
                if settings.postgres_dsn is not None:
                    self._backend = await _PostgresBackend.connect(
                        settings.postgres_dsn.get_secret_value(),
                        timeout_seconds=settings.outbound_timeout_seconds,
                    )
                else:
                    self._backend = await asyncio.to_thread(_SqliteBackend, settings.data_dir / SQLITE_FILE)
            return self._backend

    def _ring(self) -> KeyRing:
        if self._keyring is None:
            self._keyring = keyring_from_settings(self._settings)
        return self._keyring

    @property
    def logger(self) -> Logger:
        return self._logger

    async def close(self) -> None:
        if self._backend is not None:
            backend, self._backend = self._backend, None
            await backend.close()

    # --- channel threads -----------------------------------------------------------------------------------

    async def remember_thread(
        self, team_id: str, channel_id: str, *, session_id: str, thread_ts: str
    ) -> None:
        db = await self._db()
        await db.put_thread(team_id, channel_id, session_id=session_id, thread_ts=thread_ts)

    async def latest_thread(self, team_id: str, channel_id: str) -> tuple[str, str] | None:
        """(session id, thread ts) of the channel's most recent FaultMaven thread."""
        db = await self._db()
        return await db.get_thread(team_id, channel_id)

    # --- encryption --------------------------------------------------------------------------------------

    def _seal(self, data: dict[str, Any]) -> bytes:
        return self._ring().encrypt(json.dumps(data, default=str).encode("utf-8"))

    def _open(self, body: bytes) -> dict[str, Any]:
        value = json.loads(self._ring().decrypt(body).decode("utf-8"))
        if not isinstance(value, dict):
            raise ValueError("installation record is not an object")
        return value

    # --- AsyncInstallationStore ----------------------------------------------------------------------------

    @staticmethod
    def _scope(
        enterprise_id: str | None, team_id: str | None, is_enterprise_install: bool | None
    ) -> tuple[str, str]:
        if is_enterprise_install:
            return enterprise_id or "", ""
        return enterprise_id or "", team_id or ""

    async def async_save(self, installation: Installation) -> None:
        ent, team = self._scope(
            installation.enterprise_id, installation.team_id, installation.is_enterprise_install
        )
        body = self._seal(dict(installation.__dict__))
        at = float(installation.installed_at)
        await (await self._db()).put(
            ("installation", ent, team, installation.user_id), installed_at=at, body=body
        )
        await (await self._db()).put(("installation", ent, team, LATEST), installed_at=at, body=body)
        await self.async_save_bot(installation.to_bot())

    async def async_save_bot(self, bot: Bot) -> None:
        if bot.bot_token is None:
            return
        ent, team = self._scope(bot.enterprise_id, bot.team_id, bot.is_enterprise_install)
        body = self._seal(dict(bot.__dict__))
        await (await self._db()).put(
            ("bot", ent, team, LATEST), installed_at=float(bot.installed_at), body=body
        )

    async def async_find_bot(
        self,
        *,
        enterprise_id: str | None,
        team_id: str | None,
        is_enterprise_install: bool | None = False,
    ) -> Bot | None:
        ent, team = self._scope(enterprise_id, team_id, is_enterprise_install)
        body = await (await self._db()).get(("bot", ent, team, LATEST))
        return Bot(**self._open(body)) if body is not None else None

    async def async_find_installation(
        self,
        *,
        enterprise_id: str | None,
        team_id: str | None,
        user_id: str | None = None,
        is_enterprise_install: bool | None = False,
    ) -> Installation | None:
        ent, team = self._scope(enterprise_id, team_id, is_enterprise_install)
        body = await (await self._db()).get(("installation", ent, team, user_id or LATEST))
        if body is None:
            return None
        installation = Installation(**self._open(body))
        if user_id is not None:
            # The user's own row may predate the latest bot token: take the bot fields from the latest.
            latest = await self.async_find_bot(
                enterprise_id=enterprise_id, team_id=team_id, is_enterprise_install=is_enterprise_install
            )
            if latest is not None:
                installation.bot_token = latest.bot_token
                installation.bot_id = latest.bot_id
                installation.bot_user_id = latest.bot_user_id
                installation.bot_scopes = latest.bot_scopes
        return installation

    async def async_delete_bot(self, *, enterprise_id: str | None, team_id: str | None) -> None:
        await (await self._db()).delete(
            kind="bot", enterprise_id=enterprise_id or "", team_id=team_id or "", user_id=None
        )

    async def async_delete_installation(
        self, *, enterprise_id: str | None, team_id: str | None, user_id: str | None = None
    ) -> None:
        await (await self._db()).delete(
            kind="installation", enterprise_id=enterprise_id or "", team_id=team_id or "", user_id=user_id
        )

    # --- AsyncOAuthStateStore ------------------------------------------------------------------------------

    async def async_issue(self, *args: Any, **kwargs: Any) -> str:
        state = secrets.token_urlsafe(24)
        await (await self._db()).put_state(state, expires_at=time.time() + STATE_TTL_SECONDS)
        return state

    async def async_consume(self, state: str) -> bool:
        return await (await self._db()).take_state(state, now=time.time())
