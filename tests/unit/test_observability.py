"""Tracing is only paid for when spans go somewhere; stage latencies are measured either way."""

from __future__ import annotations

from collections.abc import Sequence

import pytest
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult

from faultmaven.observability import Metrics, otlp_traces_url, setup_tracing
from faultmaven.settings import Settings


class _Collected(SpanExporter):
    def __init__(self) -> None:
        self.spans: list[ReadableSpan] = []

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        self.spans.extend(spans)
        return SpanExportResult.SUCCESS

    def shutdown(self) -> None:
        return None


def _stage_count(metrics: Metrics, stage: str) -> float:
    value = metrics.registry.get_sample_value(
        "faultmaven_engine_stage_duration_seconds_count", {"stage": stage}
    )
    return value or 0.0


def test_no_exporter_means_no_recorded_spans_but_stage_latency_is_still_measured() -> None:
    metrics = Metrics()
    tracing = setup_tracing(Settings(_env_file=None), metrics=metrics)
    with tracing.stage("analyze", attributes={"sources": 2}) as span:
        assert not span.is_recording()
    assert _stage_count(metrics, "analyze") == 1.0
    tracing.shutdown()


def test_spans_are_recorded_with_their_attributes_when_an_exporter_is_configured() -> None:
    metrics = Metrics()
    exporter = _Collected()
    tracing = setup_tracing(Settings(_env_file=None), metrics=metrics, exporter=exporter)
    with pytest.raises(ValueError), tracing.stage("analyze", attributes={"sources": 2}) as span:
        assert span.is_recording()
        raise ValueError("bad input")
    tracing.shutdown()  # flushes the batch processor
    [recorded] = exporter.spans
    assert recorded.name == "stage.analyze"
    assert recorded.attributes is not None and recorded.attributes["sources"] == 2
    assert recorded.status.description is not None and recorded.status.description.startswith("ValueError")
    assert _stage_count(metrics, "analyze") == 1.0


@pytest.mark.parametrize(
    ("endpoint", "url"),
    [
        ("http://otel:4318", "http://otel:4318/v1/traces"),
        ("http://otel:4318/", "http://otel:4318/v1/traces"),
        ("https://otel.example/collector/v1/traces", "https://otel.example/collector/v1/traces"),
    ],
)
def test_otlp_url_gets_the_traces_path_once(endpoint: str, url: str) -> None:
    assert otlp_traces_url(endpoint) == url
