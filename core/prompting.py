"""Building the LLM prompt from the engine's compressed evidence, under a token budget, fully redacted.

The prompt never carries bulk raw logs. It carries what the analysis distilled: the report summary and
counts, the top templates (with counts, severity and one example each), anomalies, suspects, candidate
root causes, matched knowledge signatures, similar past incidents, the session's history and the user's
accepted/rejected items. Every piece of text is redacted before it is placed, and the whole rendered
message is redacted once more, so nothing the redactor recognises can reach a provider.

When the evidence does not fit ``budget_tokens``, the least important lines go first (parse issues, then
older history, similar incidents, suspects, templates, anomalies...), and long lines are cut. The question
and the feedback the user gave are kept longest.

Templates are text with ``{name}`` placeholders; only the names listed in :data:`SYSTEM_PLACEHOLDERS` and
:data:`USER_PLACEHOLDERS` are substituted, so the templates can show JSON examples without escaping braces.
"""

from __future__ import annotations

import logging
import math
import re
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from core.answers import SimilarIncident, Turn
from core.errors import InputError
from core.models import Category, Report, Severity
from core.redact import Redactor

logger = logging.getLogger(__name__)

SYSTEM_PLACEHOLDERS = frozenset({"categories"})
USER_PLACEHOLDERS = frozenset({"question", "evidence", "history", "feedback"})

MAX_LINE_CHARS = 400
MAX_EXAMPLE_CHARS = 240
MAX_TEMPLATES = 25
MAX_ANOMALIES = 15
MAX_SUSPECTS = 8
MAX_CAUSES = 8
MAX_SIGNATURES = 8
MAX_SIMILAR = 5
MAX_HISTORY = 8
NONE_TEXT = "(none)"


class SignatureMatch(BaseModel):
    """A knowledge-base signature that matched the evidence."""

    model_config = ConfigDict(extra="forbid")

    id: str
    title: str
    score: float


class PromptMessage(BaseModel):
    model_config = ConfigDict(extra="forbid")

    role: Literal["system", "user"]
    content: str


class Prompt(BaseModel):
    model_config = ConfigDict(extra="forbid")

    messages: list[PromptMessage]
    estimated_tokens: int = Field(ge=0)
    redactions: dict[str, int] = Field(
        default_factory=dict, description="What the redactor removed, by kind."
    )
    dropped: dict[str, int] = Field(
        default_factory=dict, description="Lines left out to fit the budget, by section."
    )


_TOKEN_PIECE_RE = re.compile(r"[A-Za-z]+|\d+|[^\sA-Za-z\d]")


def estimate_tokens(text: str) -> int:
    """A cheap estimate of BPE tokens: letters ~4 per token, digits ~3, each symbol one.

    Closer than ``len(text) / 4`` on log text, which is dense in digits and punctuation.
    """
    total = 0
    for piece in _TOKEN_PIECE_RE.findall(text):
        if piece[0].isalpha():
            total += math.ceil(len(piece) / 4)
        elif piece[0].isdigit():
            total += math.ceil(len(piece) / 3)
        else:
            total += 1
    return total


_PLACEHOLDER_RE = re.compile(r"\{([a-z_]+)\}")


def render_template(template: str, values: Mapping[str, str], *, allowed: frozenset[str], name: str) -> str:
    """Substitute ``{placeholder}`` names from ``values``; other braces are left alone.

    Raises :class:`InputError` naming the template when it uses a placeholder it may not, or lacks one.
    """
    used = set(_PLACEHOLDER_RE.findall(template))
    unknown = used - allowed
    if unknown:
        raise InputError(
            f"prompt template {name!r} uses unknown placeholder(s) {sorted(unknown)}; allowed: {sorted(allowed)}"
        )
    missing = allowed - used
    if missing:
        raise InputError(f"prompt template {name!r} lacks placeholder(s) {sorted(missing)}")
    return _PLACEHOLDER_RE.sub(lambda m: values[m.group(1)], template)


def _cut(text: str, limit: int, *, flatten: bool = True) -> str:
    """Shorten to ``limit`` characters; ``flatten`` joins lines (evidence lines are one line each)."""
    text = " ".join(text.split()) if flatten and "\n" in text else text.strip()
    if len(text) <= limit:
        return text
    return text[: limit - 1].rstrip() + "…"


@dataclass
class _Section:
    key: str
    heading: str
    priority: int  # lower is dropped first
    floor: int = 0  # lines kept until every section is down to its floor
    lines: list[str] = field(default_factory=list)
    dropped: int = 0

    def render(self) -> str:
        if not self.lines:
            return ""
        return f"## {self.heading}\n" + "\n".join(f"- {line}" for line in self.lines)


@dataclass
class _Builder:
    redactor: Redactor
    counts: Counter[str] = field(default_factory=Counter)

    def clean(self, text: str, limit: int = MAX_LINE_CHARS, *, flatten: bool = True) -> str:
        """Redact first (a cut secret might no longer be recognisable), then cut."""
        result = self.redactor.redact(text)
        self.counts.update(result.counts)
        return _cut(result.text, limit, flatten=flatten)


def _severity_name(value: Severity | int) -> str:
    try:
        return Severity(value).name
    except ValueError:
        return str(value)


def _report_sections(report: Report, b: _Builder) -> list[_Section]:
    overview = _Section("overview", "Analysis overview", priority=90, floor=2)
    overview.lines.append(b.clean(report.summary, 800))
    if report.records:
        overview.lines.append(f"records analysed: {report.records} (time basis: {report.time_basis})")
    if report.time_range.start or report.time_range.end:
        overview.lines.append(f"time range: {report.time_range.start} → {report.time_range.end}")
    if report.incident_start:
        overview.lines.append(f"incident start: {report.incident_start}")
    if report.counts_by_severity:
        counts = ", ".join(f"{k}={v}" for k, v in sorted(report.counts_by_severity.items()))
        overview.lines.append(b.clean(f"by severity: {counts}"))
    if report.counts_by_service:
        top = sorted(report.counts_by_service.items(), key=lambda kv: -kv[1])[:10]
        overview.lines.append(b.clean("by service: " + ", ".join(f"{k}={v}" for k, v in top)))

    causes = _Section(
        "root_causes", "Candidate root causes from the deterministic analysis", priority=80, floor=3
    )
    for cause in report.root_causes[:MAX_CAUSES]:
        notes = "; ".join(cause.evidence.notes[:3])
        line = f"{cause.title} [{cause.category.value}, confidence {cause.confidence:.2f}]"
        if cause.suspect:
            line += f" suspect={cause.suspect}"
        if notes:
            line += f" — {notes}"
        causes.lines.append(b.clean(line))

    anomalies = _Section("anomalies", "Anomalies", priority=60, floor=3)
    for anomaly in sorted(report.anomalies, key=lambda a: -a.score)[:MAX_ANOMALIES]:
        when = f" at {anomaly.start}" if anomaly.start else ""
        service = f" service={anomaly.service}" if anomaly.service else ""
        text = anomaly.description or anomaly.subject
        line = f"{anomaly.kind} ({anomaly.source}, score {anomaly.score:.2f}, {anomaly.direction}){service}{when}: {text}"
        anomalies.lines.append(b.clean(line))

    templates = _Section(
        "templates", "Top log templates (count × severity: template — example)", priority=50, floor=5
    )
    ranked = sorted(
        report.templates, key=lambda t: (not t.anomalous, -int(t.severity), -t.score, -t.count, t.id)
    )
    for summary in ranked[:MAX_TEMPLATES]:
        flag = " ANOMALOUS" if summary.anomalous else ""
        template = b.clean(summary.template, 200)
        example = b.clean(summary.example, MAX_EXAMPLE_CHARS)
        line = f"{summary.count}× {_severity_name(summary.severity)}{flag} [{summary.id}]: {template}"
        if example and example != template:
            line += f" — e.g. {example}"
        templates.lines.append(line)

    suspects = _Section("suspects", "Suspects", priority=40, floor=2)
    for suspect in sorted(report.suspects, key=lambda s: -s.score)[:MAX_SUSPECTS]:
        suspects.lines.append(
            b.clean(f"{suspect.kind} {suspect.name} (score {suspect.score:.2f}): {suspect.reason}")
        )

    issues = _Section("issues", "Input problems", priority=10)
    for issue in report.issues[:5]:
        issues.lines.append(b.clean(str(issue), 200))
    return [overview, causes, anomalies, templates, suspects, issues]


def _fit(sections: list[_Section], fixed_tokens: int, budget: int) -> None:
    """Drop lines, least important first, until the rendered sections fit beside ``fixed_tokens``."""

    def total() -> int:
        return fixed_tokens + sum(estimate_tokens(s.render()) + 1 for s in sections)

    current = total()
    by_priority = sorted(sections, key=lambda s: s.priority)
    while current > budget:
        # First trim every section to its floor, least important first; then empty them in the same order.
        victim = next((s for s in by_priority if len(s.lines) > s.floor), None)
        victim = victim or next((s for s in by_priority if s.lines), None)
        if victim is None:
            return
        before = estimate_tokens(victim.render()) + 1
        victim.lines.pop()
        victim.dropped += 1
        current += estimate_tokens(victim.render()) + 1 - before


def build_prompt(
    *,
    question: str,
    report: Report | None,
    signatures: Sequence[SignatureMatch],
    similar: Sequence[SimilarIncident],
    history: Sequence[Turn],
    rejected: Sequence[str],
    accepted: Sequence[str],
    budget_tokens: int,
    redactor: Redactor,
    system_template: str,
    user_template: str,
) -> Prompt:
    """The system and user messages for one question, redacted and fitted to ``budget_tokens``.

    Raises :class:`InputError` when the templates are malformed or the budget cannot hold even the
    templates and a shortened question.
    """
    b = _Builder(redactor)
    system = render_template(
        system_template,
        {"categories": ", ".join(c.value for c in Category)},
        allowed=SYSTEM_PLACEHOLDERS,
        name="system",
    )
    system_result = redactor.redact(system)
    b.counts.update(system_result.counts)
    system = system_result.text

    sections: list[_Section] = []
    if report is not None:
        sections.extend(_report_sections(report, b))
    sig_section = _Section("signatures", "Knowledge-base signatures that matched", priority=70, floor=3)
    for sig in sorted(signatures, key=lambda s: -s.score)[:MAX_SIGNATURES]:
        sig_section.lines.append(b.clean(f"{sig.title} [{sig.id}, score {sig.score:.2f}]"))
    sim_section = _Section("similar", "Similar past incidents and runbooks", priority=30, floor=1)
    for incident in sorted(similar, key=lambda s: -s.score)[:MAX_SIMILAR]:
        parts = [f"{incident.kind} {incident.title} (similarity {incident.score:.2f})"]
        if incident.category:
            parts.append(f"category {incident.category.value}")
        if incident.root_cause:
            parts.append(f"root cause: {incident.root_cause}")
        if incident.fix:
            parts.append(f"fix: {incident.fix}")
        sim_section.lines.append(b.clean("; ".join(parts)))
    sections.extend([sig_section, sim_section])

    history_section = _Section("history", "Earlier in this session (oldest first)", priority=20, floor=2)
    for turn in list(history)[-MAX_HISTORY:]:
        line = f"turn {turn.number}: asked {b.clean(turn.question, 300)!r} → answered {b.clean(turn.answer_summary, 300)!r}"
        history_section.lines.append(line)
    # Oldest turns go first when space runs out: keep the list newest-first internally, render oldest-first.
    history_section.lines.reverse()

    feedback_section = _Section("feedback", "User feedback", priority=95, floor=20)
    for title in rejected:
        feedback_section.lines.append("REJECTED (do not propose again): " + b.clean(title, 200))
    for title in accepted:
        feedback_section.lines.append("CONFIRMED (build on it): " + b.clean(title, 200))

    question_text = (
        b.clean(question, 8000, flatten=False) if question.strip() else "(no question: analyse the data)"
    )

    def render_user() -> str:
        evidence = "\n\n".join(s.render() for s in sections if s.lines) or NONE_TEXT
        history_lines = list(reversed(history_section.lines))
        history_text = (
            "\n".join(f"- {line}" for line in history_lines) if history_lines else "(first question)"
        )
        feedback_text = "\n".join(f"- {line}" for line in feedback_section.lines) or NONE_TEXT
        return render_template(
            user_template,
            {
                "question": question_text,
                "evidence": evidence,
                "history": history_text,
                "feedback": feedback_text,
            },
            allowed=USER_PLACEHOLDERS,
            name="user",
        )

    empty_user = render_template(
        user_template,
        dict.fromkeys(USER_PLACEHOLDERS, ""),
        allowed=USER_PLACEHOLDERS,
        name="user",
    )
    fixed = estimate_tokens(system) + estimate_tokens(empty_user) + 8  # message framing
    question_tokens = estimate_tokens(question_text)
    if fixed + question_tokens > budget_tokens:
        room = budget_tokens - fixed - 50
        if room < 50:
            raise InputError(
                f"the LLM prompt budget of {budget_tokens} tokens cannot hold the prompt templates "
                f"({fixed} tokens) and the question"
            )
        question_text = _cut(question_text, room * 3, flatten=False)
        question_tokens = estimate_tokens(question_text)
    _fit([*sections, history_section, feedback_section], fixed + question_tokens, budget_tokens)

    user = render_user()
    final = redactor.redact(user)  # a safety net over the assembled text; normally finds nothing new
    b.counts.update(final.counts)
    user = final.text
    dropped = {s.key: s.dropped for s in [*sections, history_section, feedback_section] if s.dropped}
    if dropped:
        logger.info("prompt trimmed to fit its budget", extra={"dropped": dropped, "budget": budget_tokens})
    return Prompt(
        messages=[PromptMessage(role="system", content=system), PromptMessage(role="user", content=user)],
        estimated_tokens=estimate_tokens(system) + estimate_tokens(user) + 8,
        redactions=dict(b.counts),
        dropped=dropped,
    )
