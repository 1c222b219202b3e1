"""The audit trail behind the answers: a slow audit store does not delay them (unless blocking is asked
for), what was handed over is in the trail when it is read and when the server stops, and a failed write is
counted, never shown. On the real SQLite history store, held by another connection as a busy writer would."""

from __future__ import annotations

import asyncio
import json
import sqlite3
import threading
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import cast

import aiohttp
import pytest

from faultmaven.audit_trail import AuditTrail
from faultmaven.observability import Metrics
from faultmaven.stores import open_stores
from faultmaven.stores.base import AuditEvent, HistoryStore
from faultmaven.stores.sqlite import HISTORY_FILE
from tests.integration.api_support import live_server, make_settings

QUESTION = {
    "user_id": "u-oncall-7",
    "query": "checkout pods restart since the deploy, why?",
    "logs": ["2024-05-14T14:06:01Z ERROR checkout-7f9c java.lang.OutOfMemoryError: Java heap space"],
}
HOLD_SECONDS = 1.5


@contextmanager
def history_held(data_dir: Path) -> Iterator[threading.Event]:
    """Another connection holds the history file's write lock until the returned event is set (or
    HOLD_SECONDS pass)."""
    taken, release = threading.Event(), threading.Event()

    def hold() -> None:
        conn = sqlite3.connect(data_dir / HISTORY_FILE, isolation_level=None, timeout=5)
        try:
            conn.execute("BEGIN IMMEDIATE")
            taken.set()
            release.wait(HOLD_SECONDS)
            conn.execute("COMMIT")
        finally:
            conn.close()

    holder = threading.Thread(target=hold, daemon=True)
    holder.start()
    assert taken.wait(5)
    try:
        yield release
    finally:
        release.set()
        holder.join(10)


async def _ask(http: aiohttp.ClientSession, url: str, request_id: str) -> float:
    started = time.monotonic()
    async with http.post(f"{url}/api/query", json=QUESTION, headers={"X-Request-Id": request_id}) as resp:
        assert resp.status == 200
        await resp.read()
    return time.monotonic() - started


async def _audited_request_ids(http: aiohttp.ClientSession, url: str) -> list[str]:
    async with http.get(f"{url}/api/admin/audit", params={"action": "query"}) as resp:
        assert resp.status == 200
        return [event["detail"].get("request_id", "") for event in (await resp.json())["events"]]


@pytest.mark.parametrize("blocking", [False, True])
async def test_a_held_audit_store_delays_answers_only_when_blocking(tmp_path: Path, blocking: bool) -> None:
    data_dir = tmp_path / "data"
    async with (
        live_server(make_settings(data_dir, audit_blocking=blocking)) as live,
        aiohttp.ClientSession() as http,
    ):
        await _ask(http, live.url, "warm-up")
        with history_held(data_dir):
            seconds = await _ask(http, live.url, "while-held")
        if blocking:
            assert seconds >= HOLD_SECONDS * 0.8, f"answered in {seconds:.2f}s before its record was written"
        else:
            assert seconds < HOLD_SECONDS * 0.6, f"the answer waited {seconds:.2f}s for the audit store"
        assert sorted(await _audited_request_ids(http, live.url)) == ["warm-up", "while-held"]


# In the two tests below, the first question's record waits for the held lock on the store's thread and the
# second waits behind it in the store's group commit, not yet handed to that thread: only the trail knows it.


async def test_reading_the_trail_waits_for_the_records_behind_answers(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    async with live_server(make_settings(data_dir)) as live, aiohttp.ClientSession() as http:
        await _ask(http, live.url, "warm-up")
        with history_held(data_dir) as release:
            await _ask(http, live.url, "first")
            await _ask(http, live.url, "second")
            threading.Timer(0.3, release.set).start()
            audited = await _audited_request_ids(http, live.url)
        assert sorted(audited) == ["first", "second", "warm-up"]


async def test_records_pending_at_shutdown_are_written(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    with ExitStack() as held:
        async with live_server(make_settings(data_dir)) as live, aiohttp.ClientSession() as http:
            await _ask(http, live.url, "warm-up")
            release = held.enter_context(history_held(data_dir))
            await _ask(http, live.url, "first")
            await _ask(http, live.url, "second")
            # the server starts stopping while both records wait; the lock goes a little later
            threading.Timer(0.5, release.set).start()
    with sqlite3.connect(data_dir / HISTORY_FILE) as conn:
        rows = conn.execute("SELECT detail FROM audit_events WHERE action = 'query'").fetchall()
    assert sorted(json.loads(detail)["request_id"] for (detail,) in rows) == ["first", "second", "warm-up"]


async def test_a_failed_audit_write_is_counted_not_shown(tmp_path: Path) -> None:
    async with live_server(make_settings(tmp_path / "data")) as live, aiohttp.ClientSession() as http:
        await _ask(http, live.url, "warm-up")
        await live.services.audit.flush()
        await live.services.stores.history.close()  # every later audit write fails
        await _ask(http, live.url, "unrecorded")
        await live.services.audit.flush()
        async with http.get(f"{live.url}/metrics") as resp:
            metrics = await resp.text()
    failures = [line for line in metrics.splitlines() if line.startswith("faultmaven_audit_failures_total ")]
    assert failures == ["faultmaven_audit_failures_total 1.0"]


class _Observed:
    """The real history store, with the moments ``audit`` was called noted."""

    def __init__(self, store: HistoryStore) -> None:
        self.store = store
        self.calls: list[float] = []

    async def audit(self, event: AuditEvent) -> None:
        self.calls.append(asyncio.get_running_loop().time())
        await self.store.audit(event)


async def test_records_handed_over_together_share_one_write(tmp_path: Path) -> None:
    stores = await open_stores(make_settings(tmp_path / "data"))
    try:
        observed = _Observed(stores.history)
        trail = AuditTrail(
            cast(HistoryStore, observed), metrics=Metrics(), blocking=False, gather_seconds=0.05
        )
        first = asyncio.get_running_loop().time()
        for number in range(5):
            await trail.record(AuditEvent(actor="U1", action="query", detail={"n": str(number)}))
            await asyncio.sleep(0.005)
        assert observed.calls == []  # nothing written while the window is open
        await trail.flush()
        assert len(observed.calls) == 5
        assert max(observed.calls) - min(observed.calls) < 0.005  # handed to the store together
        assert min(observed.calls) >= first + 0.05
        assert sorted(e.detail["n"] for e in await stores.history.list_audit()) == ["0", "1", "2", "3", "4"]
        # one that comes later, alone, is written after its own window
        await trail.record(AuditEvent(actor="U1", action="query", detail={"n": "5"}))
        await trail.close()
        assert len(observed.calls) == 6 and len(await stores.history.list_audit()) == 6
    finally:
        await stores.close()
