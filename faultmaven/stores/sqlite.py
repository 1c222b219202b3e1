"""The embedded stores: SQLite files under ``data_dir`` in WAL mode.

Each store has its own worker thread that runs its calls one at a time, in order (so store calls never queue
behind CPU-bound work in the event loop's default executor); the session store also runs short calls on the
event loop itself when the database is free (see ``_Database``). Every write is a ``BEGIN IMMEDIATE``
transaction, so several processes sharing the files stay consistent; a call that finds another writer
holding the lock polls for it, for up to the busy timeout."""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import json
import logging
import random
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import TypeVar

from core.answers import Feedback, IncidentCase, Session
from core.errors import DependencyError, NotFoundError
from faultmaven.crypto import KeyRing
from faultmaven.stores.base import (
    COMMAND_TIMEOUT_SECONDS,
    MAX_AUDIT_LIMIT,
    MAX_INCIDENT_LIMIT,
    AuditEvent,
    RateDecision,
    incident_columns,
    like_pattern,
    new_id,
    search_terms,
    session_body,
    stored_session,
    to_utc,
)
from faultmaven.stores.group_commit import GroupCommit
from faultmaven.stores.migrations import apply_sqlite_migrations

log = logging.getLogger(__name__)

T = TypeVar("T")

SESSIONS_FILE = "sessions.sqlite3"
HISTORY_FILE = "history.sqlite3"
_PURGE_EVERY_WRITES = 200
# inline writes between passive WAL checkpoints (a session row is a few pages; SQLite's own default is
# a checkpoint per 1000 pages)
_CHECKPOINT_EVERY_WRITES = 200
_FIRST_BUSY_POLL_SECONDS = 0.0005
_MAX_BUSY_POLL_SECONDS = 0.004


def _iso(value: datetime) -> str:
    return to_utc(value).isoformat(timespec="microseconds")


class _Database:
    """One connection for the store's worker thread, used by one call at a time; with ``inline`` also a second
    connection for short calls made on the event loop itself.

    A hop to the worker thread and back costs more than a small transaction (and the thread's GIL hand-offs
    slow the event loop): a call marked ``inline`` runs on the loop's connection, which never waits for a lock
    (busy timeout 0) and never checkpoints (no fsync on the loop). When another process holds the write lock,
    the call goes to the worker thread instead, which polls for it (``_retrying_busy``). Only stores whose commits
    do not fsync (``synchronous=NORMAL`` in WAL mode) use this; checkpoints run on the worker thread.
    """

    def __init__(
        self, path: Path, *, name: str, synchronous: str, timeout_seconds: float, inline: bool = False
    ) -> None:
        self.path = path
        self.name = name
        self._synchronous = synchronous
        self._timeout_seconds = timeout_seconds
        self._lock = threading.Lock()
        # One thread per database: calls queue here in order and a burst never ties up shared workers.
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"sqlite-{name}")
        self._conn: sqlite3.Connection | None = None
        self._with_inline = inline
        self._inline: sqlite3.Connection | None = None
        self._inline_writes = 0
        self._background: dict[str, asyncio.Task[None]] = {}  # by op: at most one of each running

    def _open_connection(self, *, busy_timeout_ms: int) -> sqlite3.Connection:
        conn = sqlite3.connect(
            self.path, timeout=busy_timeout_ms / 1000, isolation_level=None, check_same_thread=False
        )
        try:
            _enable_wal(conn, timeout_seconds=self._timeout_seconds)
            conn.execute(f"PRAGMA synchronous={self._synchronous}")
            conn.execute(f"PRAGMA busy_timeout={busy_timeout_ms}")
        except BaseException:
            conn.close()
            raise
        return conn

    def _connect(self, migrations_prefix: str) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        conn = self._open_connection(busy_timeout_ms=int(self._timeout_seconds * 1000))
        try:
            apply_sqlite_migrations(conn, migrations_prefix)
            # from now on a busy database is retried by run() (see _retrying_busy), not by SQLite's handler
            conn.execute("PRAGMA busy_timeout=0")
            if self._with_inline:
                inline = self._open_connection(busy_timeout_ms=0)
                inline.execute("PRAGMA wal_autocheckpoint=0")
                self._inline = inline
        except BaseException:
            conn.close()
            raise
        self._conn = conn

    async def open(self, migrations_prefix: str) -> None:
        await self.run(lambda _conn: None, op="open", connect_prefix=migrations_prefix)

    async def run(
        self,
        fn: Callable[[sqlite3.Connection], T],
        *,
        op: str,
        connect_prefix: str | None = None,
        inline: bool = False,
        writes: bool = True,
    ) -> T:
        """``fn(connection)`` on the worker thread; with ``inline``, first on the event loop's connection.
        ``fn`` must leave nothing behind when it fails (``_write`` rolls its transaction back), since a busy
        inline attempt is run again on the worker thread. ``writes`` says whether an inline call may have
        written (writes count towards the next checkpoint)."""
        if inline and self._inline is not None:
            try:
                result = fn(self._inline)
            except sqlite3.Error as exc:
                if not _is_busy(exc):
                    raise self._unusable(exc, op=op) from exc
            else:
                if writes:
                    self._count_inline_write()
                return result

        def call() -> T:
            with self._lock:
                if connect_prefix is not None:
                    self._connect(connect_prefix)
                if self._conn is None:
                    raise DependencyError(f"The {self.name} store is closed.", detail=op)
                return self._retrying_busy(fn, self._conn)

        context = contextvars.copy_context()
        try:
            future = asyncio.get_running_loop().run_in_executor(self._executor, context.run, call)
        except RuntimeError:  # the executor was shut down by close()
            raise DependencyError(f"The {self.name} store is closed.", detail=op) from None
        try:
            return await future
        except (OSError, sqlite3.Error) as exc:
            raise self._unusable(exc, op=op) from exc

    def _retrying_busy(self, fn: Callable[[sqlite3.Connection], T], conn: sqlite3.Connection) -> T:
        """``fn(conn)``, run again while another connection holds the lock, for up to the busy timeout.

        SQLite's own busy handler sleeps 1, 2, 5, 10 ... up to 100 ms between tries; while other processes
        write back to back it can keep missing the moments the lock is free and wait for seconds, and every
        request behind it waits too. Short, jittered polls (at most _MAX_BUSY_POLL_SECONDS apart) catch them."""
        deadline = time.monotonic() + self._timeout_seconds
        pause = _FIRST_BUSY_POLL_SECONDS
        while True:
            try:
                return fn(conn)
            except sqlite3.Error as exc:
                if not _is_busy(exc) or time.monotonic() >= deadline:
                    raise
            time.sleep(pause * random.uniform(0.5, 1.0))
            pause = min(pause * 2, _MAX_BUSY_POLL_SECONDS)

    def _unusable(self, exc: OSError | sqlite3.Error, *, op: str) -> DependencyError:
        if isinstance(exc, OSError):
            log.error(
                "sqlite file unusable", extra={"store": self.name, "op": op, "error": type(exc).__name__}
            )
            return DependencyError(
                f"The {self.name} store at {self.path} cannot be used: {exc.strerror or type(exc).__name__}.",
                detail=f"{op}: {type(exc).__name__}",
            )
        log.error("sqlite call failed", extra={"store": self.name, "op": op, "error": type(exc).__name__})
        return DependencyError(
            f"The {self.name} store is unavailable; try again shortly.",
            detail=f"{op}: {type(exc).__name__}",
        )

    def _count_inline_write(self) -> None:
        """Every _CHECKPOINT_EVERY_WRITES inline writes, a passive checkpoint on the worker thread (the
        inline connection never checkpoints, so its commits never fsync on the event loop)."""
        self._inline_writes += 1
        if self._inline_writes % _CHECKPOINT_EVERY_WRITES == 0:
            self.start_background(
                lambda conn: conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall(), op="checkpoint"
            )

    def start_background(self, fn: Callable[[sqlite3.Connection], object], *, op: str) -> None:
        """``fn(connection)`` on the worker thread without anyone waiting for it (housekeeping: a checkpoint,
        a purge). One of each ``op`` at a time: one that is due while the last still runs is left to the next
        time it is due. A failure is logged by run() and otherwise dropped; close() waits for what runs."""
        running = self._background.get(op)
        if running is not None and not running.done():
            return

        async def call() -> None:
            with contextlib.suppress(DependencyError):
                await self.run(fn, op=op)

        self._background[op] = asyncio.get_running_loop().create_task(call())

    async def close(self) -> None:
        inline, self._inline = self._inline, None
        if inline is not None:
            inline.close()
        await asyncio.gather(*self._background.values(), return_exceptions=True)

        def call() -> None:
            with self._lock:
                if self._conn is not None:
                    self._conn.close()
                    self._conn = None

        try:
            future = asyncio.get_running_loop().run_in_executor(self._executor, call)
        except RuntimeError:
            return  # closed already
        await future
        self._executor.shutdown(wait=False)

    async def ping(self) -> bool:
        try:
            return await self.run(lambda conn: conn.execute("SELECT 1").fetchone() == (1,), op="ping")
        except DependencyError:
            return False


def _is_busy(exc: sqlite3.Error) -> bool:
    """Whether SQLite refused because another connection holds a lock (SQLITE_BUSY / SQLITE_LOCKED)."""
    code = getattr(exc, "sqlite_errorcode", None)
    return code is not None and code & 0xFF in (sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED)


def _enable_wal(conn: sqlite3.Connection, *, timeout_seconds: float) -> None:
    """Switch to WAL, retrying while another process does the same: SQLite answers that change with
    "database is locked" at once instead of waiting for the busy timeout."""
    deadline = time.monotonic() + timeout_seconds
    while True:
        try:
            row = conn.execute("PRAGMA journal_mode=WAL").fetchone()
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() >= deadline:
                raise
            time.sleep(0.02)
            continue
        if row is None or str(row[0]).lower() != "wal":
            log.warning("sqlite did not switch to WAL mode", extra={"journal_mode": str(row and row[0])})
        return


@contextmanager
def _write(conn: sqlite3.Connection) -> Iterator[sqlite3.Connection]:
    conn.execute("BEGIN IMMEDIATE")
    try:
        yield conn
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")


class SqliteSessionStore:
    """Sessions, idempotency keys and rate-limit windows in ``<data_dir>/sessions.sqlite3``."""

    def __init__(self, db: _Database, *, ttl_seconds: int) -> None:
        self._db = db
        self._ttl_seconds = ttl_seconds
        self._writes = 0
        # saves of concurrent requests share one transaction (and one hop, when it goes to the worker thread)
        self._session_batches: GroupCommit[tuple[str, bytes, float]] = GroupCommit(self._write_sessions)

    @classmethod
    async def open(
        cls, path: Path, *, ttl_seconds: int, timeout_seconds: float = COMMAND_TIMEOUT_SECONDS
    ) -> SqliteSessionStore:
        if ttl_seconds < 1:
            raise ValueError("ttl_seconds must be at least 1")
        # NORMAL: WAL commits do not fsync, so short calls can run inline on the event loop (see _Database).
        db = _Database(
            path, name="session", synchronous="NORMAL", timeout_seconds=timeout_seconds, inline=True
        )
        await db.open("sqlite_sessions_")
        return cls(db, ttl_seconds=ttl_seconds)

    async def get_session(self, session_id: str) -> Session | None:
        now = time.time()
        row = await self._db.run(
            lambda conn: conn.execute(
                "SELECT body FROM sessions WHERE id = ? AND expires_at > ?", (session_id, now)
            ).fetchone(),
            op="get_session",
            inline=True,
            writes=False,
        )
        if row is None:
            return None
        return stored_session(row[0], session_id=session_id, logger=log)

    async def save_session(self, session: Session) -> None:
        await self._session_batches.submit(
            (session.id, session_body(session), time.time() + self._ttl_seconds)
        )

    async def _write_sessions(self, rows: Sequence[tuple[str, bytes, float]]) -> None:
        """Concurrent saves share one transaction; a session saved twice in a batch keeps the later body."""
        purge = self._count_writes(len(rows))

        def call(conn: sqlite3.Connection) -> None:
            with _write(conn):
                conn.executemany(
                    "INSERT INTO sessions (id, body, expires_at) VALUES (?, ?, ?) "
                    "ON CONFLICT (id) DO UPDATE SET body = excluded.body, expires_at = excluded.expires_at",
                    rows,
                )

        await self._db.run(call, op="save_session", inline=True)
        if purge:
            # in the background: a purge may delete many rows (and its commit may checkpoint), and the saves
            # that come meanwhile must not wait for it; expired rows are invisible to reads until then
            self._db.start_background(_purge_expired, op="purge_expired")

    async def delete_session(self, session_id: str) -> None:
        def call(conn: sqlite3.Connection) -> None:
            with _write(conn):
                conn.execute("DELETE FROM sessions WHERE id = ?", (session_id,))

        await self._db.run(call, op="delete_session", inline=True)

    async def claim_idempotency_key(self, key: str, *, ttl_seconds: int) -> bool:
        if ttl_seconds < 1:
            raise ValueError("ttl_seconds must be at least 1")
        self._count_writes()

        def call(conn: sqlite3.Connection) -> bool:
            now = time.time()
            with _write(conn):
                conn.execute("DELETE FROM idempotency_keys WHERE key = ? AND expires_at <= ?", (key, now))
                cursor = conn.execute(
                    "INSERT OR IGNORE INTO idempotency_keys (key, expires_at) VALUES (?, ?)",
                    (key, now + ttl_seconds),
                )
                return cursor.rowcount == 1

        return await self._db.run(call, op="claim_idempotency_key", inline=True)

    async def hit_rate_limit(self, key: str, *, limit: int, window_seconds: int) -> RateDecision:
        if limit < 1 or window_seconds < 1:
            raise ValueError("limit and window_seconds must be at least 1")
        self._count_writes()

        def call(conn: sqlite3.Connection) -> RateDecision:
            now = time.time()
            with _write(conn):
                row = conn.execute(
                    "SELECT window_end, hits FROM rate_windows WHERE key = ?", (key,)
                ).fetchone()
                if row is None or now >= row[0]:
                    window_end, hits = now + window_seconds, 1
                    conn.execute(
                        "INSERT INTO rate_windows (key, window_start, window_end, hits) VALUES (?, ?, ?, 1) "
                        "ON CONFLICT (key) DO UPDATE SET window_start = excluded.window_start, "
                        "window_end = excluded.window_end, hits = 1",
                        (key, now, window_end),
                    )
                else:
                    window_end, hits = row[0], row[1] + 1
                    conn.execute("UPDATE rate_windows SET hits = ? WHERE key = ?", (hits, key))
            allowed = hits <= limit
            return RateDecision(
                allowed=allowed,
                remaining=max(0, limit - hits),
                retry_after_seconds=0.0 if allowed else max(0.0, window_end - now),
            )

        return await self._db.run(call, op="hit_rate_limit", inline=True)

    async def ping(self) -> bool:
        return await self._db.ping()

    async def close(self) -> None:
        await self._db.close()

    def _count_writes(self, count: int = 1) -> bool:
        """Count ``count`` writes; whether they reached the next multiple of _PURGE_EVERY_WRITES (a purge of
        expired rows is due)."""
        before = self._writes
        self._writes += count
        return self._writes // _PURGE_EVERY_WRITES > before // _PURGE_EVERY_WRITES


def _purge_expired(conn: sqlite3.Connection) -> None:
    now = time.time()
    with _write(conn):
        conn.execute("DELETE FROM sessions WHERE expires_at <= ?", (now,))
        conn.execute("DELETE FROM idempotency_keys WHERE expires_at <= ?", (now,))
        conn.execute("DELETE FROM rate_windows WHERE window_end <= ?", (now,))


class SqliteHistoryStore:
    """Feedback, incidents, the audit trail and encrypted payloads in ``<data_dir>/history.sqlite3``."""

    def __init__(self, db: _Database, *, keyring: KeyRing) -> None:
        self._db = db
        self._keyring = keyring
        # audit rows of concurrent requests share a transaction (and its fsync)
        self._audit_batches: GroupCommit[AuditEvent] = GroupCommit(self._write_audit)

    @classmethod
    async def open(
        cls, path: Path, *, keyring: KeyRing, timeout_seconds: float = COMMAND_TIMEOUT_SECONDS
    ) -> SqliteHistoryStore:
        # FULL: a committed feedback row survives power loss, not only a crash of the process.
        db = _Database(path, name="history", synchronous="FULL", timeout_seconds=timeout_seconds)
        await db.open("sqlite_history_")
        return cls(db, keyring=keyring)

    async def record_feedback(self, feedback: Feedback) -> None:
        params = (
            feedback.session_id,
            feedback.item_id,
            feedback.user_id,
            _iso(feedback.created_at),
            feedback.model_dump_json(),
            _iso(datetime.now(UTC)),
        )

        def call(conn: sqlite3.Connection) -> None:
            with _write(conn):
                conn.execute(
                    "INSERT OR IGNORE INTO feedback "
                    "(session_id, item_id, user_id, created_at, body, recorded_at) VALUES (?, ?, ?, ?, ?, ?)",
                    params,
                )

        await self._db.run(call, op="record_feedback")

    async def list_feedback(self, session_id: str) -> list[Feedback]:
        rows = await self._db.run(
            lambda conn: conn.execute(
                "SELECT body FROM feedback WHERE session_id = ? ORDER BY created_at, id", (session_id,)
            ).fetchall(),
            op="list_feedback",
        )
        return [Feedback.model_validate_json(row[0]) for row in rows]

    async def save_incident(self, case: IncidentCase) -> None:
        params = (*incident_columns(case), _iso(case.created_at), _iso(datetime.now(UTC)))

        def call(conn: sqlite3.Connection) -> None:
            with _write(conn):
                conn.execute(
                    "INSERT INTO incidents "
                    "(id, team, session_id, category, title, search_text, body, created_at, updated_at) "
                    "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (id) DO UPDATE SET "
                    "team = excluded.team, session_id = excluded.session_id, category = excluded.category, "
                    "title = excluded.title, search_text = excluded.search_text, body = excluded.body, "
                    "created_at = excluded.created_at, updated_at = excluded.updated_at",
                    params,
                )

        await self._db.run(call, op="save_incident")

    async def get_incident(self, incident_id: str) -> IncidentCase | None:
        row = await self._db.run(
            lambda conn: conn.execute("SELECT body FROM incidents WHERE id = ?", (incident_id,)).fetchone(),
            op="get_incident",
        )
        return None if row is None else IncidentCase.model_validate_json(row[0])

    async def list_incidents(self, *, query: str | None = None, limit: int = 20) -> list[IncidentCase]:
        limit = max(1, min(limit, MAX_INCIDENT_LIMIT))
        terms = search_terms(query)
        where = " AND ".join("search_text LIKE ? ESCAPE '\\'" for _ in terms) or "1 = 1"
        params: list[object] = [like_pattern(term) for term in terms]
        params.append(limit)
        sql = f"SELECT body FROM incidents WHERE {where} ORDER BY created_at DESC, id LIMIT ?"
        rows = await self._db.run(lambda conn: conn.execute(sql, params).fetchall(), op="list_incidents")
        return [IncidentCase.model_validate_json(row[0]) for row in rows]

    async def audit(self, event: AuditEvent) -> None:
        await self._audit_batches.submit(event)

    async def _write_audit(self, events: Sequence[AuditEvent]) -> None:
        rows = [
            (
                event.id,
                _iso(event.at),
                event.actor,
                event.action,
                event.session_id,
                json.dumps(event.detail, ensure_ascii=False),
            )
            for event in events
        ]

        def call(conn: sqlite3.Connection) -> None:
            with _write(conn):
                conn.executemany(
                    "INSERT OR IGNORE INTO audit_events (id, at, actor, action, session_id, detail) "
                    "VALUES (?, ?, ?, ?, ?, ?)",
                    rows,
                )

        await self._db.run(call, op="audit")

    async def list_audit(self, *, limit: int = 100, action: str | None = None) -> list[AuditEvent]:
        limit = max(1, min(limit, MAX_AUDIT_LIMIT))
        if action is None:
            sql = "SELECT id, at, actor, action, session_id, detail FROM audit_events "
            sql += "ORDER BY at DESC, id DESC LIMIT ?"
            params: tuple[object, ...] = (limit,)
        else:
            sql = "SELECT id, at, actor, action, session_id, detail FROM audit_events WHERE action = ? "
            sql += "ORDER BY at DESC, id DESC LIMIT ?"
            params = (action, limit)
        rows = await self._db.run(lambda conn: conn.execute(sql, params).fetchall(), op="list_audit")
        return [
            AuditEvent(
                id=row[0],
                at=datetime.fromisoformat(row[1]),
                actor=row[2],
                action=row[3],
                session_id=row[4],
                detail=json.loads(row[5]),
            )
            for row in rows
        ]

    async def save_payload(self, *, session_id: str, name: str, data: bytes) -> str:
        payload_id = new_id()
        envelope = await asyncio.to_thread(self._keyring.encrypt, data)
        params = (
            payload_id,
            session_id,
            name,
            len(data),
            self._keyring.primary_key_id,
            envelope,
            _iso(datetime.now(UTC)),
        )

        def call(conn: sqlite3.Connection) -> None:
            with _write(conn):
                conn.execute(
                    "INSERT INTO payloads (id, session_id, name, size, key_id, envelope, created_at) "
                    "VALUES (?, ?, ?, ?, ?, ?, ?)",
                    params,
                )

        await self._db.run(call, op="save_payload")
        return payload_id

    async def load_payload(self, payload_id: str) -> bytes:
        row = await self._db.run(
            lambda conn: conn.execute("SELECT envelope FROM payloads WHERE id = ?", (payload_id,)).fetchone(),
            op="load_payload",
        )
        if row is None:
            raise NotFoundError(f"No stored payload with id {payload_id!r}.")
        return await asyncio.to_thread(self._keyring.decrypt, bytes(row[0]))

    async def ping(self) -> bool:
        return await self._db.ping()

    async def close(self) -> None:
        await self._db.close()
