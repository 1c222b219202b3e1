"""Prometheus metrics and OpenTelemetry tracing for one running service.

Each service gets its own ``CollectorRegistry`` and ``TracerProvider`` (never the process-global ones), so
tests and several apps in one process do not see each other's numbers. The engine increments the LLM,
anomaly and stage instruments through the ``Metrics`` and ``Tracing`` objects it is handed.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter
from opentelemetry.trace import NoOpTracer, Span, SpanKind, Status, StatusCode, Tracer
from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

from faultmaven.settings import Settings

log = logging.getLogger(__name__)

PROMETHEUS_CONTENT_TYPE = CONTENT_TYPE_LATEST

_HTTP_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)
_ENGINE_BUCKETS = (0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0)
_LLM_BUCKETS = (0.1, 0.25, 0.5, 1.0, 2.0, 5.0, 10.0, 20.0, 30.0, 60.0, 120.0)


class Metrics:
    """Every Prometheus instrument FaultMaven exposes, registered on a private registry."""

    def __init__(self, *, multiprocess_dir: Path | None = None) -> None:
        """``multiprocess_dir``: the directory every server worker process writes its values to (the
        parent set ``PROMETHEUS_MULTIPROC_DIR`` to it before prometheus_client was imported); the exposition
        then sums all workers, so a scrape sees the whole server whichever worker answers it."""
        self.multiprocess_dir = multiprocess_dir
        self.registry = CollectorRegistry(auto_describe=True)
        reg = self.registry
        self.http_request_seconds = Histogram(
            "faultmaven_http_request_duration_seconds",
            "HTTP request latency by route template and status code.",
            ["method", "route", "status"],
            buckets=_HTTP_BUCKETS,
            registry=reg,
        )
        self.engine_seconds = Histogram(
            "faultmaven_engine_duration_seconds",
            "Time the troubleshooting engine took per operation.",
            ["operation", "outcome"],
            buckets=_ENGINE_BUCKETS,
            registry=reg,
        )
        self.stage_seconds = Histogram(
            "faultmaven_engine_stage_duration_seconds",
            "Time spent in one engine stage (normalize, mine, detect, rank, retrieve, llm...).",
            ["stage"],
            buckets=_ENGINE_BUCKETS,
            registry=reg,
        )
        self.answers = Counter(
            "faultmaven_answers_total",
            "Answers produced, by request kind and the engine that answered.",
            ["kind", "engine"],
            registry=reg,
        )
        self.llm_seconds = Histogram(
            "faultmaven_llm_request_duration_seconds",
            "Latency of calls to the LLM server.",
            ["model"],
            buckets=_LLM_BUCKETS,
            registry=reg,
        )
        self.llm_errors = Counter(
            "faultmaven_llm_errors_total",
            "Failed LLM calls by reason (timeout, http_error, invalid_response...).",
            ["model", "reason"],
            registry=reg,
        )
        self.llm_tokens = Counter(
            "faultmaven_llm_tokens_total",
            "Tokens used by LLM calls, by kind (prompt or completion).",
            ["model", "kind"],
            registry=reg,
        )
        self.anomalies = Counter(
            "faultmaven_anomalies_found_total",
            "Anomalies reported in answers, by source (logs/metrics) and kind.",
            ["source", "kind"],
            registry=reg,
        )
        self.feedback = Counter(
            "faultmaven_feedback_total",
            "Feedback verdicts received, by item kind and verdict.",
            ["item_kind", "verdict"],
            registry=reg,
        )
        self.rate_limited = Counter(
            "faultmaven_rate_limited_total",
            "Requests refused by the per-user rate limit.",
            registry=reg,
        )
        self.audit_failures = Counter(
            "faultmaven_audit_failures_total",
            "Audit events that could not be written.",
            registry=reg,
        )

    def exposition(self) -> bytes:
        """The registry in the Prometheus text exposition format."""
        if self.multiprocess_dir is not None:
            from prometheus_client.multiprocess import MultiProcessCollector

            combined = CollectorRegistry()
            MultiProcessCollector(combined, path=str(self.multiprocess_dir))  # type: ignore[no-untyped-call]
            return generate_latest(combined)
        return generate_latest(self.registry)


class Tracing:
    """A tracer bound to this service's provider, plus a helper for one span per engine stage."""

    def __init__(
        self, provider: TracerProvider, *, metrics: Metrics | None = None, exporting: bool = True
    ) -> None:
        """``exporting``: whether spans go anywhere. When they don't, the tracer is a no-op one: a span
        nobody can see is not worth its cost on every request (stage latencies are still measured)."""
        self.provider = provider
        self.tracer: Tracer = provider.get_tracer("faultmaven") if exporting else NoOpTracer()
        self._metrics = metrics

    @contextmanager
    def stage(
        self, name: str, *, attributes: Mapping[str, str | int | float | bool] | None = None
    ) -> Iterator[Span]:
        """A span (and a stage-latency observation) around one stage of the engine's work."""
        started = time.perf_counter()
        with self.tracer.start_as_current_span(f"stage.{name}", kind=SpanKind.INTERNAL) as span:
            span.set_attribute("faultmaven.stage", name)
            for key, value in (attributes or {}).items():
                span.set_attribute(key, value)
            try:
                yield span
            except Exception as exc:
                span.set_status(Status(StatusCode.ERROR, type(exc).__name__))
                raise
            finally:
                if self._metrics is not None:
                    self._metrics.stage_seconds.labels(stage=name).observe(time.perf_counter() - started)

    def shutdown(self) -> None:
        """Flush queued spans and stop the exporter."""
        self.provider.shutdown()


def otlp_traces_url(endpoint: str) -> str:
    """The OTLP/HTTP traces URL for a collector address: '/v1/traces' is added when no path is given."""
    parts = urlsplit(endpoint)
    path = parts.path.rstrip("/")
    if not path.endswith("/v1/traces"):
        path = f"{path}/v1/traces"
    return urlunsplit((parts.scheme, parts.netloc, path, parts.query, ""))


def setup_tracing(
    settings: Settings,
    *,
    metrics: Metrics | None = None,
    exporter: SpanExporter | None = None,
    service_name: str = "faultmaven",
) -> Tracing:
    """A private tracer provider: spans go to ``exporter`` if given, else to the OTLP/HTTP collector at
    ``settings.otlp_endpoint``, else nowhere (then no spans are made at all)."""
    provider = TracerProvider(resource=Resource.create({"service.name": service_name}))
    if exporter is None and settings.otlp_endpoint:
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

        url = otlp_traces_url(settings.otlp_endpoint)
        exporter = OTLPSpanExporter(endpoint=url, timeout=settings.outbound_timeout_seconds)
        log.info("exporting traces over OTLP/HTTP", extra={"otlp_url": url})
    if exporter is not None:
        provider.add_span_processor(BatchSpanProcessor(exporter))
    return Tracing(provider, metrics=metrics, exporting=exporter is not None)
