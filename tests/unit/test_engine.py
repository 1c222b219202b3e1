"""The deterministic troubleshooting engine (core/engine.py) on real scenario data: adaptive handling of
query-only, data-only and query-plus-data requests, and session learning from accept/reject feedback."""

from __future__ import annotations

from functools import cache
from pathlib import Path

import pytest

from core import engine
from core.analysis import analyze
from core.answers import (
    Answer,
    Feedback,
    IncidentCase,
    LogInput,
    Question,
    RequestKind,
    Session,
    SimilarIncident,
    Turn,
)
from core.knowledge_base import KnowledgeBase
from core.metrics import read_metrics
from core.models import Category, MetricSeries, Report

SCENARIOS = Path(__file__).resolve().parents[1] / "scenarios"
DISK_FULL = "06-postgres-disk-full"
OOM_CRASHLOOP = "04-recommendation-oomkilled-crashloop"
RATE_LIMIT = "08-sms-gateway-429"
PENDING = "09-search-pods-pending-insufficient-cpu"
NOT_LOGS = {".yaml", ".csv", ".md"}


@cache
def knowledge() -> KnowledgeBase:
    return KnowledgeBase.load()


@cache
def scenario(name: str) -> tuple[tuple[LogInput, ...], tuple[MetricSeries, ...]]:
    folder = SCENARIOS / name
    logs = tuple(
        LogInput(name=path.name, lines=path.read_text(encoding="utf-8").splitlines())
        for path in sorted(folder.iterdir())
        if path.suffix not in NOT_LOGS
    )
    metrics_file = folder / "metrics.csv"
    metrics = tuple(read_metrics(metrics_file)) if metrics_file.exists() else ()
    return logs, metrics


def ask(
    name: str | None,
    query: str,
    *,
    session: Session | None = None,
    similar: list[SimilarIncident] | None = None,
    cases: list[IncidentCase] | None = None,
) -> Answer:
    logs, metrics = scenario(name) if name else ((), ())
    question = Question(user_id="u-oncall", query=query, logs=list(logs), metrics=list(metrics))
    report: Report | None = None
    if logs or metrics:
        report = analyze(logs=list(logs), metrics=list(metrics), query=query, knowledge=knowledge())
    return engine.answer(
        question,
        session=session or Session(id="s-test"),
        knowledge=knowledge(),
        report=report,
        similar=similar or [],
        cases=cases or [],
    )


def cause_of(answer: Answer, category: Category) -> float:
    return max((c.confidence for c in answer.root_causes if c.category == category), default=0.0)


def followed(session: Session, answer: Answer, *feedback: tuple[str, str, str]) -> Session:
    """The session after ``answer`` was given and the user sent ``(item_id, kind, verdict)`` feedback."""
    turns = [*session.turns]
    turns.append(
        Turn(
            number=answer.turn,
            question="",
            kind=answer.kind,
            user_id="u-oncall",
            answer_summary=answer.summary,
            root_cause_ids=[c.id for c in answer.root_causes],
            next_step_ids=[s.id for s in answer.next_steps],
        )
    )
    items = [
        Feedback(
            session_id=session.id,
            item_id=item,
            item_kind=kind,
            verdict=verdict,
            user_id="u-oncall",
        )
        for item, kind, verdict in feedback
    ]
    return session.model_copy(
        update={"turns": turns, "feedback": [*session.feedback, *items], "last_answer": answer}
    )


# --- ids -------------------------------------------------------------------------------------------------


def test_ids_are_stable_and_carry_their_category() -> None:
    for category in Category:
        cid = engine.cause_id(category, "some-signature")
        assert cid == engine.cause_id(category, "some-signature")
        assert engine.category_of(cid) is category
    assert engine.cause_id(Category.DNS_FAILURE, "a") != engine.cause_id(Category.DNS_FAILURE, "b")
    assert engine.category_of(engine.step_id("sig", "Check things")) is None
    assert engine.category_of("rc-not_a_category-0011223344") is None
    assert engine.step_id("sig", "Check") == engine.step_id("sig", "Check")
    assert engine.step_id("sig", "Check") != engine.step_id("other", "Check")


# --- adaptive handling -----------------------------------------------------------------------------------


def test_query_only_answers_from_the_knowledge_base_without_analysis() -> None:
    answer = ask(None, "what does `x509: certificate has expired or is not yet valid` mean for our ingress?")
    assert answer.kind is RequestKind.QUERY_ONLY
    assert answer.analysis is None
    top = answer.root_causes[0]
    assert top.category is Category.TLS_CERTIFICATE
    assert top.signature_id == "tls-certificate-expired"
    assert any("from the question" in note for note in top.evidence.notes)
    sig = knowledge().get("tls-certificate-expired")
    titles = {step.title for step in sig.next_steps}
    assert answer.next_steps[0].title in titles
    assert answer.next_steps[0].root_cause_id == top.id
    assert "knowledge base" in answer.summary
    assert answer.recommendations[0].startswith("Likely cause")


@pytest.mark.parametrize(
    ("query", "category"),
    [
        ("we see `dial tcp: lookup orders-db on 10.96.0.10:53: i/o timeout`, why?", Category.DNS_FAILURE),
        (
            "payments logs `FATAL: sorry, too many clients already` — what now?",
            Category.CONNECTION_POOL_EXHAUSTION,
        ),
        ("the gateway answers `HTTP 429 Too Many Requests`", Category.RATE_LIMITING),
    ],
)
def test_pasted_error_message_matches_its_category(query: str, category: Category) -> None:
    answer = ask(None, query)
    assert answer.kind is RequestKind.QUERY_ONLY
    assert answer.root_causes, query
    assert answer.root_causes[0].category is category


def test_query_only_includes_past_incidents() -> None:
    case = IncidentCase(
        id="inc-ingress-cert",
        title="Ingress certificate expired on shop.example.com",
        category=Category.TLS_CERTIFICATE,
        root_cause="cert-manager could not renew: DNS-01 solver credentials rotated",
        fix="restored the solver secret and forced renewal with cmctl renew",
    )
    hit = SimilarIncident(
        id=case.id,
        title=case.title,
        score=0.7,
        category=case.category,
        root_cause=case.root_cause,
        fix=case.fix,
    )
    plain = ask(None, "x509: certificate has expired or is not yet valid on the ingress")
    with_past = ask(
        None, "x509: certificate has expired or is not yet valid on the ingress", similar=[hit], cases=[case]
    )
    assert with_past.similar_incidents == [hit]
    assert "past incidents" in with_past.summary
    top = with_past.root_causes[0]
    assert top.category is Category.TLS_CERTIFICATE
    assert top.confidence > plain.root_causes[0].confidence
    assert any(case.id in note for note in top.evidence.notes)
    assert any(case.id in step.title and case.fix in step.why for step in with_past.next_steps)


def test_question_with_no_known_signature_says_so_and_gives_triage_steps() -> None:
    answer = ask(None, "why is checkout slow?")
    assert answer.kind is RequestKind.QUERY_ONLY
    assert not answer.root_causes
    assert "No known failure signature" in answer.summary
    assert answer.next_steps, "a question naming a signal family still gets somewhere to start"


def test_data_only_is_led_by_the_analysis() -> None:
    answer = ask(PENDING, "")
    assert answer.kind is RequestKind.DATA_ONLY
    assert answer.analysis is not None
    report_ids = {
        engine.cause_id(rc.category, rc.signature_id or rc.suspect) for rc in answer.analysis.root_causes
    }
    assert answer.root_causes[0].id in report_ids
    assert answer.root_causes[0].category is Category.SCHEDULING_CAPACITY
    assert answer.root_causes[0].evidence.lines or answer.root_causes[0].evidence.notes
    assert any(text.startswith("Incident start:") for text in answer.insights)
    assert answer.summary.startswith(answer.analysis.summary)


def test_same_question_over_different_data_gives_different_evidence_backed_answers() -> None:
    query = "why are requests failing?"
    disk = ask(DISK_FULL, query)
    throttled = ask(RATE_LIMIT, query)
    assert disk.kind is throttled.kind is RequestKind.QUERY_AND_DATA
    assert disk.root_causes[0].category is Category.DISK_EXHAUSTION
    assert throttled.root_causes[0].category is Category.RATE_LIMITING
    for answer in (disk, throttled):
        assert answer.root_causes[0].evidence.lines, "the top cause cites log lines"
    for answer in (disk, throttled):
        top = answer.root_causes[0]
        assert answer.next_steps[0].root_cause_id == top.id, "steps start with the top cause's checks"
    assert {s.id for s in disk.next_steps[:3]}.isdisjoint({s.id for s in throttled.next_steps[:3]})
    assert disk.recommendations != throttled.recommendations


def test_question_steers_the_analysis() -> None:
    plain = ask(OOM_CRASHLOOP, "")
    crash = ask(OOM_CRASHLOOP, "why is recommendation in a crash loop?")
    memory = ask(OOM_CRASHLOOP, "are the recommendation pods running out of memory?")
    assert crash.kind is memory.kind is RequestKind.QUERY_AND_DATA
    assert cause_of(crash, Category.CRASH_LOOP) > cause_of(plain, Category.CRASH_LOOP)
    assert cause_of(memory, Category.MEMORY_EXHAUSTION) > cause_of(plain, Category.MEMORY_EXHAUSTION)
    assert cause_of(memory, Category.MEMORY_EXHAUSTION) > cause_of(crash, Category.MEMORY_EXHAUSTION)
    assert crash.next_steps[0].category is Category.CRASH_LOOP

    def memory_steps(answer: Answer) -> list[str]:
        return [s.id for s in answer.next_steps if s.category is Category.MEMORY_EXHAUSTION]

    assert memory_steps(memory), "the memory question gets memory checks"
    assert memory_steps(memory) != memory_steps(crash)


# --- session learning ------------------------------------------------------------------------------------


def test_rejected_items_never_come_back_and_their_category_loses_confidence() -> None:
    session = Session(id="s-learn")
    first = ask(OOM_CRASHLOOP, "", session=session)
    top, step = first.root_causes[0], first.next_steps[0]
    siblings = [c for c in first.root_causes[1:] if c.category == top.category]
    session = followed(session, first, (top.id, "root_cause", "reject"), (step.id, "next_step", "reject"))
    second = ask(OOM_CRASHLOOP, "", session=session)
    assert second.turn == 2
    ids = {c.id for c in second.root_causes} | {s.id for s in second.next_steps}
    assert top.id not in ids and step.id not in ids
    assert all(top.title not in text for text in second.recommendations)
    for sibling in siblings:
        again = next(c for c in second.root_causes if c.id == sibling.id)
        assert again.confidence < sibling.confidence
    assert any("rejected" in text for text in second.insights)
    # the rejection holds on later turns too, not only the next one
    third = ask(OOM_CRASHLOOP, "", session=followed(session, second))
    assert top.id not in {c.id for c in third.root_causes}
    assert step.id not in {s.id for s in third.next_steps}


def test_rejecting_a_cause_lowers_every_cause_of_its_category() -> None:
    session = Session(id="s-cat")
    first = ask(None, "x509: certificate has expired or is not yet valid", session=session)
    tls = [c for c in first.root_causes if c.category is Category.TLS_CERTIFICATE]
    # reject a TLS hypothesis that was *not* shown: the category still counts as rejected
    rejected = engine.cause_id(Category.TLS_CERTIFICATE, "some-other-tls-signature")
    session = first_session = followed(session, first)
    session.feedback.append(
        Feedback(
            session_id=session.id, item_id=rejected, item_kind="root_cause", verdict="reject", user_id="u"
        )
    )
    second = ask(None, "x509: certificate has expired or is not yet valid", session=session)
    for cause in tls:
        assert next(c for c in second.root_causes if c.id == cause.id).confidence < cause.confidence
    assert first_session.id == second.session_id


def test_accepting_a_cause_drills_into_it() -> None:
    session = Session(id="s-drill")
    first = ask(PENDING, "", session=session)
    second_cause = first.root_causes[1]
    assert second_cause.signature_id is not None
    session = followed(session, first, (second_cause.id, "root_cause", "accept"))
    second = ask(PENDING, "", session=session)
    accepted = second.root_causes[0]
    assert accepted.id == second_cause.id
    assert accepted.status == "accepted"
    assert accepted.confidence > second_cause.confidence
    sig = knowledge().get(second_cause.signature_id)
    own = {engine.step_id(sig.id, s.title) for s in sig.next_steps}
    before = {s.id for s in first.next_steps if s.root_cause_id == second_cause.id}
    after = {s.id for s in second.next_steps if s.root_cause_id == second_cause.id}
    assert own <= after, "every step of the accepted signature is offered"
    assert after - before, "drilling in brings steps that were not shown before"
    assert second.next_steps[0].root_cause_id == accepted.id
    # later turns keep drilling even when the accepted cause is not in the latest answer's list
    third = ask(PENDING, "", session=followed(session, second))
    assert third.root_causes[0].id == accepted.id and third.root_causes[0].status == "accepted"


def test_accepting_a_step_moves_on_to_the_steps_after_it() -> None:
    session = Session(id="s-step")
    first = ask(PENDING, "", session=session)
    done = first.next_steps[0]
    session = followed(session, first, (done.id, "next_step", "accept"))
    second = ask(PENDING, "", session=session)
    same = {s.id: s for s in second.next_steps}
    assert same[done.id].status == "accepted"
    open_steps = [s for s in second.next_steps if s.status == "open"]
    assert open_steps[0].id != done.id
    assert second.next_steps.index(same[done.id]) > second.next_steps.index(open_steps[-1]), (
        "done steps go last"
    )
    sig_steps = [s for s in first.next_steps if s.root_cause_id == done.root_cause_id]
    new_ids = {s.id for s in second.next_steps} - {s.id for s in first.next_steps}
    assert any(s.root_cause_id == done.root_cause_id for s in second.next_steps if s.id in new_ids), (
        "the step that follows the one done is offered"
    )
    assert len(sig_steps) >= 2
    assert all(done.title not in text for text in second.recommendations)


def test_the_engine_does_not_write_into_the_report() -> None:
    logs, metrics = scenario(OOM_CRASHLOOP)
    report = analyze(logs=list(logs), metrics=list(metrics), knowledge=knowledge())
    before = report.model_dump_json()
    top = report.root_causes[0]
    case = IncidentCase(
        id="inc-reco-oom",
        title="Recommendation pods restarting",
        category=top.category,
        root_cause="model cache grew past the container memory limit",
        fix="raised the memory limit and capped the cache",
    )
    hit = SimilarIncident(id=case.id, title=case.title, score=0.9, category=case.category)
    question = Question(user_id="u", logs=list(logs))
    first = engine.answer(
        question, session=Session(id="s"), knowledge=knowledge(), report=report, similar=[hit], cases=[case]
    )
    assert any(case.id in note for note in first.root_causes[0].evidence.notes), "the answer has the note"
    session = followed(Session(id="s"), first, (first.root_causes[1].id, "root_cause", "reject"))
    engine.answer(
        question, session=session, knowledge=knowledge(), report=report, similar=[hit], cases=[case]
    )
    assert report.model_dump_json() == before, "the report is left as the analysis made it"


CERT_EXPIRED = "05-ledger-cert-expired"
CA_QUESTION = "could it be the CA? billing logged `x509: certificate signed by unknown authority`"


def test_a_rejected_cause_does_not_silence_other_evidence_of_its_category() -> None:
    case = IncidentCase(
        id="inc-ledger-ca",
        title="Billing cannot verify ledger after CA rotation",
        category=Category.TLS_CERTIFICATE,
        root_cause="ledger's certificate came from the new intermediate CA missing from billing's bundle",
        fix="added the intermediate CA to the shared trust bundle",
    )
    hit = SimilarIncident(id=case.id, title=case.title, score=0.8, category=case.category, fix=case.fix)
    session = Session(id="s-alt")
    first = ask(CERT_EXPIRED, "", session=session)
    top = first.root_causes[0]
    assert top.category is Category.TLS_CERTIFICATE
    session = followed(session, first, (top.id, "root_cause", "reject"))
    second = ask(CERT_EXPIRED, "", session=session, similar=[hit], cases=[case])
    assert top.id not in {c.id for c in second.root_causes}
    alternative = [c for c in second.root_causes if c.category is Category.TLS_CERTIFICATE]
    assert alternative, "the past incident is heard as an alternative hypothesis"
    assert case.id in alternative[0].evidence.notes[0]
    assert alternative[0].confidence < top.confidence
    assert any("rejected earlier" in note for note in alternative[0].evidence.notes)


def test_an_accepted_cause_stays_the_working_hypothesis() -> None:
    session = Session(id="s-keep")
    first = ask(CERT_EXPIRED, CA_QUESTION, session=session)
    ca = next(c for c in first.root_causes if c.signature_id == "tls-unknown-authority")
    session = followed(session, first, (ca.id, "root_cause", "accept"))
    second = ask(CERT_EXPIRED, "what should I check next?", session=session)
    kept = second.root_causes[0]
    assert kept.id == ca.id and kept.status == "accepted"
    assert kept.confidence >= ca.confidence
    sig = knowledge().get("tls-unknown-authority")
    assert {engine.step_id(sig.id, s.title) for s in sig.next_steps} <= {s.id for s in second.next_steps}
    third = ask(CERT_EXPIRED, "anything else?", session=followed(session, second))
    again = third.root_causes[0]
    assert again.id == ca.id and again.status == "accepted"
    assert again.confidence == kept.confidence, "no compounding from turn to turn"
    assert again.evidence.notes.count(engine.CARRIED_NOTE) <= 1


# --- the question alone ------------------------------------------------------------------------------------

X509_QUESTION = "billing calls fail with x509: certificate has expired or is not yet valid"


def _query_only(question: str, kb: KnowledgeBase) -> str:
    answer = engine.answer(Question(user_id="u", query=question), session=Session(id="s-memo"), knowledge=kb)
    return answer.model_dump_json(exclude={"created_at"})


def test_question_matches_are_not_shared_between_knowledge_bases() -> None:
    full = KnowledgeBase.load()
    without_tls = KnowledgeBase([s for s in full.signatures if s.category is not Category.TLS_CERTIFICATE])
    assert "tls_certificate" in _query_only(X509_QUESTION, full)
    assert "tls_certificate" not in _query_only(X509_QUESTION, without_tls)
