from datetime import timedelta

from core.anomalies.logs import build_timeline, detect_log_anomalies, error_bursts
from core.logtable import LogTable
from core.models import LogRecord, Severity
from core.suspects import rank_suspects
from tests.unit.analysis.synthetic import T0, pool_exhaustion_incident, record


def _table(records: list[LogRecord]) -> LogTable:
    table = LogTable()
    for rec in records:
        table.add(rec)
    return table


def test_error_bursts_start_at_the_incident_in_both_services() -> None:
    table = _table(pool_exhaustion_incident())
    timeline = build_timeline(table)
    assert timeline.basis == "timestamps"
    bursts = [b for b in error_bursts(table, timeline) if b.level == "error"]
    services = {b.service for b in bursts}
    assert services == {"checkout", "payments"}
    incident = (T0 + timedelta(minutes=30)).timestamp()
    for burst in bursts:
        assert abs(burst.start - incident) <= 2 * timeline.width


def test_healthy_stream_has_no_bursts_or_shifts() -> None:
    healthy = [r for r in pool_exhaustion_incident() if r.severity < Severity.ERROR]
    table = _table(healthy)
    timeline = build_timeline(table)
    assert [b for b in error_bursts(table, timeline) if b.level == "error"] == []
    anomalies = detect_log_anomalies(table, timeline, bursts=[], start=None)
    assert all(a.kind not in ("error_burst", "new_template", "frequency_shift") for a in anomalies)


def test_new_template_and_exception_free_origin_found() -> None:
    table = _table(pool_exhaustion_incident())
    timeline = build_timeline(table)
    bursts = error_bursts(table, timeline)
    start = min(b.start for b in bursts)
    anomalies = detect_log_anomalies(table, timeline, bursts=bursts, start=start)
    new = [a for a in anomalies if a.kind == "new_template"]
    texts = " | ".join(a.description for a in new)
    assert "HikariPool" in texts and "timed out" in texts
    assert all(a.evidence.template_ids for a in new)


def test_origin_outranks_the_louder_victim() -> None:
    table = _table(pool_exhaustion_incident())
    timeline = build_timeline(table)
    bursts = error_bursts(table, timeline)
    start = min(b.start for b in bursts)
    anomalies = detect_log_anomalies(table, timeline, bursts=bursts, start=start)
    suspects = rank_suspects(table, anomalies=anomalies, series=[], start=start)
    assert suspects[0].name == "payments", suspects
    assert "name it" in suspects[0].reason
    checkout = next(s for s in suspects if s.name == "checkout")
    assert "calling payments" in checkout.reason


def test_positions_replace_time_when_timestamps_are_missing() -> None:
    records = [
        LogRecord(source="x.log", line=i + 1, message=f"worker {i % 7} processed batch {i}")
        for i in range(300)
    ] + [
        LogRecord(
            source="x.log",
            line=301 + i,
            severity=Severity.ERROR,
            message="disk write failed: No space left on device",
        )
        for i in range(40)
    ]
    table = _table(records)
    timeline = build_timeline(table)
    assert timeline.basis == "positions"
    bursts = error_bursts(table, timeline)
    assert bursts and bursts[0].start >= 290
    anomalies = detect_log_anomalies(table, timeline, bursts=bursts, start=bursts[0].start)
    assert all(a.start is None for a in anomalies)


def test_restart_signatures_need_repetition() -> None:
    records = [
        record(0, at=T0, service="api", message="Started ApiApplication in 4.2 seconds (JVM running for 5.0)")
    ]
    records += [
        record(i, at=T0 + timedelta(seconds=i), service="api", message=f"GET /orders/{i} 200")
        for i in range(1, 50)
    ]
    table = _table(records)
    anomalies = detect_log_anomalies(table, build_timeline(table), bursts=[], start=None)
    assert not [a for a in anomalies if a.kind == "restart"]
    records += [
        record(
            60 + i,
            at=T0 + timedelta(seconds=60 + i * 20),
            service="api",
            message="Back-off restarting failed container api",
        )
        for i in range(5)
    ]
    table = _table(records)
    anomalies = detect_log_anomalies(table, build_timeline(table), bursts=[], start=None)
    restart = [a for a in anomalies if a.kind == "restart"]
    assert restart and restart[0].subject == "api" and "crash loop" in restart[0].description


def test_background_errors_before_the_incident_do_not_make_a_suspect() -> None:
    """Hours of a service's routine errors before the incident weigh nothing against who broke in it."""
    from core.anomalies.logs import window_counts

    noise = [
        record(
            i,
            at=T0 - timedelta(hours=3) + timedelta(seconds=20 * i),
            service="search",
            severity=Severity.ERROR,
            message=f"query parse error in request {i}: unexpected token",
        )
        for i in range(500)
    ]
    table = _table(noise + pool_exhaustion_incident())
    timeline = build_timeline(table)
    bursts = error_bursts(table, timeline)
    start = min(b.start for b in bursts if b.service == "payments")
    anomalies = detect_log_anomalies(table, timeline, bursts=bursts, start=start)
    window = window_counts(table, timeline, start=start)
    assert window is not None
    suspects = rank_suspects(table, anomalies=anomalies, series=[], start=start, window=window)
    assert suspects[0].name == "payments"
    assert all(s.name != "search" for s in suspects[:2])
