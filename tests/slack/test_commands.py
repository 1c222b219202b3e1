"""`/faultmaven ask | status | resolve | forget | help`."""

from __future__ import annotations

import pytest

from bot.app import NOT_ALLOWED, session_id_for
from core.errors import NotFoundError
from tests.slack.fake_slack import BOT_ID, TEAM_ID
from tests.slack.harness import CHANNEL, RESPONDER, VIEWER, SlackHarness


async def _ask(slack: SlackHarness, question: str) -> tuple[dict, str]:
    response = await slack.command(f"ask {question}")
    assert response.status == 200
    await slack.settle()
    roots = [m for m in slack.fake.channels[CHANNEL] if m.get("bot_id") == BOT_ID and "thread_ts" not in m]
    root = roots[-1]
    return root, session_id_for(TEAM_ID, CHANNEL, root["ts"])


async def test_help_and_unknown_subcommands_answer_in_the_ack(slack: SlackHarness) -> None:
    for text in ("", "help"):
        posted = await slack.command(text)
        assert posted.status == 200
        assert "/faultmaven ask <question>" in posted.text
    unknown = await slack.command("frobnicate now")
    assert "Unknown subcommand `frobnicate`" in unknown.text
    usage = await slack.command("ask")
    assert "Usage" in usage.text
    assert slack.fake.calls_to("chat.postMessage") == []


async def test_ask_starts_a_thread_and_answers_in_it(slack: SlackHarness) -> None:
    root, session_id = await _ask(slack, "checkout latency doubled after the 14:05 deploy of orders-api")
    assert root["text"].startswith(f"<@{RESPONDER}> asked:")
    replies = slack.fake.bot_replies(CHANNEL, root["ts"])
    answers = [m for m in replies if m["ts"] != root["ts"]]
    assert len(answers) == 1 and answers[0]["blocks"]
    session = await slack.bot.troubleshooter.get_session(session_id)
    assert session.turns[0].question.startswith("checkout latency doubled")


async def test_ask_in_a_channel_without_the_bot_explains_how_to_invite_it(slack: SlackHarness) -> None:
    await slack.command("ask is anything broken?", channel="CNOTIN0001")
    await slack.settle()
    assert len(slack.fake.responses) == 1
    assert "invite me" in slack.fake.responses[0]["text"]


async def test_status_shows_the_latest_session(slack: SlackHarness) -> None:
    await slack.command("status")
    await slack.settle()
    assert "no FaultMaven session" in slack.fake.responses[-1]["text"]

    _, session_id = await _ask(slack, "orders-api 503s since 14:10")
    await slack.command("status", user=VIEWER)
    await slack.settle()
    status = slack.fake.responses[-1]
    assert status["response_type"] == "ephemeral"
    assert session_id in status["text"] and "turn 1" in status["text"] and "orders-api 503s" in status["text"]


async def test_resolve_by_command_needs_a_responder(slack: SlackHarness) -> None:
    root, session_id = await _ask(slack, "orders-api 503s: failed to acquire connection from pool")
    await slack.command("resolve raised max_connections", user=VIEWER)
    await slack.settle()
    assert slack.fake.responses[-1]["text"] == NOT_ALLOWED
    assert await slack.bot.services.stores.history.list_incidents() == []

    await slack.command("resolve raised orders-db max_connections to 200")
    await slack.settle()
    incidents = await slack.bot.services.stores.history.list_incidents()
    assert len(incidents) == 1 and incidents[0].session_id == session_id
    assert incidents[0].fix == "raised orders-db max_connections to 200"
    thread = slack.fake.bot_replies(CHANNEL, root["ts"])
    assert any("Resolved by" in m["text"] and incidents[0].id in m["text"] for m in thread)


async def test_resolve_without_text_opens_the_modal(slack: SlackHarness) -> None:
    _, session_id = await _ask(slack, "orders-api 503s: failed to acquire connection from pool")
    await slack.command("resolve")
    await slack.settle()
    assert len(slack.fake.views) == 1
    assert session_id in slack.fake.views[0]["view"]["private_metadata"]


async def test_forget_drops_the_session(slack: SlackHarness) -> None:
    _, session_id = await _ask(slack, "is the orders queue backed up?")
    await slack.command("forget", user=VIEWER)
    await slack.settle()
    assert slack.fake.responses[-1]["text"] == NOT_ALLOWED
    await slack.bot.troubleshooter.get_session(session_id)  # still there

    await slack.command("forget")
    await slack.settle()
    assert "Forgot session" in slack.fake.responses[-1]["text"]
    with pytest.raises(NotFoundError):
        await slack.bot.troubleshooter.get_session(session_id)


async def test_a_failing_command_reports_an_error_id_to_the_user(slack: SlackHarness, monkeypatch) -> None:
    await _ask(slack, "orders-api 503s")

    async def broken(session_id: str) -> None:
        raise RuntimeError("sessions table locked by pid 4242")

    monkeypatch.setattr(slack.bot.services.troubleshooter, "forget", broken)
    await slack.command("forget")
    await slack.settle()
    reply = slack.fake.responses[-1]
    assert reply["response_type"] == "ephemeral"
    assert "error id" in reply["text"] and "4242" not in reply["text"]
