"""Request and response bodies of the HTTP API (the engine's own models are reused where they fit)."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Discriminator, Field, StringConstraints, Tag

from core.answers import IncidentCase, SimilarIncident
from core.models import Category, MetricSeries
from faultmaven.stores.base import AuditEvent
from handlers.problems import union_tag

_USER_ID_DOC = (
    "Who is asking. Ignored when the request carries a bearer token: the token's 'sub' is the user id. "
    "Required when the server runs without authentication."
)


SNAPSHOT_TAG = union_tag("snapshot")
SERIES_TAG = union_tag("series")


def _metrics_shape(value: Any) -> str:
    return SERIES_TAG if isinstance(value, list) else SNAPSHOT_TAG


MetricName = Annotated[str, StringConstraints(min_length=1, max_length=200, pattern=r"\S")]
FiniteNumber = Annotated[float, Field(allow_inf_nan=False)]
MetricsSnapshot = Annotated[
    dict[MetricName, FiniteNumber],
    Tag(SNAPSHOT_TAG),
    Field(
        description="One value per metric name, e.g. {\"cpu_usage\": 92}. A 'timestamp' (or 'ts', 'time') "
        "key holding epoch seconds or milliseconds dates them all."
    ),
]
MetricsSeriesList = Annotated[list[MetricSeries], Tag(SERIES_TAG)]
MetricsInput = Annotated[MetricsSnapshot | MetricsSeriesList, Discriminator(_metrics_shape)]


class QueryRequest(BaseModel):
    """The seed's query contract."""

    model_config = ConfigDict(extra="forbid")

    user_id: str | None = Field(default=None, min_length=1, max_length=200, description=_USER_ID_DOC)
    query: str = Field(default="", max_length=20_000, description="The question, in plain words.")
    logs: list[str] = Field(default_factory=list, description="Raw log lines, any supported format.")
    metrics: MetricsInput | None = Field(
        default=None, description="A snapshot object or a list of metric series."
    )
    session_id: str | None = Field(
        default=None, min_length=1, max_length=200, description="Continue this session."
    )


class FeedbackRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    item_id: str = Field(min_length=1, max_length=200, description="A next step's or root cause's id.")
    item_kind: Literal["next_step", "root_cause"]
    verdict: Literal["accept", "reject"]
    comment: str = Field(default="", max_length=2000)
    user_id: str | None = Field(default=None, min_length=1, max_length=200, description=_USER_ID_DOC)


class ResolveBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    root_cause: str = Field(min_length=1, max_length=5000)
    fix: str = Field(min_length=1, max_length=5000)
    title: str | None = Field(default=None, max_length=300)
    category: Category | None = None
    user_id: str | None = Field(default=None, min_length=1, max_length=200, description=_USER_ID_DOC)


class IncidentsQuery(BaseModel):
    model_config = ConfigDict(extra="forbid")

    q: str | None = Field(default=None, max_length=2000, description="Words describing the problem.")
    limit: int = Field(default=10, ge=1, le=50)


class IncidentsResponse(BaseModel):
    model_config = ConfigDict(extra="forbid")

    query: str | None
    incidents: list[IncidentCase] = Field(
        description="Stored incident cases containing every query word (newest first); "
        "the most recent ones when there is no query."
    )
    similar: list[SimilarIncident] = Field(
        description="Past incidents, runbooks and signatures ranked by similarity to the query."
    )


class AuditQuery(BaseModel):
    model_config = ConfigDict(extra="forbid")

    limit: int = Field(default=100, ge=1, le=1000)
    action: str | None = Field(default=None, min_length=1, max_length=100)


class AuditResponse(BaseModel):
    model_config = ConfigDict(extra="forbid")

    events: list[AuditEvent]


class Health(BaseModel):
    model_config = ConfigDict(extra="forbid")

    status: Literal["ok"] = "ok"


class Readiness(BaseModel):
    model_config = ConfigDict(extra="forbid")

    status: Literal["ready", "not_ready"]
    checks: dict[str, bool] = Field(description="Each dependency and whether it answered.")
