"""read_metrics over each supported format, on fixtures and inline input."""

from __future__ import annotations

import gzip
import json
from datetime import UTC, datetime
from pathlib import Path

import pytest

from core.errors import InputError
from core.metrics import METRIC_FORMATS, infer_unit, metrics_from_snapshot, parse_timestamp, read_metrics
from core.models import MetricSeries, ParseIssue

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "metrics"


def by_key(series: list[MetricSeries]) -> dict[str, MetricSeries]:
    return {s.key: s for s in series}


def test_formats_are_listed() -> None:
    assert METRIC_FORMATS[0] == "auto"
    assert {"snapshot", "csv", "prometheus", "json_points"} <= set(METRIC_FORMATS)


def test_seed_snapshot_dict() -> None:
    series = read_metrics({"cpu_usage": 92, "memory_usage": 78})
    assert [(s.name, s.unit, len(s.points)) for s in series] == [
        ("cpu_usage", "percent", 1),
        ("memory_usage", "percent", 1),
    ]
    assert series[0].points[0].timestamp is None
    assert series[0].points[0].value == 92.0


def test_snapshot_bad_values_reported_valid_kept() -> None:
    issues: list[ParseIssue] = []
    series = metrics_from_snapshot(
        {"cpu_usage": 50, "memory_usage": "NaN", "disk_usage": True, "load": "high"},
        source="alert-42",
        issues=issues,
    )
    assert [s.name for s in series] == ["cpu_usage"]
    assert len(issues) == 3
    assert all(i.source == "alert-42" for i in issues)
    assert any("memory_usage" in i.message and "finite" in i.message for i in issues)


def test_snapshot_timestamp_key_dates_points() -> None:
    series = metrics_from_snapshot({"timestamp": "2024-03-11T09:42:00Z", "cpu_usage": 97})  # type: ignore[dict-item]
    assert len(series) == 1
    assert series[0].points[0].timestamp == datetime(2024, 3, 11, 9, 42, tzinfo=UTC)


def test_snapshot_file_auto() -> None:
    series = read_metrics(FIXTURES / "snapshot.json")
    assert [s.name for s in series] == ["cpu_usage", "memory_usage", "disk_usage"]
    assert series[2].points[0].value == 41.5


def test_wide_csv_with_bad_rows() -> None:
    issues: list[ParseIssue] = []
    path = FIXTURES / "checkout_latency.csv"
    series = by_key(read_metrics(path, issues=issues))
    assert set(series) == {"p50_latency_ms", "p99_latency_ms", "error_rate_percent"}
    assert series["p50_latency_ms"].unit == "ms"
    assert series["error_rate_percent"].unit == "percent"
    # 60 data rows; one garbage timestamp drops the whole row, the NaN drops one value,
    # the truncated row keeps its first value only.
    assert len(series["p50_latency_ms"].points) == 58
    assert len(series["p99_latency_ms"].points) == 58
    first = series["p50_latency_ms"].points[0]
    assert first.timestamp == datetime(2024, 3, 11, 9, 0, tzinfo=UTC)
    lines = {i.line for i in issues}
    assert {21, 34, 51} <= lines  # physical lines of the NaN, the short row and the bad timestamp
    assert all(i.source == str(path) for i in issues)
    assert any("not-a-time" in i.message for i in issues)


def test_long_form_csv_labels() -> None:
    series = by_key(read_metrics(FIXTURES / "pods_long.csv"))
    assert len(series) == 6
    key = 'cpu_usage_percent{pod="payments-7d9f8b6c5-x2k4q",service="payments"}'
    assert key in series
    cpu = series[key]
    assert cpu.unit == "percent"
    assert len(cpu.points) == 40
    mem = series['memory_working_set_bytes{pod="ledger-5c6d7e8f9-p0q1r",service="ledger"}']
    assert mem.unit == "bytes"


def test_long_form_with_metric_column() -> None:
    text = (
        "timestamp,metric,host,value\n"
        "1710147600,node_load1,db-1,0.5\n"
        "1710147660,node_load1,db-1,0.7\n"
        "1710147600,disk_used_percent,db-1,81\n"
    )
    series = by_key(read_metrics(text))
    assert set(series) == {'node_load1{host="db-1"}', 'disk_used_percent{host="db-1"}'}
    assert series['disk_used_percent{host="db-1"}'].unit == "percent"


def test_headerless_csv_and_value_column_named_from_source() -> None:
    series = read_metrics(
        b"2024-03-11 09:00:00,1.5\n2024-03-11 09:01:00,1.7\n", name="uploads/api_latency_seconds.csv"
    )
    assert len(series) == 1
    assert series[0].name == "api_latency_seconds"
    assert series[0].unit == "seconds"
    assert series[0].source == "uploads/api_latency_seconds.csv"


def test_semicolon_and_header_units() -> None:
    series = by_key(read_metrics("time;latency (ms);cpu [%]\n2024-03-11T09:00:00Z;12;40\n"))
    assert series["latency"].unit == "ms"
    assert series["cpu"].unit == "percent"


def test_gzip_file() -> None:
    series = read_metrics(FIXTURES / "node_memory_utilization.csv.gz")
    assert len(series) == 1
    assert series[0].name == "node_memory_utilization"
    assert series[0].unit == "percent"
    assert len(series[0].points) == 25


def test_gzip_bytes_and_corrupt_gzip() -> None:
    data = gzip.compress(b"timestamp,value\n2024-03-11T09:00:00Z,3\n")
    assert len(read_metrics(data)[0].points) == 1
    issues: list[ParseIssue] = []
    assert read_metrics(data[:20], name="trunc.gz", issues=issues) == []
    assert issues and issues[0].level == "error" and "gzip" in issues[0].message


def test_prometheus_matrix() -> None:
    issues: list[ParseIssue] = []
    series = by_key(read_metrics(FIXTURES / "prom_query_range.json", issues=issues))
    a = series['node_load1{instance="10.0.3.17:9100",job="node"}']
    b = series['node_load1{instance="10.0.3.18:9100",job="node"}']
    assert len(a.points) == 20
    assert len(b.points) == 19
    assert a.points[0].timestamp == datetime.fromtimestamp(1710147600, UTC)
    assert len(issues) == 1
    assert "$.data.result[1].values[7][1]" in issues[0].message


def test_prometheus_vector_without_name_uses_source() -> None:
    series = by_key(read_metrics(FIXTURES / "prom_query_vector.json"))
    assert 'prom_query_vector{le="+Inf",service="checkout"}' in series
    point = series['prom_query_vector{service="cart"}'].points[0]
    assert point.value == pytest.approx(0.212)
    assert point.timestamp is not None and point.timestamp.microsecond == 781000


def test_prometheus_scalar_and_error_response() -> None:
    scalar = {"status": "success", "data": {"resultType": "scalar", "result": [1710147600, "4"]}}
    assert read_metrics(scalar, name="up_count")[0].points[0].value == 4.0
    issues: list[ParseIssue] = []
    error = {"status": "error", "errorType": "bad_data", "error": "parse error at char 5"}
    assert read_metrics(error, issues=issues) == []
    assert "bad_data" in issues[0].message


def test_json_points_variants() -> None:
    issues: list[ParseIssue] = []
    series = read_metrics(FIXTURES / "queue_depth_points.json", issues=issues)
    assert len(series) == 1 and series[0].name == "queue_depth_points"
    assert len(series[0].points) == 28
    assert {m.split(":")[0] for m in (i.message for i in issues)} == {"$[10].value", "$[11].value"}
    tv = read_metrics('[{"t": "2024-03-11T09:00:00+01:00", "v": 3}, [1710147600000, 4]]', name="x")
    assert [p.value for p in tv[0].points] == [3.0, 4.0]
    assert tv[0].points[0].timestamp == datetime(2024, 3, 11, 8, 0, tzinfo=UTC)
    wrapped = read_metrics({"name": "queue_lag", "labels": {"topic": "orders"}, "points": [[1710147600, 12]]})
    assert wrapped[0].key == 'queue_lag{topic="orders"}'
    mapping = read_metrics(
        {"cpu": [{"time": 1710147600, "value": 1}], "mem": [{"time": 1710147600, "value": 2}]}
    )
    assert [s.name for s in mapping] == ["cpu", "mem"]
    wide = read_metrics('[{"timestamp": 1710147600, "host": "a", "cpu": 1, "mem": 2}]')
    assert {s.key for s in wide} == {"cpu", "mem"}


def test_json_lines() -> None:
    text = '{"timestamp": 1710147600, "value": 1}\n{"timestamp": 1710147660, "value": 2}\n{broken\n'
    issues: list[ParseIssue] = []
    series = read_metrics(text, fmt="json_points", issues=issues)
    assert len(series[0].points) == 2
    assert issues[0].line == 3


def test_timestamp_forms() -> None:
    expected = datetime(2024, 3, 11, 9, 42, 5, tzinfo=UTC)
    for raw in (
        "2024-03-11T09:42:05Z",
        "2024-03-11 09:42:05",
        "2024-03-11T10:42:05+01:00",
        1710150125,
        "1710150125",
        1710150125000,
        "1710150125000",
        1710150125.0,
        "2024/03/11 09:42:05",
    ):
        assert parse_timestamp(raw) == expected, raw
    for bad in ("", "yesterday", "99999999999999999999999", float("nan"), None, True, "2024-13-45"):
        assert parse_timestamp(bad) is None, bad


def test_units() -> None:
    assert infer_unit("cpu_usage") == "percent"
    assert infer_unit("container_memory_usage_bytes") == "bytes"
    assert infer_unit("http_request_duration_seconds") == "seconds"
    assert infer_unit("latency_ms") == "ms"
    assert infer_unit("disk_used_percent") == "percent"
    assert infer_unit("http_requests_total") == "count"
    assert infer_unit("queue_lag") is None


@pytest.mark.parametrize(
    ("data", "needle"),
    [
        (b"", "empty"),
        (b"   \n\n", "empty"),
        (b"\x00\x01\x02\x03binary\x00junk" * 20, "binary"),
        (b"timestamp,value\n", "no data rows"),
        (b"host,region\nweb-1,eu\n", "no numeric value column"),
        (b'{"status": "success", "data": ', "not valid JSON"),
    ],
)
def test_bad_input_never_crashes(data: bytes, needle: str) -> None:
    issues: list[ParseIssue] = []
    assert read_metrics(data, name="upload-7", issues=issues) == []
    assert issues, "a problem must be reported"
    assert issues[0].source == "upload-7"
    assert needle in issues[0].message


def test_unknown_format_names_valid_ones() -> None:
    with pytest.raises(InputError) as info:
        read_metrics({"cpu_usage": 1}, fmt="influx")
    assert "influx" in info.value.user_message
    for fmt in METRIC_FORMATS:
        assert fmt in info.value.user_message


def test_missing_file_is_input_error(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="not found"):
        read_metrics(tmp_path / "nope.csv")


def test_explicit_format_overrides_detection(tmp_path: Path) -> None:
    path = tmp_path / "snap.json"
    path.write_text(json.dumps({"cpu_usage": 40}))
    assert read_metrics(path, fmt="snapshot")[0].name == "cpu_usage"
    issues: list[ParseIssue] = []
    assert read_metrics(path, fmt="prometheus", issues=issues) == []
    assert issues


def test_issue_flood_is_capped() -> None:
    text = "timestamp,value\n" + "".join(f"bad-{i},1\n" for i in range(1000)) + "2024-03-11T09:00:00Z,5\n"
    issues: list[ParseIssue] = []
    series = read_metrics(text, issues=issues)
    assert len(series[0].points) == 1
    assert len(issues) == 201
    assert "800 further problems" in issues[-1].message
