"""The LLM client: any OpenAI-compatible chat completions server (OpenAI, Azure OpenAI through its
OpenAI-compatible base URL, vLLM, Ollama, llama.cpp server, LiteLLM...).

:meth:`LLMClient.complete` never raises for provider problems: a timeout, an HTTP error, a refused
connection or an answer that is not the JSON we asked for all come back as a typed :class:`LLMResult`
failure, so the engine can fall back to its deterministic answer and say why.

Prompts are files in ``faultmaven/prompts`` (package data), loaded by :func:`load_prompt_templates`.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
import time
from importlib import resources
from typing import Any, Literal

import openai
from openai.types.chat import ChatCompletion
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from core.errors import InputError
from core.models import Category
from core.prompting import Prompt
from faultmaven.settings import Settings

logger = logging.getLogger(__name__)

ErrorKind = Literal["timeout", "http_error", "invalid_output", "connection"]
PLACEHOLDER_API_KEY = "not-needed"  # local servers (Ollama, llama.cpp, vLLM) accept any key


class LLMCause(BaseModel):
    model_config = ConfigDict(extra="ignore", strict=False)

    title: str = Field(min_length=1, max_length=500)
    category: Category
    confidence: float = Field(ge=0.0, le=1.0)
    evidence: list[str] = Field(default_factory=list, max_length=20)


class LLMStep(BaseModel):
    model_config = ConfigDict(extra="ignore")

    title: str = Field(min_length=1, max_length=500)
    command: str | None = Field(default=None, max_length=2000)
    why: str = Field(default="", max_length=2000)
    root_cause_index: int | None = Field(default=None, ge=0)


class LLMAnswer(BaseModel):
    """The structured answer the model must return as one JSON object. Unknown keys are ignored; wrong
    types, out-of-range confidences, unknown categories and dangling ``root_cause_index`` values are not."""

    model_config = ConfigDict(extra="ignore")

    summary: str = Field(min_length=1, max_length=4000)
    root_causes: list[LLMCause] = Field(default_factory=list, max_length=10)
    next_steps: list[LLMStep] = Field(default_factory=list, max_length=15)
    insights: list[str] = Field(default_factory=list, max_length=15)

    @model_validator(mode="after")
    def _step_links_exist(self) -> LLMAnswer:
        for number, step in enumerate(self.next_steps):
            if step.root_cause_index is not None and step.root_cause_index >= len(self.root_causes):
                raise ValueError(
                    f"next_steps[{number}].root_cause_index is {step.root_cause_index} "
                    f"but there are {len(self.root_causes)} root causes"
                )
        return self


class LLMResult(BaseModel):
    model_config = ConfigDict(extra="forbid")

    ok: bool
    output: LLMAnswer | None = None
    error_kind: ErrorKind | None = None
    detail: str | None = Field(default=None, description="Operator-facing; never contains prompt text.")
    latency_s: float = Field(ge=0.0)
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    model: str | None = None


class PromptTemplates(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    system: str
    user: str


def load_prompt_templates(*, system: str = "system.md", user: str = "answer.md") -> PromptTemplates:
    """The prompt templates shipped as package data in ``faultmaven/prompts``."""
    folder = resources.files("faultmaven") / "prompts"
    try:
        return PromptTemplates(
            system=(folder / system).read_text(encoding="utf-8"),
            user=(folder / user).read_text(encoding="utf-8"),
        )
    except FileNotFoundError as exc:
        raise InputError(f"prompt template not found in faultmaven/prompts: {exc.filename}") from exc


_FENCE_RE = re.compile(r"```(?:json|JSON)?\s*\n?(.*?)```", re.DOTALL)


def extract_json_object(text: str) -> dict[str, Any] | None:
    """The first JSON object in a model's reply: the whole text, a ```json fence, or the first ``{...}``
    that parses. None when there is none."""
    stripped = text.strip()
    candidates = [stripped]
    candidates.extend(match.group(1).strip() for match in _FENCE_RE.finditer(text))
    for candidate in candidates:
        try:
            value = json.loads(candidate)
        except ValueError:
            continue
        if isinstance(value, dict):
            return value
    decoder = json.JSONDecoder()
    start = text.find("{")
    while start != -1:
        try:
            value, _end = decoder.raw_decode(text, start)
        except ValueError:
            start = text.find("{", start + 1)
            continue
        if isinstance(value, dict):
            return value
        start = text.find("{", start + 1)
    return None


def _validation_summary(exc: ValidationError) -> str:
    parts = []
    for error in exc.errors(include_input=False, include_url=False)[:5]:
        where = ".".join(str(p) for p in error["loc"]) or "answer"
        parts.append(f"{where}: {error['msg']}")
    more = exc.error_count() - len(parts)
    return "; ".join(parts) + (f" (+{more} more)" if more > 0 else "")


class LLMClient:
    """Chat completions against the configured OpenAI-compatible server, asking for JSON."""

    def __init__(self, settings: Settings) -> None:
        if not settings.llm_base_url and settings.llm_api_key is None:
            raise InputError(
                "no LLM is configured: set FAULTMAVEN_LLM_BASE_URL (and FAULTMAVEN_LLM_API_KEY if the server "
                "needs one)"
            )
        api_key = settings.llm_api_key.get_secret_value() if settings.llm_api_key else PLACEHOLDER_API_KEY
        self.model = settings.llm_model
        self.timeout_s = settings.llm_timeout_seconds
        self._json_mode = True
        self._client = openai.AsyncOpenAI(
            base_url=settings.llm_base_url or None,
            api_key=api_key,
            timeout=settings.llm_timeout_seconds,
            max_retries=0,
        )

    async def close(self) -> None:
        await self._client.close()

    async def complete(self, prompt: Prompt) -> LLMResult:
        started = time.monotonic()
        try:
            async with asyncio.timeout(self.timeout_s + 1.0):
                response = await self._create(prompt)
        except (TimeoutError, openai.APITimeoutError):
            return self._fail("timeout", f"no answer within {self.timeout_s:g}s", started)
        except openai.APIStatusError as exc:
            return self._fail("http_error", _status_detail(exc), started)
        except openai.APIConnectionError as exc:
            cause = type(exc.__cause__).__name__ if exc.__cause__ else "connection error"
            return self._fail("connection", f"cannot reach the LLM server ({cause})", started)
        except openai.APIResponseValidationError:
            return self._fail("invalid_output", "the server's response is not a chat completion", started)
        except openai.OpenAIError as exc:
            return self._fail("http_error", f"LLM client error ({type(exc).__name__})", started)

        if not isinstance(response, ChatCompletion):
            # e.g. an HTML error page from a proxy, served with status 200
            return self._fail("invalid_output", "the server's response is not a chat completion", started)
        usage = response.usage
        prompt_tokens = usage.prompt_tokens if usage else None
        completion_tokens = usage.completion_tokens if usage else None
        choice = response.choices[0] if response.choices else None
        content = choice.message.content if choice is not None else None
        if not content:
            return self._fail(
                "invalid_output", "the model returned no content", started, prompt_tokens, completion_tokens
            )
        data = extract_json_object(content)
        if data is None:
            truncated = choice is not None and choice.finish_reason == "length"
            detail = (
                "the reply was cut off before the JSON ended" if truncated else "no JSON object in the reply"
            )
            return self._fail("invalid_output", detail, started, prompt_tokens, completion_tokens)
        try:
            answer = LLMAnswer.model_validate(data)
        except ValidationError as exc:
            return self._fail(
                "invalid_output",
                "the JSON does not match the answer schema: " + _validation_summary(exc),
                started,
                prompt_tokens,
                completion_tokens,
            )
        latency = time.monotonic() - started
        logger.info(
            "llm answered",
            extra={
                "latency_s": round(latency, 3),
                "prompt_tokens": prompt_tokens,
                "completion_tokens": completion_tokens,
                "model": self.model,
            },
        )
        return LLMResult(
            ok=True,
            output=answer,
            latency_s=latency,
            prompt_tokens=prompt_tokens,
            completion_tokens=completion_tokens,
            model=response.model or self.model,
        )

    async def _create(self, prompt: Prompt) -> Any:
        messages: list[Any] = [{"role": m.role, "content": m.content} for m in prompt.messages]
        if self._json_mode:
            try:
                return await self._client.chat.completions.create(
                    model=self.model,
                    messages=messages,
                    temperature=0.1,
                    response_format={"type": "json_object"},
                )
            except openai.BadRequestError as exc:
                if "response_format" not in _error_text(exc):
                    raise
                # Some servers refuse JSON mode; the prompt asks for JSON anyway, so go on without it.
                logger.warning("LLM server refused response_format; continuing without JSON mode")
                self._json_mode = False
        return await self._client.chat.completions.create(
            model=self.model, messages=messages, temperature=0.1
        )

    def _fail(
        self,
        kind: ErrorKind,
        detail: str,
        started: float,
        prompt_tokens: int | None = None,
        completion_tokens: int | None = None,
    ) -> LLMResult:
        latency = time.monotonic() - started
        logger.warning(
            "llm call failed",
            extra={"error_kind": kind, "detail": detail, "latency_s": round(latency, 3), "model": self.model},
        )
        return LLMResult(
            ok=False,
            error_kind=kind,
            detail=detail,
            latency_s=latency,
            prompt_tokens=prompt_tokens,
            completion_tokens=completion_tokens,
            model=self.model,
        )


def _error_text(exc: openai.APIStatusError) -> str:
    body = exc.body
    if isinstance(body, dict):
        return json.dumps(body)[:2000]
    return str(body or "")[:2000]


def _status_detail(exc: openai.APIStatusError) -> str:
    detail = f"the LLM server answered HTTP {exc.status_code}"
    retry_after = exc.response.headers.get("retry-after") if exc.response is not None else None
    if exc.status_code == 429:
        detail += " (rate limited" + (f", retry after {retry_after}s" if retry_after else "") + ")"
    body = exc.body
    if isinstance(body, dict):
        error = body.get("error", body)
        if isinstance(error, dict):
            code = error.get("code") or error.get("type")
            if isinstance(code, str) and len(code) <= 80:
                detail += f" [{code}]"
    return detail
