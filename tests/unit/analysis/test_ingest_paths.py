"""The batched ingest paths give what the one-record-at-a-time ones gave: LogTable.add_all against add,
progress reports at the same record counts, and the numpy value counts against Counter."""

from __future__ import annotations

from array import array
from collections import Counter
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from core import analysis
from core.analysis import LogFile, _value_counts, analyze
from core.answers import LogInput
from core.logtable import LogTable
from core.models import LogRecord, Severity
from tests.unit.analysis.synthetic import T0, pool_exhaustion_incident, record


def _mixed_records() -> list[LogRecord]:
    """The synthetic incident plus records without timestamps, services, with hosts, attributes (a
    version), stack traces and exceptions."""
    out = pool_exhaustion_incident()[:400]
    extra = [
        LogRecord(source="a.log", line=1, message="started worker", severity=Severity.INFO),
        LogRecord(
            source="a.log",
            line=2,
            timestamp=T0 + timedelta(minutes=31),
            severity=Severity.ERROR,
            host="node-3",
            service="billing",
            attributes={"version": "1.4.2", "thread": "main"},
            message="java.lang.IllegalStateException: ledger closed\n\tat com.shop.Ledger.post(Ledger.java:42)",
            lines=2,
        ),
        LogRecord(
            source="b.log",
            line=7,
            timestamp=T0 + timedelta(minutes=32),
            severity=Severity.WARN,
            pod="billing-5d8f6-7wqjn",
            logger="com.shop.Ledger",
            message="slow post took 2300ms",
        ),
    ]
    return out + extra + [record(900, at=T0, service="billing", message="billing ok")]


def _state(table: LogTable) -> tuple[object, ...]:
    clusters = {
        cid: (s.count, s.severity, s.first_ts, s.last_ts, s.first_pos, s.examples, dict(s.services))
        for cid, s in table.clusters.items()
    }
    exceptions = {
        key: (g.count, g.first_ts, g.last_ts, g.first_pos, dict(g.services), dict(g.clusters), g.example)
        for key, g in table.exceptions.items()
    }
    return (
        table.ts.tobytes(),
        list(table.cluster),
        list(table.severity),
        list(table.service),
        list(table.component),
        table.services,
        table.components,
        clusters,
        exceptions,
        table.hosts,
        table.error_hosts,
        table.sources,
        table.with_timestamp,
        {key: (v.value, v.first_ts, v.first_pos, v.count) for key, v in table.versions.items()},
        [table.miner.template(c) for c in table.miner.clusters()],
    )


@pytest.mark.parametrize("fallback", [None, "from-file"])
def test_add_all_builds_the_table_add_builds(fallback: str | None) -> None:
    records = _mixed_records()
    one_by_one = LogTable()
    for rec in records:
        one_by_one.add(rec, service=fallback)
    batched = LogTable()
    seen: Counter[str | None] = Counter()
    half = len(records) // 2
    batched.add_all(records[:half], service=fallback, own_services=seen)
    batched.add_all(iter(records[half:]), service=fallback, own_services=seen)  # positions carry on
    assert _state(batched) == _state(one_by_one)
    assert seen == Counter(rec.service for rec in records)


def test_add_all_keeps_what_it_added_when_the_records_fail_midway() -> None:
    records = _mixed_records()[:10]

    def failing() -> Iterator[LogRecord]:
        yield from records[:6]
        raise OSError("disk gone")

    table = LogTable()
    with pytest.raises(OSError, match="disk gone"):
        table.add_all(failing())
    assert len(table) == 6
    assert table.with_timestamp == sum(1 for rec in records[:6] if rec.timestamp is not None)


@pytest.mark.parametrize("every", [1, 3, 7, 50])
def test_progress_is_told_after_the_same_records(monkeypatch: pytest.MonkeyPatch, every: int) -> None:
    monkeypatch.setattr(analysis, "PROGRESS_EVERY", every)
    lines = [f"2024-05-14T14:06:{i:02d}Z ERROR checkout-7f9c payments timeout after {i}ms" for i in range(20)]
    told: list[int] = []
    analyze(
        logs=[LogInput(name="a.log", lines=lines[:11]), LogInput(name="b.log", lines=lines[11:])],
        progress=told.append,
    )
    ticks = [n for n in range(1, 21) if n % every == 0]
    assert told == [*ticks, 20]


def test_progress_with_files(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setattr(analysis, "PROGRESS_EVERY", 4)
    path = tmp_path / "payments.log"
    path.write_text("".join(f"2024-05-14T14:06:{i:02d}Z INFO ok {i}\n" for i in range(9)))
    told: list[int] = []
    report = analyze(logs=[LogFile(path=path)], progress=told.append)
    assert told == [4, 8, 9] and report.records == 9


@settings(max_examples=200, deadline=None)
@given(st.lists(st.sampled_from([1, 5, 9, 13, 17, 21, 0, 255]), max_size=700), st.sampled_from(["B", "H"]))
def test_value_counts_are_the_counter_in_first_seen_order(values: list[int], typecode: str) -> None:
    column = array(typecode, values)
    counts = _value_counts(column)
    assert list(counts.items()) == list(Counter(column).items())
    assert counts.most_common() == Counter(column).most_common()
