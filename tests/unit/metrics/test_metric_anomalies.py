"""detect_metric_anomalies on synthetic series with known answers, and on the fixtures."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from core.anomalies.metrics import detect_metric_anomalies
from core.metrics import read_metrics
from core.models import MetricPoint, MetricSeries

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "metrics"
T0 = datetime(2024, 3, 4, 0, 0, tzinfo=UTC)


def make(
    name: str,
    values: np.ndarray | list[float],
    *,
    step: float = 300.0,
    labels: dict[str, str] | None = None,
    times: list[datetime] | None = None,
) -> MetricSeries:
    stamps = times or [T0 + timedelta(seconds=step * i) for i in range(len(values))]
    return MetricSeries(
        name=name,
        labels=labels or {},
        points=[MetricPoint(timestamp=t, value=float(v)) for t, v in zip(stamps, values, strict=True)],
    )


def at(i: int, step: float = 300.0) -> datetime:
    return T0 + timedelta(seconds=step * i)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_clean_sine_with_noise_has_no_anomalies(seed: int) -> None:
    rng = np.random.default_rng(seed)
    i = np.arange(2016)  # a week of 5-minute points with a daily cycle
    values = 50 + 20 * np.sin(2 * np.pi * i / 288) + rng.normal(0, 2, i.size)
    assert detect_metric_anomalies([make("requests_per_second", values)]) == []


def test_short_period_sine_has_no_anomalies() -> None:
    rng = np.random.default_rng(5)
    i = np.arange(600)
    values = 10 + 3 * np.sin(2 * np.pi * i / 60) + rng.normal(0, 0.3, i.size)
    assert detect_metric_anomalies([make("queue_depth", values)]) == []


def test_step_change_is_a_level_shift_near_the_step() -> None:
    rng = np.random.default_rng(3)
    values = rng.normal(100, 3, 800)
    values[500:] += 40
    found = detect_metric_anomalies([make("db_connections_active", values)])
    shifts = [a for a in found if a.kind == "level_shift"]
    assert len(shifts) == 1
    shift = shifts[0]
    assert shift.direction == "up"
    assert shift.start is not None and abs((shift.start - at(500)).total_seconds()) <= 3 * 300
    assert shift.magnitude == pytest.approx(40, abs=5)
    assert shift.source == "metrics" and shift.subject == "db_connections_active"
    assert shift.evidence.series == ["db_connections_active"]
    assert "rose" in shift.description and "\n" not in shift.description
    assert found[0] is shift  # nothing ranks above the shift itself


def test_temporary_drop_is_one_episode() -> None:
    rng = np.random.default_rng(4)
    values = rng.normal(90, 1.5, 900)
    values[400:560] -= 60
    found = detect_metric_anomalies([make("cpu_usage", values)])
    assert len(found) == 1
    episode = found[0]
    assert episode.kind == "level_shift" and episode.direction == "down"
    assert episode.start is not None and episode.end is not None
    assert abs((episode.start - at(400)).total_seconds()) <= 900
    assert abs((episode.end - at(560)).total_seconds()) <= 900
    assert "came back" in episode.description


def test_single_spike_is_found_and_merged() -> None:
    rng = np.random.default_rng(7)
    values = rng.normal(200, 5, 1000)
    values[640:643] = [420, 480, 430]
    found = detect_metric_anomalies([make("p99_latency_ms", values)])
    assert len(found) == 1
    spike = found[0]
    assert spike.kind == "spike" and spike.direction == "up"
    assert spike.start == at(640) and spike.end == at(642)
    assert spike.magnitude == pytest.approx(280, abs=20)
    assert spike.score >= 6


def test_dip_is_found() -> None:
    rng = np.random.default_rng(8)
    values = rng.normal(1000, 20, 500)
    values[300] = 200
    found = detect_metric_anomalies([make("http_requests_total", values)])
    assert [(a.kind, a.direction, a.start) for a in found] == [("dip", "down", at(300))]


def test_constant_series_has_no_anomalies() -> None:
    assert detect_metric_anomalies([make("replicas", [3.0] * 500)]) == []


def test_constant_series_with_one_jump_handles_zero_mad() -> None:
    values = [3.0] * 500
    values[250] = 9.0
    found = detect_metric_anomalies([make("replicas", values)])
    assert len(found) == 1 and found[0].kind == "spike" and found[0].start == at(250)


def test_five_point_series_does_not_alarm() -> None:
    assert detect_metric_anomalies([make("queue_depth", [1, 2, 50, 3, 2])]) == []


def test_series_with_gaps() -> None:
    rng = np.random.default_rng(11)
    times = [at(i) for i in range(300)] + [at(i) for i in range(420, 700)]  # a 10-hour hole
    values = rng.normal(40, 2, len(times))
    assert detect_metric_anomalies([make("disk_io_ms", values, times=times)]) == []
    values[450] = 95
    found = detect_metric_anomalies([make("disk_io_ms", values, times=times)])
    assert (
        len(found) == 1 and found[0].kind == "spike" and found[0].start == at(570)
    )  # index 450 is 150 points after the hole, which ends at 420


def test_gap_is_not_bridged_when_merging() -> None:
    rng = np.random.default_rng(12)
    times = [at(i) for i in range(200)] + [at(i) for i in range(260, 460)]
    values = rng.normal(10, 0.5, len(times))
    values[199] = 40  # last point before the gap
    values[200] = 40  # first point after it
    found = detect_metric_anomalies([make("gc_pause_ms", values, times=times)])
    spikes = [a for a in found if a.kind == "spike"]
    assert len(spikes) == 2
    assert {(a.start, a.end) for a in spikes} == {(at(199), at(199)), (at(260), at(260))}


def test_routine_daily_spike_is_not_reported_but_a_new_one_is() -> None:
    rng = np.random.default_rng(13)
    i = np.arange(288 * 7)
    values = rng.normal(5, 0.3, i.size)
    values[(i % 288) == 36] += 40  # a 03:00 backup every night
    assert detect_metric_anomalies([make("cpu_usage", values)]) == []
    values[288 * 5 + 150] += 40  # something new in the afternoon
    found = detect_metric_anomalies([make("cpu_usage", values)])
    assert [a.start for a in found] == [at(288 * 5 + 150)]


def load_and_cpu_with_a_joint_outlier(n: int = 600) -> tuple[np.ndarray, np.ndarray]:
    """Traffic and the CPU that follows it; at point 400 traffic rises a little while CPU falls a little:
    each move is within its series' usual wobble (under 5 robust z), but CPU no longer follows traffic."""
    rng = np.random.default_rng(21)
    load = 100 + 30 * np.sin(np.arange(n) / 40) + rng.normal(0, 2, n)
    cpu = 0.5 * load + rng.normal(0, 0.5, n)
    base = 100 + 30 * np.sin(400 / 40)
    load[400] = base + 4
    cpu[400] = 0.5 * base - 5
    return load, cpu


def test_correlated_series_with_a_joint_outlier() -> None:
    load, cpu = load_and_cpu_with_a_joint_outlier()
    series = [make("requests_per_second", load), make("cpu_usage", cpu, labels={"service": "api"})]
    found = detect_metric_anomalies(series)
    multi = [a for a in found if a.kind == "multivariate_outlier"]
    assert len(multi) == 1
    assert multi[0].start == at(400)
    assert set(multi[0].evidence.series) == {"requests_per_second", 'cpu_usage{service="api"}'}
    assert multi[0].description


def test_correlated_series_without_outlier_are_quiet() -> None:
    rng = np.random.default_rng(22)
    n = 600
    load = 100 + 30 * np.sin(np.arange(n) / 40) + rng.normal(0, 2, n)
    cpu = 0.5 * load + rng.normal(0, 0.5, n)
    assert detect_metric_anomalies([make("requests_per_second", load), make("cpu_usage", cpu)]) == []


def test_duplicated_and_derived_series_do_not_alarm() -> None:
    rng = np.random.default_rng(23)
    load = 100 + 30 * np.sin(np.arange(500) / 40) + rng.normal(0, 2, 500)
    series = [
        make("requests", load),
        make("requests_copy", load.copy()),
        make("requests_per_minute", load * 60),
    ]
    assert detect_metric_anomalies(series) == []


def test_snapshot_thresholds() -> None:
    hot = detect_metric_anomalies(read_metrics({"cpu_usage": 97}))
    assert len(hot) == 1
    assert hot[0].kind == "threshold" and hot[0].subject == "cpu_usage" and hot[0].direction == "up"
    assert hot[0].magnitude == pytest.approx(7)
    assert hot[0].start is None
    assert detect_metric_anomalies(read_metrics({"cpu_usage": 30})) == []
    seed = detect_metric_anomalies(read_metrics({"cpu_usage": 92, "memory_usage": 78}))
    assert [a.subject for a in seed] == ["cpu_usage"]


def test_threshold_rules_by_meaning() -> None:
    found = detect_metric_anomalies(
        read_metrics(
            {
                "memory_usage": 96,
                "disk_used_percent": 99,
                "error_rate": 0.2,
                "p99_latency_ms": 2500,
                "http_request_duration_seconds": 0.2,
                "queue_depth": 10_000,
            }
        )
    )
    assert {a.subject for a in found} == {"memory_usage", "disk_used_percent", "error_rate", "p99_latency_ms"}
    assert found == sorted(found, key=lambda a: -a.score)
    assert found[0].subject == "disk_used_percent"  # furthest past its alert level


def test_focus_weighs_matching_series() -> None:
    rng = np.random.default_rng(31)
    a = rng.normal(50, 2, 500)
    b = rng.normal(50, 2, 500)
    a[200] += 40
    b[300] += 35
    series = [make("cpu_usage", a), make("checkout_latency_ms", b)]
    plain = detect_metric_anomalies(series)
    focused = detect_metric_anomalies(series, focus={"latency"})
    assert plain[0].subject == "cpu_usage"
    assert focused[0].subject == "checkout_latency_ms"
    assert any("focus" in n for n in focused[0].evidence.notes)


def test_deterministic() -> None:
    rng = np.random.default_rng(41)
    load = rng.normal(100, 5, 400)
    cpu = 0.4 * load + rng.normal(0, 1, 400)
    cpu[100] = 60
    series = [make("requests", load), make("cpu_usage", cpu)]
    assert detect_metric_anomalies(series) == detect_metric_anomalies(series)


def test_incident_in_fixture_is_found() -> None:
    series = read_metrics(FIXTURES / "checkout_latency.csv")
    found = detect_metric_anomalies(series, focus={"latency"})
    assert found, "the 09:42-09:47 incident must show"
    incident_start = datetime(2024, 3, 11, 9, 42, tzinfo=UTC)
    incident_end = datetime(2024, 3, 11, 9, 47, tzinfo=UTC)
    subjects = set()
    for anomaly in found:
        assert anomaly.start is not None and anomaly.end is not None
        assert anomaly.start <= incident_end + timedelta(minutes=2)
        assert anomaly.end >= incident_start - timedelta(minutes=2)
        subjects.add(anomaly.subject)
    assert {"p99_latency_ms", "error_rate_percent"} <= subjects


def test_pod_cpu_shift_in_long_form_fixture() -> None:
    found = detect_metric_anomalies(read_metrics(FIXTURES / "pods_long.csv"))
    hot = [a for a in found if "x2k4q" in a.subject and a.subject.startswith("cpu")]
    assert hot and hot[0].direction == "up"
    assert all(
        "m8w1z" not in a.subject and "ledger" not in a.subject for a in found if a.subject.startswith("cpu")
    )


def test_empty_and_snapshot_only_inputs() -> None:
    assert detect_metric_anomalies([]) == []
    assert detect_metric_anomalies([MetricSeries(name="cpu_usage")]) == []


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    columns=st.lists(
        st.lists(st.floats(min_value=-1e9, max_value=1e9, allow_nan=False), min_size=0, max_size=150),
        min_size=1,
        max_size=3,
    ),
    step=st.sampled_from([1.0, 60.0, 300.0]),
    dup_every=st.integers(min_value=0, max_value=7),
)
def test_detector_never_raises_and_output_is_well_formed(
    columns: list[list[float]], step: float, dup_every: int
) -> None:
    series = []
    for k, values in enumerate(columns):
        times = [
            T0 + timedelta(seconds=step * (i - (1 if dup_every and i % dup_every == 0 else 0)))
            for i in range(len(values))
        ]
        series.append(make(f"metric_{k}", values, times=times))
    found = detect_metric_anomalies(series)
    assert len(found) <= 50
    assert [a.score for a in found] == sorted((a.score for a in found), reverse=True)
    keys = {s.key for s in series}
    for anomaly in found:
        assert anomaly.subject in keys and anomaly.source == "metrics"
        assert anomaly.start is not None and anomaly.end is not None and anomaly.start <= anomaly.end
        assert anomaly.magnitude is not None and np.isfinite(anomaly.magnitude) and np.isfinite(anomaly.score)
        assert anomaly.description and "\n" not in anomaly.description


def test_constant_member_does_not_shift_multivariate_subjects() -> None:
    n = 600
    load, cpu = load_and_cpu_with_a_joint_outlier(n)
    series = [make("replicas", [3.0] * n), make("requests_per_second", load), make("cpu_usage", cpu)]
    multi = [a for a in detect_metric_anomalies(series) if a.kind == "multivariate_outlier"]
    assert len(multi) == 1
    assert "replicas" not in multi[0].evidence.series
    assert multi[0].subject in {"requests_per_second", "cpu_usage"}


def test_daily_and_weekly_seasonality_is_not_an_incident() -> None:
    rng = np.random.default_rng(51)
    hours = np.arange(24 * 7 * 4)  # four weeks, hourly, starting on a Monday
    weekend = ((hours // 24) % 7) >= 5
    values = 400 + 250 * np.sin(2 * np.pi * (hours % 24 - 6) / 24) * np.where(weekend, 0.3, 1.0)
    values = values - np.where(weekend, 150, 0) + rng.normal(0, 10, hours.size)
    series = make("checkout_requests_per_minute", values, step=3600)
    assert detect_metric_anomalies([series]) == []
    values[24 * 7 * 3 + 24 * 2 + 14] -= 300  # a Wednesday afternoon outage
    found = detect_metric_anomalies([make("checkout_requests_per_minute", values, step=3600)])
    assert [(a.kind, a.start) for a in found] == [("dip", at(24 * 7 * 3 + 24 * 2 + 14, step=3600))]
