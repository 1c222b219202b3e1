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
from functools import lru_cache
from typing import Required, TypedDict

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
from core.knowledge_base import EvidenceProfile, KnowledgeBase, RankedSignature, Signature, WeightedText
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


@lru_cache(maxsize=4096)
def _digest(text: str) -> str:
    """A pure function of the text, memoised: the same signatures and steps are named in every answer."""
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
    causes = _learn(causes, learning, report=report)
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
                evidence=rc.evidence,  # shared until a note is added: _add_note copies it first
                suspect=rc.suspect,
                signature_id=rc.signature_id,
            )
    if question.query.strip():
        weight = 0.6 if report is not None and report.root_causes else 0.85
        for match in _question_matches(knowledge, question.query):
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
                _add_note(cause, f"past incident {case.id} ({case.title}) had the same cause", report=report)
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


def _add_note(cause: RankedCause, note: str, *, report: Report | None) -> None:
    """Append ``note`` to the cause's evidence, never into the report's: a cause taken from the report shares
    its evidence (copying every cause's evidence up front would mostly copy for nothing) until its first
    note, which goes into a copy."""
    if report is not None and any(cause.evidence is rc.evidence for rc in report.root_causes):
        cause.evidence = _copy_evidence(cause.evidence)
    cause.evidence.notes.append(note)


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


def _learn(causes: list[RankedCause], learning: _Learning, *, report: Report | None) -> list[RankedCause]:
    out: list[RankedCause] = []
    for cause in causes:
        if cause.id in learning.rejected:
            continue
        if cause.category in learning.rejected_categories:
            cause.confidence = round(cause.confidence * REJECTED_CATEGORY_FACTOR, 3)
            _add_note(
                cause, "a hypothesis of this category was rejected earlier in this session", report=report
            )
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


def _question_matches(knowledge: KnowledgeBase, query: str) -> list[RankedSignature]:
    """The knowledge-base matches of the question alone that are strong enough to be heard, best first (ranked,
    not made into SignatureMatch models: the same fields, and only the first few explanations are read)."""
    profile = EvidenceProfile(question=query, messages=[WeightedText(text=query[:2000], weight=1.0)])
    return [m for m in knowledge.rank(profile, limit=6) if m.score >= MIN_QUESTION_MATCH]


# --- next steps ------------------------------------------------------------------------------------------


class _StepFields(TypedDict, total=False):
    """The keyword arguments of a :class:`NextStep` not built yet (see :func:`_steps`)."""

    id: Required[str]
    title: Required[str]
    command: str | None
    why: str
    category: Category | None
    root_cause_id: str | None


def _signature_step_fields(
    sig: Signature, *, cause: RankedCause | None, limit: int | None = None
) -> list[_StepFields]:
    """The fields of the signature's next steps (its first ``limit`` if given)."""
    root_cause_id = cause.id if cause else None
    return [
        _StepFields(
            id=step_id(sig.id, step.title),
            title=step.title,
            command=step.command,
            why=step.why,
            category=sig.category,
            root_cause_id=root_cause_id,
        )
        for step in sig.next_steps[:limit]
    ]


def _signature_steps(
    sig: Signature, *, cause: RankedCause | None, limit: int | None = None
) -> list[NextStep]:
    """The signature's next steps (its first ``limit`` if given)."""
    return [NextStep(**fields) for fields in _signature_step_fields(sig, cause=cause, limit=limit)]


def _steps(
    causes: Sequence[RankedCause],
    *,
    knowledge: KnowledgeBase,
    learning: _Learning,
    similar: Sequence[SimilarIncident],
    cases: Sequence[IncidentCase],
) -> list[NextStep]:
    # Candidates are gathered as fields and only the ones kept past the budget are validated into NextStep
    # objects: about half of the candidates are cut.
    candidates: list[_StepFields] = []
    seen: set[str] = set()

    def add(fields: _StepFields) -> None:
        if fields["id"] in seen or fields["id"] in learning.rejected:
            return
        seen.add(fields["id"])
        candidates.append(fields)

    for cause in causes:
        sig = knowledge.find(cause.signature_id) if cause.signature_id else None
        if sig is None:
            continue
        drill = cause.status == "accepted" or sig.id in learning.accepted_signatures
        if drill:
            for fields in _signature_step_fields(sig, cause=cause):
                add(fields)
            for related in _related(knowledge, sig):
                for fields in _signature_step_fields(related, cause=cause, limit=2):
                    add(fields)
            continue
        done = learning.accepted_steps
        accepted_here = [i for i, s in enumerate(sig.next_steps) if done and step_id(sig.id, s.title) in done]
        if accepted_here:
            # The user did a step: show what follows it, plus the ones still open before it.
            sig_steps = _signature_step_fields(sig, cause=cause)
            after = sig_steps[accepted_here[-1] + 1 :]
            for fields in after[:STEPS_PER_CAUSE]:
                add(fields)
            for fields in sig_steps:
                if fields["id"] in done:
                    add(fields)
        else:  # only the steps shown are listed
            budget = STEPS_PER_CAUSE if cause is causes[0] else 2
            for fields in _signature_step_fields(sig, cause=cause, limit=budget):
                add(fields)
    by_id = {case.id: case for case in cases}
    for hit in similar:
        case = by_id.get(hit.id)
        if case is None or hit.score < 0.3:
            continue
        add(
            _StepFields(
                id=step_id(f"incident:{case.id}", case.fix),
                title=f"Try what fixed {case.id} ({case.title})",
                command=None,
                why=f"It was resolved by: {case.fix[:300]}",
                category=case.category,
            )
        )
    # Steps the user already did stay listed (marked accepted) after the open ones, outside the budget.
    limit = MAX_STEPS + 4 if any(c.status == "accepted" for c in causes) else MAX_STEPS
    accepted = learning.accepted
    open_steps = [fields for fields in candidates if fields["id"] not in accepted][:limit]
    return [NextStep(**fields) for fields in open_steps] + [
        _accepted_step(fields) for fields in candidates if fields["id"] in accepted
    ]


def _accepted_step(fields: _StepFields) -> NextStep:
    step = NextStep(**fields)
    step.status = "accepted"  # assigned after validation as it always was (so it joins the fields set)
    return step


def _related(knowledge: KnowledgeBase, sig: Signature) -> list[Signature]:
    tags = set(sig.tags)
    same = [s for s in knowledge.signatures if s.category == sig.category and s.id != sig.id]
    same.sort(key=lambda s: -len(tags.intersection(s.tags)))
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
