"""The troubleshooting engine's contract: what a question looks like, what an answer holds, and the session
state (turns, feedback, resolution) that shapes the next answer. Field names are part of the public API."""

from __future__ import annotations

from datetime import UTC, datetime
from enum import StrEnum
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from core.models import Category, Evidence, MetricSeries, Report


def utcnow() -> datetime:
    return datetime.now(UTC)


class RequestKind(StrEnum):
    QUERY_ONLY = "query_only"
    DATA_ONLY = "data_only"
    QUERY_AND_DATA = "query_and_data"


class LogInput(BaseModel):
    """One log source handed to the engine: lines from the API, a downloaded Slack file, an OpenSearch pull."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(default="<memory>", max_length=300)
    lines: list[str] = Field(default_factory=list)
    format: str | None = Field(default=None, description="A normalizer format id; None detects it.")


class Question(BaseModel):
    """One request to the engine, whatever edge it came from."""

    model_config = ConfigDict(extra="forbid")

    user_id: str = Field(min_length=1, max_length=200)
    query: str = Field(default="", max_length=20_000)
    logs: list[LogInput] = Field(default_factory=list)
    metrics: list[MetricSeries] = Field(default_factory=list)
    session_id: str | None = Field(default=None, max_length=200)
    channel: str | None = Field(default=None, description="Where it came from, e.g. a Slack channel id.")

    @property
    def kind(self) -> RequestKind:
        has_query = bool(self.query.strip())
        has_data = any(log.lines for log in self.logs) or bool(self.metrics)
        if has_query and has_data:
            return RequestKind.QUERY_AND_DATA
        if has_data:
            return RequestKind.DATA_ONLY
        return RequestKind.QUERY_ONLY


ItemStatus = Literal["open", "accepted", "rejected"]


class NextStep(BaseModel):
    model_config = ConfigDict(extra="forbid")

    id: str = Field(description="Stable: the same step gets the same id in every answer of every session.")
    title: str
    command: str | None = None
    why: str = ""
    category: Category | None = None
    root_cause_id: str | None = Field(default=None, description="The root cause this step investigates.")
    status: ItemStatus = "open"


class RankedCause(BaseModel):
    model_config = ConfigDict(extra="forbid")

    id: str = Field(description="Stable id of this hypothesis (category + signature/subject).")
    title: str
    category: Category
    confidence: float = Field(ge=0.0, le=1.0)
    evidence: Evidence = Field(default_factory=Evidence)
    suspect: str | None = None
    signature_id: str | None = Field(default=None, description="Knowledge-base signature that matched.")
    status: ItemStatus = "open"


class SimilarIncident(BaseModel):
    model_config = ConfigDict(extra="forbid")

    id: str
    title: str
    score: float = Field(ge=0.0, le=1.0)
    category: Category | None = None
    root_cause: str = ""
    fix: str = ""
    kind: Literal["incident", "runbook", "signature"] = "incident"
    resolved_at: datetime | None = None


class Answer(BaseModel):
    """The engine's reply. `recommendations` is the seed's contract; the rest is structured detail."""

    model_config = ConfigDict(extra="forbid")

    session_id: str
    turn: int = Field(ge=1)
    kind: RequestKind
    engine: Literal["llm", "deterministic"]
    engine_note: str | None = Field(
        default=None, description="Why the deterministic engine answered, if an LLM is configured."
    )
    summary: str
    recommendations: list[str] = Field(default_factory=list)
    root_causes: list[RankedCause] = Field(default_factory=list)
    next_steps: list[NextStep] = Field(default_factory=list)
    similar_incidents: list[SimilarIncident] = Field(default_factory=list)
    insights: list[str] = Field(default_factory=list)
    analysis: Report | None = None
    created_at: datetime = Field(default_factory=utcnow)


class Feedback(BaseModel):
    model_config = ConfigDict(extra="forbid")

    session_id: str
    item_id: str
    item_kind: Literal["next_step", "root_cause"]
    verdict: Literal["accept", "reject"]
    user_id: str
    comment: str = Field(default="", max_length=2000)
    created_at: datetime = Field(default_factory=utcnow)


class Turn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    number: int = Field(ge=1)
    question: str
    kind: RequestKind
    user_id: str
    answer_summary: str
    root_cause_ids: list[str] = Field(default_factory=list)
    next_step_ids: list[str] = Field(default_factory=list)
    template_ids: list[str] = Field(default_factory=list)
    categories: list[Category] = Field(default_factory=list)
    created_at: datetime = Field(default_factory=utcnow)


class IncidentCase(BaseModel):
    """A resolved incident, stored so later retrieval can find it."""

    model_config = ConfigDict(extra="forbid")

    id: str
    title: str
    team: str = "default"
    session_id: str | None = None
    category: Category = Category.UNKNOWN
    root_cause: str
    fix: str
    symptoms: list[str] = Field(default_factory=list, description="Templates, errors and anomalies seen.")
    template_ids: list[str] = Field(default_factory=list)
    services: list[str] = Field(default_factory=list)
    resolved_by: str | None = None
    created_at: datetime = Field(default_factory=utcnow)

    def search_text(self) -> str:
        return "\n".join(
            [self.title, self.category.value, self.root_cause, self.fix, *self.symptoms, *self.services]
        )


class Session(BaseModel):
    model_config = ConfigDict(extra="forbid")

    id: str
    created_at: datetime = Field(default_factory=utcnow)
    updated_at: datetime = Field(default_factory=utcnow)
    channel: str | None = None
    turns: list[Turn] = Field(default_factory=list)
    feedback: list[Feedback] = Field(default_factory=list)
    last_answer: Answer | None = None
    resolved: IncidentCase | None = None

    def verdicts(self) -> dict[str, Literal["accept", "reject"]]:
        """The latest verdict on each item id."""
        out: dict[str, Literal["accept", "reject"]] = {}
        for item in self.feedback:
            out[item.item_id] = item.verdict
        return out


class ResolveRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    user_id: str
    title: str | None = Field(default=None, max_length=300)
    root_cause: str = Field(min_length=1, max_length=5000)
    fix: str = Field(min_length=1, max_length=5000)
    category: Category | None = None
