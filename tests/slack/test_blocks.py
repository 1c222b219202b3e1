"""Block Kit rendering within Slack's limits, feedback marks, the modal, and the full-report fallback."""

from __future__ import annotations

import json
from pathlib import Path

from hypothesis import given
from hypothesis import strategies as st

from bot import blocks
from bot.app import SlackBot
from bot.files import Attachments
from core.answers import (
    Answer,
    Feedback,
    IncidentCase,
    NextStep,
    RankedCause,
    RequestKind,
    Session,
    SimilarIncident,
)
from core.models import Category, Evidence, EvidenceLine
from faultmaven.services import Services
from tests.slack.fake_slack import FakeSlack
from tests.slack.harness import CHANNEL, make_settings


def _answer(*, steps: int = 3, causes: int = 2, long: int = 0, lines: int = 3) -> Answer:
    filler = " because the pool was exhausted" * long
    return Answer(
        session_id="slack-abc",
        turn=1,
        kind=RequestKind.QUERY_AND_DATA,
        engine="deterministic",
        summary="orders-api: 431 errors since 14:10 <pool exhausted> & 503s" + filler,
        root_causes=[
            RankedCause(
                id=f"rc-{i}",
                title=f"Connection pool exhausted #{i}",
                category=Category.CONNECTION_POOL_EXHAUSTION,
                confidence=max(0.05, 0.8 - i * 0.1),
                evidence=Evidence(
                    lines=[
                        EvidenceLine(
                            source="orders-api.log", line=100 + j, text="failed to acquire `conn`" + filler
                        )
                        for j in range(lines)
                    ],
                    notes=["431 errors in 10 minutes" + filler],
                    series=["orders_db_connections_active"],
                ),
            )
            for i in range(causes)
        ],
        next_steps=[
            NextStep(
                id=f"ns-{i:03d}",
                title=f"Check pool settings {i}",
                command="kubectl get pods -n orders",
                why="the pool is full" + filler,
            )
            for i in range(steps)
        ],
        similar_incidents=[
            SimilarIncident(id="inc-1", title="orders pool exhausted", score=0.7, fix="raise pool")
        ],
    )


def _texts(block: dict) -> list[str]:
    out = []
    if isinstance(block.get("text"), dict):
        out.append(block["text"]["text"])
    for element in block.get("elements") or []:
        if isinstance(element.get("text"), str):
            out.append(element["text"])
        elif isinstance(element.get("text"), dict):
            out.append(element["text"]["text"])
    return out


def _check_limits(rendered: blocks.RenderedMessage) -> None:
    assert len(rendered.blocks) <= blocks.MAX_BLOCKS
    for block in rendered.blocks:
        for text in _texts(block):
            limit = blocks.CONTEXT_TEXT_LIMIT if block["type"] == "context" else blocks.SECTION_TEXT_LIMIT
            assert len(text) <= limit
        for element in block.get("elements") or []:
            if element.get("type") == "button":
                assert len(element["text"]["text"]) <= blocks.BUTTON_TEXT_LIMIT
                assert len(element["action_id"]) <= blocks.ID_LIMIT
                assert len(element["value"]) <= blocks.BUTTON_VALUE_LIMIT
        assert len(block.get("block_id", "")) <= blocks.ID_LIMIT
    action_ids = [
        e["action_id"] for b in rendered.blocks for e in b.get("elements") or [] if "action_id" in e
    ]
    assert len(action_ids) == len(set(action_ids)), "action ids must be unique within a message"


def test_a_normal_answer_renders_whole() -> None:
    rendered = blocks.render_answer(_answer(), analyzed=["orders-api.log"])
    _check_limits(rendered)
    assert not rendered.truncated
    text = json.dumps(rendered.blocks)
    assert "&lt;pool exhausted&gt; &amp; 503s" in text  # mrkdwn control characters escaped
    assert "Connection pool exhausted #0" in text and "80% confidence" in text
    assert "orders-api.log:100" in text
    accept = [
        e
        for b in rendered.blocks
        for e in b.get("elements") or []
        if e.get("action_id", "").startswith("fm_accept:")
    ]
    assert [e["action_id"] for e in accept] == ["fm_accept:ns-000", "fm_accept:ns-001", "fm_accept:ns-002"]
    value = blocks.ButtonValue.decode(accept[1]["value"])
    assert value == blocks.ButtonValue(s="slack-abc", i="ns-001", k="next_step")
    assert any(b.get("block_id") == "fm_resolve" for b in rendered.blocks)


def test_a_huge_answer_is_cut_to_slack_limits_and_flagged() -> None:
    rendered = blocks.render_answer(_answer(steps=40, causes=8, long=200))
    _check_limits(rendered)
    assert rendered.truncated
    assert "full report is attached" in json.dumps(rendered.blocks[-1])
    report = blocks.render_full_report(_answer(steps=40, causes=8, long=200))
    assert "Check pool settings 39" in report and "Connection pool exhausted #7" in report


@given(
    steps=st.integers(min_value=0, max_value=60),
    causes=st.integers(min_value=0, max_value=10),
    long=st.integers(min_value=0, max_value=120),
)
def test_any_answer_fits_slack(steps: int, causes: int, long: int) -> None:
    _check_limits(blocks.render_answer(_answer(steps=steps, causes=causes, long=long)))


def test_verdicts_and_resolution_show_on_rerender() -> None:
    answer = _answer()
    session = Session(
        id="slack-abc",
        feedback=[
            Feedback(
                session_id="slack-abc",
                item_id="ns-001",
                item_kind="next_step",
                verdict="accept",
                user_id="U1",
            ),
            Feedback(
                session_id="slack-abc",
                item_id="ns-001",
                item_kind="next_step",
                verdict="reject",
                user_id="U2",
            ),
        ],
    )
    rendered = blocks.render_answer(answer, session=session)
    marks = [b for b in rendered.blocks if b.get("block_id") == "fb:ns-001"]
    assert len(marks) == 1 and marks[0]["elements"][0]["text"] == "❌ rejected by <@U2>"


def test_mark_feedback_adds_then_replaces_the_mark() -> None:
    original = blocks.render_answer(_answer()).blocks
    once = blocks.mark_feedback(original, item_id="ns-002", verdict="accept", user_id="U123")
    index = next(i for i, b in enumerate(once) if b.get("block_id") == "fb:ns-002")
    assert once[index - 1]["block_id"] == "act:ns-002"
    assert once[index]["elements"][0]["text"] == "✅ accepted by <@U123>"
    twice = blocks.mark_feedback(once, item_id="ns-002", verdict="reject", user_id="U456")
    assert len(twice) == len(once)
    assert (
        next(b for b in twice if b.get("block_id") == "fb:ns-002")["elements"][0]["text"]
        == "❌ rejected by <@U456>"
    )
    assert len(original) == len(once) - 1  # the input is not modified


@given(st.text(max_size=300))
def test_button_values_decode_or_are_refused(raw: str) -> None:
    value = blocks.ButtonValue.decode(raw)
    assert value is None or (value.encode() and blocks.ButtonValue.decode(value.encode()) == value)


def test_modal_values_and_metadata() -> None:
    view = blocks.resolve_modal(
        "slack-abc", channel=CHANNEL, message_ts="1.2", thread_ts="1.1", root_cause_hint="pool exhausted"
    )
    assert view["callback_id"] == blocks.RESOLVE_CALLBACK
    assert json.loads(view["private_metadata"]) == {
        "session_id": "slack-abc",
        "channel": CHANNEL,
        "thread_ts": "1.1",
        "message_ts": "1.2",
    }
    assert blocks.ResolveMetadata.decode(view["private_metadata"]) == blocks.ResolveMetadata(
        session_id="slack-abc", channel=CHANNEL, thread_ts="1.1", message_ts="1.2"
    )
    # A view from before the thread was carried, and metadata that is not ours.
    old = blocks.ResolveMetadata.decode('{"session_id": "s", "channel": "C1", "message_ts": null}')
    assert (old.session_id, old.channel, old.thread_ts, old.message_ts) == ("s", "C1", None, None)
    assert blocks.ResolveMetadata.decode("not json").session_id == ""
    assert blocks.ResolveMetadata.decode('{"channel": 5}').session_id == ""
    state = {
        "values": {
            "root_cause": {"value": {"value": "  pool  "}},
            "fix": {"value": {"value": "raise"}},
            "title": {"value": {"value": None}},
        }
    }
    assert blocks.modal_values({"state": state}) == {"root_cause": "pool", "fix": "raise"}


async def test_truncated_answers_get_the_full_report_as_a_file(fake_slack: FakeSlack, tmp_path: Path) -> None:
    settings = make_settings(tmp_path / "data", fake_slack)
    bot = SlackBot(settings, Services(settings))
    try:
        message = await bot.client.chat_postMessage(channel=CHANNEL, thread_ts="1.1", text="…")
        big = _answer(steps=40, causes=8, long=150)
        await bot._publish(
            bot.client,
            big,
            session=None,
            attachments=Attachments(),
            channel=CHANNEL,
            thread_ts="1.1",
            message_ts=str(message["ts"]),
        )
        updated = fake_slack.message(CHANNEL, str(message["ts"]))
        assert 0 < len(updated["blocks"]) <= 50
        uploads = list(fake_slack.uploads.values())
        assert len(uploads) == 1 and uploads[0].completed
        assert uploads[0].filename.endswith(".md") and uploads[0].thread_ts == "1.1"
        assert b"Check pool settings 39" in uploads[0].content
    finally:
        await bot.close()


def test_mark_resolved_swaps_the_button_in_place_and_keeps_the_rest() -> None:
    rendered = blocks.render_answer(_answer())
    marked = blocks.mark_feedback(rendered.blocks, item_id="ns-001", verdict="accept", user_id="U0RESP0001")
    case = IncidentCase(
        id="inc-7f3a",
        title="orders pool",
        root_cause="pool too small",
        fix="raise it",
        resolved_by="U0RESP0001",
    )
    resolved = blocks.mark_resolved(marked, case, session_id="slack-abc")
    assert resolved is not None and len(resolved) == len(marked)
    changed = [i for i, (a, b) in enumerate(zip(marked, resolved, strict=True)) if a != b]
    assert len(changed) == 1 and marked[changed[0]]["block_id"] == blocks.RESOLVE_BLOCK_ID
    line = resolved[changed[0]]
    assert line == {
        "type": "context",
        "block_id": blocks.RESOLVED_BLOCK_ID,
        "elements": [{"type": "mrkdwn", "text": "✅ Resolved by <@U0RESP0001> — incident `inc-7f3a`"}],
    }
    assert "✅ accepted by <@U0RESP0001>" in json.dumps(resolved, ensure_ascii=False)
    assert not blocks.has_resolve_button(resolved, "slack-abc")
    # Nothing to do on a message already marked, or on another session's answer.
    assert blocks.mark_resolved(resolved, case, session_id="slack-abc") is None
    assert blocks.mark_resolved(marked, case, session_id="slack-other") is None
    anonymous = case.model_copy(update={"resolved_by": None})
    assert (
        blocks.already_resolved_text(anonymous) == "This session is already resolved as incident `inc-7f3a`."
    )
    assert blocks.already_resolved_text(case).endswith("`inc-7f3a` by <@U0RESP0001>.")
