"""Typed records that flow between the stages of the analysis core.

Everything that crosses a module boundary inside ``core`` (and out of it) is one of these models:
normalizers produce :class:`LogRecord` and :class:`MetricSeries`, the miner produces
:class:`TemplateMatch`, and the analysis produces a :class:`Report`.
"""

from __future__ import annotations

from datetime import datetime
from enum import IntEnum, StrEnum
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


class Severity(IntEnum):
    """OpenTelemetry severity numbers (the first of each range)."""

    UNSPECIFIED = 0
    TRACE = 1
    DEBUG = 5
    INFO = 9
    WARN = 13
    ERROR = 17
    FATAL = 21

    @property
    def text(self) -> str:
        return self.name


class LogRecord(BaseModel):
    """One logical log record: a header-parsed line plus any continuation lines joined to it."""

    model_config = ConfigDict(extra="forbid")

    source: str = Field(description="Where the record came from: a file path, '<stdin>' or a caller's label.")
    line: int = Field(ge=1, description="First physical line of the record in its source, 1-based.")
    lines: int = Field(default=1, ge=1, description="How many physical lines the record spans.")
    timestamp: datetime | None = Field(default=None, description="UTC, timezone-aware; None when unknown.")
    severity: Severity = Severity.UNSPECIFIED
    severity_text: str | None = Field(default=None, description="The level as written in the source.")
    service: str | None = None
    host: str | None = None
    pod: str | None = None
    logger: str | None = Field(default=None, description="Logger, component or module name.")
    message: str = Field(description="The part after the header; continuation lines joined with '\\n'.")
    attributes: dict[str, str] = Field(default_factory=dict)
    format: str = Field(default="plain", description="Detected format id of the source, e.g. 'jsonl'.")

    @property
    def end_line(self) -> int:
        return self.line + self.lines - 1


class MetricPoint(BaseModel):
    model_config = ConfigDict(extra="forbid")

    timestamp: datetime | None = Field(default=None, description="UTC, timezone-aware; None for a snapshot.")
    value: float


class MetricSeries(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str
    labels: dict[str, str] = Field(default_factory=dict)
    unit: str | None = Field(
        default=None, description="'percent', 'bytes', 'seconds', 'ms', 'count'… when known."
    )
    source: str = "<memory>"
    points: list[MetricPoint] = Field(default_factory=list)

    @property
    def key(self) -> str:
        """A readable identity: name{label="value",...}."""
        if not self.labels:
            return self.name
        inner = ",".join(f'{k}="{v}"' for k, v in sorted(self.labels.items()))
        return f"{self.name}{{{inner}}}"


class ParseIssue(BaseModel):
    """Something in the input that could not be used as-is; valid input around it is kept."""

    model_config = ConfigDict(extra="forbid")

    source: str
    line: int | None = Field(default=None, description="1-based physical line, when the issue has one.")
    level: Literal["warning", "error"] = "warning"
    message: str

    def __str__(self) -> str:
        where = f"{self.source}:{self.line}" if self.line is not None else self.source
        return f"{where}: {self.message}"


class TemplateMatch(BaseModel):
    """The template a record's message belongs to, with the values that filled its placeholders."""

    model_config = ConfigDict(extra="forbid")

    template_id: str
    template: str
    params: list[str] = Field(default_factory=list)


class Category(StrEnum):
    """Root-cause taxonomy. The values are part of the public API."""

    CPU_SATURATION = "cpu_saturation"
    MEMORY_EXHAUSTION = "memory_exhaustion"
    DISK_EXHAUSTION = "disk_exhaustion"
    CONNECTION_POOL_EXHAUSTION = "connection_pool_exhaustion"
    NETWORK_LATENCY = "network_latency"
    NETWORK_UNREACHABLE = "network_unreachable"
    DNS_FAILURE = "dns_failure"
    TLS_CERTIFICATE = "tls_certificate"
    DEPENDENCY_FAILURE = "dependency_failure"
    DATABASE_ERROR = "database_error"
    RATE_LIMITING = "rate_limiting"
    TIMEOUT = "timeout"
    AUTH_FAILURE = "auth_failure"
    CONFIGURATION_ERROR = "configuration_error"
    BAD_DEPLOY = "bad_deploy"
    APPLICATION_EXCEPTION = "application_exception"
    CRASH_LOOP = "crash_loop"
    SCHEDULING_CAPACITY = "scheduling_capacity"
    QUEUE_BACKLOG = "queue_backlog"
    DATA_FORMAT_ERROR = "data_format_error"
    UNKNOWN = "unknown"


class TimeRange(BaseModel):
    model_config = ConfigDict(extra="forbid")

    start: datetime | None = None
    end: datetime | None = None


class EvidenceLine(BaseModel):
    model_config = ConfigDict(extra="forbid")

    source: str
    line: int
    text: str


class Evidence(BaseModel):
    model_config = ConfigDict(extra="forbid")

    template_ids: list[str] = Field(default_factory=list)
    series: list[str] = Field(default_factory=list, description="MetricSeries.key of the series involved.")
    lines: list[EvidenceLine] = Field(default_factory=list)
    notes: list[str] = Field(default_factory=list, description="Short human-readable facts behind a finding.")


class TemplateSummary(BaseModel):
    model_config = ConfigDict(extra="forbid")

    id: str
    template: str
    count: int
    severity: Severity
    first_seen: datetime | None = None
    last_seen: datetime | None = None
    example: str
    anomalous: bool = False
    score: float = 0.0


AnomalyKind = Literal[
    "error_burst",
    "new_template",
    "frequency_shift",
    "rare_error",
    "exception_group",
    "restart",
    "version_change",
    "spike",
    "dip",
    "level_shift",
    "multivariate_outlier",
    "threshold",
]


class Anomaly(BaseModel):
    model_config = ConfigDict(extra="forbid")

    kind: AnomalyKind
    source: Literal["logs", "metrics"]
    subject: str = Field(description="What deviated: a service, a template id, or a series key.")
    start: datetime | None = None
    end: datetime | None = None
    score: float = Field(ge=0.0, description="Strength of the deviation; comparable within one report.")
    direction: Literal["up", "down", "none"] = "none"
    magnitude: float | None = Field(
        default=None, description="Size of the deviation in the subject's own units."
    )
    service: str | None = None
    evidence: Evidence = Field(default_factory=Evidence)
    description: str = ""


class Suspect(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str
    kind: Literal["service", "pod", "host", "component", "dependency"]
    score: float = Field(ge=0.0)
    reason: str


class RootCause(BaseModel):
    model_config = ConfigDict(extra="forbid")

    title: str
    category: Category
    confidence: float = Field(ge=0.0, le=1.0)
    evidence: Evidence = Field(default_factory=Evidence)
    suspect: str | None = None
    signature_id: str | None = Field(default=None, description="The knowledge-base signature behind it.")


class Report(BaseModel):
    """The analysis of one set of logs and metrics. Field names are part of the public API."""

    model_config = ConfigDict(extra="forbid")

    summary: str
    time_range: TimeRange = Field(default_factory=TimeRange)
    time_basis: Literal["timestamps", "positions"] = "timestamps"
    incident_start: datetime | None = None
    counts_by_severity: dict[str, int] = Field(default_factory=dict)
    counts_by_service: dict[str, int] = Field(default_factory=dict)
    records: int = 0
    templates: list[TemplateSummary] = Field(default_factory=list)
    anomalies: list[Anomaly] = Field(default_factory=list)
    suspects: list[Suspect] = Field(default_factory=list)
    root_causes: list[RootCause] = Field(default_factory=list)
    issues: list[ParseIssue] = Field(default_factory=list, description="Input problems met while reading.")
