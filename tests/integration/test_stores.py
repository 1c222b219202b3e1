"""One contract suite for the stores, run against every implementation: embedded SQLite, and Redis +
PostgreSQL on real servers started by the harness (tests/integration/services.py)."""

from __future__ import annotations

import asyncio
import base64
import sqlite3
import time
import zlib
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import asyncpg
import pytest
import redis.asyncio as aioredis

from core.answers import Feedback, IncidentCase, RequestKind, Session, Turn
from core.errors import DependencyError, NotFoundError
from core.models import Category
from faultmaven.crypto import DecryptionError, KeyRing
from faultmaven.settings import Settings
from faultmaven.stores import AuditEvent, SessionStore, Stores, open_stores
from faultmaven.stores.migrations import load_migrations
from faultmaven.stores.postgres import PostgresHistoryStore
from faultmaven.stores.redis_sessions import RedisSessionStore
from faultmaven.stores.sqlite import HISTORY_FILE, SESSIONS_FILE, SqliteSessionStore
from tests.integration.services import PostgresServer, free_port, service_missing

pytestmark = pytest.mark.integration

KEY_OLD = f"k-2026:{base64.b64encode(bytes(range(32))).decode()}"
KEY_NEW = f"k-2027:{base64.b64encode(bytes(range(64, 96))).decode()}"
T0 = datetime(2026, 11, 20, 9, 30, tzinfo=UTC)


@dataclass
class Backend:
    name: str
    tmp_path: Path
    redis_url: str | None = None
    postgres_dsn: str | None = None
    postgres_server: PostgresServer | None = None

    def settings(self, *, encryption_keys: str | None = KEY_OLD) -> Settings:
        return Settings(
            _env_file=None,
            data_dir=self.tmp_path / "data",
            redis_url=self.redis_url,
            postgres_dsn=self.postgres_dsn,
            encryption_keys=encryption_keys,
        )

    async def open(self, *, encryption_keys: str | None = KEY_OLD) -> Stores:
        return await open_stores(self.settings(encryption_keys=encryption_keys))

    async def session_store(self, *, ttl_seconds: int) -> SessionStore:
        if self.redis_url is not None:
            return await RedisSessionStore.connect(self.redis_url, ttl_seconds=ttl_seconds)
        return await SqliteSessionStore.open(self.tmp_path / "data" / SESSIONS_FILE, ttl_seconds=ttl_seconds)

    async def applied_migrations(self) -> list[str]:
        if self.postgres_dsn is not None:
            conn = await asyncpg.connect(self.postgres_dsn, timeout=10)
            try:
                rows = await conn.fetch("SELECT version FROM schema_migrations ORDER BY version")
            finally:
                await conn.close()
            return [row["version"] for row in rows]
        with sqlite3.connect(self.tmp_path / "data" / HISTORY_FILE) as conn:
            return [row[0] for row in conn.execute("SELECT version FROM schema_migrations ORDER BY version")]

    def expected_migrations(self) -> list[str]:
        prefix = "postgres_" if self.postgres_dsn is not None else "sqlite_history_"
        return [migration.version for migration in load_migrations(prefix)]

    async def envelope(self, payload_id: str) -> bytes:
        if self.postgres_dsn is not None:
            conn = await asyncpg.connect(self.postgres_dsn, timeout=10)
            try:
                return bytes(await conn.fetchval("SELECT envelope FROM payloads WHERE id = $1", payload_id))
            finally:
                await conn.close()
        with sqlite3.connect(self.tmp_path / "data" / HISTORY_FILE) as conn:
            row = conn.execute("SELECT envelope FROM payloads WHERE id = ?", (payload_id,)).fetchone()
        return bytes(row[0])

    async def bytes_at_rest(self) -> bytes:
        """Every byte the history store has on disk (PostgreSQL: after a CHECKPOINT, the whole cluster)."""
        if self.postgres_server is not None:
            conn = await asyncpg.connect(self.postgres_server.dsn(), timeout=10)
            try:
                await conn.execute("CHECKPOINT")
            finally:
                await conn.close()
            root = self.postgres_server.data_dir
        else:
            root = self.tmp_path / "data"
        return b"".join(path.read_bytes() for path in sorted(root.rglob("*")) if path.is_file())


@pytest.fixture(params=["sqlite", "redis+postgres"])
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Backend:
    if request.param == "sqlite":
        return Backend(name="sqlite", tmp_path=tmp_path)
    return Backend(
        name="redis+postgres",
        tmp_path=tmp_path,
        redis_url=request.getfixturevalue("redis_url"),
        postgres_dsn=request.getfixturevalue("postgres_dsn"),
        postgres_server=request.getfixturevalue("postgres_server"),
    )


@pytest.fixture
async def stores(backend: Backend) -> AsyncIterator[Stores]:
    opened = await backend.open()
    try:
        yield opened
    finally:
        await opened.close()


def make_session(session_id: str = "sess-checkout-1") -> Session:
    turn = Turn(
        number=1,
        question="checkout latency p99 jumped to 4s after the 14:05 deploy",
        kind=RequestKind.QUERY_AND_DATA,
        user_id="U024BE7LH",
        answer_summary="Connection pool exhaustion on payments-db is the leading hypothesis.",
        root_cause_ids=["resource_exhaustion:db-pool"],
        next_step_ids=["check-db-pool-metrics"],
        template_ids=["tpl-3f2a"],
        categories=[Category.CONNECTION_POOL_EXHAUSTION],
        created_at=T0,
    )
    feedback = make_feedback(session_id=session_id)
    return Session(
        id=session_id, created_at=T0, updated_at=T0, channel="C0INCIDENT", turns=[turn], feedback=[feedback]
    )


def make_feedback(
    *, session_id: str = "sess-checkout-1", item_id: str = "check-db-pool-metrics", minutes: int = 0
) -> Feedback:
    return Feedback(
        session_id=session_id,
        item_id=item_id,
        item_kind="next_step",
        verdict="accept",
        user_id="U024BE7LH",
        comment="pool at 50/50 in grafana",
        created_at=T0 + timedelta(minutes=minutes),
    )


def make_incidents() -> list[IncidentCase]:
    return [
        IncidentCase(
            id="inc-101",
            title="Checkout 5xx: payments-db connection pool exhausted",
            category=Category.CONNECTION_POOL_EXHAUSTION,
            root_cause="A deploy doubled worker count; each worker opened 10 connections (pool max 50).",
            fix="Rolled back; capped pool per worker; added pgbouncer.",
            symptoms=["FATAL: sorry, too many clients already", "HikariPool-1 - Connection is not available"],
            services=["payments-api", "payments-db"],
            created_at=T0,
        ),
        IncidentCase(
            id="inc-102",
            title="search-indexer pods OOMKilled",
            category=Category.MEMORY_EXHAUSTION,
            root_cause="Unbounded batch size after a config change; heap grew to the 2Gi limit.",
            fix="Batch size back to 500; memory limit 3Gi.",
            symptoms=["OOMKilled", "exit code 137"],
            services=["search-indexer"],
            created_at=T0 + timedelta(hours=1),
        ),
        IncidentCase(
            id="inc-103",
            title="TLS handshake failures to the 100% rollout of edge-proxy",
            category=Category.TLS_CERTIFICATE,
            root_cause="Expired intermediate certificate in the new image.",
            fix="Reissued the chain; added an expiry alert at 21 days.",
            symptoms=["x509: certificate has expired or is not yet valid"],
            services=["edge-proxy"],
            created_at=T0 + timedelta(hours=2),
        ),
    ]


async def test_ping_reports_both_stores(stores: Stores) -> None:
    assert await stores.ping() == {"sessions": True, "history": True}


async def test_session_round_trip_and_delete(stores: Stores) -> None:
    session = make_session()
    assert await stores.sessions.get_session(session.id) is None
    await stores.sessions.save_session(session)
    assert await stores.sessions.get_session(session.id) == session
    updated = session.model_copy(update={"channel": "C0OTHER"})
    await stores.sessions.save_session(updated)
    assert (await stores.sessions.get_session(session.id)) == updated
    await stores.sessions.delete_session(session.id)
    assert await stores.sessions.get_session(session.id) is None
    await stores.sessions.delete_session(session.id)  # deleting twice is fine


class _RawSessions:
    """The session store's rows as bytes, read and written around the store (an older version's rows, damage)."""

    def __init__(self, backend: Backend) -> None:
        self.backend = backend

    async def get(self, session_id: str) -> bytes | str:
        if self.backend.redis_url is not None:
            client = aioredis.Redis.from_url(self.backend.redis_url)
            try:
                raw = await client.get(f"faultmaven:session:{session_id}")
            finally:
                await client.aclose()
            assert raw is not None
            return bytes(raw)
        with sqlite3.connect(self.backend.tmp_path / "data" / SESSIONS_FILE) as conn:
            row = conn.execute("SELECT body FROM sessions WHERE id = ?", (session_id,)).fetchone()
        assert row is not None
        return row[0]  # type: ignore[no-any-return]

    async def put(self, session_id: str, body: bytes | str) -> None:
        if self.backend.redis_url is not None:
            client = aioredis.Redis.from_url(self.backend.redis_url)
            try:
                await client.set(f"faultmaven:session:{session_id}", body, ex=600)
            finally:
                await client.aclose()
            return
        with sqlite3.connect(self.backend.tmp_path / "data" / SESSIONS_FILE) as conn:
            conn.execute("UPDATE sessions SET body = ? WHERE id = ?", (body, session_id))


async def test_sessions_are_stored_compressed_and_plain_older_ones_still_read(
    stores: Stores, backend: Backend, caplog: pytest.LogCaptureFixture
) -> None:
    raw = _RawSessions(backend)
    session = make_session()
    await stores.sessions.save_session(session)
    stored = await raw.get(session.id)
    plain = session.model_dump_json()
    assert isinstance(stored, bytes) and zlib.decompress(stored) == plain.encode()
    assert len(stored) < len(plain) * 0.7
    # rows written before compression (JSON text) are read as they are
    await raw.put(session.id, plain)
    assert await stores.sessions.get_session(session.id) == session
    # a damaged body is a conversation that starts afresh, not an error on every turn
    await raw.put(session.id, stored[: len(stored) // 2])
    assert await stores.sessions.get_session(session.id) is None
    assert "stored session is damaged" in caplog.text


async def test_session_ttl_expires_and_is_refreshed_on_save(backend: Backend) -> None:
    sessions = await backend.session_store(ttl_seconds=2)
    try:
        session = make_session("sess-ttl")
        await sessions.save_session(session)
        await asyncio.sleep(1.2)
        await sessions.save_session(session)  # refresh: now lives until ~3.2s
        await asyncio.sleep(1.2)
        assert await sessions.get_session("sess-ttl") == session
        await asyncio.sleep(1.3)
        assert await sessions.get_session("sess-ttl") is None
    finally:
        await sessions.close()


async def test_idempotency_key_claimed_once_under_concurrency(stores: Stores) -> None:
    results = await asyncio.gather(
        *(stores.sessions.claim_idempotency_key("slack-event:Ev0PV52K21", ttl_seconds=60) for _ in range(20))
    )
    assert sorted(results) == [False] * 19 + [True]
    assert await stores.sessions.claim_idempotency_key("slack-event:Ev0PV52K22", ttl_seconds=60) is True
    assert await stores.sessions.claim_idempotency_key("slack-event:Ev0PV52K21", ttl_seconds=60) is False


async def test_idempotency_key_can_be_claimed_again_after_expiry(stores: Stores) -> None:
    assert await stores.sessions.claim_idempotency_key("webhook:alert-77", ttl_seconds=1) is True
    assert await stores.sessions.claim_idempotency_key("webhook:alert-77", ttl_seconds=1) is False
    await asyncio.sleep(1.2)
    assert await stores.sessions.claim_idempotency_key("webhook:alert-77", ttl_seconds=1) is True


async def test_rate_limit_allows_exactly_n_then_denies_with_retry_after(stores: Stores) -> None:
    decisions = [
        await stores.sessions.hit_rate_limit("user:U024BE7LH", limit=5, window_seconds=60) for _ in range(7)
    ]
    assert [d.allowed for d in decisions] == [True] * 5 + [False] * 2
    assert [d.remaining for d in decisions] == [4, 3, 2, 1, 0, 0, 0]
    assert all(d.retry_after_seconds == 0 for d in decisions[:5])
    assert all(50 < d.retry_after_seconds <= 60 for d in decisions[5:])
    other = await stores.sessions.hit_rate_limit("user:U0OTHER", limit=5, window_seconds=60)
    assert other.allowed and other.remaining == 4


async def test_rate_limit_is_atomic_under_concurrency(stores: Stores) -> None:
    # 200 at once: more than the Redis connection pool holds, so callers also queue for connections
    decisions = await asyncio.gather(
        *(stores.sessions.hit_rate_limit("ip:10.0.0.7", limit=7, window_seconds=60) for _ in range(200))
    )
    assert sum(d.allowed for d in decisions) == 7
    assert sorted(d.remaining for d in decisions if d.allowed) == [0, 1, 2, 3, 4, 5, 6]


async def test_rate_limit_window_resets(stores: Stores) -> None:
    assert (await stores.sessions.hit_rate_limit("burst", limit=1, window_seconds=1)).allowed
    denied = await stores.sessions.hit_rate_limit("burst", limit=1, window_seconds=1)
    assert not denied.allowed and 0 < denied.retry_after_seconds <= 1
    await asyncio.sleep(denied.retry_after_seconds + 0.15)
    assert (await stores.sessions.hit_rate_limit("burst", limit=1, window_seconds=1)).allowed


async def test_feedback_is_idempotent_and_durable_across_reopen(backend: Backend) -> None:
    first = await backend.open()
    try:
        feedback = [make_feedback(minutes=m) for m in (2, 0, 1)]
        await asyncio.gather(*(first.history.record_feedback(item) for item in feedback * 3))
        await first.history.record_feedback(make_feedback(session_id="sess-other"))
        listed = await first.history.list_feedback("sess-checkout-1")
        assert listed == sorted(feedback, key=lambda item: item.created_at)
    finally:
        await first.close()
    reopened = await backend.open()
    try:
        assert await reopened.history.list_feedback("sess-checkout-1") == listed
        assert await reopened.history.list_feedback("sess-unknown") == []
    finally:
        await reopened.close()


async def test_incidents_round_trip_search_and_update(stores: Stores) -> None:
    for case in make_incidents():
        await stores.history.save_incident(case)
    incident = await stores.history.get_incident("inc-102")
    assert incident == make_incidents()[1]
    assert await stores.history.get_incident("inc-999") is None

    newest_first = await stores.history.list_incidents()
    assert [case.id for case in newest_first] == ["inc-103", "inc-102", "inc-101"]
    assert [case.id for case in await stores.history.list_incidents(limit=2)] == ["inc-103", "inc-102"]
    assert [c.id for c in await stores.history.list_incidents(query="oomkilled")] == ["inc-102"]
    assert [c.id for c in await stores.history.list_incidents(query="POOL   payments")] == ["inc-101"]
    assert [c.id for c in await stores.history.list_incidents(query="too many clients")] == ["inc-101"]
    assert [c.id for c in await stores.history.list_incidents(query="edge-proxy")] == ["inc-103"]
    assert [c.id for c in await stores.history.list_incidents(query="100%")] == ["inc-103"]
    assert [c.id for c in await stores.history.list_incidents(query="%")] == [
        "inc-103"
    ]  # literal, not a wildcard
    assert await stores.history.list_incidents(query="exit_code") == []  # '_' is literal too ("exit code")
    assert [c.id for c in await stores.history.list_incidents(query="memory_exhaustion")] == ["inc-102"]
    assert await stores.history.list_incidents(query="pool expired") == []

    changed = make_incidents()[1].model_copy(update={"fix": "Batch size 500, limit 3Gi, and a heap alert."})
    await stores.history.save_incident(changed)
    assert await stores.history.get_incident("inc-102") == changed
    assert [c.id for c in await stores.history.list_incidents(query="heap alert")] == ["inc-102"]
    assert len(await stores.history.list_incidents()) == 3


async def test_audit_list_newest_first_with_filter(stores: Stores) -> None:
    events = [
        AuditEvent(actor="U1", action="query", session_id="s1", at=T0, detail={"kind": "query_only"}),
        AuditEvent(actor="U2", action="feedback", session_id="s1", at=T0 + timedelta(seconds=5)),
        AuditEvent(actor="U1", action="query", session_id="s2", at=T0 + timedelta(seconds=9)),
        AuditEvent(
            actor="admin@corp",
            action="admin:config",
            at=T0 + timedelta(seconds=12),
            detail={"view": "masked"},
        ),
    ]
    for event in events:
        await stores.history.audit(event)
    await stores.history.audit(events[0])  # same id twice is recorded once
    assert await stores.history.list_audit() == list(reversed(events))
    assert await stores.history.list_audit(action="query") == [events[2], events[0]]
    assert await stores.history.list_audit(limit=1) == [events[3]]
    assert await stores.history.list_audit(action="resolve") == []


async def test_payload_encrypted_at_rest_and_round_trips(backend: Backend, stores: Stores) -> None:
    plaintext = b"".join(
        f"2026-11-20T09:30:{i:02d}Z ERROR payments-api charge failed card=4111-XXXX token=sk_live_canary{i}\n".encode()
        for i in range(40)
    )
    payload_id = await stores.history.save_payload(
        session_id="sess-checkout-1", name="payments.log", data=plaintext
    )
    assert await stores.history.load_payload(payload_id) == plaintext
    assert (
        await stores.history.load_payload(
            await stores.history.save_payload(session_id="s", name="empty.log", data=b"")
        )
        == b""
    )

    envelope = await backend.envelope(payload_id)
    assert KeyRing.from_spec(KEY_OLD).decrypt(envelope) == plaintext
    at_rest = await backend.bytes_at_rest()
    assert envelope[20:84] in at_rest  # we are looking at the right files...
    assert b"sk_live_canary" not in at_rest  # ...and no plaintext is among them
    assert b"payments-api charge failed" not in at_rest

    with pytest.raises(NotFoundError):
        await stores.history.load_payload("no-such-payload")


async def test_payload_survives_key_rotation_and_fails_clearly_without_its_key(backend: Backend) -> None:
    old = await backend.open(encryption_keys=KEY_OLD)
    try:
        payload_id = await old.history.save_payload(
            session_id="s1", name="app.log", data=b"line one\nline two\n"
        )
    finally:
        await old.close()
    rotated = await backend.open(encryption_keys=f"{KEY_NEW},{KEY_OLD}")
    try:
        assert await rotated.history.load_payload(payload_id) == b"line one\nline two\n"
        new_id = await rotated.history.save_payload(session_id="s1", name="app2.log", data=b"line three\n")
        assert (await backend.envelope(new_id))[2:8] == b"k-2027"
    finally:
        await rotated.close()
    retired = await backend.open(encryption_keys=KEY_NEW)
    try:
        with pytest.raises(DecryptionError, match="'k-2026', which is not configured"):
            await retired.history.load_payload(payload_id)
    finally:
        await retired.close()


async def test_migrations_are_idempotent(backend: Backend) -> None:
    for _ in range(2):
        opened = await backend.open()
        await opened.close()
    assert await backend.applied_migrations() == backend.expected_migrations()


async def test_concurrent_first_start_applies_migrations_once(backend: Backend) -> None:
    opened = await asyncio.gather(backend.open(), backend.open(), backend.open())
    try:
        await asyncio.gather(*(s.history.record_feedback(make_feedback()) for s in opened))
        for store in opened:
            assert await store.history.list_feedback("sess-checkout-1") == [make_feedback()]
    finally:
        await asyncio.gather(*(store.close() for store in opened))
    assert await backend.applied_migrations() == backend.expected_migrations()


async def _raises_dependency_error_quickly(connect: Callable[[], Awaitable[object]]) -> None:
    started = time.monotonic()
    with pytest.raises(DependencyError) as info:
        await connect()
    assert time.monotonic() - started < 15
    assert "127.0.0.1" not in info.value.user_message


async def test_unreachable_redis_is_a_dependency_error() -> None:
    port = free_port()
    await _raises_dependency_error_quickly(
        lambda: RedisSessionStore.connect(
            f"redis://:s3cret@127.0.0.1:{port}/0", ttl_seconds=60, connect_timeout_seconds=1
        )
    )


async def test_unreachable_postgres_is_a_dependency_error() -> None:
    port = free_port()
    await _raises_dependency_error_quickly(
        lambda: PostgresHistoryStore.connect(
            f"postgresql://fm:s3cret@127.0.0.1:{port}/fm",
            keyring=KeyRing.from_spec(KEY_OLD),
            connect_timeout_seconds=1,
        )
    )


async def test_embedded_defaults_create_data_dir_and_key_file(tmp_path: Path) -> None:
    data_dir = tmp_path / "fresh" / "nested"
    opened = await open_stores(Settings(_env_file=None, data_dir=data_dir))
    try:
        payload_id = await opened.history.save_payload(
            session_id="s", name="a.log", data=b"disk full on /var\n"
        )
        assert await opened.history.load_payload(payload_id) == b"disk full on /var\n"
    finally:
        await opened.close()
    assert sorted(p.name for p in data_dir.iterdir() if not p.name.endswith(("-wal", "-shm"))) == [
        "encryption.key",
        HISTORY_FILE,
        SESSIONS_FILE,
    ]
    reopened = await open_stores(Settings(_env_file=None, data_dir=data_dir))
    try:
        assert await reopened.history.load_payload(payload_id) == b"disk full on /var\n"
    finally:
        await reopened.close()


def test_missing_service_fails_under_ci_and_skips_locally(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception, match="CI=true"):
        service_missing("redis-server is not installed")
    monkeypatch.setenv("CI", "false")
    with pytest.raises(pytest.skip.Exception, match="redis-server is not installed"):
        service_missing("redis-server is not installed")
    monkeypatch.delenv("CI")
    with pytest.raises(pytest.skip.Exception):
        service_missing("redis-server is not installed")


async def test_unusable_data_dir_is_a_clear_dependency_error(tmp_path: Path) -> None:
    blocker = tmp_path / "data"
    blocker.write_text("a file where the data directory should be")
    with pytest.raises(DependencyError, match=r"session store at .*data/sessions\.sqlite3 cannot be used"):
        await open_stores(Settings(_env_file=None, data_dir=blocker, encryption_keys=KEY_OLD))


async def test_malformed_urls_are_named_without_echoing_them() -> None:
    with pytest.raises(DependencyError, match="Redis URL is malformed") as info:
        await RedisSessionStore.connect("http://:s3cret@cache:6379/0", ttl_seconds=60)
    assert "s3cret" not in info.value.user_message
    with pytest.raises(DependencyError, match="PostgreSQL DSN is malformed") as info:
        await PostgresHistoryStore.connect(
            "postgresql://fm:s3cret@db:notaport/fm", keyring=KeyRing.from_spec(KEY_OLD)
        )
    assert "s3cret" not in info.value.user_message


async def test_sqlite_call_waits_on_the_worker_thread_while_another_process_writes(tmp_path: Path) -> None:
    """Short session calls run on the event loop's own connection, which never waits for a lock: while
    another connection (another worker process) holds the write lock, the call goes to the store's thread
    and waits there, and the event loop keeps serving."""
    path = tmp_path / "data" / SESSIONS_FILE
    store = await SqliteSessionStore.open(path, ttl_seconds=60)
    other = sqlite3.connect(path, isolation_level=None)
    try:
        assert (await store.hit_rate_limit("user:U1", limit=5, window_seconds=60)).remaining == 4
        other.execute("BEGIN IMMEDIATE")
        other.execute("UPDATE rate_windows SET hits = 3 WHERE key = 'user:U1'")
        hit = asyncio.create_task(store.hit_rate_limit("user:U1", limit=5, window_seconds=60))
        saved = asyncio.create_task(store.save_session(make_session("sess-while-locked")))
        ticks = 0
        for _ in range(10):  # the loop is free meanwhile
            await asyncio.sleep(0.02)
            ticks += 1
        assert ticks == 10 and not hit.done() and not saved.done()
        other.execute("COMMIT")
        decision = await asyncio.wait_for(hit, timeout=5)
        await asyncio.wait_for(saved, timeout=5)
        # the call ran after the other writer's commit, on its count: nothing was lost or counted twice
        assert decision.allowed and decision.remaining == 1
        loaded = await store.get_session("sess-while-locked")
        assert loaded is not None and loaded.turns[0].user_id == "U024BE7LH"
    finally:
        other.close()
        await store.close()


async def test_sqlite_inline_writes_are_checkpointed_so_the_wal_stays_bounded(tmp_path: Path) -> None:
    """The event loop's connection never checkpoints (a checkpoint fsyncs); the store's thread does, so a
    stream of small writes (rate-limit hits, which never trigger the session purge) keeps the WAL small."""
    path = tmp_path / "data" / SESSIONS_FILE
    store = await SqliteSessionStore.open(path, ttl_seconds=3600)
    wal = path.with_name(path.name + "-wal")
    try:
        for number in range(4000):  # each a commit of its own: without checkpoints the WAL grows to ~50 MB
            await store.hit_rate_limit(f"user:U{number}", limit=10, window_seconds=60)
            if number % 100 == 99:
                await asyncio.sleep(0.02)  # let a due checkpoint run on the worker thread
        assert wal.stat().st_size < 16 * 1024 * 1024
        assert (await store.hit_rate_limit("user:U3999", limit=10, window_seconds=60)).remaining == 8
    finally:
        await store.close()


async def test_sqlite_write_gets_through_a_writer_holding_the_lock_nearly_all_the_time(
    tmp_path: Path,
) -> None:
    """Another process writing back to back (here: holding the lock for 8 ms, letting go for 0.3 ms) must not
    starve the store: it keeps polling for the lock (every few milliseconds, for up to the busy timeout) and
    gets through one of the short free moments."""
    stores = await open_stores(Settings(_env_file=None, data_dir=tmp_path / "data", encryption_keys=KEY_OLD))
    stop = asyncio.Event()

    def hog() -> None:
        conn = sqlite3.connect(tmp_path / "data" / HISTORY_FILE, isolation_level=None, timeout=5)
        try:
            while not stop.is_set():
                conn.execute("BEGIN IMMEDIATE")
                time.sleep(0.008)
                conn.execute("COMMIT")
                time.sleep(0.0003)
        finally:
            conn.close()

    hogging = asyncio.create_task(asyncio.to_thread(hog))
    try:
        await asyncio.sleep(0.1)
        for number in range(8):
            started = time.monotonic()
            await stores.history.audit(AuditEvent(actor="U1", action="query", detail={"n": str(number)}))
            assert time.monotonic() - started < 1.0, f"write {number} waited too long for the lock"
    finally:
        stop.set()
        await hogging
        await stores.close()


async def test_sqlite_expired_rows_are_purged_in_the_background(tmp_path: Path) -> None:
    path = tmp_path / "data" / SESSIONS_FILE
    store = await SqliteSessionStore.open(path, ttl_seconds=2)
    try:
        for number in range(10):
            await store.save_session(make_session(f"sess-old-{number}"))
        await store.claim_idempotency_key("delivery-1", ttl_seconds=1)
        await asyncio.sleep(2.1)
        for number in range(200):  # the 200th write is due a purge
            await store.save_session(make_session(f"sess-new-{number}"))
        for _ in range(100):
            with sqlite3.connect(path) as conn:
                old = conn.execute("SELECT count(*) FROM sessions WHERE id LIKE 'sess-old-%'").fetchone()[0]
                keys = conn.execute("SELECT count(*) FROM idempotency_keys").fetchone()[0]
            if old == 0:
                break
            await asyncio.sleep(0.02)
        assert old == 0 and keys == 0
        assert await store.get_session("sess-new-199") is not None
    finally:
        await store.close()
