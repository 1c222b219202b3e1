"""Mentions and DMs, answered in threads by the real troubleshooter; attachments; retries; signatures."""

from __future__ import annotations

import asyncio
import json
import logging
import time

from bot.app import INTERIM_TEXT, session_id_for
from bot.blocks import ACTION_ACCEPT, ACTION_REJECT, ACTION_RESOLVE, ButtonValue
from tests.slack.datasets import orders_api_log, orders_api_metrics_csv
from tests.slack.fake_slack import BOT_USER_ID, TEAM_ID, gzipped
from tests.slack.harness import CHANNEL, RESPONDER, SlackHarness, find_action

QUESTION = "orders-api is returning 503s and checkout is failing, db connections look maxed out"


def _block_text(message: dict) -> str:
    parts = [message.get("text", "")]
    for block in message.get("blocks") or []:
        text = block.get("text")
        if isinstance(text, dict):
            parts.append(text.get("text", ""))
        for element in block.get("elements") or []:
            if isinstance(element.get("text"), str):
                parts.append(element["text"])
    return "\n".join(parts)


async def test_mention_is_answered_in_its_thread(slack: SlackHarness) -> None:
    started = time.monotonic()
    event, response = await slack.mention(QUESTION)
    ack_seconds = time.monotonic() - started
    assert response.status == 200
    assert ack_seconds < 3.0
    await slack.settle()

    replies = slack.fake.bot_replies(CHANNEL, event["ts"])
    assert len(replies) == 1, replies
    answer = replies[0]
    assert answer["thread_ts"] == event["ts"]
    # First posted as the interim message, then replaced with the answer.
    first_post = slack.fake.calls_to("chat.postMessage")[0]
    assert first_post.args["text"] == INTERIM_TEXT
    assert first_post.args["thread_ts"] == event["ts"]
    update = [c for c in slack.fake.calls_to("chat.update") if c.args["ts"] == answer["ts"]]
    assert update, "the interim message was never updated"
    assert answer["text"] != INTERIM_TEXT and answer["blocks"]
    assert len(answer["blocks"]) <= 50
    assert "FaultMaven" in answer["blocks"][0]["text"]["text"]

    session_id = session_id_for(TEAM_ID, CHANNEL, event["ts"])
    session = await slack.bot.troubleshooter.get_session(session_id)
    assert len(session.turns) == 1
    assert session.turns[0].user_id == RESPONDER
    assert "503" in session.turns[0].question
    assert f"<@{BOT_USER_ID}>" not in session.turns[0].question

    steps = session.last_answer.next_steps if session.last_answer else []
    if steps:
        accept = find_action(answer, ACTION_ACCEPT)
        reject = find_action(answer, ACTION_REJECT)
        assert {a["action_id"] for a in accept} == {f"{ACTION_ACCEPT}:{s.id}" for s in steps[: len(accept)]}
        assert len(reject) == len(accept) > 0
        value = ButtonValue.decode(accept[0]["value"])
        assert value is not None and value.s == session_id and value.k == "next_step"
    resolve = find_action(answer, ACTION_RESOLVE)
    assert resolve and resolve[0]["value"] == session_id


async def test_a_later_mention_in_the_thread_continues_the_session(slack: SlackHarness) -> None:
    event, _ = await slack.mention(QUESTION)
    await slack.settle()
    await slack.mention("we restarted the pods, still 503s. what next?", thread_ts=event["ts"])
    await slack.settle()
    session = await slack.bot.troubleshooter.get_session(session_id_for(TEAM_ID, CHANNEL, event["ts"]))
    assert [t.number for t in session.turns] == [1, 2]
    assert len(slack.fake.bot_replies(CHANNEL, event["ts"])) == 2


async def test_direct_message_is_answered(slack: SlackHarness) -> None:
    dm = "D0DIRECT01"
    message = slack.fake.add_message(dm, user=RESPONDER, text="payments latency is high after the deploy")
    event = {**message, "type": "message", "channel_type": "im", "channel": dm}
    response = await slack.post(slack.event_body(event), content_type="application/json")
    assert response.status == 200
    await slack.settle()
    replies = slack.fake.bot_replies(dm, message["ts"])
    assert len(replies) == 1 and replies[0]["blocks"]
    # The bot's own DM reply, echoed back as a message.im event, is not answered.
    echo = {**replies[0], "type": "message", "channel_type": "im", "channel": dm}
    await slack.post(slack.event_body(echo), content_type="application/json")
    await slack.settle()
    assert len(slack.fake.bot_replies(dm, message["ts"])) == 1


async def test_log_and_metric_attachments_are_analyzed(slack: SlackHarness) -> None:
    log_file = slack.fake.add_file(
        "orders-api.log.gz", gzipped(orders_api_log()), mimetype="application/gzip", filetype="gzip"
    )
    event, _ = await slack.mention("what is wrong with orders-api?", files=[log_file])
    # Metrics shared later in the thread are picked up from conversations.replies.
    metrics = slack.fake.add_file(
        "orders-metrics.csv", orders_api_metrics_csv().encode(), mimetype="text/csv", filetype="csv"
    )
    await slack.settle()
    await slack.mention("here are the metrics too", thread_ts=event["ts"], files=[metrics])
    await slack.settle()

    # Downloads carry the bot token.
    assert slack.fake.download_auth and all(
        a == f"Bearer {slack.fake.bot_token}" for a in slack.fake.download_auth
    )
    session = await slack.bot.troubleshooter.get_session(session_id_for(TEAM_ID, CHANNEL, event["ts"]))
    assert [t.kind.value for t in session.turns] == ["query_and_data", "query_and_data"]
    last = session.last_answer
    assert last is not None and last.analysis is not None
    assert last.analysis.records > 500
    text = "\n".join(_block_text(m) for m in slack.fake.bot_replies(CHANNEL, event["ts"]))
    assert "orders-api.log" in text and "orders-metrics.csv" in text
    # Both files count in the second turn: the log from the first message, the metrics from the second.
    assert any(a.source == "metrics" for a in last.analysis.anomalies)
    # The metric anomaly drives the answer: a PNG chart of its series is uploaded into the thread.
    charts = [u for u in slack.fake.uploads.values() if u.filename.endswith(".png")]
    assert len(charts) == 1
    chart = charts[0]
    assert chart.completed and chart.channel == CHANNEL and chart.thread_ts == event["ts"]
    assert chart.content.startswith(b"\x89PNG\r\n\x1a\n") and len(chart.content) > 5000
    assert "orders_" in (chart.title or "")


async def test_unsupported_files_get_a_clear_reply(slack: SlackHarness) -> None:
    png = slack.fake.add_file(
        "grafana.png", b"\x89PNG\r\n\x1a\n" + bytes(200), mimetype="image/png", filetype="png"
    )
    blob = slack.fake.add_file("core.dump", bytes(range(256)) * 8, mimetype="text/plain", filetype="text")
    event, _ = await slack.mention("", files=[png, blob])
    await slack.settle()
    replies = slack.fake.bot_replies(CHANNEL, event["ts"])
    assert len(replies) == 1
    text = replies[0]["text"]
    assert "grafana.png" in text and "not logs or metrics" in text
    assert "core.dump" in text and "binary" in text
    assert not slack.fake.download_auth or len(slack.fake.download_auth) == 1  # the PNG is never downloaded


async def test_oversized_file_is_refused_without_reading_it_all(fake_slack, tmp_path) -> None:
    from tests.slack.harness import start_harness

    harness, runner = await start_harness(fake_slack, tmp_path / "data", slack_max_file_bytes=4096)
    try:
        big = fake_slack.add_file("huge.log", orders_api_log().encode())
        event, _ = await harness.mention("why are orders failing?", files=[big])
        await harness.settle()
        reply = fake_slack.bot_replies(CHANNEL, event["ts"])[0]
        assert "huge.log" in _block_text(reply) and "too large" in _block_text(reply)
        session = await harness.bot.troubleshooter.get_session(session_id_for(TEAM_ID, CHANNEL, event["ts"]))
        assert session.turns[0].kind.value == "query_only"
    finally:
        await harness.http.close()
        await runner.cleanup()


async def test_retried_event_is_answered_once(slack: SlackHarness) -> None:
    event, first = await slack.mention(QUESTION, event_id="Ev0RETRY01")
    again = await slack.post(
        slack.event_body(event, event_id="Ev0RETRY01"),
        content_type="application/json",
        headers={"X-Slack-Retry-Num": "1", "X-Slack-Retry-Reason": "http_timeout"},
    )
    assert first.status == 200 and again.status == 200
    await slack.settle()
    assert len(slack.fake.bot_replies(CHANNEL, event["ts"])) == 1
    session = await slack.bot.troubleshooter.get_session(session_id_for(TEAM_ID, CHANNEL, event["ts"]))
    assert len(session.turns) == 1


async def test_forged_and_stale_requests_are_refused(slack: SlackHarness, caplog) -> None:
    # Bolt copies the root level when the app is built; production logging is at INFO.
    caplog.set_level(logging.INFO)
    caplog.set_level(logging.INFO, logger="slack_bolt.RequestVerification")
    message = slack.fake.add_message(
        CHANNEL, user=RESPONDER, text=f"<@{BOT_USER_ID}> prod db password is hunter2"
    )
    body = slack.event_body({**message, "type": "app_mention", "channel": CHANNEL})
    forged = await slack.post(
        body,
        content_type="application/json",
        signed=False,
        headers={"X-Slack-Request-Timestamp": str(int(time.time())), "X-Slack-Signature": "v0=" + "0" * 64},
    )
    assert forged.status == 401
    from tests.slack.harness import sign

    stale = await slack.post(
        body,
        content_type="application/json",
        signed=False,
        headers=sign(body, timestamp=int(time.time()) - 60 * 10),
    )
    assert stale.status == 401
    wrong_secret = await slack.post(
        body, content_type="application/json", signed=False, headers=sign(body, secret="not-the-secret")
    )
    assert wrong_secret.status == 401
    unsigned = await slack.post(body, content_type="application/json", signed=False)
    assert unsigned.status == 401
    await slack.settle()
    assert slack.fake.calls_to("chat.postMessage") == []
    assert "Invalid request signature" in caplog.text
    assert "hunter2" not in caplog.text  # refused bodies are not logged


async def test_rate_limited_web_api_is_retried_after_retry_after(slack: SlackHarness) -> None:
    slack.fake.rate_limit_once["chat.postMessage"] = 1
    event, _ = await slack.mention(QUESTION)
    await slack.settle()
    posts = slack.fake.calls_to("chat.postMessage")
    assert len(posts) == 2, "the 429 should have been retried once"
    limited_at = slack.fake.rate_limited[0][1]
    assert posts[1].at - limited_at >= 0.9, "Retry-After: 1 was not honoured"
    assert len(slack.fake.bot_replies(CHANNEL, event["ts"])) == 1


async def test_engine_failure_replies_with_an_error_id_not_the_exception(
    slack: SlackHarness, monkeypatch, caplog
) -> None:
    secret_detail = "pg password=hunter2 at 10.0.0.5"

    async def broken_ask(question):  # the real troubleshooter, made to fail as an outage would
        raise RuntimeError(secret_detail)

    monkeypatch.setattr(slack.bot.services.troubleshooter, "ask", broken_ask)
    event, _ = await slack.mention(QUESTION)
    await slack.settle()
    reply = slack.fake.bot_replies(CHANNEL, event["ts"])[0]
    assert "error id" in reply["text"]
    assert secret_detail not in json.dumps(reply)
    error_id = reply["text"].split("`")[1]
    logged = [r for r in caplog.records if getattr(r, "error_id", None) == error_id]
    assert logged and logged[0].exc_info is not None


async def test_listener_failure_goes_through_the_global_error_handler(
    slack: SlackHarness, monkeypatch, caplog
) -> None:
    async def store_down(key: str) -> bool:
        raise ConnectionError("redis://:s3cret@10.0.0.9:6379 unreachable")

    monkeypatch.setattr(slack.bot, "_claim", store_down)
    event, response = await slack.mention(QUESTION)
    assert response.status in (200, 500)
    await slack.settle()
    replies = slack.fake.bot_replies(CHANNEL, event["ts"])
    assert len(replies) == 1
    assert "error id" in replies[0]["text"] and "s3cret" not in replies[0]["text"]
    error_id = replies[0]["text"].split("`")[1]
    assert any(getattr(r, "error_id", None) == error_id and r.exc_info for r in caplog.records)


async def test_first_turn_reads_what_people_said_earlier_in_the_thread(slack: SlackHarness) -> None:
    root = slack.fake.add_message(
        CHANNEL, user="U0ONCALL01", text="checkout started failing right after deploy 4.2.1"
    )
    slack.fake.add_message(
        CHANNEL, user="U0ONCALL02", text="seeing 'too many clients' from orders-db", thread_ts=root["ts"]
    )
    await slack.mention("what is going on?", thread_ts=root["ts"])
    await slack.settle()
    session = await slack.bot.troubleshooter.get_session(session_id_for(TEAM_ID, CHANNEL, root["ts"]))
    question = session.turns[0].question
    assert question.startswith("what is going on?")
    assert "deploy 4.2.1" in question and "too many clients" in question
    # Later turns rely on the session, not on the thread again.
    await slack.mention("and now?", thread_ts=root["ts"])
    await slack.settle()
    session = await slack.bot.troubleshooter.get_session(session_id_for(TEAM_ID, CHANNEL, root["ts"]))
    assert session.turns[1].question == "and now?"


async def test_two_quick_mentions_in_one_thread_both_count(slack: SlackHarness) -> None:
    event, _ = await slack.mention(QUESTION)
    await slack.settle()
    await asyncio.gather(
        slack.mention("is it the migration job?", thread_ts=event["ts"]),
        slack.mention("or the new pool settings?", thread_ts=event["ts"]),
    )
    await slack.settle()
    session = await slack.bot.troubleshooter.get_session(session_id_for(TEAM_ID, CHANNEL, event["ts"]))
    assert [t.number for t in session.turns] == [1, 2, 3]
    assert len(slack.fake.bot_replies(CHANNEL, event["ts"])) == 3


async def test_slack_questions_and_verdicts_are_audited(slack: SlackHarness) -> None:
    event, _ = await slack.mention(QUESTION)
    await slack.settle()
    session_id = session_id_for(TEAM_ID, CHANNEL, event["ts"])
    session = await slack.bot.troubleshooter.get_session(session_id)
    assert session.last_answer is not None and session.last_answer.next_steps
    history = slack.bot.services.stores.history
    queries = await history.list_audit(action="query")
    assert [e.actor for e in queries if e.session_id == session_id] == [f"slack:{RESPONDER}"]
    assert queries[0].detail["edge"] == "slack"
    # nothing the user pasted ends up in the audit log
    assert all("503" not in value for e in queries for value in e.detail.values())
