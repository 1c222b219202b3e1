"""Accept/reject buttons, the session learning they feed, roles, and the "Mark resolved" modal."""

from __future__ import annotations

from bot.app import NOT_ALLOWED, session_id_for
from bot.blocks import ACTION_ACCEPT, ACTION_REJECT, ACTION_RESOLVE, RESOLVE_CALLBACK, ButtonValue
from tests.slack.datasets import orders_api_log
from tests.slack.fake_slack import TEAM_ID
from tests.slack.harness import (
    CHANNEL,
    GROUP_MEMBER,
    ONCALL_GROUP,
    RESPONDER,
    VIEWER,
    SlackHarness,
    find_action,
)

QUESTION = "orders-api returns 503 and logs 'failed to acquire connection from pool', what should we do?"


def _contexts(message: dict) -> list[str]:
    return [
        e["text"] for b in message.get("blocks") or [] if b.get("type") == "context" for e in b["elements"]
    ]


async def _answered(slack: SlackHarness, *, text: str = QUESTION) -> tuple[dict, dict]:
    log_file = slack.fake.add_file("orders-api.log", orders_api_log().encode())
    event, _ = await slack.mention(text, files=[log_file])
    await slack.settle()
    replies = slack.fake.bot_replies(CHANNEL, event["ts"])
    assert len(replies) == 1
    return event, replies[0]


async def test_reject_marks_the_message_and_the_next_answer_drops_the_step(slack: SlackHarness) -> None:
    event, answer = await _answered(slack)
    rejects = find_action(answer, ACTION_REJECT)
    assert len(rejects) >= 2, "the engine should offer several next steps for this incident"
    rejected = ButtonValue.decode(rejects[0]["value"])
    assert rejected is not None

    response = await slack.click(answer, rejects[0])
    assert response.status == 200
    await slack.settle()

    # The message now says who rejected what.
    updated = slack.fake.message(CHANNEL, answer["ts"])
    assert f"❌ rejected by <@{RESPONDER}>" in _contexts(updated)
    # Recorded in the session and durably in the history store.
    session_id = session_id_for(TEAM_ID, CHANNEL, event["ts"])
    session = await slack.bot.troubleshooter.get_session(session_id)
    assert session.verdicts() == {rejected.i: "reject"}
    durable = await slack.bot.services.stores.history.list_feedback(session_id)
    assert [(f.item_id, f.verdict, f.user_id) for f in durable] == [(rejected.i, "reject", RESPONDER)]

    await slack.mention("tried that, did not help. what next?", thread_ts=event["ts"])
    await slack.settle()
    second = slack.fake.bot_replies(CHANNEL, event["ts"])[-1]
    assert second["ts"] != answer["ts"]
    offered = {ButtonValue.decode(b["value"]).i for b in find_action(second, ACTION_ACCEPT)}  # type: ignore[union-attr]
    assert "FaultMaven" in second["blocks"][0]["text"]["text"]
    assert rejected.i not in offered
    session = await slack.bot.troubleshooter.get_session(session_id)
    assert rejected.i not in {s.id for s in session.last_answer.next_steps}  # type: ignore[union-attr]


async def test_accept_by_a_user_group_member_is_recorded(slack: SlackHarness) -> None:
    slack.fake.usergroups[ONCALL_GROUP] = [GROUP_MEMBER, "U0OTHER001"]
    _, answer = await _answered(slack)
    accept = find_action(answer, ACTION_ACCEPT)[0]
    await slack.click(answer, accept, user=GROUP_MEMBER)
    await slack.settle()
    assert f"✅ accepted by <@{GROUP_MEMBER}>" in _contexts(slack.fake.message(CHANNEL, answer["ts"]))
    # Membership is cached: a second click does not ask Slack again.
    await slack.click(
        slack.fake.message(CHANNEL, answer["ts"]), find_action(answer, ACTION_REJECT)[0], user=GROUP_MEMBER
    )
    await slack.settle()
    assert len(slack.fake.calls_to("usergroups.users.list")) == 1
    marks = _contexts(slack.fake.message(CHANNEL, answer["ts"]))
    assert f"❌ rejected by <@{GROUP_MEMBER}>" in marks


async def test_viewers_can_ask_but_not_give_feedback_or_resolve(slack: SlackHarness) -> None:
    _, answer = await _answered(slack)
    await slack.click(answer, find_action(answer, ACTION_ACCEPT)[0], user=VIEWER)
    await slack.click(answer, find_action(answer, ACTION_RESOLVE)[0], user=VIEWER)
    await slack.settle()
    assert [r["text"] for r in slack.fake.responses] == [NOT_ALLOWED, NOT_ALLOWED]
    assert all(r["response_type"] == "ephemeral" for r in slack.fake.responses)
    assert slack.fake.views == []
    assert _contexts(slack.fake.message(CHANNEL, answer["ts"])) == _contexts(answer)


async def test_guests_are_never_more_than_viewers(fake_slack, tmp_path) -> None:
    from tests.slack.harness import start_harness

    guest = "U0GUEST001"
    fake_slack.users[guest] = {"is_restricted": True}
    harness, runner = await start_harness(
        fake_slack, tmp_path / "data", slack_role_map={guest: "admin", RESPONDER: "responder"}
    )
    try:
        _, answer = await _answered(harness)
        await harness.click(answer, find_action(answer, ACTION_ACCEPT)[0], user=guest)
        await harness.settle()
        assert [r["text"] for r in fake_slack.responses] == [NOT_ALLOWED]
    finally:
        await harness.http.close()
        await runner.cleanup()


async def test_mark_resolved_stores_an_incident_that_a_new_session_finds(slack: SlackHarness) -> None:
    event, answer = await _answered(slack)
    session_id = session_id_for(TEAM_ID, CHANNEL, event["ts"])
    await slack.click(answer, find_action(answer, ACTION_RESOLVE)[0])
    await slack.settle()
    assert len(slack.fake.views) == 1
    view = slack.fake.views[0]["view"]
    assert view["callback_id"] == RESOLVE_CALLBACK
    assert slack.fake.views[0]["trigger_id"].startswith("trig.")

    # Submitting without a fix is refused in the modal itself.
    refused = await slack.submit_view(view, {"root_cause": "pool too small", "fix": ""})
    assert refused.status == 200
    assert refused.json()["response_action"] == "errors" and "fix" in refused.json()["errors"]

    fix = "Raised orders-db max_connections to 200 and capped the migration job's pool at 5"
    root_cause = "A schema migration held connections, exhausting the orders-api pool (max_open=50)"
    done = await slack.submit_view(
        view, {"title": "orders-api 503s: DB pool exhausted", "root_cause": root_cause, "fix": fix}
    )
    assert done.status == 200
    await slack.settle()

    incidents = await slack.bot.services.stores.history.list_incidents()
    assert len(incidents) == 1
    case = incidents[0]
    assert (case.session_id, case.fix, case.root_cause, case.resolved_by) == (
        session_id,
        fix,
        root_cause,
        RESPONDER,
    )
    thread = slack.fake.bot_replies(CHANNEL, event["ts"])
    assert any(case.id in m["text"] and "Resolved" in m["text"] for m in thread)
    session = await slack.bot.troubleshooter.get_session(session_id)
    assert session.resolved is not None and session.resolved.id == case.id

    # A new incident, in a new thread: the answer points at the resolved one.
    event2, _ = await slack.mention(
        "orders-api 503s again: failed to acquire connection from pool, pool exhausted"
    )
    await slack.settle()
    second = slack.fake.bot_replies(CHANNEL, event2["ts"])[0]
    new_session = await slack.bot.troubleshooter.get_session(session_id_for(TEAM_ID, CHANNEL, event2["ts"]))
    assert case.id in [s.id for s in new_session.last_answer.similar_incidents]  # type: ignore[union-attr]
    rendered = "\n".join(
        b.get("text", {}).get("text", "") for b in second["blocks"] if isinstance(b.get("text"), dict)
    )
    assert "Similar past incidents" in rendered and case.id in rendered


async def test_feedback_on_a_forgotten_session_says_so(slack: SlackHarness) -> None:
    event, answer = await _answered(slack)
    await slack.bot.troubleshooter.forget(session_id_for(TEAM_ID, CHANNEL, event["ts"]))
    await slack.click(answer, find_action(answer, ACTION_ACCEPT)[0])
    await slack.settle()
    assert len(slack.fake.responses) == 1
    assert "session" in slack.fake.responses[0]["text"].lower()
