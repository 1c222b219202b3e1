"""Single lines through each parser, severity mapping, timestamps and multi-line joining."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from core.models import LogRecord, ParseIssue, Severity
from core.normalize import ASSUMED_YEAR, read_logs
from core.normalize.fields import MAX_ATTRIBUTE_VALUE, MAX_ATTRIBUTES
from core.normalize.formats import parse_any
from core.normalize.severity import (
    severity_from_bunyan,
    severity_from_http_status,
    severity_from_number,
    severity_from_otel_number,
    severity_from_text,
)
from core.normalize.syslog import parse_rfc3164
from core.normalize.text_formats import parse_glog, parse_iso
from core.normalize.timestamps import parse_time_value, yearless


def records(lines: list[str], fmt: str | None = None) -> list[LogRecord]:
    return list(read_logs(lines, fmt=fmt))


@pytest.mark.parametrize(
    ("text", "severity"),
    [
        ("WARNING", Severity.WARN),
        ("warn", Severity.WARN),
        ("CRIT", Severity.FATAL),
        ("CRITICAL", Severity.FATAL),
        ("SEVERE", Severity.ERROR),
        ("EMERG", Severity.FATAL),
        ("ALERT", Severity.FATAL),
        ("NOTICE", Severity.INFO),
        ("FINE", Severity.DEBUG),
        ("FINEST", Severity.TRACE),
        ("err", Severity.ERROR),
        ("[ERROR]", Severity.ERROR),
        ("E", Severity.ERROR),
        ("verbose", Severity.TRACE),
        ("whatever", Severity.UNSPECIFIED),
    ],
)
def test_severity_words(text: str, severity: Severity) -> None:
    assert severity_from_text(text) is severity


def test_numeric_severities() -> None:
    assert [severity_from_bunyan(n) for n in (10, 20, 30, 40, 50, 60)] == [
        Severity.TRACE, Severity.DEBUG, Severity.INFO, Severity.WARN, Severity.ERROR, Severity.FATAL,
    ]  # fmt: skip
    assert severity_from_otel_number(1) is Severity.TRACE
    assert severity_from_otel_number(12) is Severity.INFO
    assert severity_from_otel_number(24) is Severity.FATAL
    assert severity_from_otel_number(0) is Severity.UNSPECIFIED
    assert severity_from_number(3, key="PRIORITY") is Severity.ERROR  # journald / syslog err
    assert severity_from_number(13, key="SeverityNumber") is Severity.WARN
    assert severity_from_http_status(503) is Severity.ERROR
    assert severity_from_http_status(404) is Severity.WARN
    assert severity_from_http_status(302) is Severity.INFO


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("2024-03-01T10:00:00Z", datetime(2024, 3, 1, 10, tzinfo=UTC)),
        ("2024-03-01T11:30:00+01:30", datetime(2024, 3, 1, 10, tzinfo=UTC)),
        ("2024-03-01 10:00:00,250", datetime(2024, 3, 1, 10, 0, 0, 250000, tzinfo=UTC)),
        ("2024-03-01T10:00:00.123456789Z", datetime(2024, 3, 1, 10, 0, 0, 123456, tzinfo=UTC)),
        ("1709287200", datetime(2024, 3, 1, 10, tzinfo=UTC)),
        ("1709287200.5", datetime(2024, 3, 1, 10, 0, 0, 500000, tzinfo=UTC)),
        (1709287200123, datetime(2024, 3, 1, 10, 0, 0, 123000, tzinfo=UTC)),
        ("1709287200000000000", datetime(2024, 3, 1, 10, tzinfo=UTC)),
        ("Mar 1, 2024 @ 10:00:00.120", datetime(2024, 3, 1, 10, 0, 0, 120000, tzinfo=UTC)),
        ("01/Mar/2024:11:00:00 +0100", datetime(2024, 3, 1, 10, tzinfo=UTC)),
        ({"seconds": 1709287200, "nanos": 5000}, datetime(2024, 3, 1, 10, 0, 0, 5, tzinfo=UTC)),
        ("2024-02-30T10:00:00Z", None),
        ("not a time", None),
        (True, None),
        (float("nan"), None),
        (12, None),
    ],
)
def test_time_values(value: object, expected: datetime | None) -> None:
    assert parse_time_value(value) == expected


def test_naive_times_are_utc_and_offsets_convert() -> None:
    fields = parse_iso("2024-03-01 05:00:00-05:00 ERROR db down")
    assert fields is not None
    assert fields["timestamp"] == datetime(2024, 3, 1, 10, tzinfo=UTC)
    fields = parse_iso("2024/03/01 10:00:00 started")
    assert fields is not None and fields["timestamp"] == datetime(2024, 3, 1, 10, tzinfo=UTC)


def test_yearless_uses_assumed_year_or_rolls_back() -> None:
    token = ASSUMED_YEAR.set(2019)
    try:
        assert yearless("Dec", "31", clock="23:59:59", frac=None) == datetime(
            2019, 12, 31, 23, 59, 59, tzinfo=UTC
        )
    finally:
        ASSUMED_YEAR.reset(token)
    now = datetime.now(UTC)
    moment = yearless("Jan", "1", clock="00:00:00", frac=None)
    assert moment is not None and moment.year == now.year
    assert yearless("Feb", "30", clock="00:00:00", frac=None) is None


@pytest.mark.parametrize(
    ("line", "level", "logger", "message"),
    [
        ("2024-03-01 10:00:00.101 [main] INFO  c.e.App - Started", "INFO", "c.e.App", "Started"),
        (
            "2024-03-01 10:00:00,101 ERROR [pool-1] com.example.Job: failed",
            "ERROR",
            "com.example.Job",
            "failed",
        ),
        (
            "2024-03-01T10:00:00.101Z  WARN 1 --- [nio-8080-exec-1] o.s.web.Filter     : slow request",
            "WARN",
            "o.s.web.Filter",
            "slow request",
        ),
        ("2024-03-01 10:00:00,101 - payments.db - WARNING - pool low", "WARNING", "payments.db", "pool low"),
        ("[2024-03-01 10:00:00,101] ERROR in app: boom", "ERROR", None, "in app: boom"),
        ("2024-03-01T10:00:00Z [ERROR] connection reset", "ERROR", None, "connection reset"),
        ("2024-03-01T10:00:00Z error: disk full", "error", None, "disk full"),
        ("2024-03-01T10:00:00Z INFO main: started", "INFO", None, "main: started"),
        ("2024-03-01T10:00:00Z no level here", None, None, "no level here"),
    ],
)
def test_timestamped_layouts(line: str, level: str | None, logger: str | None, message: str) -> None:
    fields = parse_iso(line)
    assert fields is not None
    assert fields.get("severity_text") == level
    assert fields.get("logger") == logger
    assert fields["message"] == message


def test_glog_and_syslog_lines() -> None:
    token = ASSUMED_YEAR.set(2024)
    try:
        glog = parse_glog("W0301 10:00:05.004410       1 reflector.go:535] watch failed")
        syslog = parse_rfc3164("<11>Mar  1 10:00:00 db-1 postgres[77]: FATAL: too many clients")
    finally:
        ASSUMED_YEAR.reset(token)
    assert glog is not None and glog["severity"] is Severity.WARN
    assert glog["timestamp"] == datetime(2024, 3, 1, 10, 0, 5, 4410, tzinfo=UTC)
    assert syslog is not None
    assert syslog["severity"] is Severity.ERROR  # <11> = user.err
    assert (syslog["service"], syslog["host"]) == ("postgres", "db-1")
    assert syslog["attributes"]["pid"] == "77"


def test_parse_any_recognises_shapes() -> None:
    assert parse_any('{"msg": "x", "level": "warn"}') is not None
    assert parse_any('10.0.0.1 - - [01/Mar/2024:10:00:00 +0000] "GET / HTTP/1.1" 500 1') is not None
    assert parse_any("Mar  1 10:00:00 host app[1]: hello") is not None
    assert parse_any("just some words") is None
    assert parse_any("   indented") is None
    assert parse_any("") is None


def test_json_attributes_are_flat_strings_and_bounded() -> None:
    big = {f"k{i}": i for i in range(MAX_ATTRIBUTES + 10)}
    line = (
        '{"message": "m", "nested": {"a": {"b": [1, 2]}, "t": true}, "long": "'
        + "x" * (MAX_ATTRIBUTE_VALUE + 50)
        + '", '
        + ", ".join(f'"{key}": {value}' for key, value in big.items())
        + "}"
    )
    (record,) = records([line])
    assert record.attributes["nested.a.b"] == "[1,2]"
    assert record.attributes["nested.t"] == "true"
    assert len(record.attributes["long"]) == MAX_ATTRIBUTE_VALUE
    assert len(record.attributes) == MAX_ATTRIBUTES + 1
    assert record.attributes["attributes.dropped"] == "13"


def test_json_without_message_keeps_the_line_and_journald_fields() -> None:
    (record,) = records(['{"event": "user.login", "user": "u1"}'])
    assert record.message == "user.login"
    journald = '{"__REALTIME_TIMESTAMP": "1709287200000000", "PRIORITY": "3", "_HOSTNAME": "web-1", "SYSLOG_IDENTIFIER": "nginx", "MESSAGE": "worker died"}'
    (record,) = records([journald])
    assert record.timestamp == datetime(2024, 3, 1, 10, tzinfo=UTC)
    assert record.severity is Severity.ERROR
    assert (record.host, record.service, record.message) == ("web-1", "nginx", "worker died")
    (record,) = records(['{"user": "u1", "action": "x"}'])
    assert record.message == '{"user": "u1", "action": "x"}'


def test_plain_lines_and_indented_continuations() -> None:
    got = records(["first line", "  continued", "second line", "", "third line"], fmt="plain")
    assert [(r.line, r.lines, r.message) for r in got] == [
        (1, 2, "first line\n  continued"),
        (3, 2, "second line"),
        (5, 1, "third line"),
    ]


def test_leading_blank_lines_belong_to_no_record() -> None:
    got = records(["", "  ", "2024-03-01T10:00:00Z INFO a"])
    assert [(r.line, r.lines) for r in got] == [(3, 1)]


def test_python_traceback_without_header_in_plain_text() -> None:
    lines = [
        "worker crashed",
        "Traceback (most recent call last):",
        '  File "w.py", line 3, in <module>',
        "    run()",
        "KeyError: 'id'",
        "worker restarted",
    ]
    got = records(lines)
    assert [r.lines for r in got] == [5, 1]
    assert got[0].message.endswith("KeyError: 'id'")


def test_java_exception_line_joins_in_plain_text() -> None:
    got = records(
        ["payment failed", "java.lang.IllegalStateException: closed", "\tat a.B.c(B.java:1)", "next"]
    )
    assert [r.lines for r in got] == [3, 1]


def test_explicit_format_falls_back_per_line() -> None:
    got = records(['{"msg": "json", "level": "error"}', "2024-03-01T10:00:00Z WARN text line"], fmt="jsonl")
    assert got[1].severity is Severity.WARN
    assert got[1].timestamp == datetime(2024, 3, 1, 10, tzinfo=UTC)
    assert all(r.format == "jsonl" for r in got)


def test_explicit_plain_does_not_parse_headers() -> None:
    (record,) = records(["2024-03-01T10:00:00Z ERROR x"], fmt="plain")
    assert record.timestamp is None
    assert record.message == "2024-03-01T10:00:00Z ERROR x"


def test_records_are_real_pydantic_models() -> None:
    (record,) = records(["2024-03-01T10:00:00Z ERROR checkout boom"])
    dumped = record.model_dump()
    assert dumped["message"] == "checkout boom"
    assert LogRecord.model_validate(dumped) == record
    assert LogRecord.model_validate_json(record.model_dump_json()) == record
    copy = record.model_copy(update={"message": "changed"})
    assert copy.message == "changed" and record.message == "checkout boom"


def test_csv_headers_match_without_case_and_other_delimiters() -> None:
    got = records(["Timestamp;Level;Service;Message", '2024-03-01T10:00:00Z;ERROR;checkout;"boom; bang"'])
    assert len(got) == 1
    assert (got[0].severity, got[0].service, got[0].message) == (Severity.ERROR, "checkout", "boom; bang")
    assert got[0].format == "csv"


def test_csv_without_a_usable_header_is_reported() -> None:
    issues: list[ParseIssue] = []
    assert list(read_logs(["a,b", "1,2"], fmt="csv", issues=issues)) == []
    assert issues[0].level == "error"
    assert "header" in issues[0].message


def test_iso_lines_with_a_component_are_not_taken_for_syslog() -> None:
    lines = [f"2024-03-01T10:00:0{i}Z INFO main: step {i}" for i in range(5)]
    got = records(lines)
    assert {r.format for r in got} == {"iso"}
    assert got[0].severity is Severity.INFO
    rsyslog = ["2024-03-01T10:00:00.123456+00:00 web-01 sshd[77]: Accepted publickey for deploy"]
    (record,) = records(rsyslog)
    assert (record.format, record.host, record.service) == ("syslog3164", "web-01", "sshd")
