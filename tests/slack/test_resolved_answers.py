"""Once a session is resolved its answers say so (the "Mark resolved" button becomes who resolved it), and a
second resolution — button, modal or slash command — is refused with the incident it already has."""

from __future__ import annotations

import asyncio
import copy
import logging
from typing import Any

import pytest

from bot.app import session_id_for
from bot.blocks import ACTION_ACCEPT, ACTION_RESOLVE, RESOLVE_BLOCK_ID, RESOLVED_BLOCK_ID
from core.answers import IncidentCase
from tests.slack.datasets import orders_api_log
from tests.slack.fake_slack import TEAM_ID
from tests.slack.harness import CHANNEL, GROUP_MEMBER, ONCALL_GROUP, RESPONDER, SlackHarness, find_action

QUESTION = "orders-api returns 503 and logs 'failed to acquire connection from pool', what should we do?"
FOLLOW_UP = "the pool is still at max_open=50 and errors keep coming, what else?"
ROOT_CAUSE = "A schema migration held connections, exhausting the orders-api pool (max_open=50)"
FIX = "Raised orders-db max_connections to 200 and capped the migration job's pool at 5"


def _contexts(message: dict[str, Any]) -> list[str]:
    return [
        e["text"] for b in message.get("blocks") or [] if b.get("type") == "context" for e in b["elements"]
    ]


def _resolved_line(case: IncidentCase) -> str:
    return f"✅ Resolved by <@{case.resolved_by}> — incident `{case.id}`"


async def _thread_with_answers(slack: SlackHarness, *, turns: int) -> tuple[dict[str, Any], list[dict]]:
    """A mention with the orders-api log, plus ``turns - 1`` follow-ups in its thread: the answers."""
    log_file = slack.fake.add_file("orders-api.log", orders_api_log().encode())
    root, _ = await slack.mention(QUESTION, files=[log_file])
    await slack.settle()
    for _ in range(turns - 1):
        await slack.mention(FOLLOW_UP, thread_ts=root["ts"])
        await slack.settle()
    answers = copy.deepcopy(slack.fake.bot_replies(CHANNEL, root["ts"]))  # as posted, not as edited later
    assert len(answers) == turns and all(find_action(a, ACTION_RESOLVE) for a in answers)
    return root, answers


async def _only_incident(slack: SlackHarness) -> IncidentCase:
    incidents = await slack.bot.services.stores.history.list_incidents()
    assert len(incidents) == 1
    return incidents[0]


async def test_the_modal_edits_the_answer_and_a_second_click_says_it_is_resolved(slack: SlackHarness) -> None:
    slack.fake.usergroups[ONCALL_GROUP] = [GROUP_MEMBER]
    root, (answer,) = await _thread_with_answers(slack, turns=1)
    await slack.click(answer, find_action(answer, ACTION_ACCEPT)[0])
    await slack.settle()
    before = copy.deepcopy(slack.fake.message(CHANNEL, answer["ts"]))
    assert f"✅ accepted by <@{RESPONDER}>" in _contexts(before)

    await slack.click(before, find_action(before, ACTION_RESOLVE)[0])
    await slack.settle()
    (opened,) = slack.fake.views
    done = await slack.submit_view(opened["view"], {"root_cause": ROOT_CAUSE, "fix": FIX})
    assert done.status == 200 and done.text == ""
    await slack.settle()
    case = await _only_incident(slack)
    assert case.resolved_by == RESPONDER

    after = slack.fake.message(CHANNEL, answer["ts"])
    assert find_action(after, ACTION_RESOLVE) == []
    assert _resolved_line(case) in _contexts(after)
    assert f"✅ accepted by <@{RESPONDER}>" in _contexts(after)  # feedback marks are kept
    kept = [b for b in after["blocks"] if b.get("block_id") != RESOLVED_BLOCK_ID]
    assert kept == [b for b in before["blocks"] if b.get("block_id") != RESOLVE_BLOCK_ID]
    assert after["text"] == before["text"]
    # The thread was also told, once.
    notes = [m for m in slack.fake.bot_replies(CHANNEL, root["ts"]) if m["ts"] != answer["ts"]]
    assert len(notes) == 1 and case.id in notes[0]["text"]

    # Someone whose Slack still shows the old button clicks it: told, no modal, nothing overwritten.
    await slack.click(before, find_action(before, ACTION_RESOLVE)[0], user=GROUP_MEMBER)
    await slack.settle()
    reply = slack.fake.responses[-1]
    assert reply["response_type"] == "ephemeral" and reply["replace_original"] is False
    assert reply["text"] == f"This session is already resolved as incident `{case.id}` by <@{RESPONDER}>."
    assert len(slack.fake.views) == 1
    assert await _only_incident(slack) == case

    # A second modal submitted late (opened before the first resolution) is refused in the modal itself.
    late = await slack.submit_view(opened["view"], {"root_cause": "something else", "fix": "restarted it"})
    assert late.json()["response_action"] == "errors" and case.id in late.json()["errors"]["fix"]
    await slack.settle()
    assert await _only_incident(slack) == case
    session = await slack.bot.troubleshooter.get_session(session_id_for(TEAM_ID, CHANNEL, root["ts"]))
    assert session.resolved == case


async def test_a_stale_button_on_a_resolved_session_gets_its_message_fixed(slack: SlackHarness) -> None:
    root, (answer,) = await _thread_with_answers(slack, turns=1)
    session_id = session_id_for(TEAM_ID, CHANNEL, root["ts"])
    await slack.command(f"resolve {FIX}")
    await slack.settle()
    case = await _only_incident(slack)
    # Put the old button back, as if the edit had been lost.
    slack.fake.message(CHANNEL, answer["ts"])["blocks"] = copy.deepcopy(answer["blocks"])

    await slack.click(answer, find_action(answer, ACTION_RESOLVE)[0])
    await slack.settle()
    assert "already resolved" in slack.fake.responses[-1]["text"] and slack.fake.views == []
    fixed = slack.fake.message(CHANNEL, answer["ts"])
    assert find_action(fixed, ACTION_RESOLVE) == [] and _resolved_line(case) in _contexts(fixed)
    assert (await slack.bot.troubleshooter.get_session(session_id)).resolved == case


async def test_resolve_by_command_edits_every_answer_of_the_thread_and_only_once(slack: SlackHarness) -> None:
    root, answers = await _thread_with_answers(slack, turns=2)
    _, (other,) = await _thread_with_answers(slack, turns=1)
    await slack.mention(FOLLOW_UP, thread_ts=root["ts"])  # the channel's latest thread is the first again
    await slack.settle()
    answers = copy.deepcopy(slack.fake.bot_replies(CHANNEL, root["ts"]))
    assert len(answers) == 3

    await slack.command(f"resolve {FIX}")
    await slack.settle()
    case = await _only_incident(slack)
    assert case.fix == FIX and case.session_id == session_id_for(TEAM_ID, CHANNEL, root["ts"])
    assert slack.fake.responses[-1]["text"] == f"Resolved; stored as incident `{case.id}`."
    for answer in answers:
        now = slack.fake.message(CHANNEL, answer["ts"])
        assert find_action(now, ACTION_RESOLVE) == [], "every answer of the thread is marked"
        assert _resolved_line(case) in _contexts(now)
    # Another thread's answer is not touched.
    assert slack.fake.message(CHANNEL, other["ts"])["blocks"] == other["blocks"]

    # Again, with or without a fix: refused with the incident it has; nothing overwritten, no modal.
    for text in ("resolve restarted orders-api", "resolve"):
        await slack.command(text)
        await slack.settle()
        reply = slack.fake.responses[-1]
        assert reply["response_type"] == "ephemeral"
        assert reply["text"] == f"This session is already resolved as incident `{case.id}` by <@{RESPONDER}>."
    assert slack.fake.views == []
    assert await _only_incident(slack) == case
    thread_notes = [m for m in slack.fake.bot_replies(CHANNEL, root["ts"]) if "Resolved by" in m["text"]]
    assert len(thread_notes) == 1


async def test_resolving_when_the_thread_cannot_be_read_still_stores_and_logs_the_skip(
    slack: SlackHarness, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    _, (answer,) = await _thread_with_answers(slack, turns=1)

    def unreadable(args: dict[str, Any]) -> dict[str, Any]:
        return {"ok": False, "error": "missing_scope"}

    monkeypatch.setattr(slack.fake, "_m_conversations_replies", unreadable)
    with caplog.at_level(logging.INFO, logger="bot.app"):
        await slack.command(f"resolve {FIX}")
        await slack.settle()
    case = await _only_incident(slack)
    assert slack.fake.responses[-1]["text"] == f"Resolved; stored as incident `{case.id}`."
    assert any(
        r.getMessage() == "resolved answers not updated: cannot read the thread" for r in caplog.records
    )
    assert find_action(slack.fake.message(CHANNEL, answer["ts"]), ACTION_RESOLVE) != []


async def test_two_modals_submitted_together_store_one_incident(slack: SlackHarness) -> None:
    slack.fake.usergroups[ONCALL_GROUP] = [GROUP_MEMBER]
    _, (answer,) = await _thread_with_answers(slack, turns=1)
    for user in (RESPONDER, GROUP_MEMBER):
        await slack.click(answer, find_action(answer, ACTION_RESOLVE)[0], user=user)
    await slack.settle()
    first, second = (v["view"] for v in slack.fake.views)
    results = await asyncio.gather(
        slack.submit_view(first, {"root_cause": ROOT_CAUSE, "fix": FIX}, user=RESPONDER),
        slack.submit_view(second, {"root_cause": ROOT_CAUSE, "fix": "restarted it"}, user=GROUP_MEMBER),
    )
    await slack.settle()
    case = await _only_incident(slack)
    refused_in_modal = [r for r in results if r.text and r.json()["response_action"] == "errors"]
    told_later = slack.fake.calls_to("chat.postEphemeral")
    # The loser is refused either in its modal (the winner had finished) or afterwards, ephemerally.
    assert len(refused_in_modal) + len(told_later) == 1
    for call in told_later:
        assert (
            call.args["text"]
            == f"This session is already resolved as incident `{case.id}` by <@{case.resolved_by}>."
        )
        assert call.args["user"] != case.resolved_by
    assert _resolved_line(case) in _contexts(slack.fake.message(CHANNEL, answer["ts"]))
