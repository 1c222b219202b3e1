"""Block Kit rendering of answers, feedback marks, the resolve modal, status and errors.

Slack's limits are respected by construction: 3,000 characters per section text, 2,000 per context
element, 150 per header, 75 per button label, 2,000 per button value, 255 per action/block id, and 50
blocks per message. Whatever had to be clipped or dropped is flagged (``RenderedMessage.truncated``) so the
caller attaches the full report as a file."""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from bot.files import SkippedFile
from core.answers import Answer, IncidentCase, NextStep, RankedCause, Session
from core.models import Category

log = logging.getLogger(__name__)

Block = dict[str, Any]
Verdict = Literal["accept", "reject"]

SECTION_TEXT_LIMIT = 3000
CONTEXT_TEXT_LIMIT = 2000
HEADER_LIMIT = 150
BUTTON_TEXT_LIMIT = 75
BUTTON_VALUE_LIMIT = 2000
ID_LIMIT = 255
MAX_BLOCKS = 50
FALLBACK_TEXT_LIMIT = 3000
MAX_CAUSES = 5
MAX_EVIDENCE_LINES = 3
MAX_SIMILAR = 3

ACTION_ACCEPT = "fm_accept"
ACTION_REJECT = "fm_reject"
ACTION_RESOLVE = "fm_resolve"
RESOLVE_BLOCK_ID = "fm_resolve"
RESOLVED_BLOCK_ID = "fm_resolved"
RESOLVE_CALLBACK = "fm_resolve_modal"
SESSION_METADATA_TYPE = "faultmaven_session"

_VERDICT_MARK: dict[Verdict, str] = {"accept": "✅ accepted by", "reject": "❌ rejected by"}


class ButtonValue(BaseModel):
    """What a feedback button carries: session id, item id and item kind (compact JSON)."""

    model_config = ConfigDict(extra="forbid")

    s: str = Field(min_length=1, max_length=200)
    i: str = Field(min_length=1, max_length=500)
    k: Literal["next_step", "root_cause"]

    def encode(self) -> str:
        return self.model_dump_json()

    @classmethod
    def decode(cls, raw: str) -> ButtonValue | None:
        try:
            return cls.model_validate_json(raw)
        except ValidationError:
            return None


class RenderedMessage(BaseModel):
    model_config = ConfigDict(extra="forbid")

    text: str
    blocks: list[Block]
    truncated: bool = False


class _Clipper:
    """Clips text to a limit and remembers that it had to."""

    def __init__(self) -> None:
        self.clipped = False

    def __call__(self, text: str, limit: int) -> str:
        if len(text) <= limit:
            return text
        self.clipped = True
        return text[: max(0, limit - 1)].rstrip() + "…"


def escape(text: str) -> str:
    """Slack mrkdwn control characters: &, < and > must be HTML-escaped."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _code(text: str) -> str:
    return escape(text.replace("`", "ˋ"))


def _section(text: str, *, block_id: str | None = None) -> Block:
    block: Block = {"type": "section", "text": {"type": "mrkdwn", "text": text}}
    if block_id:
        block["block_id"] = block_id[:ID_LIMIT]
    return block


def _context(text: str, *, block_id: str | None = None) -> Block:
    block: Block = {"type": "context", "elements": [{"type": "mrkdwn", "text": text}]}
    if block_id:
        block["block_id"] = block_id[:ID_LIMIT]
    return block


def _button(text: str, *, action_id: str, value: str, style: str | None = None) -> Block:
    button: Block = {
        "type": "button",
        "text": {"type": "plain_text", "text": text[:BUTTON_TEXT_LIMIT], "emoji": True},
        "action_id": action_id,
        "value": value,
    }
    if style:
        button["style"] = style
    return button


def feedback_action_id(action: str, item_id: str) -> str | None:
    """``fm_accept:<item id>``; None if the item id cannot fit Slack's 255-character limit."""
    action_id = f"{action}:{item_id}"
    return action_id if len(action_id) <= ID_LIMIT else None


def verdicts_of(session: Session | None) -> dict[str, tuple[Verdict, str]]:
    """Latest verdict on each item and who gave it."""
    out: dict[str, tuple[Verdict, str]] = {}
    if session is None:
        return out
    for item in session.feedback:
        out[item.item_id] = (item.verdict, item.user_id)
    return out


def feedback_text(verdict: Verdict, user_id: str) -> str:
    return f"{_VERDICT_MARK[verdict]} <@{escape(user_id)}>"


def _cause_text(index: int, cause: RankedCause, clip: _Clipper) -> str:
    parts = [f"*{index}. {escape(cause.title)}* — {cause.confidence:.0%} confidence"]
    meta = [f"`{cause.category.value}`"]
    if cause.suspect:
        meta.append(f"suspect: *{escape(cause.suspect)}*")
    parts.append(" · ".join(meta))
    for note in cause.evidence.notes[:2]:
        parts.append(f"• {escape(clip(note, 300))}")
    lines = cause.evidence.lines[:MAX_EVIDENCE_LINES]
    if len(cause.evidence.lines) > MAX_EVIDENCE_LINES:
        clip.clipped = True
    if lines:
        quoted = "\n".join(_code(clip(f"{line.source}:{line.line}: {line.text}", 400)) for line in lines)
        parts.append(f"```{quoted}```")
    series = list(dict.fromkeys(cause.evidence.series))
    if series:
        parts.append("series: " + ", ".join(f"`{_code(s[:120])}`" for s in series[:3]))
    return clip("\n".join(parts), SECTION_TEXT_LIMIT)


def _step_text(index: int, step: NextStep, clip: _Clipper) -> str:
    parts = [f"*{index}. {escape(step.title)}*"]
    if step.command:
        parts.append(f"`{_code(clip(step.command, 500))}`")
    if step.why:
        parts.append(f"_{escape(clip(step.why, 600))}_")
    return clip("\n".join(parts), SECTION_TEXT_LIMIT)


def render_answer(
    answer: Answer,
    *,
    session: Session | None = None,
    skipped: Sequence[SkippedFile] = (),
    analyzed: Sequence[str] = (),
) -> RenderedMessage:
    """The answer as a threaded Slack message."""
    clip = _Clipper()
    verdicts = verdicts_of(session)
    head: list[Block] = [_section(clip(f"*FaultMaven* — {escape(answer.summary)}", SECTION_TEXT_LIMIT))]
    meta = [f"turn {answer.turn}", answer.kind.value.replace("_", " "), f"engine: {answer.engine}"]
    if analyzed:
        meta.append("analyzed: " + ", ".join(escape(name) for name in analyzed[:8]))
    if answer.engine_note:
        meta.append(escape(answer.engine_note))
    head.append(_context(clip(" · ".join(meta), CONTEXT_TEXT_LIMIT)))
    if skipped:
        notes = "; ".join(f"*{escape(s.name)}*: {escape(s.reason)}" for s in skipped[:10])
        head.append(_context(clip(f":warning: Not analyzed — {notes}", CONTEXT_TEXT_LIMIT)))

    tail: list[Block] = []
    if answer.similar_incidents:
        lines = []
        for hit in answer.similar_incidents[:MAX_SIMILAR]:
            fix = f" — fix: {escape(clip(hit.fix, 300))}" if hit.fix else ""
            lines.append(f"• *{escape(hit.title)}* (`{hit.id}`, {hit.score:.0%} similar){fix}")
        if len(answer.similar_incidents) > MAX_SIMILAR:
            clip.clipped = True
        tail += [{"type": "divider"}, _section(clip("*Similar past incidents*\n" + "\n".join(lines), 3000))]
    if answer.insights:
        text = " · ".join(escape(clip(i, 300)) for i in answer.insights[:4])
        tail.append(_context(clip(text, CONTEXT_TEXT_LIMIT)))
    if session is not None and session.resolved is not None:
        case = session.resolved
        who = f" by <@{escape(case.resolved_by)}>" if case.resolved_by else ""
        tail.append(
            _section(clip(f"*Resolved*{who}: {escape(case.fix)} (incident `{case.id}`)", SECTION_TEXT_LIMIT))
        )
    else:
        resolve = _button("Mark resolved", action_id=ACTION_RESOLVE, value=answer.session_id, style="primary")
        tail.append({"type": "actions", "block_id": RESOLVE_BLOCK_ID, "elements": [resolve]})
    reserved = 1  # the "full report attached" note, if any

    causes: list[Block] = []
    if answer.root_causes:
        causes.append({"type": "divider"})
        causes.append(_section("*Likely root causes*"))
        for index, cause in enumerate(answer.root_causes[:MAX_CAUSES], 1):
            causes.append(_section(_cause_text(index, cause, clip), block_id=f"cause:{cause.id}"))
        if len(answer.root_causes) > MAX_CAUSES:
            clip.clipped = True

    room = MAX_BLOCKS - len(head) - len(tail) - len(causes) - reserved
    steps: list[Block] = []
    if answer.next_steps and room >= 5:
        steps.append({"type": "divider"})
        steps.append(_section("*Next steps*"))
        room -= 2
        for index, step in enumerate(answer.next_steps, 1):
            if room < 3:  # section + buttons + room for a feedback mark
                clip.clipped = True
                break
            steps.append(_section(_step_text(index, step, clip), block_id=f"step:{step.id}"))
            room -= 3
            accept_id = feedback_action_id(ACTION_ACCEPT, step.id)
            reject_id = feedback_action_id(ACTION_REJECT, step.id)
            value = ButtonValue(s=answer.session_id, i=step.id, k="next_step").encode()
            if accept_id and reject_id and len(value) <= BUTTON_VALUE_LIMIT:
                steps.append(
                    {
                        "type": "actions",
                        "block_id": f"act:{step.id}"[:ID_LIMIT],
                        "elements": [
                            _button("✅ Accept", action_id=accept_id, value=value, style="primary"),
                            _button("❌ Reject", action_id=reject_id, value=value, style="danger"),
                        ],
                    }
                )
            if step.id in verdicts:
                verdict, user = verdicts[step.id]
                steps.append(_context(feedback_text(verdict, user), block_id=f"fb:{step.id}"))
    elif answer.next_steps:
        clip.clipped = True

    blocks = head + causes + steps + tail
    if clip.clipped:
        blocks.append(_context("_Some detail did not fit in this message: the full report is attached._"))
    return RenderedMessage(text=fallback_text(answer), blocks=blocks[:MAX_BLOCKS], truncated=clip.clipped)


def fallback_text(answer: Answer) -> str:
    """The notification / screen-reader text of an answer message."""
    text = f"FaultMaven: {answer.summary}"
    if answer.root_causes:
        top = answer.root_causes[0]
        text += f" Top cause: {top.title} ({top.confidence:.0%})."
    return text if len(text) <= FALLBACK_TEXT_LIMIT else text[: FALLBACK_TEXT_LIMIT - 1] + "…"


def mark_feedback(blocks: Sequence[Block], *, item_id: str, verdict: Verdict, user_id: str) -> list[Block]:
    """The message's blocks with the item's feedback mark set (added after its buttons, or replaced)."""
    mark = _context(feedback_text(verdict, user_id), block_id=f"fb:{item_id}")
    out = [dict(block) for block in blocks]
    for index, block in enumerate(out):
        if block.get("block_id") == mark["block_id"]:
            out[index] = mark
            return out
    anchors = (f"act:{item_id}"[:ID_LIMIT], f"step:{item_id}"[:ID_LIMIT], f"cause:{item_id}"[:ID_LIMIT])
    for anchor in anchors:
        for index, block in enumerate(out):
            if block.get("block_id") == anchor:
                out.insert(index + 1, mark)
                return out[:MAX_BLOCKS]
    if len(out) < MAX_BLOCKS:
        out.append(mark)
    return out


def _by(case: IncidentCase) -> str:
    return f" by <@{escape(case.resolved_by)}>" if case.resolved_by else ""


def resolved_line(case: IncidentCase) -> str:
    """What replaces an answer's "Mark resolved" button once its session is resolved."""
    return f"✅ Resolved{_by(case)} — incident `{_code(case.id)}`"


def already_resolved_text(case: IncidentCase) -> str:
    """The ephemeral reply to a second attempt at resolving a session."""
    return f"This session is already resolved as incident `{_code(case.id)}`{_by(case)}."


def has_resolve_button(blocks: Sequence[Block], session_id: str) -> bool:
    """Whether the message carries the "Mark resolved" button of this session."""
    for block in blocks:
        if block.get("type") != "actions" or block.get("block_id") != RESOLVE_BLOCK_ID:
            continue
        for element in block.get("elements") or []:
            if element.get("action_id") == ACTION_RESOLVE and element.get("value") == session_id:
                return True
    return False


def mark_resolved(blocks: Sequence[Block], case: IncidentCase, *, session_id: str) -> list[Block] | None:
    """The message's blocks with the session's "Mark resolved" button replaced, in place, by who resolved it
    and the incident id; everything else (feedback marks included) is kept. None when the message carries
    no such button (another session's answer, or one already marked)."""
    if not has_resolve_button(blocks, session_id):
        return None
    line = _context(resolved_line(case)[:CONTEXT_TEXT_LIMIT], block_id=RESOLVED_BLOCK_ID)
    return [line if block.get("block_id") == RESOLVE_BLOCK_ID else dict(block) for block in blocks]


class ResolveMetadata(BaseModel):
    """What the resolve modal carries to its submission (``private_metadata``): the session, and where its
    thread and the answer whose button opened the modal are (``message_ts`` is None from the slash command)."""

    model_config = ConfigDict(extra="ignore")

    session_id: str = ""
    channel: str | None = None
    thread_ts: str | None = None
    message_ts: str | None = None

    @classmethod
    def decode(cls, raw: str) -> ResolveMetadata:
        """The metadata of a submitted view; empty (no session) when it is not ours or is malformed."""
        try:
            return cls.model_validate_json(raw or "{}")
        except ValidationError:
            return cls()


def resolve_modal(
    session_id: str,
    *,
    channel: str,
    message_ts: str | None,
    thread_ts: str | None = None,
    root_cause_hint: str = "",
) -> Block:
    """The "Mark resolved" modal: root cause and fix; submission becomes an incident case."""
    metadata = ResolveMetadata(
        session_id=session_id, channel=channel, thread_ts=thread_ts, message_ts=message_ts
    ).model_dump_json()
    root_cause_input: Block = {
        "type": "plain_text_input",
        "action_id": "value",
        "multiline": True,
        "max_length": 3000,
    }
    if root_cause_hint:
        root_cause_input["initial_value"] = root_cause_hint[:3000]
    return {
        "type": "modal",
        "callback_id": RESOLVE_CALLBACK,
        "private_metadata": metadata[:3000],
        "title": {"type": "plain_text", "text": "Mark resolved"},
        "submit": {"type": "plain_text", "text": "Resolve"},
        "close": {"type": "plain_text", "text": "Cancel"},
        "blocks": [
            {
                "type": "input",
                "block_id": "title",
                "optional": True,
                "label": {"type": "plain_text", "text": "Incident title"},
                "element": {"type": "plain_text_input", "action_id": "value", "max_length": 300},
            },
            {
                "type": "input",
                "block_id": "root_cause",
                "label": {"type": "plain_text", "text": "Root cause"},
                "element": root_cause_input,
            },
            {
                "type": "input",
                "block_id": "fix",
                "label": {"type": "plain_text", "text": "What fixed it"},
                "element": {
                    "type": "plain_text_input",
                    "action_id": "value",
                    "multiline": True,
                    "max_length": 3000,
                },
            },
        ],
    }


def modal_values(view: Mapping[str, Any]) -> dict[str, str]:
    """The text inputs of a submitted view, by block id."""
    out: dict[str, str] = {}
    values = (view.get("state") or {}).get("values") or {}
    for block_id, actions in values.items():
        element = (actions or {}).get("value") or {}
        text = element.get("value")
        if isinstance(text, str):
            out[str(block_id)] = text.strip()
    return out


def render_status(session: Session) -> str:
    """The session so far, as mrkdwn (ephemeral reply to ``/faultmaven status``)."""
    lines = [f"*Session* `{session.id}` — {len(session.turns)} turn(s), {len(session.feedback)} verdict(s)"]
    for turn in session.turns[-5:]:
        question = escape(turn.question[:200]) or "_(data only)_"
        lines.append(
            f"• turn {turn.number} by <@{escape(turn.user_id)}>: {question} → {escape(turn.answer_summary[:200])}"
        )
    titles: dict[str, str] = {}
    if session.last_answer is not None:
        titles.update({c.id: c.title for c in session.last_answer.root_causes})
        titles.update({s.id: s.title for s in session.last_answer.next_steps})
    for item_id, (verdict, user) in verdicts_of(session).items():
        lines.append(f"  {feedback_text(verdict, user)}: {escape(titles.get(item_id, item_id))}")
    if session.resolved is not None:
        lines.append(f"*Resolved*: {escape(session.resolved.fix[:500])} (incident `{session.resolved.id}`)")
    return "\n".join(lines)[:SECTION_TEXT_LIMIT]


def render_full_report(answer: Answer) -> str:
    """Everything in the answer, unclipped, as Markdown (the attached report)."""
    out = [f"# FaultMaven answer — session {answer.session_id}, turn {answer.turn}", "", answer.summary, ""]
    out.append(f"Engine: {answer.engine}" + (f" ({answer.engine_note})" if answer.engine_note else ""))
    if answer.root_causes:
        out += ["", "## Root causes", ""]
        for index, cause in enumerate(answer.root_causes, 1):
            out.append(
                f"{index}. **{cause.title}** — {cause.confidence:.0%} ({cause.category.value}) `{cause.id}`"
            )
            out += [f"   - {note}" for note in cause.evidence.notes]
            out += [f"   - `{line.source}:{line.line}`: {line.text}" for line in cause.evidence.lines]
            out += [f"   - series `{series}`" for series in cause.evidence.series]
    if answer.next_steps:
        out += ["", "## Next steps", ""]
        for index, step in enumerate(answer.next_steps, 1):
            out.append(f"{index}. **{step.title}** `{step.id}`")
            if step.command:
                out.append(f"   - `{step.command}`")
            if step.why:
                out.append(f"   - {step.why}")
    if answer.similar_incidents:
        out += ["", "## Similar past incidents", ""]
        for hit in answer.similar_incidents:
            out.append(f"- **{hit.title}** (`{hit.id}`, {hit.score:.0%}): {hit.root_cause} — fix: {hit.fix}")
    if answer.insights:
        out += ["", "## Insights", ""]
        out += [f"- {text}" for text in answer.insights]
    if answer.analysis is not None:
        from core.render import render_markdown

        out += ["", "## Analysis", "", render_markdown(answer.analysis)]
    return "\n".join(out) + "\n"


def category_hint(answer: Answer | None) -> Category | None:
    if answer is None or not answer.root_causes:
        return None
    return answer.root_causes[0].category


def render_error(error_id: str, message: str | None = None) -> str:
    base = message or "Something went wrong while answering."
    return f":warning: {escape(base)} (error id `{error_id}`)"
