"""The TroubleshootingService end to end on real stores (embedded SQLite, and Redis + PostgreSQL started by
the harness) and, for the LLM path, against a real-HTTP fake of the OpenAI API through the real client."""

from __future__ import annotations

import base64
import copy
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from core.answers import Answer, Feedback, LogInput, Question, RequestKind, ResolveRequest
from core.errors import ConflictError, NotFoundError
from core.metrics import read_metrics
from core.models import Category, MetricSeries
from faultmaven.service import TroubleshootingService, create_troubleshooter
from faultmaven.settings import Settings
from faultmaven.stores import Stores, open_stores
from tests.integration.fake_openai import VALID_ANSWER, FakeOpenAI, Reply

pytestmark = pytest.mark.integration

SCENARIOS = Path(__file__).resolve().parents[1] / "scenarios"
CERT_EXPIRED = "05-ledger-cert-expired"
RATE_LIMIT = "08-sms-gateway-429"
X509_QUESTION = "billing says `x509: certificate has expired or is not yet valid` calling ledger, why?"
CA_QUESTION = (
    "the certificate dates look fine to me. Could it be the CA instead? "
    "billing also logged `x509: certificate signed by unknown authority`"
)
NOT_LOGS = {".yaml", ".csv", ".md"}

# Secrets planted in the data and the question; none may reach the LLM server.
AWS_KEY = "AKIAQ3LEDGERX7EXAMPL"  # 20 characters, like a real access key id
PASSWORD = "Tr0ub4dor-ledger-9"
DSN = "postgres://billing_app:Ledg3rDbPass@ledger-db.payments.internal:5432/ledger"
DSN_PASSWORD = "Ledg3rDbPass"
SLACK_TOKEN = "xoxb-2047318842-4409927710-kR8vTqZmNw3LpYx6BcHd2Jfa"
EMAIL = "maria.oncall@shop-payments.example.com"
PEM_BODY = "MIIEvgIBADANBgkqhkiG9w0BAQEFAASCBKgwggSkAgEAAoIBAQC7VJTUt9Us8cKj"
PEM = f"-----BEGIN PRIVATE KEY-----\n{PEM_BODY}\nMkQ2bW9ja2tleWRhdGFmb3J0ZXN0c29ubHk=\n-----END PRIVATE KEY-----"
ENCRYPTION_KEY = "k-svc-2026:" + base64.b64encode(bytes(range(100, 132))).decode()
SECRETS = [AWS_KEY, PASSWORD, DSN, DSN_PASSWORD, SLACK_TOKEN, EMAIL, PEM_BODY]


def scenario(name: str) -> tuple[list[LogInput], list[MetricSeries]]:
    folder = SCENARIOS / name
    logs = [
        LogInput(name=path.name, lines=path.read_text(encoding="utf-8").splitlines())
        for path in sorted(folder.iterdir())
        if path.suffix not in NOT_LOGS
    ]
    metrics_file = folder / "metrics.csv"
    return logs, read_metrics(metrics_file) if metrics_file.exists() else []


def leaky_log() -> LogInput:
    """A billing debug log that dumps its configuration on every failed ledger call, PEM key included."""
    lines: list[str] = []
    for second in range(12, 52, 2):
        lines += [
            f"2026-02-01 00:00:{second:02d},118 ERROR [billing.ledger_client] ledger client settings dump: "
            f"dsn={DSN} aws_access_key_id={AWS_KEY} password={PASSWORD} notify={SLACK_TOKEN} owner={EMAIL}",
            f"2026-02-01 00:00:{second:02d},120 ERROR [billing.ledger_client] client key loaded from vault:",
            *PEM.splitlines(),
        ]
    return LogInput(name="billing-debug.log", lines=lines)


@dataclass
class Backend:
    name: str
    settings: Settings


@pytest.fixture(params=["sqlite", "redis+postgres"])
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Backend:
    if request.param == "sqlite":
        return Backend("sqlite", Settings(_env_file=None, data_dir=tmp_path / "data"))
    settings = Settings(
        _env_file=None,
        data_dir=tmp_path / "data",
        redis_url=request.getfixturevalue("redis_url"),
        postgres_dsn=request.getfixturevalue("postgres_dsn"),
        encryption_keys=ENCRYPTION_KEY,
    )
    return Backend(request.param, settings)


@pytest.fixture
async def service(backend: Backend) -> AsyncIterator[TroubleshootingService]:
    async with running(backend.settings) as svc:
        yield svc


class running:
    """An async context: stores opened and the service built from ``settings``, both closed afterwards."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.stores: Stores | None = None
        self.service: TroubleshootingService | None = None

    async def __aenter__(self) -> TroubleshootingService:
        self.stores = await open_stores(self.settings)
        self.service = await create_troubleshooter(self.settings, self.stores)
        return self.service

    async def __aexit__(self, *exc: object) -> None:
        if self.service is not None:
            await self.service.close()
        if self.stores is not None:
            await self.stores.close()


def ids(answer: Answer) -> set[str]:
    return {c.id for c in answer.root_causes} | {s.id for s in answer.next_steps}


def feedback(answer: Answer, item_id: str, verdict: str) -> Feedback:
    kind = "root_cause" if item_id.startswith("rc-") else "next_step"
    return Feedback(
        session_id=answer.session_id,
        item_id=item_id,
        item_kind=kind,
        verdict=verdict,
        user_id="U-maria",
        comment=f"{verdict}ed in the test",
    )


# --- adaptive handling through the service ---------------------------------------------------------------


async def test_three_kinds_of_request(service: TroubleshootingService) -> None:
    query_only = await service.ask(Question(user_id="U-maria", query=X509_QUESTION))
    assert query_only.kind is RequestKind.QUERY_ONLY
    assert query_only.analysis is None
    assert query_only.root_causes[0].category is Category.TLS_CERTIFICATE

    logs, metrics = scenario(RATE_LIMIT)
    data_only = await service.ask(Question(user_id="U-maria", logs=logs, metrics=metrics))
    assert data_only.kind is RequestKind.DATA_ONLY
    assert data_only.analysis is not None and data_only.analysis.records
    assert data_only.root_causes[0].category is Category.RATE_LIMITING
    assert data_only.root_causes[0].evidence.lines

    both = await service.ask(Question(user_id="U-maria", query="why are SMS not being sent?", logs=logs))
    assert both.kind is RequestKind.QUERY_AND_DATA
    assert both.analysis is not None
    assert both.root_causes[0].category is Category.RATE_LIMITING
    # three separate sessions, each with one turn
    assert len({query_only.session_id, data_only.session_id, both.session_id}) == 3
    assert query_only.turn == data_only.turn == both.turn == 1
    assert both.engine == "deterministic" and both.engine_note is None


async def test_feedback_on_an_unknown_item_or_session_is_refused(service: TroubleshootingService) -> None:
    answer = await service.ask(Question(user_id="U-maria", query=X509_QUESTION))
    with pytest.raises(NotFoundError):
        await service.feedback(feedback(answer, "rc-dns_failure-0000000000", "reject"))
    with pytest.raises(NotFoundError):
        await service.feedback(feedback(answer.model_copy(update={"session_id": "nope"}), "x", "reject"))
    assert await service.stores.history.list_feedback(answer.session_id) == []


# --- session learning: three turns, then resolve, then a new session finds the case ------------------------


async def test_session_learning_across_three_turns_and_resolution(
    service: TroubleshootingService, backend: Backend
) -> None:
    logs, _ = scenario(CERT_EXPIRED)

    # turn 1: the logs and the pasted error
    first = await service.ask(Question(user_id="U-maria", query=X509_QUESTION, logs=logs))
    session_id = first.session_id
    top_cause, top_step = first.root_causes[0], first.next_steps[0]
    rejected_category = top_cause.category
    assert rejected_category is Category.TLS_CERTIFICATE
    await service.feedback(feedback(first, top_cause.id, "reject"))
    await service.feedback(feedback(first, top_step.id, "reject"))

    # turn 2: the same session never shows the rejected items; its category is trusted less
    second = await service.ask(
        Question(user_id="U-maria", query=CA_QUESTION, logs=logs, session_id=session_id)
    )
    baseline = await service.ask(Question(user_id="U-maria", query=CA_QUESTION, logs=logs))
    assert max(c.confidence for c in baseline.root_causes if c.category == rejected_category) > max(
        c.confidence for c in second.root_causes if c.category == rejected_category
    )
    assert second.session_id == session_id and second.turn == 2
    assert top_cause.id not in ids(second) and top_step.id not in ids(second)
    assert all(top_step.title not in text for text in second.recommendations)
    same_category = [c for c in second.root_causes if c.category == rejected_category]
    assert same_category, "an alternative hypothesis of the rejected category is still heard"
    for cause in same_category:
        assert cause.confidence < top_cause.confidence
        assert any("rejected earlier" in note for note in cause.evidence.notes)
        before = next((c for c in first.root_causes if c.id == cause.id), None)
        if before is not None:
            assert cause.confidence < before.confidence

    # turn 3: accepting a root cause drills into it
    chosen = same_category[0]
    assert chosen.signature_id is not None
    await service.feedback(feedback(second, chosen.id, "accept"))
    third = await service.ask(
        Question(user_id="U-maria", query="what should I check next?", logs=logs, session_id=session_id)
    )
    assert third.turn == 3
    drilled = third.root_causes[0]
    assert drilled.id == chosen.id and drilled.status == "accepted"
    signature = service.knowledge.get(chosen.signature_id)
    own_titles = {step.title for step in signature.next_steps}
    third_titles = [s.title for s in third.next_steps if s.root_cause_id == chosen.id]
    assert own_titles <= set(third_titles), "all of the accepted signature's steps"
    earlier = {s.id for s in second.next_steps}
    assert any(s.id not in earlier for s in third.next_steps if s.root_cause_id == chosen.id)
    assert third.next_steps[0].root_cause_id == chosen.id
    assert top_cause.id not in ids(third) and top_step.id not in ids(third)

    # the feedback is in the session store and in the history store
    stored = await service.get_session(session_id)
    assert [t.number for t in stored.turns] == [1, 2, 3]
    assert [(f.item_id, f.verdict) for f in stored.feedback] == [
        (top_cause.id, "reject"),
        (top_step.id, "reject"),
        (chosen.id, "accept"),
    ]
    history = await service.stores.history.list_feedback(session_id)
    assert sorted((f.item_id, f.verdict) for f in history) == sorted(
        (f.item_id, f.verdict) for f in stored.feedback
    )

    # resolve; a new session about a similar problem retrieves the case
    case = await service.resolve(
        session_id,
        ResolveRequest(
            user_id="U-maria",
            title="Billing and invoicing cannot verify ledger's certificate",
            root_cause="ledger's renewed serving certificate was issued by the new intermediate CA, "
            "which the billing and invoicing trust bundles did not contain yet",
            fix="added the new intermediate CA to the shared trust bundle and restarted billing and invoicing",
        ),
    )
    assert case.category is Category.TLS_CERTIFICATE, "taken from the accepted cause"
    assert (await service.get_session(session_id)).resolved == case
    assert await service.stores.history.get_incident(case.id) == case

    fresh = await service.ask(
        Question(
            user_id="U-ahmed",
            query="invoicing cannot call ledger: x509 certificate signed by unknown authority",
        )
    )
    assert fresh.session_id != session_id and fresh.turn == 1
    found = [hit for hit in fresh.similar_incidents if hit.id == case.id]
    assert found and found[0].fix == case.fix and found[0].category is Category.TLS_CERTIFICATE
    assert any(case.id in step.title for step in fresh.next_steps)

    # a restarted service (vector index rebuilt or reloaded from disk) still finds it
    async with running(backend.settings) as restarted:
        hits = await restarted.search_incidents("ledger certificate unknown authority", limit=3)
        assert case.id in {hit.id for hit in hits}


# --- the LLM path ----------------------------------------------------------------------------------------


def llm_settings(tmp_path: Path, server: FakeOpenAI, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "data_dir": tmp_path / "data",
        "llm_base_url": server.base_url,
        "llm_api_key": "sk-test-fake-0000000000000000000000",
        "llm_model": "fake-model",
        "llm_timeout_seconds": 3.0,
    }
    values.update(overrides)
    return Settings(_env_file=None, **values)


async def test_a_valid_llm_answer_is_used(tmp_path: Path, fake_openai: FakeOpenAI) -> None:
    fake_openai.play(Reply.answer(fenced=True))
    logs, _ = scenario(CERT_EXPIRED)
    async with running(llm_settings(tmp_path, fake_openai)) as svc:
        answer = await svc.ask(Question(user_id="U-maria", query=X509_QUESTION, logs=logs))
    assert answer.engine == "llm" and answer.engine_note is None
    assert answer.summary == VALID_ANSWER["summary"]
    assert [c.title for c in answer.root_causes] == [VALID_ANSWER["root_causes"][0]["title"]]
    assert answer.root_causes[0].category is Category.CONNECTION_POOL_EXHAUSTION
    assert answer.root_causes[0].evidence.notes == VALID_ANSWER["root_causes"][0]["evidence"]
    step = answer.next_steps[0]
    assert step.title == "Count connections by client" and step.command is not None
    assert step.root_cause_id == answer.root_causes[0].id
    assert answer.analysis is not None, "the analysis is still attached"
    assert VALID_ANSWER["insights"][0] in answer.insights
    chat = [r for r in fake_openai.requests if r.path.endswith("/chat/completions")]
    assert len(chat) == 1
    assert "certificate has expired" in chat[0].raw


BROKEN = copy.deepcopy(VALID_ANSWER)
BROKEN["root_causes"][0]["confidence"] = 1.7


@pytest.mark.parametrize(
    ("reply", "why"),
    [
        (Reply.text('{"summary": "orders-db refuses connections", "root_causes": [{"title": '), "JSON"),
        (Reply.answer(BROKEN), "schema"),
        (Reply.slow(5.0), "timeout"),
        (Reply.http_error(500), "HTTP 500"),
    ],
    ids=["malformed-json", "fails-validation", "slow", "http-500"],
)
async def test_llm_failures_fall_back_to_the_deterministic_engine(
    tmp_path: Path, fake_openai: FakeOpenAI, reply: Reply, why: str
) -> None:
    fake_openai.play(reply)
    logs, _ = scenario(CERT_EXPIRED)
    question = Question(user_id="U-maria", query=X509_QUESTION, logs=logs)
    async with running(llm_settings(tmp_path, fake_openai, llm_timeout_seconds=0.5)) as svc:
        answer = await svc.ask(question)
        stored = await svc.get_session(answer.session_id)
    async with running(Settings(_env_file=None, data_dir=tmp_path / "plain")) as plain:
        expected = await plain.ask(question)
    assert answer.engine == "deterministic"
    assert answer.engine_note is not None and why in answer.engine_note
    assert [c.id for c in answer.root_causes] == [c.id for c in expected.root_causes]
    assert [s.id for s in answer.next_steps] == [s.id for s in expected.next_steps]
    assert answer.root_causes[0].category is Category.TLS_CERTIFICATE
    assert stored.last_answer is not None and stored.last_answer.engine_note == answer.engine_note


async def test_planted_secrets_never_reach_the_llm(tmp_path: Path, fake_openai: FakeOpenAI) -> None:
    logs, _ = scenario(CERT_EXPIRED)
    question = Question(
        user_id="U-maria",
        query=(
            f"billing logs `x509: certificate has expired` with dsn {DSN} and password={PASSWORD}; "
            f"key {AWS_KEY}, token {SLACK_TOKEN}, ask {EMAIL}. Key block:\n{PEM}\nwhat is wrong with ledger?"
        ),
        logs=[*logs, leaky_log()],
    )
    async with running(llm_settings(tmp_path, fake_openai)) as svc:
        first = await svc.ask(question)
        await svc.feedback(feedback(first, first.next_steps[0].id, "reject"))
        await svc.ask(question.model_copy(update={"session_id": first.session_id}))
        stored = await svc.get_session(first.session_id)
    bodies = fake_openai.raw_bodies()
    decoded = "\n".join(
        m["content"] for r in fake_openai.requests for m in r.body.get("messages", []) if m.get("content")
    )
    assert len(fake_openai.requests) == 2
    assert "what is wrong with ledger" in decoded, "the question did reach the model"
    assert "settings dump" in decoded, "the leaky log lines did reach the model"
    for secret in SECRETS:
        assert secret not in bodies, secret
        assert secret not in decoded, secret
    assert "BEGIN PRIVATE KEY" not in decoded or PEM_BODY not in decoded
    # nor are they kept in the session's turn history
    turns = json.dumps([t.model_dump(mode="json") for t in stored.turns])
    for secret in SECRETS:
        assert secret not in turns, secret


async def test_rejected_items_stay_out_even_when_the_llm_repeats_them(
    tmp_path: Path, fake_openai: FakeOpenAI
) -> None:
    logs, _ = scenario(CERT_EXPIRED)
    extra_cause = {
        "title": "ledger serving certificate expired",
        "category": "tls_certificate",
        "confidence": 0.9,
        "evidence": ["certificate verify failed: certificate has expired"],
    }
    extra_step = {"title": "Read the certificate dates", "command": "openssl s_client -connect ledger:8443"}
    repeated = copy.deepcopy(VALID_ANSWER)
    repeated["root_causes"].append(extra_cause)
    repeated["next_steps"].append(extra_step)
    fake_openai.play(Reply.answer(), Reply.answer(repeated), Reply.answer(repeated))
    async with running(llm_settings(tmp_path, fake_openai)) as svc:
        first = await svc.ask(Question(user_id="U-maria", query=X509_QUESTION, logs=logs))
        assert first.engine == "llm"
        await svc.feedback(feedback(first, first.root_causes[0].id, "reject"))
        await svc.feedback(feedback(first, first.next_steps[0].id, "reject"))
        later = []
        for _ in range(2):
            later.append(
                await svc.ask(
                    Question(user_id="U-maria", query=X509_QUESTION, logs=logs, session_id=first.session_id)
                )
            )
    rejected_titles = {first.root_causes[0].title, first.next_steps[0].title}
    for answer in later:
        assert answer.engine == "llm"
        titles = {c.title for c in answer.root_causes} | {s.title for s in answer.next_steps}
        assert titles.isdisjoint(rejected_titles), titles
        assert first.root_causes[0].id not in ids(answer) and first.next_steps[0].id not in ids(answer)
        assert {"ledger serving certificate expired", "Read the certificate dates"} <= titles
    # the model was told what was rejected
    assert first.root_causes[0].title in fake_openai.requests[1].raw


async def test_a_rejected_deterministic_cause_is_dropped_when_the_llm_repeats_it_later(
    tmp_path: Path, fake_openai: FakeOpenAI
) -> None:
    logs, _ = scenario(CERT_EXPIRED)
    fake_openai.play(Reply.http_error(503))
    async with running(llm_settings(tmp_path, fake_openai)) as svc:
        first = await svc.ask(Question(user_id="U-maria", query=X509_QUESTION, logs=logs))
        assert first.engine == "deterministic"
        cause, step = first.root_causes[0], first.next_steps[0]
        await svc.feedback(feedback(first, cause.id, "reject"))
        await svc.feedback(feedback(first, step.id, "reject"))
        parroting = {
            "summary": "The ledger TLS setup is broken.",
            "root_causes": [
                {"title": cause.title, "category": cause.category.value, "confidence": 0.9},
                {"title": "ledger certificate not renewed", "category": "tls_certificate", "confidence": 0.7},
            ],
            "next_steps": [{"title": step.title.upper(), "command": step.command}, {"title": "Renew it"}],
        }
        fake_openai.play(Reply.answer(parroting), Reply.answer(parroting))
        answers = [
            await svc.ask(
                Question(user_id="U-maria", query=X509_QUESTION, logs=logs, session_id=first.session_id)
            )
            for _ in range(2)
        ]
    for answer in answers:
        assert answer.engine == "llm"
        assert [c.title for c in answer.root_causes] == ["ledger certificate not renewed"]
        assert [s.title for s in answer.next_steps] == ["Renew it"]


async def test_secrets_never_reach_a_remote_embedder(tmp_path: Path, fake_openai: FakeOpenAI) -> None:
    settings = llm_settings(tmp_path, fake_openai, embedder="openai", embedding_model="fake-embed")
    fake_openai.play(Reply.http_error(500), Reply.http_error(500))
    async with running(settings) as svc:
        first = await svc.ask(
            Question(user_id="U-maria", query=f"ledger rejects {DSN} with password={PASSWORD}, key {AWS_KEY}")
        )
        await svc.resolve(
            first.session_id,
            ResolveRequest(
                user_id="U-maria",
                title=f"ledger db login failed for {EMAIL}",
                root_cause=f"the billing_app role password was rotated; the old password={PASSWORD} was cached",
                fix=f"restarted billing with the new secret; the slack bot ({SLACK_TOKEN}) announced it",
            ),
        )
        hits = await svc.search_incidents(f"password rotated for the billing_app role {AWS_KEY}")
    assert hits and hits[0].title.startswith("ledger db login failed")
    embeddings = [r for r in fake_openai.requests if r.path.endswith("/embeddings")]
    assert len(embeddings) >= 3, "question, resolved case and search were all embedded remotely"
    bodies = "\n".join(r.raw for r in embeddings)
    assert "billing_app role" in bodies
    for secret in SECRETS:
        assert secret not in bodies, secret


async def test_an_unexpected_failure_on_the_llm_path_leaves_the_deterministic_answer(
    tmp_path: Path, fake_openai: FakeOpenAI, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def explode(prompt: object) -> object:
        raise RuntimeError(f"internal detail that must not be shown: {PASSWORD}")

    async with running(llm_settings(tmp_path, fake_openai)) as svc:
        assert svc.llm is not None
        monkeypatch.setattr(svc.llm, "complete", explode)
        answer = await svc.ask(Question(user_id="U-maria", query=X509_QUESTION))
        stored = await svc.get_session(answer.session_id)
    assert answer.engine == "deterministic"
    assert answer.engine_note is not None and "failed unexpectedly" in answer.engine_note
    assert PASSWORD not in answer.model_dump_json()
    assert answer.root_causes[0].category is Category.TLS_CERTIFICATE
    assert [t.number for t in stored.turns] == [1], "the turn was still saved"


async def test_a_verdict_lost_from_the_session_copy_is_still_honoured(
    service: TroubleshootingService,
) -> None:
    """Two writers saving one session can drop a verdict from the session copy; the durable history keeps it,
    and the next answer follows it."""
    first = await service.ask(Question(user_id="U-maria", query=X509_QUESTION))
    step = first.next_steps[0].id
    stale = await service.get_session(
        first.session_id
    )  # read before the verdict, as a concurrent writer would
    await service.feedback(feedback(first, step, "reject"))
    await service.stores.sessions.save_session(
        stale
    )  # ...and saved after it: the verdict is gone from the copy
    assert (await service.get_session(first.session_id)).feedback == []

    second = await service.ask(Question(user_id="U-maria", query=X509_QUESTION, session_id=first.session_id))
    assert step not in ids(second)


async def test_a_session_is_resolved_once(service: TroubleshootingService) -> None:
    answer = await service.ask(Question(user_id="U-maria", query=X509_QUESTION))
    request = ResolveRequest(user_id="U-maria", root_cause="expired ingress certificate", fix="renewed it")
    case = await service.resolve(answer.session_id, request)
    with pytest.raises(ConflictError) as raised:
        await service.resolve(answer.session_id, request.model_copy(update={"fix": "something else"}))
    assert case.id in raised.value.user_message
    stored = await service.stores.history.get_incident(case.id)
    assert stored is not None and stored.fix == "renewed it"
