"""Property tests: every metric parser keeps valid input, reports the rest and never raises."""

from __future__ import annotations

import gzip
import json
import math
from datetime import UTC, datetime, timedelta

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from core.metrics import METRIC_FORMATS, metrics_from_snapshot, parse_timestamp, read_metrics
from core.models import ParseIssue

FAST = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])

finite = st.floats(min_value=-1e12, max_value=1e12, allow_nan=False, allow_infinity=False)
moments = st.datetimes(
    min_value=datetime(1990, 1, 1), max_value=datetime(2100, 1, 1), timezones=st.just(UTC)
).map(lambda d: d.replace(microsecond=d.microsecond // 1000 * 1000))
names = st.from_regex(r"[a-z][a-z0-9_]{0,20}", fullmatch=True).filter(
    lambda n: n not in {"timestamp", "time", "ts", "t", "date", "datetime", "period", "epoch", "when"}
)

# Column names that read_metrics gives a meaning (a lone "value" column, a "metric" name column) are
# covered by the example tests; here columns are plain metric names.
column_names = names.filter(
    lambda n: (
        n
        not in {"value", "v", "y", "val", "metric_value", "sample", "metric", "name", "metric_name", "series"}
    )
)


def same_value(a: float, b: float) -> bool:
    return math.isclose(a, b, rel_tol=1e-12, abs_tol=1e-9)


@FAST
@given(
    moment=moments,
    style=st.sampled_from(["iso_z", "iso_offset", "space", "epoch_s", "epoch_ms", "epoch_str"]),
)
def test_timestamp_round_trip(moment: datetime, style: str) -> None:
    if style == "iso_z":
        raw: object = moment.strftime("%Y-%m-%dT%H:%M:%S.%f") + "Z"
    elif style == "iso_offset":
        raw = moment.astimezone(UTC).replace(tzinfo=None).isoformat() + "+00:00"
    elif style == "space":
        raw = moment.strftime("%Y-%m-%d %H:%M:%S.%f")
    elif style == "epoch_s":
        raw = moment.timestamp()
    elif style == "epoch_ms":
        raw = round(moment.timestamp() * 1000)
    else:
        raw = str(round(moment.timestamp() * 1000))
    parsed = parse_timestamp(raw)
    assert parsed is not None
    assert parsed.tzinfo is not None and parsed.utcoffset() == timedelta(0)
    assert abs((parsed - moment).total_seconds()) < 1e-3


@FAST
@given(st.one_of(st.text(max_size=40), st.binary(max_size=40), st.floats(), st.integers(), st.none()))
def test_timestamp_never_raises(raw: object) -> None:
    result = parse_timestamp(raw)
    assert result is None or result.tzinfo is not None


@FAST
@given(snapshot=st.dictionaries(names, st.one_of(finite, st.integers(-(10**9), 10**9)), max_size=8))
def test_snapshot_keeps_every_numeric_key(snapshot: dict[str, float]) -> None:
    series = metrics_from_snapshot(snapshot)
    assert [s.name for s in series] == list(snapshot)
    for s in series:
        assert len(s.points) == 1 and s.points[0].timestamp is None
        assert same_value(s.points[0].value, float(snapshot[s.name]))


@FAST
@given(
    snapshot=st.dictionaries(
        st.text(max_size=10),
        st.one_of(finite, st.text(max_size=8), st.booleans(), st.none(), st.lists(finite)),
        max_size=8,
    )
)
def test_snapshot_with_junk_reports_rather_than_raises(snapshot: dict[str, object]) -> None:
    issues: list[ParseIssue] = []
    series = read_metrics(snapshot, fmt="snapshot", issues=issues)
    kept = {s.name for s in series}
    for s in series:
        assert math.isfinite(s.points[0].value)
    # Every key is either kept or reported.
    assert (
        len(kept) + len(issues)
        >= sum(
            1
            for k in snapshot
            if k.strip()
            and k.lower()
            not in {
                "timestamp",
                "time",
                "ts",
                "t",
                "date",
                "datetime",
                "period",
                "epoch",
                "when",
                "@timestamp",
                "time_stamp",
            }
        )
        - 0
    )


@FAST
@given(
    columns=st.lists(column_names, min_size=1, max_size=4, unique=True),
    rows=st.lists(st.tuples(moments, st.lists(finite, min_size=4, max_size=4)), min_size=1, max_size=25),
    gz=st.booleans(),
)
def test_wide_csv_round_trip(columns: list[str], rows: list[tuple[datetime, list[float]]], gz: bool) -> None:
    lines = ["timestamp," + ",".join(columns)]
    for moment, values in rows:
        lines.append(
            moment.strftime("%Y-%m-%dT%H:%M:%S.%fZ") + "," + ",".join(repr(v) for v in values[: len(columns)])
        )
    data = ("\n".join(lines) + "\n").encode()
    if gz:
        data = gzip.compress(data)
    issues: list[ParseIssue] = []
    series = {s.name: s for s in read_metrics(data, fmt="csv", issues=issues)}
    assert issues == []
    assert set(series) == set(columns)
    for index, column in enumerate(columns):
        got = sorted((p.timestamp, p.value) for p in series[column].points)  # type: ignore[type-var]
        want = sorted((m, vals[index]) for m, vals in rows)
        assert len(got) == len(want)
        for (gt, gv), (wt, wv) in zip(got, want, strict=True):
            assert gt == wt and same_value(gv, wv)


@FAST
@given(
    good=st.lists(st.tuples(moments, finite), min_size=1, max_size=20),
    junk=st.lists(
        st.sampled_from(
            ["NaN,1", "2024-01-01T00:00:00Z,NaN", "2024-01-01T00:00:00Z,abc", "x,y", "2024-01-01T00:00:00Z"]
        ),
        max_size=10,
    ),
    seed=st.randoms(use_true_random=False),
)
def test_csv_with_junk_rows_keeps_valid_rows(
    good: list[tuple[datetime, float]], junk: list[str], seed: object
) -> None:
    rows = [m.strftime("%Y-%m-%d %H:%M:%S.%f") + "," + repr(v) for m, v in good] + junk
    seed.shuffle(rows)  # type: ignore[attr-defined]
    text = "timestamp,value\n" + "\n".join(rows) + "\n"
    issues: list[ParseIssue] = []
    series = read_metrics(text.encode(), name="m.csv", fmt="csv", issues=issues)
    assert len(series) == 1
    assert len(series[0].points) == len(good)
    assert len(issues) == len(junk)
    assert all(i.line is not None and 2 <= i.line <= len(rows) + 1 for i in issues)


@FAST
@given(data=st.binary(max_size=300), fmt=st.sampled_from(METRIC_FORMATS))
def test_arbitrary_bytes_never_raise(data: bytes, fmt: str) -> None:
    issues: list[ParseIssue] = []
    series = read_metrics(data, fmt=fmt, issues=issues)
    for s in series:
        assert all(math.isfinite(p.value) for p in s.points)


@FAST
@given(text=st.text(max_size=300), fmt=st.sampled_from(METRIC_FORMATS))
def test_arbitrary_text_never_raises(text: str, fmt: str) -> None:
    read_metrics(text.encode("utf-8"), fmt=fmt, issues=[])


@FAST
@given(
    series_values=st.lists(
        st.lists(st.tuples(st.integers(946684800, 4102444800), finite), min_size=1, max_size=15),
        min_size=1,
        max_size=4,
    ),
    as_matrix=st.booleans(),
)
def test_prometheus_round_trip(series_values: list[list[tuple[int, float]]], as_matrix: bool) -> None:
    result = []
    for i, samples in enumerate(series_values):
        metric = {"__name__": "http_requests_total", "instance": f"10.0.0.{i}:8080"}
        if as_matrix:
            result.append({"metric": metric, "values": [[t, repr(v)] for t, v in samples]})
        else:
            t, v = samples[0]
            result.append({"metric": metric, "value": [t, repr(v)]})
    doc = {"status": "success", "data": {"resultType": "matrix" if as_matrix else "vector", "result": result}}
    issues: list[ParseIssue] = []
    series = read_metrics(json.dumps(doc).encode(), issues=issues)
    assert issues == []
    assert len(series) == len(series_values)
    for s, samples in zip(series, series_values, strict=True):
        assert s.unit == "count"
        expected = samples if as_matrix else samples[:1]
        assert sorted(p.value for p in s.points) == sorted(v for _, v in expected)


@FAST
@given(
    doc=st.recursive(
        st.one_of(st.none(), st.booleans(), finite, st.text(max_size=6)),
        lambda inner: st.one_of(
            st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=6), inner, max_size=4)
        ),
        max_leaves=20,
    ),
    fmt=st.sampled_from(["auto", "prometheus", "json_points", "snapshot"]),
)
def test_arbitrary_json_never_raises(doc: object, fmt: str) -> None:
    issues: list[ParseIssue] = []
    series = read_metrics(json.dumps(doc).encode(), fmt=fmt, issues=issues)
    for s in series:
        assert all(math.isfinite(p.value) for p in s.points)
    if isinstance(doc, dict):
        read_metrics(doc, fmt=fmt, issues=issues)


@FAST
@given(points=st.lists(st.tuples(moments, finite), min_size=1, max_size=20), short=st.booleans())
def test_json_points_round_trip(points: list[tuple[datetime, float]], short: bool) -> None:
    t_key, v_key = ("t", "v") if short else ("timestamp", "value")
    doc = [{t_key: m.isoformat(), v_key: v} for m, v in points]
    issues: list[ParseIssue] = []
    series = read_metrics(json.dumps(doc).encode(), name="queue_depth", issues=issues)
    assert issues == []
    assert len(series) == 1 and series[0].name == "queue_depth"
    assert sorted(p.value for p in series[0].points) == sorted(v for _, v in points)
