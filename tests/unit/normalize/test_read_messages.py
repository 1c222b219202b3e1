"""``read_messages`` (the message-only reading `faultmaven templates` uses) against ``read_logs``: the same
message text and line accounting for every record, the same issues, on every fixture under every format
and on generated lines; and every header parser's message-only reading against its full one."""

from __future__ import annotations

import json
import re
import string
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from core.models import ParseIssue
from core.normalize import LOG_FORMATS, read_logs, read_messages
from core.normalize.fields import HeaderParser
from core.normalize.formats import REGISTRY, parse_any
from core.normalize.structured import _PAIR, _pairs, parse_json, parse_logfmt
from core.normalize.syslog import parse_rfc3164, parse_rfc5424
from core.normalize.text_formats import (
    parse_epoch,
    parse_glog,
    parse_hdfs,
    parse_iso,
    parse_python,
    parse_python_basic,
)
from core.normalize.web import parse_access, parse_apache_error, parse_nginx_error

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "logs"
SETTINGS = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])

PARSERS: list[HeaderParser] = [
    parse_any, parse_iso, parse_python, parse_python_basic, parse_hdfs, parse_epoch, parse_glog,
    parse_rfc3164, parse_rfc5424, parse_access, parse_nginx_error, parse_apache_error, parse_json,
    parse_logfmt, *(entry.parse for entry in REGISTRY),
]  # fmt: skip


def full_reading(
    source: str | bytes | list[str], fmt: str | None
) -> tuple[list[tuple[str, int, int]], list[str]]:
    issues: list[ParseIssue] = []
    records = [
        (record.message, record.line, record.lines) for record in read_logs(source, fmt=fmt, issues=issues)
    ]
    return records, [str(issue) for issue in issues]


def message_reading(
    source: str | bytes | list[str], fmt: str | None
) -> tuple[list[tuple[str, int, int]], list[str]]:
    issues: list[ParseIssue] = []
    records = list(read_messages(source, fmt=fmt, issues=issues))
    return records, [str(issue) for issue in issues]


FIXTURE_FILES = sorted(FIXTURES.iterdir())


def test_there_are_fixtures() -> None:
    assert len(FIXTURE_FILES) >= 20


@pytest.mark.parametrize("path", FIXTURE_FILES, ids=lambda path: path.name)
def test_fixtures_read_the_same_under_every_format(path: Path) -> None:
    assert len(full_reading(str(path), None)[0]) >= 3
    for fmt in LOG_FORMATS:
        assert message_reading(str(path), fmt) == full_reading(str(path), fmt), (path.name, fmt)


# --- generated lines ------------------------------------------------------------------------------------

DIGITS = st.text(alphabet=string.digits, min_size=1, max_size=3)
# Dates and times that are mostly valid, sometimes impossible (month 13, Feb 30, hour 24, year 1 with an
# offset that leaves the calendar when moved to UTC).
YEAR = st.sampled_from(["2024", "2023", "0001", "9999"])
MONTH = st.sampled_from(["01", "02", "03", "12", "13", "00"])
DAY = st.sampled_from(["01", "09", "28", "29", "30", "31"])
CLOCK = st.sampled_from(["00:00:00", "10:20:30", "23:59:59", "24:00:00", "00:30:00"])
FRAC = st.sampled_from(["", ".1", ".123", ",456", ".123456", ".123456789"])
TZ = st.sampled_from(["", "Z", "+01:00", "-0700", " UTC", "+05"])
LEVEL = st.sampled_from(
    ["INFO", "WARN", "ERROR", "DEBUG", "info", "Error", "LOG", "FATAL", "[WARN]", "NOTALEVEL"]
)
WORD = st.text(alphabet=string.ascii_letters + string.digits + "._-/", min_size=1, max_size=10)
TEXT = st.text(
    alphabet=st.sampled_from([*string.ascii_letters, *string.digits, *" .,:;=-_[](){}\"'/", "é", "\t"]),
    max_size=50,
)
MONTH_NAME = st.sampled_from(["Jan", "Feb", "Mar", "Oct", "Dec", "Foo"])


@st.composite
def log_line(draw: st.DrawFn) -> str:
    shape = draw(st.integers(0, 17))
    iso = (
        f"{draw(YEAR)}-{draw(MONTH)}-{draw(DAY)}{draw(st.sampled_from(['T', ' ']))}{draw(CLOCK)}{draw(FRAC)}"
    )
    text = draw(TEXT)
    word = draw(WORD)
    level = draw(LEVEL)
    if shape == 0:
        return f"{iso}{draw(TZ)} {level} [{word}] {draw(WORD)} - {text}"
    if shape == 1:
        return f"{iso}{draw(TZ)} {draw(DIGITS)} {level} {word}: {text}"
    if shape == 2:
        return f"{iso} - {word} - {level} - {text}"
    if shape == 3:
        return f"{draw(DIGITS)}{draw(DIGITS)} {draw(CLOCK).replace(':', '')} {draw(DIGITS)} {level} {word}: {text}"
    if shape == 4:
        return f"{draw(st.sampled_from('IWEFX'))}{draw(MONTH)}{draw(DAY)} {draw(CLOCK)}{draw(FRAC)} {draw(DIGITS)} {word}:12] {text}"
    if shape == 5:
        pri = draw(st.sampled_from(["", "<13>", "<191>", "<999>"]))
        day = draw(st.sampled_from([" 1", "12", "31", "32"]))
        stamp = f"{draw(MONTH_NAME)} {day} {draw(CLOCK)}{draw(FRAC)}"
        return f"{pri}{stamp} host {word}[{draw(DIGITS)}]: {level}: {text}"
    if shape == 6:
        structured = draw(st.sampled_from(["-", '[a@1 k="v"]']))
        return f"<{draw(DIGITS)}>1 {iso}Z host {word} - - {structured} \ufeff{text}"
    if shape == 7:
        offset = draw(st.sampled_from(["+0000", "-0700", "+0100"]))
        stamp = f"{draw(DAY)}/{draw(MONTH_NAME)}/{draw(YEAR)}:{draw(CLOCK)} {offset}"
        user = draw(st.sampled_from(["-", "bob"]))
        status = draw(st.sampled_from(["200", "503"]))
        size = draw(st.sampled_from(["12", "-"]))
        return f'10.0.0.{draw(DIGITS)} - {user} [{stamp}] "GET /{word} HTTP/1.1" {status} {size} "-" "{text}"'
    if shape == 8:
        context = draw(
            st.sampled_from(["", ", client: 10.0.0.1, server: api", ", server: x", ', upstream: "u"'])
        )
        date = f"{draw(YEAR)}/{draw(MONTH)}/{draw(DAY)} {draw(CLOCK)}"
        return f"{date} [{level.lower()}] 1#2: *{draw(DIGITS)} {text}{context}"
    if shape == 9:
        return f"[Fri {draw(MONTH_NAME)} {draw(DAY)} {draw(CLOCK)}{draw(FRAC)} {draw(YEAR)}] [{word}:error] [pid 4] {text}"
    if shape == 10:
        return f"{draw(st.sampled_from(['1709287200', '1709287200123', '[1709287200.5]', '12345']))} {level} {text}"
    if shape == 11:
        return f"{draw(st.sampled_from(['ERROR', 'INFO', 'NOPE']))}:{word}:{text}"
    if shape == 12:
        pairs = draw(st.lists(st.sampled_from(
            ["ts=2024-03-01T10:00:00Z", "level=error", 'msg="a b"', "msg=x", f"{word}=1", 'message="q \\" r"',
             "k=", "log=z", "=bad", "event=e"]), min_size=1, max_size=5))  # fmt: skip
        return (f"{iso} " if draw(st.booleans()) else "") + " ".join(pairs)
    if shape == 13:
        obj = draw(st.fixed_dictionaries({}, optional={
            "msg": TEXT, "message": TEXT, "level": LEVEL, "time": st.just(f"{iso}Z"), "pod": WORD,
            "kind": st.just("Event"), "involvedObject": st.just({"name": "api-1", "kind": "Pod"}),
            "log": TEXT, "body": st.just({"stringValue": "otel"}),
        }))  # fmt: skip
        return json.dumps(obj) if draw(st.booleans()) else json.dumps(obj)[:-1]
    if shape == 14:
        return draw(st.sampled_from([
            "\tat com.x.Y.z(Y.java:1)", "Caused by: java.io.IOException: x", "java.lang.IllegalStateException: y",
            "Traceback (most recent call last):", '  File "a.py", line 1, in f', "ValueError: bad",
            "panic: runtime error", "goroutine 1 [running]:", "exit status 2", "", "   ",
        ]))  # fmt: skip
    if shape == 15:
        return f"{iso}{draw(TZ)} stdout {draw(st.sampled_from('FP'))} {text}"
    return text


LINES = st.lists(log_line(), max_size=30)


@SETTINGS
@given(lines=LINES, fmt=st.sampled_from([*LOG_FORMATS, None]))
def test_generated_lines_read_the_same(lines: list[str], fmt: str | None) -> None:
    assert message_reading(lines, fmt) == full_reading(lines, fmt)


@SETTINGS
@given(lines=LINES, fmt=st.sampled_from(["docker_json", "cri"]))
def test_container_wrapped_lines_read_the_same(lines: list[str], fmt: str) -> None:
    if fmt == "docker_json":
        wrapped = [
            json.dumps({"log": line + "\n", "stream": "stdout", "time": "2024-03-01T10:00:00Z"})
            for line in lines
        ]
    else:
        wrapped = [f"2024-03-01T10:00:00.{i:06d}Z stdout F {line}" for i, line in enumerate(lines)]
    data = "\n".join(wrapped).encode()
    assert message_reading(data, fmt) == full_reading(data, fmt)


@pytest.mark.parametrize("parse", PARSERS, ids=lambda parse: getattr(parse, "__name__", repr(parse)))
@SETTINGS
@given(line=log_line())
def test_message_only_parsing_accepts_the_same_lines_with_the_same_message(
    parse: HeaderParser, line: str
) -> None:
    full = parse(line)
    light = parse(line, False)
    if full is None:
        assert light is None
    else:
        assert light is not None
        assert light.get("message", "") == full.get("message", "")


def test_a_time_that_leaves_the_calendar_in_utc_is_no_header() -> None:
    # 00:30 on 1 January of year 1 at +01:00 is before year 1 in UTC: kept as text, nothing raised
    lines = [
        "0001-01-01T00:30:00+01:00 ERROR boom",
        '1.2.3.4 - - [01/Jan/0001:00:30:00 +0100] "GET / HTTP/1.1" 200 5',
    ]
    records = list(read_logs(lines))
    assert [(record.message, record.timestamp) for record in records] == [(line, None) for line in lines]
    assert list(read_messages(lines)) == [(lines[0], 1, 1), (lines[1], 2, 1)]


# logfmt: one scan for the pairs must accept exactly the lines the whole-line pattern accepts.
REFERENCE_LINE = re.compile(rf"\s*{_PAIR}(?:\s+{_PAIR})+\s*")
REFERENCE_PAIR = re.compile(_PAIR)
LOGFMT_PIECES = st.lists(
    st.sampled_from(
        ["a=1", "b=", 'c="x y"', 'd="q\\"r"', 'e="open', "=f", "g", " ", "  ", "\t", "\u2003", "x.y/z=2", '""',
         "h=i=j", "k=v\"", "@l=m", "-n=o", "p=q\u00a0", "\n"]
    ),
    max_size=8,
)  # fmt: skip


@SETTINGS
@given(pieces=LOGFMT_PIECES, joiners=st.lists(st.sampled_from(["", " ", "\t", "  "]), min_size=8, max_size=8))
def test_logfmt_lines_are_told_apart_as_by_the_whole_line_pattern(
    pieces: list[str], joiners: list[str]
) -> None:
    line = "".join(piece + joiner for piece, joiner in zip(pieces, joiners, strict=False))
    pairs = _pairs(line)
    if REFERENCE_LINE.fullmatch(line) is None:
        assert pairs is None
        assert parse_logfmt(line) is None
    else:
        assert pairs is not None
        assert [(key, value) for _, key, value in pairs] == REFERENCE_PAIR.findall(line)
