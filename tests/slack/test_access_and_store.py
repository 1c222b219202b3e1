"""Role mapping (users, user groups, guests) and the bot's own tables (installations, OAuth state, threads) in
SQLite and PostgreSQL; the whole Slack flow over Redis + PostgreSQL."""

from __future__ import annotations

import base64
import os
import sqlite3
import time
from pathlib import Path
from typing import Any

import pytest
from slack_sdk.http_retry.builtin_async_handlers import AsyncRateLimitErrorRetryHandler
from slack_sdk.oauth.installation_store.models.installation import Installation
from slack_sdk.web.async_client import AsyncWebClient

from bot.access import SlackAccess, can_act
from bot.blocks import ACTION_REJECT, ButtonValue
from bot.store import SQLITE_FILE, SlackStore
from faultmaven.settings import Settings
from tests.slack.datasets import orders_api_log
from tests.slack.fake_slack import BOT_TOKEN, FakeSlack
from tests.slack.harness import CHANNEL, RESPONDER, find_action, start_harness


def _client(fake: FakeSlack) -> AsyncWebClient:
    return AsyncWebClient(
        token=BOT_TOKEN,
        base_url=fake.api_url,
        retry_handlers=[AsyncRateLimitErrorRetryHandler(max_retry_count=2)],
    )


async def test_roles_from_users_groups_and_defaults(fake_slack: FakeSlack) -> None:
    fake_slack.usergroups = {"S0SRE00001": ["U0SRE00001", "U0BOTH0001"], "S0LEADS001": ["U0BOTH0001"]}
    access = SlackAccess(
        {"U0ADMIN001": "admin", "S0SRE00001": "responder", "S0LEADS001": "admin", "S0GONE0001": "admin"}
    )
    client = _client(fake_slack)
    assert await access.role_of(client, user_id="U0ADMIN001", team_id="T1") == "admin"
    assert await access.role_of(client, user_id="U0SRE00001", team_id="T1") == "responder"
    assert await access.role_of(client, user_id="U0BOTH0001", team_id="T1") == "admin"  # highest wins
    assert await access.role_of(client, user_id="U0NOBODY01", team_id="T1") == "viewer"
    # A group Slack cannot list grants nothing, and is not asked about again within the cache time.
    gone = [c for c in fake_slack.calls_to("usergroups.users.list") if c.args["usergroup"] == "S0GONE0001"]
    assert len(gone) == 1
    calls = len(fake_slack.calls)
    assert await access.role_of(client, user_id="U0SRE00001", team_id="T1") == "responder"
    assert len(fake_slack.calls) == calls  # memberships and profiles are cached
    assert not can_act("viewer") and can_act("responder") and can_act("admin")


async def test_group_cache_expires(fake_slack: FakeSlack) -> None:
    fake_slack.usergroups = {"S0SRE00001": []}
    access = SlackAccess({"S0SRE00001": "responder"}, ttl_seconds=0.0)
    client = _client(fake_slack)
    assert await access.role_of(client, user_id="U0NEW00001", team_id="T1") == "viewer"
    fake_slack.usergroups["S0SRE00001"] = ["U0NEW00001"]  # added to the on-call group
    assert await access.role_of(client, user_id="U0NEW00001", team_id="T1") == "responder"


@pytest.mark.parametrize(
    "flags", [{"is_restricted": True}, {"is_ultra_restricted": True}, {"deleted": True}, {"is_bot": True}]
)
async def test_guests_deactivated_and_bots_stay_viewers(fake_slack: FakeSlack, flags: dict[str, Any]) -> None:
    fake_slack.users["U0CAPPED01"] = flags
    access = SlackAccess({"U0CAPPED01": "admin"})
    assert await access.role_of(_client(fake_slack), user_id="U0CAPPED01", team_id="T1") == "viewer"


def _settings(tmp_path: Path, **overrides: Any) -> Settings:
    key = base64.b64encode(os.urandom(32)).decode()
    return Settings(_env_file=None, data_dir=tmp_path, encryption_keys=f"k1:{key}", **overrides)


def _installation(team: str, user: str, token: str, *, at: float) -> Installation:
    return Installation(
        app_id="A0TEST",
        team_id=team,
        team_name="Test",
        bot_token=token,
        bot_id="B0BOT0001",
        bot_user_id="U0BOT0001",
        bot_scopes="chat:write,commands",
        user_id=user,
        installed_at=at,
    )


async def _exercise_store(store: SlackStore) -> None:
    assert await store.async_find_bot(enterprise_id=None, team_id="T0AAA") is None
    await store.async_save(_installation("T0AAA", "U0FIRST01", "xoxb-first", at=time.time() - 100))
    await store.async_save(_installation("T0AAA", "U0SECOND1", "xoxb-second", at=time.time()))
    await store.async_save(_installation("T0BBB", "U0OTHER01", "xoxb-other", at=time.time()))

    bot = await store.async_find_bot(enterprise_id=None, team_id="T0AAA")
    assert bot is not None and bot.bot_token == "xoxb-second"
    latest = await store.async_find_installation(enterprise_id=None, team_id="T0AAA")
    assert latest is not None and latest.user_id == "U0SECOND1"
    first = await store.async_find_installation(enterprise_id=None, team_id="T0AAA", user_id="U0FIRST01")
    assert first is not None and first.user_id == "U0FIRST01" and first.bot_token == "xoxb-second"
    other = await store.async_find_bot(enterprise_id=None, team_id="T0BBB")
    assert other is not None and other.bot_token == "xoxb-other"

    await store.async_delete_all(enterprise_id=None, team_id="T0AAA")
    assert await store.async_find_bot(enterprise_id=None, team_id="T0AAA") is None
    assert await store.async_find_installation(enterprise_id=None, team_id="T0AAA") is None
    assert await store.async_find_bot(enterprise_id=None, team_id="T0BBB") is not None

    state = await store.async_issue()
    assert await store.async_consume(state) is True
    assert await store.async_consume(state) is False
    assert await store.async_consume("never-issued") is False

    assert await store.latest_thread("T0AAA", CHANNEL) is None
    await store.remember_thread("T0AAA", CHANNEL, session_id="slack-1", thread_ts="1.1")
    await store.remember_thread("T0AAA", CHANNEL, session_id="slack-2", thread_ts="2.2")
    assert await store.latest_thread("T0AAA", CHANNEL) == ("slack-2", "2.2")
    assert await store.latest_thread("T0BBB", CHANNEL) is None


async def test_sqlite_store(tmp_path: Path) -> None:
    store = SlackStore(_settings(tmp_path))
    try:
        await _exercise_store(store)
    finally:
        await store.close()
    raw = sqlite3.connect(tmp_path / SQLITE_FILE).execute("SELECT body FROM slack_installations").fetchall()
    assert raw and all(b"xoxb-" not in bytes(row[0]) for row in raw), "tokens must be stored encrypted"


@pytest.mark.integration
async def test_postgres_store(tmp_path: Path, postgres_dsn: str) -> None:
    store = SlackStore(_settings(tmp_path, postgres_dsn=postgres_dsn))
    try:
        await _exercise_store(store)
    finally:
        await store.close()
    assert not (tmp_path / SQLITE_FILE).exists()


@pytest.mark.integration
async def test_feedback_from_slack_lands_in_redis_and_postgres(
    fake_slack: FakeSlack, tmp_path: Path, redis_url: str, postgres_dsn: str
) -> None:
    key = base64.b64encode(os.urandom(32)).decode()
    harness, runner = await start_harness(
        fake_slack,
        tmp_path / "data",
        redis_url=redis_url,
        postgres_dsn=postgres_dsn,
        encryption_keys=f"k1:{key}",
    )
    try:
        log_file = fake_slack.add_file("orders-api.log", orders_api_log().encode())
        event, _ = await harness.mention(
            "orders-api returns 503 and logs 'failed to acquire connection from pool', what should we do?",
            files=[log_file],
        )
        await harness.settle()
        answer = fake_slack.bot_replies(CHANNEL, event["ts"])[0]
        reject = find_action(answer, ACTION_REJECT)[0]
        await harness.click(answer, reject)
        await harness.settle()
        value = ButtonValue.decode(reject["value"])
        assert value is not None
        stores = harness.bot.services.stores
        assert type(stores.sessions).__name__ == "RedisSessionStore"
        assert type(stores.history).__name__ == "PostgresHistoryStore"
        durable = await stores.history.list_feedback(value.s)
        assert [(f.item_id, f.verdict, f.user_id) for f in durable] == [(value.i, "reject", RESPONDER)]
        session = await stores.sessions.get_session(value.s)
        assert session is not None and session.verdicts() == {value.i: "reject"}
    finally:
        await harness.http.close()
        await runner.cleanup()
