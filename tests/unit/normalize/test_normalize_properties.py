"""Property-based tests: no parser raises on arbitrary input, line accounting is exact, and generated
well-formed lines of every format give back the fields they were made from."""

from __future__ import annotations

import csv
import io
import itertools
import json
import string
from collections.abc import Callable
from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from core.models import LogRecord, ParseIssue, Severity
from core.normalize import ASSUMED_YEAR, LOG_FORMATS, detect_format, read_logs
from core.normalize.fields import Fields
from core.normalize.formats import parse_any
from core.normalize.structured import parse_json, parse_logfmt
from core.normalize.syslog import parse_rfc3164, parse_rfc5424
from core.normalize.text_formats import parse_epoch, parse_glog, parse_hdfs, parse_iso, parse_python
from core.normalize.web import parse_access, parse_apache_error, parse_nginx_error

SETTINGS = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])

PARSERS: list[Callable[[str], Fields | None]] = [
    parse_any, parse_iso, parse_python, parse_hdfs, parse_epoch, parse_glog, parse_rfc3164, parse_rfc5424,
    parse_access, parse_nginx_error, parse_apache_error, parse_json, parse_logfmt,
]  # fmt: skip

# Text that looks a little like logs, so that the parsers get past their first characters.
LOGGY = st.text(
    alphabet=st.sampled_from([*string.printable, "é", "\u2028", "\x00", "\ufffd", "[", "]", "{", "}"]),
    max_size=120,
)
LINE_TEXT = st.one_of(
    st.text(max_size=80),
    LOGGY,
    st.sampled_from(
        [
            "2024-03-01T10:00:00Z INFO x",
            "\tat a.B.c(B.java:1)",
            "Caused by: x",
            "panic: boom",
            "goroutine 1 [running]:",
            "Traceback (most recent call last):",
            '{"log":"a\\n","stream":"stdout","time":"2024-03-01T10:00:00Z"}',
            '{"log":"piece","stream":"stdout"}',
            "2024-03-01T10:00:00.1Z stdout P part",
            "2024-03-01T10:00:00.1Z stderr F",
            "<13>1 - - - - - -",
            "",
            "   ",
        ]
    ),
)
NO_NEWLINES = LINE_TEXT.map(lambda text: text.replace("\n", " ").replace("\r", " ").replace("\x00", " "))


@pytest.mark.parametrize("parser", PARSERS, ids=lambda parser: parser.__name__)
@SETTINGS
@given(line=st.one_of(st.text(max_size=300), LOGGY, LINE_TEXT))
def test_parsers_never_raise(parser: Callable[[str], Fields | None], line: str) -> None:
    fields = parser(line)
    if fields is not None:
        assert isinstance(fields.get("message", ""), str)
        moment = fields.get("timestamp")
        assert moment is None or moment.tzinfo is UTC


@pytest.mark.parametrize("fmt", LOG_FORMATS)
@SETTINGS
@given(
    data=st.one_of(st.binary(max_size=600), LINE_TEXT.map(lambda text: text.encode("utf-8", "surrogatepass")))
)
def test_read_logs_never_raises_on_bytes(fmt: str, data: bytes) -> None:
    issues: list[ParseIssue] = []
    records = list(read_logs(data, fmt=fmt, issues=issues))
    assert all(isinstance(record, LogRecord) for record in records)
    assert all(issue.source == "<memory>" for issue in issues)


def check_accounting(lines: list[str], records: list[LogRecord], *, wrapped: bool) -> None:
    if not records:
        assert wrapped or all(not line or line.isspace() for line in lines)
        return
    for before, after in itertools.pairwise(records):
        assert after.line == before.end_line + 1
    assert records[-1].end_line == len(lines)
    assert all(record.lines >= 1 for record in records)
    if not wrapped:
        assert all(not line or line.isspace() for line in lines[: records[0].line - 1])
        assert not lines[records[0].line - 1].isspace() and lines[records[0].line - 1]


@pytest.mark.parametrize("fmt", [fmt for fmt in LOG_FORMATS if fmt != "csv"])
@SETTINGS
@given(lines=st.lists(NO_NEWLINES, max_size=25))
def test_line_ranges_partition_the_input(fmt: str, lines: list[str]) -> None:
    issues: list[ParseIssue] = []
    records = list(read_logs(lines, fmt=fmt, issues=issues))
    chosen = detect_format(lines) if fmt == "auto" else fmt
    check_accounting(lines, records, wrapped=chosen in ("docker_json", "cri"))


@SETTINGS
@given(lines=st.lists(NO_NEWLINES, min_size=1, max_size=25))
def test_detect_format_always_names_a_format(lines: list[str]) -> None:
    assert detect_format(lines) in LOG_FORMATS


# ---------- round trips ----------

MOMENTS = st.datetimes(
    min_value=datetime(2001, 1, 1), max_value=datetime(2099, 12, 31), timezones=st.just(UTC)
).map(lambda moment: moment.replace(microsecond=moment.microsecond // 1000 * 1000))
SECONDS = MOMENTS.map(lambda moment: moment.replace(microsecond=0))
WORD = st.text(alphabet=string.ascii_letters + string.digits + "_-", min_size=1, max_size=12).filter(
    lambda word: word[0].isalpha()
)
IDENT = st.text(alphabet=string.ascii_letters, min_size=1, max_size=10)
LOGGER = st.lists(IDENT, min_size=2, max_size=4).map(".".join)
MESSAGE = (
    st.text(
        alphabet=st.characters(
            blacklist_categories=("Cc", "Cs", "Zl", "Zp", "Zs"), blacklist_characters="\x85"
        )
        | st.just(" "),
        min_size=1,
        max_size=60,
    )
    .map(str.strip)
    .filter(bool)
)
LEVELS = st.sampled_from(["TRACE", "DEBUG", "INFO", "WARN", "WARNING", "ERROR", "FATAL", "CRITICAL"])
SYSLOG_SEVERITIES = (
    Severity.FATAL, Severity.FATAL, Severity.FATAL, Severity.ERROR, Severity.WARN, Severity.INFO,
    Severity.INFO, Severity.DEBUG,
)  # fmt: skip
EXPECTED_SEVERITY = {
    "TRACE": Severity.TRACE, "DEBUG": Severity.DEBUG, "INFO": Severity.INFO, "WARN": Severity.WARN,
    "WARNING": Severity.WARN, "ERROR": Severity.ERROR, "FATAL": Severity.FATAL, "CRITICAL": Severity.FATAL,
}  # fmt: skip


def one(lines: list[str], fmt: str | None = None) -> LogRecord:
    issues: list[ParseIssue] = []
    records = list(read_logs(lines, fmt=fmt, issues=issues))
    assert len(records) == 1, records
    assert issues == []
    return records[0]


@SETTINGS
@given(moment=MOMENTS, level=LEVELS, thread=WORD, logger=LOGGER, message=MESSAGE, comma=st.booleans())
def test_log4j_round_trip(
    moment: datetime, level: str, thread: str, logger: str, message: str, comma: bool
) -> None:
    stamp = (
        moment.strftime("%Y-%m-%d %H:%M:%S") + ("," if comma else ".") + f"{moment.microsecond // 1000:03d}"
    )
    record = one([f"{stamp} [{thread}] {level:<5} {logger} - {message}"], fmt="log4j")
    assert record.timestamp == moment
    assert (record.severity_text, record.severity) == (level, EXPECTED_SEVERITY[level])
    assert (record.logger, record.message, record.attributes["thread"]) == (logger, message, thread)


@SETTINGS
@given(moment=MOMENTS, level=LEVELS, logger=LOGGER, message=MESSAGE, offset=st.integers(-12, 14))
def test_iso_with_offset_and_python_layout_round_trip(
    moment: datetime, level: str, logger: str, message: str, offset: int
) -> None:
    local = moment.astimezone(timezone(timedelta(hours=offset)))
    record = one(
        [f"{local.isoformat(timespec='milliseconds')} - {logger} - {level} - {message}"], fmt="python"
    )
    assert record.timestamp == moment
    assert (record.logger, record.severity_text, record.message) == (logger, level, message)


@SETTINGS
@given(
    moment=SECONDS, host=WORD, tag=WORD, pid=st.integers(1, 99999), message=MESSAGE, pri=st.integers(0, 191)
)
def test_syslog3164_round_trip(
    moment: datetime, host: str, tag: str, pid: int, message: str, pri: int
) -> None:
    line = f"<{pri}>{moment.strftime('%b')} {moment.day:>2} {moment.strftime('%H:%M:%S')} {host} {tag}[{pid}]: {message}"
    token = ASSUMED_YEAR.set(moment.year)
    try:
        record = one([line], fmt="syslog3164")
    finally:
        ASSUMED_YEAR.reset(token)
    assert record.timestamp == moment
    assert (record.host, record.service, record.message) == (host, tag, message)
    assert record.attributes["pid"] == str(pid)
    assert record.severity is SYSLOG_SEVERITIES[pri % 8]
    assert record.attributes["syslog.facility"]


SD_VALUE = st.text(alphabet=string.ascii_letters + string.digits + ' "]\\=', max_size=12)


@SETTINGS
@given(
    moment=MOMENTS,
    host=WORD,
    app=WORD,
    msgid=WORD,
    params=st.dictionaries(IDENT, SD_VALUE, max_size=3),
    message=MESSAGE,
)
def test_syslog5424_round_trip(
    moment: datetime, host: str, app: str, msgid: str, params: dict[str, str], message: str
) -> None:
    escaped = "".join(
        f' {key}="{value.replace(chr(92), chr(92) * 2).replace(chr(34), chr(92) + chr(34)).replace("]", chr(92) + "]")}"'
        for key, value in params.items()
    )
    sd = f"[x@1{escaped}]" if params else "-"
    stamp = moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")
    record = one([f"<11>1 {stamp} {host} {app} 42 {msgid} {sd} {message}"], fmt="syslog5424")
    assert record.timestamp == moment
    assert (record.host, record.service, record.message) == (host, app, message)
    assert record.severity is Severity.ERROR
    for key, value in params.items():
        assert record.attributes[f"x@1.{key}"] == value


@SETTINGS
@given(
    moment=SECONDS,
    ip=st.ip_addresses(v=4).map(str),
    method=st.sampled_from(["GET", "POST", "PUT", "DELETE"]),
    path=st.text(alphabet=string.ascii_letters + "/?=&%", min_size=1, max_size=30).map(lambda p: "/" + p),
    status=st.integers(100, 599),
    size=st.integers(0, 10**7),
    agent=st.text(alphabet=string.ascii_letters + " /.;()", max_size=30),
)
def test_access_round_trip(
    moment: datetime, ip: str, method: str, path: str, status: int, size: int, agent: str
) -> None:
    stamp = moment.strftime("%d/%b/%Y:%H:%M:%S +0000")
    record = one(
        [f'{ip} - - [{stamp}] "{method} {path} HTTP/1.1" {status} {size} "-" "{agent}"'], fmt="apache_access"
    )
    assert record.timestamp == moment
    assert record.attributes["http.status_code"] == str(status)
    assert (record.attributes["http.method"], record.attributes["url.path"]) == (method, path)
    assert record.attributes["client.address"] == ip
    expected = Severity.ERROR if status >= 500 else Severity.WARN if status >= 400 else Severity.INFO
    assert record.severity is expected


@SETTINGS
@given(
    moment=SECONDS,
    level=st.sampled_from(["debug", "info", "notice", "warn", "error", "crit", "alert", "emerg"]),
    pid=st.integers(1, 99999),
    message=MESSAGE.filter(lambda m: ", client: " not in m and ", server: " not in m),
    client=st.ip_addresses(v=4).map(str),
)
def test_nginx_error_round_trip(moment: datetime, level: str, pid: int, message: str, client: str) -> None:
    line = f"{moment.strftime('%Y/%m/%d %H:%M:%S')} [{level}] {pid}#{pid}: *7 {message}, client: {client}, server: api"
    record = one([line], fmt="nginx_error")
    assert (record.timestamp, record.severity_text, record.message) == (moment, level, message)
    assert (record.attributes["pid"], record.attributes["client"], record.attributes["server"]) == (
        str(pid),
        client,
        "api",
    )


@SETTINGS
@given(
    moment=MOMENTS,
    module=IDENT,
    level=st.sampled_from(["error", "warn", "notice", "crit", "trace3"]),
    message=MESSAGE,
)
def test_apache_error_round_trip(moment: datetime, module: str, level: str, message: str) -> None:
    stamp = moment.strftime("%a %b %d %H:%M:%S.") + f"{moment.microsecond:06d} {moment.year}"
    record = one([f"[{stamp}] [{module.lower()}:{level}] [pid 9:tid 10] {message}"], fmt="apache_error")
    assert (record.timestamp, record.logger, record.severity_text, record.message) == (
        moment,
        module.lower(),
        level,
        message,
    )


@SETTINGS
@given(
    moment=MOMENTS,
    letter=st.sampled_from("IWEF"),
    tid=st.integers(1, 10**6),
    file=IDENT,
    number=st.integers(1, 9999),
    message=MESSAGE,
)
def test_glog_round_trip(
    moment: datetime, letter: str, tid: int, file: str, number: int, message: str
) -> None:
    line = f"{letter}{moment.strftime('%m%d %H:%M:%S')}.{moment.microsecond:06d} {tid:>7} {file}.go:{number}] {message}"
    token = ASSUMED_YEAR.set(moment.year)
    try:
        record = one([line], fmt="glog")
    finally:
        ASSUMED_YEAR.reset(token)
    assert (record.timestamp, record.logger, record.message) == (moment, f"{file}.go:{number}", message)
    assert (
        record.severity
        is {"I": Severity.INFO, "W": Severity.WARN, "E": Severity.ERROR, "F": Severity.FATAL}[letter]
    )


@SETTINGS
@given(moment=SECONDS, pid=st.integers(1, 9999), level=LEVELS, logger=LOGGER, message=MESSAGE)
def test_hdfs_round_trip(moment: datetime, pid: int, level: str, logger: str, message: str) -> None:
    record = one([f"{moment.strftime('%y%m%d %H%M%S')} {pid} {level} {logger}: {message}"], fmt="hdfs")
    assert (record.timestamp, record.severity_text, record.logger, record.message) == (
        moment,
        level,
        logger,
        message,
    )


@SETTINGS
@given(moment=MOMENTS, level=LEVELS, message=MESSAGE, millis=st.booleans())
def test_epoch_round_trip(moment: datetime, level: str, message: str, millis: bool) -> None:
    # "LEVEL [name] text" is the log4j layout with a thread: a message that opens with brackets is read so
    assume(not message.startswith("["))
    since = moment - datetime(1970, 1, 1, tzinfo=UTC)
    millis_total = since // timedelta(milliseconds=1)
    stamp = str(millis_total) if millis else f"{millis_total // 1000}.{millis_total % 1000:03d}"
    record = one([f"{stamp} {level} {message}"], fmt="epoch")
    assert record.timestamp == moment
    assert (record.severity_text, record.message) == (level, message)


@SETTINGS
@given(
    moment=MOMENTS,
    level=LEVELS,
    message=st.text(max_size=60),
    service=WORD,
    extra=st.dictionaries(
        IDENT.map(lambda k: "x_" + k),
        st.one_of(st.text(max_size=10), st.integers(), st.booleans()),
        max_size=4,
    ),
)
def test_json_round_trip(
    moment: datetime, level: str, message: str, service: str, extra: dict[str, object]
) -> None:
    line = json.dumps(
        {
            "@timestamp": moment.isoformat(),
            "level": level,
            "message": message,
            "service.name": service,
            **extra,
        }
    )
    record = one([line], fmt="jsonl")
    assert (record.timestamp, record.severity_text, record.service) == (moment, level, service)
    assert record.message == (message[:-1] if message.endswith("\n") else message)
    for key, value in extra.items():
        expected = ("true" if value else "false") if isinstance(value, bool) else str(value)
        if value != "" and value != "-":
            assert record.attributes[key] == expected


@SETTINGS
@given(
    moment=MOMENTS,
    level=LEVELS,
    message=st.text(max_size=40),
    pairs=st.dictionaries(IDENT.map(lambda k: "k_" + k), WORD, max_size=4),
)
def test_logfmt_round_trip(moment: datetime, level: str, message: str, pairs: dict[str, str]) -> None:
    rest = "".join(f" {key}={value}" for key, value in pairs.items())
    line = f"ts={moment.isoformat()} level={level} msg={json.dumps(message)}{rest}"
    record = one([line], fmt="logfmt")
    assert (record.timestamp, record.severity_text) == (moment, level)
    assert record.message == (message[:-1] if message.endswith("\n") else message)
    for key, value in pairs.items():
        assert record.attributes[key] == value


@SETTINGS
@given(
    moment=MOMENTS,
    level=LEVELS,
    message=st.text(max_size=40),
    pairs=st.dictionaries(IDENT.map(lambda k: "k_" + k), WORD, max_size=4),
    stamp_in_pairs=st.booleans(),
)
def test_timestamp_then_logfmt_round_trip(
    moment: datetime, level: str, message: str, pairs: dict[str, str], stamp_in_pairs: bool
) -> None:
    rest = "".join(f" {key}={value}" for key, value in pairs.items())
    # a time among the pairs does not override the leading one
    other = " ts=2001-01-01T00:00:00Z" if stamp_in_pairs else ""
    line = f"{moment.isoformat()}{other} level={level} msg={json.dumps(message)}{rest}"
    record = one([line])
    assert (record.timestamp, record.severity_text) == (moment, level)
    assert record.severity is not Severity.UNSPECIFIED
    assert record.message == (message[:-1] if message.endswith("\n") else message)
    for key, value in pairs.items():
        assert record.attributes[key] == value


@SETTINGS
@given(
    moment=MOMENTS,
    message=MESSAGE,
    cuts=st.lists(st.integers(1, 59), max_size=3),
    stream=st.sampled_from(["stdout", "stderr"]),
)
def test_cri_partials_round_trip(moment: datetime, message: str, cuts: list[int], stream: str) -> None:
    stamp = moment.isoformat().replace("+00:00", "Z")
    points = sorted({cut for cut in cuts if cut < len(message)})
    pieces = [message[start:end] for start, end in zip([0, *points], [*points, len(message)], strict=True)]
    lines = [f"{stamp} {stream} P {piece}" for piece in pieces[:-1]] + [f"{stamp} {stream} F {pieces[-1]}"]
    record = one(lines, fmt="cri")
    assert record.message == message
    assert record.lines == len(lines)
    assert record.attributes["stream"] == stream
    assert record.timestamp is not None


@SETTINGS
@given(
    moment=MOMENTS,
    message=st.text(alphabet=string.ascii_letters + " .,:;", min_size=1, max_size=50).filter(
        lambda m: m.strip() == m and m
    ),
)
def test_docker_round_trip(moment: datetime, message: str) -> None:
    line = json.dumps({"log": message + "\n", "stream": "stderr", "time": moment.isoformat()})
    record = one([line], fmt="docker_json")
    assert (record.timestamp, record.message) == (moment, message)
    assert record.attributes["stream"] == "stderr"


@SETTINGS
@given(
    rows=st.lists(
        st.tuples(
            MOMENTS,
            LEVELS,
            st.text(alphabet=string.printable, min_size=1, max_size=40).filter(
                lambda m: m.strip() not in ("", "-")
            ),
        ),
        min_size=1,
        max_size=8,
    )
)
def test_csv_round_trip(rows: list[tuple[datetime, str, str]]) -> None:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["@timestamp", "log.level", "message"])
    for moment, level, message in rows:
        writer.writerow(
            [moment.isoformat(), level, message.replace("\r", " ").replace("\x0b", " ").replace("\x0c", " ")]
        )
    text = buffer.getvalue()
    issues: list[ParseIssue] = []
    records = list(read_logs(text.encode(), fmt="csv", issues=issues))
    assert len(records) == len(rows)
    for record, (moment, level, _) in zip(records, rows, strict=True):
        assert (record.timestamp, record.severity_text) == (moment, level)
    assert records[-1].end_line == len(text.rstrip("\n").split("\n"))


@pytest.mark.parametrize("fmt", LOG_FORMATS)
@SETTINGS
@given(items=st.lists(st.one_of(st.text(max_size=200), LINE_TEXT), max_size=12))
def test_read_logs_never_raises_on_lists_of_text(fmt: str, items: list[str]) -> None:
    issues: list[ParseIssue] = []
    records = list(read_logs(items, fmt=fmt, issues=issues))
    for record in records:
        assert record.line >= 1 and record.lines >= 1
        assert record.timestamp is None or record.timestamp.tzinfo is UTC
