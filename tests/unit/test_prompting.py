"""Prompt building: compressed evidence, token budget, and no secret ever placed in a prompt."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from importlib import resources

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from core.answers import RequestKind, SimilarIncident, Turn
from core.errors import InputError
from core.models import (
    Anomaly,
    Category,
    Evidence,
    ParseIssue,
    Report,
    RootCause,
    Severity,
    Suspect,
    TemplateSummary,
    TimeRange,
)
from core.prompting import Prompt, SignatureMatch, build_prompt, estimate_tokens, render_template
from core.redact import Redactor

SYSTEM = (resources.files("faultmaven") / "prompts" / "system.md").read_text(encoding="utf-8")
USER = (resources.files("faultmaven") / "prompts" / "answer.md").read_text(encoding="utf-8")

SECRETS = {
    "db_password": "Tr0ub4dor&3xyz",
    "aws": "AKIAZ7QWERTY12345678",
    "github": "ghp_" + "R2d2C3poBb8" * 3 + "abc",
    "jwt": "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJvcHMtYm90In0.c2lnbmF0dXJlLXZhbHVl",
    "slack": "xoxb-2048-4096-AbCdEfGhIjKlMnOp",
    "email": "dana.oncall@example-corp.com",
    "openai": "sk-proj-Zx81lPq0Aa77Bb66Cc55Dd44",
    "bearer": "b3ar3r-T0k3n-9f8e7d6c5b4a",
}
T0 = datetime(2024, 5, 1, 10, 0, tzinfo=UTC)


def _report(templates: int = 6, anomalies: int = 3) -> Report:
    base_templates = [
        TemplateSummary(
            id="T1",
            template="FATAL: sorry, too many clients already",
            count=1832,
            severity=Severity.FATAL,
            example=(
                "2024-05-01T10:02:11Z orders-api FATAL: sorry, too many clients already "
                f"dsn=postgres://orders:{SECRETS['db_password']}@orders-db:5432/orders"
            ),
            anomalous=True,
            score=9.1,
        ),
        TemplateSummary(
            id="T2",
            template="upstream request failed auth=<*>",
            count=412,
            severity=Severity.ERROR,
            example=f"upstream request failed Authorization: Bearer {SECRETS['bearer']}",
            score=4.0,
        ),
        TemplateSummary(
            id="T3",
            template="using AWS key <*> for s3 upload",
            count=12,
            severity=Severity.WARN,
            example=f"using AWS key {SECRETS['aws']} for s3 upload",
        ),
        TemplateSummary(
            id="T4",
            template="webhook token <*> rejected",
            count=7,
            severity=Severity.ERROR,
            example=f"webhook token {SECRETS['slack']} rejected for {SECRETS['email']}",
        ),
    ]
    for i in range(templates):
        base_templates.append(
            TemplateSummary(
                id=f"N{i}",
                template=f"GET /api/v1/orders/<*> 200 in <*> ms shard={i} " + "x" * 40,
                count=50_000 - i,
                severity=Severity.INFO,
                example=f"GET /api/v1/orders/{1000 + i} 200 in 12 ms shard={i}",
            )
        )
    return Report(
        summary="1832 FATAL connection errors from orders-api starting 10:02; orders-db refused new clients.",
        time_range=TimeRange(start=T0, end=T0 + timedelta(minutes=30)),
        incident_start=T0 + timedelta(minutes=2),
        counts_by_severity={"FATAL": 1832, "ERROR": 419, "INFO": 61000},
        counts_by_service={"orders-api": 60000, "payments": 3251},
        records=63251,
        templates=base_templates,
        anomalies=[
            Anomaly(
                kind="error_burst",
                source="logs",
                subject="T1",
                start=T0 + timedelta(minutes=2),
                score=8.5 - 0.1 * k,
                direction="up",
                service="orders-api",
                description=f"burst {k}: FATAL rate went from 0 to 61/s; token={SECRETS['github']}",
            )
            for k in range(anomalies)
        ],
        suspects=[Suspect(name="orders-db", kind="dependency", score=0.9, reason="refuses new clients")],
        root_causes=[
            RootCause(
                title="orders-db connection limit reached",
                category=Category.CONNECTION_POOL_EXHAUSTION,
                confidence=0.82,
                evidence=Evidence(template_ids=["T1"], notes=["max_connections=100 reached at 10:02"]),
                suspect="orders-db",
            )
        ],
        issues=[ParseIssue(source="app.log", line=17, message="unparseable timestamp")],
    )


def _history(n: int = 2) -> list[Turn]:
    return [
        Turn(
            number=i + 1,
            question=f"why is checkout failing? my jwt is {SECRETS['jwt']}",
            kind=RequestKind.QUERY_AND_DATA,
            user_id="U123",
            answer_summary=f"turn {i + 1}: the orders database refuses new connections",
        )
        for i in range(n)
    ]


def _build(
    *, budget: int = 6000, question: str | None = None, report: Report | None = None, **kw: object
) -> Prompt:
    return build_prompt(
        question=question
        if question is not None
        else f"orders-api is down, I use OPENAI key {SECRETS['openai']} and ping {SECRETS['email']}",
        report=report if report is not None else _report(),
        signatures=[
            SignatureMatch(id="pg-too-many-clients", title="PostgreSQL max_connections reached", score=0.93)
        ],
        similar=[
            SimilarIncident(
                id="inc-7",
                title="orders-db exhausted connections after deploy",
                score=0.71,
                category=Category.CONNECTION_POOL_EXHAUSTION,
                root_cause="pgbouncer pool too small",
                fix=f"raised pool size; rotated password={SECRETS['db_password']}",
            )
        ],
        history=kw.get("history", _history()),  # type: ignore[arg-type]
        rejected=kw.get("rejected", ["Restart orders-api pods"]),  # type: ignore[arg-type]
        accepted=kw.get("accepted", ["Check pg_stat_activity"]),  # type: ignore[arg-type]
        budget_tokens=budget,
        redactor=Redactor(),
        system_template=SYSTEM,
        user_template=USER,
    )


def _all_text(prompt: Prompt) -> str:
    return "\n".join(m.content for m in prompt.messages)


def test_prompt_carries_compressed_evidence_and_no_secret() -> None:
    prompt = _build()
    text = _all_text(prompt)
    for name, secret in SECRETS.items():
        assert secret not in text, name
    assert [m.role for m in prompt.messages] == ["system", "user"]
    user = prompt.messages[1].content
    assert "1832× FATAL ANOMALOUS [T1]: FATAL: sorry, too many clients already" in user
    assert "postgres://orders:[REDACTED:password]@orders-db:5432/orders" in user
    assert "orders-db connection limit reached [connection_pool_exhaustion, confidence 0.82]" in user
    assert "PostgreSQL max_connections reached [pg-too-many-clients, score 0.93]" in user
    assert "REJECTED (do not propose again): Restart orders-api pods" in user
    assert "CONFIRMED (build on it): Check pg_stat_activity" in user
    assert "turn 1: asked" in user
    assert "connection_pool_exhaustion" in prompt.messages[0].content  # categories filled in
    assert "{categories}" not in prompt.messages[0].content
    assert prompt.redactions["password"] >= 2
    assert prompt.redactions["email"] >= 2
    assert prompt.redactions["jwt"] >= 1
    assert prompt.estimated_tokens <= 6000
    assert prompt.dropped == {}


def test_bulk_logs_are_never_dumped() -> None:
    prompt = _build(report=_report(templates=200, anomalies=40))
    user = prompt.messages[1].content
    template_lines = [line for line in user.splitlines() if line.startswith("- ") and "× " in line]
    assert len(template_lines) == 25  # top templates only, of 204
    assert sum("ANOMALOUS" in line for line in template_lines) == 1
    assert user.count("error_burst") <= 15


@pytest.mark.parametrize("budget", [900, 1200, 2000, 3000])
def test_prompt_fits_tight_budgets_dropping_least_important_first(budget: int) -> None:
    prompt = _build(budget=budget, report=_report(templates=60, anomalies=15), history=_history(8))
    assert prompt.estimated_tokens <= budget
    user = prompt.messages[1].content
    assert "REJECTED (do not propose again): Restart orders-api pods" in user
    assert "orders-api is down" in user
    assert prompt.dropped
    # the least important sections are trimmed first: if anything more important lost a line, the session
    # history is down to its floor (2 of 8 turns) and the parse issues are gone
    important = {"overview", "root_causes", "signatures", "anomalies", "templates", "suspects", "similar"}
    if important & set(prompt.dropped):
        assert prompt.dropped.get("history", 0) >= 6
        assert prompt.dropped.get("issues", 0) == 1
    if budget >= 2000:
        assert "1832× FATAL ANOMALOUS [T1]" in user
        assert "orders-db connection limit reached" in user
        assert "error_burst" in user


def test_budget_too_small_for_the_templates_is_a_clear_error() -> None:
    with pytest.raises(InputError, match="budget of 300 tokens cannot hold"):
        _build(budget=300)


def test_long_question_is_cut_to_fit() -> None:
    question = "connection refused from orders-api to orders-db " * 2000
    prompt = _build(budget=1500, question=question)
    assert prompt.estimated_tokens <= 1500
    assert "connection refused from orders-api" in prompt.messages[1].content


def test_question_keeps_its_lines() -> None:
    question = "after the deploy we see:\nFATAL: sorry, too many clients already\nfrom orders-api"
    prompt = _build(question=question)
    assert question in prompt.messages[1].content


def test_empty_question_and_no_report() -> None:
    prompt = build_prompt(
        question="  ",
        report=None,
        signatures=[],
        similar=[],
        history=[],
        rejected=[],
        accepted=[],
        budget_tokens=2000,
        redactor=Redactor(),
        system_template=SYSTEM,
        user_template=USER,
    )
    user = prompt.messages[1].content
    assert "(no question: analyse the data)" in user
    assert "(first question)" in user
    assert "(none)" in user


def test_ip_redaction_follows_the_redactor() -> None:
    question = "orders-api at 10.20.30.40 cannot reach 10.20.30.41:5432"
    plain = _build(question=question)
    assert "10.20.30.40" in plain.messages[1].content
    strict = build_prompt(
        question=question,
        report=None,
        signatures=[],
        similar=[],
        history=[],
        rejected=[],
        accepted=[],
        budget_tokens=2000,
        redactor=Redactor(redact_ips=True),
        system_template=SYSTEM,
        user_template=USER,
    )
    assert "10.20.30.4" not in strict.messages[1].content
    assert strict.redactions == {"ipv4": 2}


def test_template_placeholders_are_checked() -> None:
    assert render_template('{"a": 1} {x}', {"x": "y"}, allowed=frozenset({"x"}), name="t") == '{"a": 1} y'
    with pytest.raises(InputError, match=r"'user' uses unknown placeholder\(s\) \['nope'\]"):
        render_template("{x} {nope}", {"x": ""}, allowed=frozenset({"x"}), name="user")
    with pytest.raises(InputError, match=r"'system' lacks placeholder\(s\) \['categories'\]"):
        render_template("no placeholders", {}, allowed=frozenset({"categories"}), name="system")


def test_estimate_tokens_is_reasonable() -> None:
    assert estimate_tokens("") == 0
    assert estimate_tokens("hello world") == 4
    assert estimate_tokens("2024-05-01T10:02:11Z") == 13  # digits and symbols cost more than chars/4
    text = "FATAL: sorry, too many clients already " * 100
    assert len(text) / 5 < estimate_tokens(text) < len(text) / 2


# A bare password has no shape to recognise; it is caught in context (key=value, URL, header).
PLANTED = (
    [(f"PGPASSWORD={SECRETS['db_password']}", SECRETS["db_password"])]
    + [(value, value) for name, value in SECRETS.items() if name not in {"db_password", "bearer"}]
    + [(f"Authorization: Bearer {SECRETS['bearer']}", SECRETS["bearer"])]
)


@settings(max_examples=80, deadline=None)
@given(
    before=st.text(max_size=80),
    after=st.text(max_size=80),
    planted=st.sampled_from(PLANTED),
    budget=st.integers(min_value=900, max_value=8000),
)
def test_planted_secret_in_question_never_reaches_the_prompt(
    before: str, after: str, planted: tuple[str, str], budget: int
) -> None:
    text_in, secret = planted
    question = f"{before} {text_in} {after}"
    prompt = _build(budget=budget, question=question)
    text = _all_text(prompt)
    if secret not in before + after:
        assert secret not in text
    assert prompt.estimated_tokens <= budget
