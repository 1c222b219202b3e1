"""The deterministic troubleshooting engine: the embedded default, and the fallback whenever an LLM is
configured but times out, fails or answers out of contract.

It combines three sources of evidence into ranked root causes and concrete next steps:

* the analysis report of the data (root causes classified from templates, exceptions and anomalies),
* knowledge-base signatures matched against the question itself (an error message pasted into a question
  matches the same patterns as a log line),
* similar past incidents the team resolved (retrieved by the caller).

Session learning: a rejected item never comes back; a rejected root cause lowers confidence in its whole
category; an accepted root cause is drilled into (all of its signature's steps, then related signatures'
steps); an accepted step brings the steps that follow it.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass, field

from core.answers import (
    Answer,
    IncidentCase,
    NextStep,
    Question,
    RankedCause,
    RequestKind,
    Session,
    SimilarIncident,
)
from core.focus import parse_focus
from core.knowledge_base import EvidenceProfile, KnowledgeBase, Signature, WeightedText
from core.models import Category, Evidence, Report

MIN_QUESTION_MATCH = 0.15
REJECTED_CATEGORY_FACTOR = 0.5
ACCEPTED_FACTOR = 1.2
MAX_CAUSES = 5
MAX_STEPS = 8
STEPS_PER_CAUSE = 3
CARRIED_NOTE = "accepted earlier in this session (kept although this turn's evidence did not raise it)"


def cause_id(category: Category, anchor: str | None) -> str:
    """Stable id of a hypothesis: its category plus the signature (or subject) behind it."""
    return f"rc-{category.value}-{_digest(anchor or 'analysis')}"


def step_id(anchor: str, title: str) -> str:
    return f"ns-{_digest(anchor + '|' + title)}"


def category_of(item_id: str) -> Category | None:
    if not item_id.startswith("rc-"):
        return None
    value = item_id[3:].rsplit("-", 1)[0]
    try:
        return Category(value)
    except ValueError:
        return None


def _digest(text: str) -> str:
    return hashlib.blake2b(text.encode("utf-8"), digest_size=5).hexdigest()


@dataclass(slots=True)
class _Learning:
    rejected: set[str] = field(default_factory=set)
    accepted: set[str] = field(default_factory=set)
    rejected_categories: set[Category] = field(default_factory=set)
    accepted_signatures: set[str] = field(default_factory=set)
    accepted_steps: set[str] = field(default_factory=set)

    @classmethod
    def of(cls, session: Session) -> _Learning:
        out = cls()
        shown: dict[str, RankedCause] = {}
        if session.last_answer is not None:
            shown = {c.id: c for c in session.last_answer.root_causes}
        for item_id, verdict in session.verdicts().items():
            if verdict == "reject":
                out.rejected.add(item_id)
                category = category_of(item_id)
                if category is not None:
                    out.rejected_categories.add(category)
            else:
                out.accepted.add(item_id)
                if item_id.startswith("ns-"):
                    out.accepted_steps.add(item_id)
                cause = shown.get(item_id)
                if cause is not None and cause.signature_id:
                    out.accepted_signatures.add(cause.signature_id)
        return out


def answer(
    question: Question,
    *,
    session: Session,
    knowledge: KnowledgeBase,
    report: Report | None = None,
    similar: Sequence[SimilarIncident] = (),
    cases: Sequence[IncidentCase] = (),
) -> Answer:
    """The deterministic answer to one turn of a session."""
    learning = _Learning.of(session)
    causes = _causes(
        question, report=report, knowledge=knowledge, similar=similar, cases=cases, rejected=learning.rejected
    )
    causes = _learn(causes, learning)
    causes = _keep_accepted(causes, learning=learning, session=session)
    steps = _steps(causes, knowledge=knowledge, learning=learning, similar=similar, cases=cases)
    if not causes and not steps:
        steps = _triage_steps(question, knowledge=knowledge, learning=learning)
    insights = _insights(report, similar=similar, learning=learning, session=session)
    summary = _summary(question, report=report, causes=causes, similar=similar)
    return Answer(
        session_id=session.id,
        turn=len(session.turns) + 1,
        kind=question.kind,
        engine="deterministic",
        summary=summary,
        recommendations=_recommendations(causes, steps),
        root_causes=causes,
        next_steps=steps,
        similar_incidents=list(similar),
        insights=insights,
        analysis=report,
    )


# --- hypotheses ------------------------------------------------------------------------------------------


def _causes(
    question: Question,
    *,
    report: Report | None,
    knowledge: KnowledgeBase,
    similar: Sequence[SimilarIncident],
    cases: Sequence[IncidentCase],
    rejected: set[str],
) -> list[RankedCause]:
    # Rejected hypotheses are left out here, not only later: a rejected cause must not keep other evidence
    # of its category (the question, past incidents) from being heard as an alternative.
    found: dict[str, RankedCause] = {}
    if report is not None:
        for rc in report.root_causes:
            cid = cause_id(rc.category, rc.signature_id or rc.suspect)
            if cid in rejected:
                continue
            found[cid] = RankedCause(
                id=cid,
                title=rc.title,
                category=rc.category,
                confidence=rc.confidence,
                evidence=_copy_evidence(rc.evidence),  # notes are appended below: never into the report
                suspect=rc.suspect,
                signature_id=rc.signature_id,
            )
    if question.query.strip():
        weight = 0.6 if report is not None and report.root_causes else 0.85
        profile = EvidenceProfile(
            question=question.query, messages=[WeightedText(text=question.query[:2000], weight=1.0)]
        )
        for match in knowledge.match(profile, limit=6):
            if match.score < MIN_QUESTION_MATCH:
                continue
            sig = match.signature
            cid = cause_id(sig.category, sig.id)
            if cid in rejected:
                continue
            if cid in found:
                existing = found[cid]
                existing.confidence = round(min(0.97, existing.confidence + 0.1 * match.score), 3)
                continue
            if any(c.category == sig.category for c in found.values()) and report is not None:
                continue  # the data already speaks for this category
            found[cid] = RankedCause(
                id=cid,
                title=sig.title,
                category=sig.category,
                confidence=round(min(0.9, match.score * weight), 3),
                evidence=Evidence(notes=[f"from the question: {m}" for m in match.matched[:4]]),
                signature_id=sig.id,
            )
    by_id = {case.id: case for case in cases}
    for hit in similar:
        case = by_id.get(hit.id)
        if hit.kind != "incident" or case is None or hit.score < 0.3:
            continue
        cid = cause_id(case.category, f"incident:{case.id}")
        same = [c for c in found.values() if c.category == case.category]
        if same or cid in rejected:
            for cause in same:
                cause.confidence = round(min(0.97, cause.confidence + 0.15 * hit.score), 3)
                cause.evidence.notes.append(f"past incident {case.id} ({case.title}) had the same cause")
            continue
        found[cid] = RankedCause(
            id=cid,
            title=f"Same as past incident: {case.root_cause[:160]}",
            category=case.category,
            confidence=round(0.5 * hit.score, 3),
            evidence=Evidence(notes=[f"resembles {case.id} ({case.title}), similarity {hit.score:.2f}"]),
        )
    causes = sorted(found.values(), key=lambda c: -c.confidence)
    return causes


def _copy_evidence(evidence: Evidence) -> Evidence:
    """A deep copy of ``evidence`` (same fields set), without the generic deep-copy machinery: its lists are
    copied and its lines, whose fields are all immutable, are copied one level deep."""
    return Evidence.model_construct(
        _fields_set=set(evidence.model_fields_set),
        template_ids=list(evidence.template_ids),
        series=list(evidence.series),
        lines=[line.model_copy() for line in evidence.lines],
        notes=list(evidence.notes),
    )


def _learn(causes: list[RankedCause], learning: _Learning) -> list[RankedCause]:
    out: list[RankedCause] = []
    for cause in causes:
        if cause.id in learning.rejected:
            continue
        if cause.category in learning.rejected_categories:
            cause.confidence = round(cause.confidence * REJECTED_CATEGORY_FACTOR, 3)
            cause.evidence.notes.append("a hypothesis of this category was rejected earlier in this session")
        if cause.id in learning.accepted:
            cause.status = "accepted"
            cause.confidence = round(min(0.97, cause.confidence * ACCEPTED_FACTOR), 3)
        out.append(cause)
    out.sort(key=lambda c: (c.status != "accepted", -c.confidence))
    return out[:MAX_CAUSES]


def _keep_accepted(causes: list[RankedCause], *, learning: _Learning, session: Session) -> list[RankedCause]:
    """An accepted root cause is the working hypothesis: it stays (first, as last shown) in later answers even
    when this turn's question or data does not bring it up again, so its steps keep being drilled into."""
    if session.last_answer is None:
        return causes
    present = {c.id for c in causes}
    kept = [
        c.model_copy(deep=True)
        for c in session.last_answer.root_causes
        if c.id in learning.accepted and c.id not in present
    ]
    if not kept:
        return causes
    for cause in kept:
        cause.status = "accepted"
        if CARRIED_NOTE not in cause.evidence.notes:
            cause.evidence.notes.append(CARRIED_NOTE)
    return [*kept, *causes][:MAX_CAUSES]


# --- next steps ------------------------------------------------------------------------------------------


def _signature_steps(
    sig: Signature, *, cause: RankedCause | None, limit: int | None = None
) -> list[NextStep]:
    """The signature's next steps (its first ``limit`` if given)."""
    return [
        NextStep(
            id=step_id(sig.id, step.title),
            title=step.title,
            command=step.command,
            why=step.why,
            category=sig.category,
            root_cause_id=cause.id if cause else None,
        )
        for step in sig.next_steps[:limit]
    ]


def _steps(
    causes: Sequence[RankedCause],
    *,
    knowledge: KnowledgeBase,
    learning: _Learning,
    similar: Sequence[SimilarIncident],
    cases: Sequence[IncidentCase],
) -> list[NextStep]:
    steps: list[NextStep] = []
    seen: set[str] = set()

    def add(step: NextStep) -> None:
        if step.id in seen or step.id in learning.rejected:
            return
        if step.id in learning.accepted:
            step.status = "accepted"
        seen.add(step.id)
        steps.append(step)

    for cause in causes:
        sig = knowledge.find(cause.signature_id) if cause.signature_id else None
        if sig is None:
            continue
        drill = cause.status == "accepted" or sig.id in learning.accepted_signatures
        if drill:
            for step in _signature_steps(sig, cause=cause):
                add(step)
            for related in _related(knowledge, sig):
                for step in _signature_steps(related, cause=cause)[:2]:
                    add(step)
            continue
        done = learning.accepted_steps
        accepted_here = [i for i, s in enumerate(sig.next_steps) if done and step_id(sig.id, s.title) in done]
        if accepted_here:
            # The user did a step: show what follows it, plus the ones still open before it.
            sig_steps = _signature_steps(sig, cause=cause)
            after = sig_steps[accepted_here[-1] + 1 :]
            for step in after[:STEPS_PER_CAUSE]:
                add(step)
            for step in sig_steps:
                if step.id in done:
                    add(step)
        else:  # only the steps shown are built
            budget = STEPS_PER_CAUSE if cause is causes[0] else 2
            for step in _signature_steps(sig, cause=cause, limit=budget):
                add(step)
    by_id = {case.id: case for case in cases}
    for hit in similar:
        case = by_id.get(hit.id)
        if case is None or hit.score < 0.3:
            continue
        add(
            NextStep(
                id=step_id(f"incident:{case.id}", case.fix),
                title=f"Try what fixed {case.id} ({case.title})",
                command=None,
                why=f"It was resolved by: {case.fix[:300]}",
                category=case.category,
            )
        )
    # Steps the user already did stay listed (marked accepted) after the open ones, outside the budget.
    limit = MAX_STEPS + 4 if any(c.status == "accepted" for c in causes) else MAX_STEPS
    open_steps = [s for s in steps if s.status != "accepted"]
    return open_steps[:limit] + [s for s in steps if s.status == "accepted"]


def _related(knowledge: KnowledgeBase, sig: Signature) -> list[Signature]:
    tags = set(sig.tags)
    same = [s for s in knowledge.signatures if s.category == sig.category and s.id != sig.id]
    same.sort(key=lambda s: -len(tags & set(s.tags)))
    return same[:2]


def _triage_steps(question: Question, *, knowledge: KnowledgeBase, learning: _Learning) -> list[NextStep]:
    """Nothing matched: steps from the signatures of the categories the question is about."""
    focus = parse_focus(question.query)
    steps: list[NextStep] = []
    for category in sorted(focus.categories, key=lambda c: c.value):
        for sig in [s for s in knowledge.signatures if s.category == category][:1]:
            steps += [s for s in _signature_steps(sig, cause=None)[:2] if s.id not in learning.rejected]
    return steps[:MAX_STEPS]


# --- words -----------------------------------------------------------------------------------------------


def _recommendations(causes: Sequence[RankedCause], steps: Sequence[NextStep]) -> list[str]:
    out = [f"Likely cause ({cause.confidence:.0%}): {cause.title}" for cause in causes[:3]]
    for step in steps:
        if step.status == "accepted":
            continue
        text = step.title
        if step.command:
            text += f": `{step.command}`"
        if step.why:
            text += f" — {step.why}"
        out.append(text)
    return out


def _insights(
    report: Report | None, *, similar: Sequence[SimilarIncident], learning: _Learning, session: Session
) -> list[str]:
    out: list[str] = []
    if report is not None:
        if report.incident_start is not None:
            out.append(f"Incident start: {report.incident_start.strftime('%Y-%m-%d %H:%M:%S')} UTC")
        if report.time_basis == "positions" and report.records:
            out.append("The logs carry no usable timestamps; time windows are record positions.")
        for suspect in report.suspects[:2]:
            out.append(f"Suspect {suspect.name}: {suspect.reason}")
        for anomaly in report.anomalies[:3]:
            out.append(f"Anomaly ({anomaly.source}/{anomaly.kind}): {anomaly.description or anomaly.subject}")
        if report.issues:
            out.append(f"{len(report.issues)} input problem(s), e.g. {report.issues[0]}")
    for hit in similar[:2]:
        out.append(f"Similar {hit.kind}: {hit.title} (similarity {hit.score:.2f})")
    if learning.rejected:
        out.append(f"Excluding {len(learning.rejected)} item(s) rejected earlier in this session.")
    if session.turns:
        out.append(f"Turn {len(session.turns) + 1} of this session.")
    return out


def _summary(
    question: Question,
    *,
    report: Report | None,
    causes: Sequence[RankedCause],
    similar: Sequence[SimilarIncident],
) -> str:
    kind = question.kind
    if kind is RequestKind.QUERY_ONLY:
        if causes:
            head = f"From the knowledge base{' and past incidents' if similar else ''}: the question points to {causes[0].title} ({causes[0].category.value})."
        else:
            head = "No known failure signature matches the question alone; attach logs or metrics for an analysis."
        return head
    base = report.summary if report is not None else ""
    if causes:
        return f"{base} Top hypothesis: {causes[0].title} ({causes[0].confidence:.0%}).".strip()
    return base or "No anomalies or known failure signatures were found in the data."
