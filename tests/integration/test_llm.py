"""The LLM client and the API embedder against a real HTTP fake of the OpenAI API, using the real openai
client: every failure mode comes back typed, and no planted secret ever reaches the server."""

from __future__ import annotations

import asyncio
import copy
import json
import socket
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import numpy as np
import pytest

from core.answers import RequestKind, SimilarIncident, Turn
from core.errors import DependencyError, InputError
from core.models import Category, Report, Severity, TemplateSummary
from core.prompting import Prompt, PromptMessage, SignatureMatch, build_prompt
from core.redact import Redactor
from core.retrieval import HashedEmbedder
from faultmaven.embedders import OpenAIEmbedder, make_embedder
from faultmaven.llm import LLMClient, extract_json_object, load_prompt_templates
from faultmaven.settings import Settings
from tests.integration.fake_openai import VALID_ANSWER, FakeOpenAI, Reply

API_KEY = "sk-test-fake-openai-key-0000000000"


def _settings(base_url: str, **overrides: object) -> Settings:
    values: dict[str, object] = {
        "llm_base_url": base_url,
        "llm_api_key": API_KEY,
        "llm_model": "fake-model",
        "llm_timeout_seconds": 2.0,
        "embedding_model": "fake-embed",
        "outbound_timeout_seconds": 2.0,
    }
    values.update(overrides)
    return Settings(_env_file=None, **values)  # type: ignore[arg-type, call-arg]


def _prompt(text: str = "why are checkouts failing?") -> Prompt:
    return Prompt(
        messages=[
            PromptMessage(role="system", content="Reply in JSON."),
            PromptMessage(role="user", content=text),
        ],
        estimated_tokens=20,
    )


@pytest.fixture
async def client(fake_openai: FakeOpenAI) -> AsyncIterator[LLMClient]:
    llm = LLMClient(_settings(fake_openai.base_url))
    try:
        yield llm
    finally:
        await llm.close()


async def test_valid_answer(fake_openai: FakeOpenAI, client: LLMClient) -> None:
    fake_openai.play(Reply.answer())
    result = await client.complete(_prompt())
    assert result.ok, result.detail
    assert result.output is not None
    assert result.output.root_causes[0].category is Category.CONNECTION_POOL_EXHAUSTION
    assert result.output.next_steps[0].root_cause_index == 0
    assert result.prompt_tokens is not None and result.prompt_tokens > 0
    assert result.error_kind is None
    [request] = fake_openai.requests
    assert request.path == "/v1/chat/completions"
    assert request.body["model"] == "fake-model"
    assert request.body["response_format"] == {"type": "json_object"}
    assert [m["role"] for m in request.body["messages"]] == ["system", "user"]
    assert request.headers["Authorization"] == f"Bearer {API_KEY}"


async def test_fenced_json_inside_prose_is_accepted(fake_openai: FakeOpenAI, client: LLMClient) -> None:
    fake_openai.play(Reply.answer(fenced=True))
    result = await client.complete(_prompt())
    assert result.ok, result.detail
    assert result.output is not None
    assert result.output.summary == VALID_ANSWER["summary"]


async def test_malformed_json_is_invalid_output(fake_openai: FakeOpenAI, client: LLMClient) -> None:
    fake_openai.play(Reply.text('{"summary": "orders-db is down", "root_causes": [ {"title": '))
    result = await client.complete(_prompt())
    assert not result.ok
    assert result.error_kind == "invalid_output"
    assert result.detail == "no JSON object in the reply"
    assert result.output is None


async def test_truncated_reply_says_so(fake_openai: FakeOpenAI, client: LLMClient) -> None:
    fake_openai.play(Reply.text('{"summary": "orders-db', finish_reason="length"))
    result = await client.complete(_prompt())
    assert result.error_kind == "invalid_output"
    assert result.detail == "the reply was cut off before the JSON ended"


async def test_json_failing_validation_is_invalid_output(fake_openai: FakeOpenAI, client: LLMClient) -> None:
    bad = copy.deepcopy(VALID_ANSWER)
    bad["root_causes"][0]["confidence"] = 1.7
    bad["root_causes"][0]["category"] = "cosmic_rays"
    fake_openai.play(Reply.answer(bad))
    result = await client.complete(_prompt())
    assert result.error_kind == "invalid_output"
    assert result.detail is not None
    assert "root_causes.0.category" in result.detail
    assert "root_causes.0.confidence" in result.detail
    assert "cosmic_rays" not in result.detail  # the model's values are not echoed


async def test_dangling_step_link_is_invalid_output(fake_openai: FakeOpenAI, client: LLMClient) -> None:
    bad = copy.deepcopy(VALID_ANSWER)
    bad["next_steps"][0]["root_cause_index"] = 3
    fake_openai.play(Reply.answer(bad))
    result = await client.complete(_prompt())
    assert result.error_kind == "invalid_output"
    assert "root_cause_index is 3 but there are 1 root causes" in (result.detail or "")


async def test_empty_content_is_invalid_output(fake_openai: FakeOpenAI, client: LLMClient) -> None:
    fake_openai.play(Reply(content=None))
    result = await client.complete(_prompt())
    assert result.error_kind == "invalid_output"
    assert result.detail == "the model returned no content"


async def test_non_json_http_body_is_invalid_output(fake_openai: FakeOpenAI, client: LLMClient) -> None:
    fake_openai.play(Reply(raw_body="<html><body>502 Bad Gateway</body></html>"))
    result = await client.complete(_prompt())
    assert not result.ok
    assert result.error_kind == "invalid_output"


async def test_slow_server_times_out(fake_openai: FakeOpenAI) -> None:
    llm = LLMClient(_settings(fake_openai.base_url, llm_timeout_seconds=0.4))
    fake_openai.play(Reply.slow(5.0))
    try:
        result = await llm.complete(_prompt())
    finally:
        await llm.close()
    assert result.error_kind == "timeout"
    assert result.detail == "no answer within 0.4s"
    assert 0.3 < result.latency_s < 2.0


async def test_http_500_is_http_error_without_retries(fake_openai: FakeOpenAI, client: LLMClient) -> None:
    fake_openai.play(Reply.http_error(500))
    result = await client.complete(_prompt())
    assert result.error_kind == "http_error"
    assert result.detail == "the LLM server answered HTTP 500 [server_error]"
    assert len(fake_openai.requests) == 1


async def test_http_429_reports_rate_limit(fake_openai: FakeOpenAI, client: LLMClient) -> None:
    fake_openai.play(Reply.http_error(429, code="rate_limit_exceeded", headers={"Retry-After": "7"}))
    result = await client.complete(_prompt())
    assert result.error_kind == "http_error"
    assert (
        result.detail
        == "the LLM server answered HTTP 429 (rate limited, retry after 7s) [rate_limit_exceeded]"
    )


async def test_connection_refused(fake_openai: FakeOpenAI) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    llm = LLMClient(_settings(f"http://127.0.0.1:{port}/v1"))
    try:
        result = await llm.complete(_prompt())
    finally:
        await llm.close()
    assert result.error_kind == "connection"
    assert result.detail is not None and result.detail.startswith("cannot reach the LLM server")


async def test_server_without_json_mode_is_tolerated(fake_openai: FakeOpenAI, client: LLMClient) -> None:
    refusal = Reply(
        status=400,
        error_body={
            "error": {"message": "response_format is not supported by this model", "type": "invalid"}
        },
    )
    fake_openai.play(refusal, Reply.answer(fenced=True), Reply.answer())
    first = await client.complete(_prompt())
    second = await client.complete(_prompt())
    assert first.ok and second.ok
    assert [("response_format" in r.body) for r in fake_openai.requests] == [True, False, False]


async def test_other_400s_are_not_retried(fake_openai: FakeOpenAI, client: LLMClient) -> None:
    fake_openai.play(Reply.http_error(400, code="context_length_exceeded"))
    result = await client.complete(_prompt())
    assert result.detail == "the LLM server answered HTTP 400 [context_length_exceeded]"
    assert len(fake_openai.requests) == 1


def test_unconfigured_llm_is_refused() -> None:
    with pytest.raises(InputError, match="no LLM is configured"):
        LLMClient(Settings(_env_file=None, llm_base_url=None, llm_api_key=None))  # type: ignore[call-arg]


def test_extract_json_object() -> None:
    assert extract_json_object('{"a": 1}') == {"a": 1}
    assert extract_json_object('Sure! {"a": {"b": [1, 2]}} hope it helps {"c": 3}') == {"a": {"b": [1, 2]}}
    assert extract_json_object('```json\n{"a": 2}\n```') == {"a": 2}
    assert extract_json_object('[1, 2] then {broken then {"ok": true}') == {"ok": True}
    assert extract_json_object("no json at all") is None
    assert extract_json_object("[1, 2]") is None


# --- no secret reaches the provider -------------------------------------------------------------------------

PLANTED = {
    "pg": "Sup3rS3cret!pg",
    "aws": "AKIAQWERTYUIOPASDFGH",
    "ghp": "ghp_" + "Zz9" * 12,
    "email": "oncall.lead@example-corp.com",
    "jwt": "eyJhbGciOiJIUzI1NiJ9.eyJ1c2VyIjoiYWRtaW4ifQ.QmFzZTY0U2lnbmF0dXJl",
    "stripe": "sk_live_" + "4eC39HqLyjWDarjtT1zdp7dc",
}


async def test_no_planted_secret_reaches_the_server(fake_openai: FakeOpenAI, client: LLMClient) -> None:
    templates = load_prompt_templates()
    report = Report(
        summary=f"errors from checkout; alerts mailed to {PLANTED['email']}",
        records=5000,
        templates=[
            TemplateSummary(
                id="T1",
                template="connect to <*> failed",
                count=900,
                severity=Severity.ERROR,
                example=f"connect to postgres://checkout:{PLANTED['pg']}@pg-main:5432/shop failed",
                anomalous=True,
            ),
            TemplateSummary(
                id="T2",
                template="s3 upload with key <*> denied",
                count=40,
                severity=Severity.WARN,
                example=f"s3 upload with key {PLANTED['aws']} denied",
            ),
        ],
    )
    prompt = build_prompt(
        question=f"checkout broke after deploy; CI token {PLANTED['ghp']}, stripe {PLANTED['stripe']}",
        report=report,
        signatures=[SignatureMatch(id="db-auth", title="database authentication failure", score=0.8)],
        similar=[
            SimilarIncident(id="inc-1", title="db password rotated", score=0.6, fix=f"jwt={PLANTED['jwt']}")
        ],
        history=[
            Turn(
                number=1,
                question=f"is it auth? session {PLANTED['jwt']}",
                kind=RequestKind.QUERY_ONLY,
                user_id="U1",
                answer_summary="possibly",
                created_at=datetime(2024, 5, 1, tzinfo=UTC),
            )
        ],
        rejected=[f"rotate key {PLANTED['aws']}"],
        accepted=[],
        budget_tokens=4000,
        redactor=Redactor(),
        system_template=templates.system,
        user_template=templates.user,
    )
    result = await client.complete(prompt)
    assert result.ok, result.detail
    sent = fake_openai.raw_bodies()
    assert "pg-main:5432" in sent  # the context is there...
    for name, secret in PLANTED.items():
        assert secret not in sent, name  # ...the secrets are not
        assert json.dumps(secret)[1:-1] not in sent, name
    assert prompt.redactions["password"] >= 1


# --- embeddings over the same API ---------------------------------------------------------------------------


async def test_openai_embedder_against_the_fake(fake_openai: FakeOpenAI) -> None:
    settings = _settings(fake_openai.base_url, embedder="openai")
    embedder = await asyncio.to_thread(make_embedder, settings)
    assert isinstance(embedder, OpenAIEmbedder)
    assert embedder.dimension == 64  # learned from one probe request
    texts = [f"FATAL: too many clients already #{i}" for i in range(300)] + [""]
    vectors = await asyncio.to_thread(embedder.embed, texts)
    embedder.close()
    expected = HashedEmbedder(dimension=64).embed([t if t else " " for t in texts])
    assert vectors.shape == (301, 64)
    assert np.allclose(vectors, expected, atol=1e-6)
    embed_requests = [r for r in fake_openai.requests if r.path == "/v1/embeddings"]
    assert [len(r.body["input"]) for r in embed_requests] == [1, 128, 128, 45]
    assert all(r.body["model"] == "fake-embed" for r in embed_requests)


async def test_openai_embedder_failure_is_a_dependency_error() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    embedder = OpenAIEmbedder(
        model="text-embedding-3-small", base_url=f"http://127.0.0.1:{port}/v1", api_key=None, timeout_s=1.0
    )
    assert embedder.dimension == 1536  # known model: no probe
    with pytest.raises(DependencyError, match="unreachable"):
        await asyncio.to_thread(embedder.embed, ["x"])
    embedder.close()


def test_sentence_transformers_is_optional() -> None:
    try:
        import sentence_transformers  # noqa: F401
    except ImportError:
        with pytest.raises(InputError, match=r"faultmaven\[embeddings\]"):
            make_embedder(Settings(_env_file=None, embedder="sentence-transformers"))  # type: ignore[call-arg]
    else:
        pytest.skip("sentence-transformers is installed; the missing-extra path cannot be exercised")


def test_hashed_is_the_default_embedder() -> None:
    embedder = make_embedder(Settings(_env_file=None))  # type: ignore[call-arg]
    assert isinstance(embedder, HashedEmbedder)
