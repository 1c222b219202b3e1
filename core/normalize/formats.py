"""The registry of format ids: each one's header parser, whether every record in it starts with a header,
and the test detection uses to see whether a sample line fits it."""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Final

from core.normalize.containers import cri_fits, docker_fits
from core.normalize.fields import Fields, HeaderParser
from core.normalize.structured import load_object, parse_json, parse_logfmt
from core.normalize.syslog import parse_rfc3164, parse_rfc5424
from core.normalize.text_formats import (
    parse_epoch,
    parse_glog,
    parse_hdfs,
    parse_iso,
    parse_python,
    parse_python_basic,
)
from core.normalize.timestamps import ISO_PREFIX
from core.normalize.web import parse_access, parse_apache_error, parse_nginx_error

logger = logging.getLogger(__name__)

LineParser = Callable[[str], Fields | None]


def parse_any(line: str, full: bool = True) -> Fields | None:
    """Try every line shape, cheapest test first; None when the line has no recognisable header."""
    first = line[:1]
    if not first or first in " \t":
        return None
    if first == "{":
        return parse_json(line, full)
    if first.isdigit():
        if len(line) > 10 and line[4] == "/" and line[10] == " ":
            found = parse_nginx_error(line, full)
            if found is not None:
                return found
        found = (
            parse_iso(line, full)
            or parse_access(line, full)
            or parse_hdfs(line, full)
            or parse_epoch(line, full)
        )
        if found is not None:
            return found
    elif first == "<":
        return parse_rfc5424(line, full) or parse_rfc3164(line, full)
    elif first == "[":
        found = parse_iso(line, full) or parse_apache_error(line, full) or parse_epoch(line, full)
        if found is not None:
            return found
    elif first.isalpha():
        found = parse_glog(line, full) if first in "IWEF" else None
        if found is None:
            found = parse_rfc3164(line, full) or parse_python_basic(line, full) or parse_access(line, full)
        if found is not None:
            return found
    if "=" in line:
        return parse_logfmt(line, full)
    return None


def _no_header(line: str, full: bool = True) -> Fields | None:
    return None


def _has_level_and_source(line: str) -> bool:
    fields = parse_iso(line)
    return fields is not None and _level_and_source(fields)


def _level_and_source(fields: Fields) -> bool:
    if fields.get("severity_text") is None:
        return False
    return fields.get("logger") is not None or "thread" in fields.get("attributes", {})


def _any_fields(fields: Fields) -> bool:
    return True


_PY_TIMESTAMPED: Final = re.compile(
    rf"\[?{ISO_PREFIX}\]?\s+(?:-\s+)?\S+\s+-\s+(?:DEBUG|INFO|WARNING|ERROR|CRITICAL)\s+-\s"
)


_PY_BASIC_FIRST: Final = "CDEIW"  # the first letters of DEBUG, INFO, WARNING, ERROR, CRITICAL


def _python_fits(line: str) -> bool:
    # (the basic layout opens with its level word: a line starting otherwise is not tried)
    if _PY_TIMESTAMPED.match(line) is not None:
        return True
    return line[:1] in _PY_BASIC_FIRST and parse_python_basic(line) is not None


_POSTGRES: Final = re.compile(
    rf"{ISO_PREFIX}\s*(?:[A-Z]{{2,5}}\s*)?\[\d+(?:-\d+)?\][^:]*?"
    r"(?:LOG|ERROR|FATAL|PANIC|WARNING|NOTICE|DETAIL|HINT|STATEMENT|CONTEXT|INFO|DEBUG\d?):  "
)


def _postgres_fits(line: str) -> bool:
    return ":  " in line and _POSTGRES.match(line) is not None  # (the regex needs the two spaces)


def _parses(parser: HeaderParser) -> Callable[[str], bool]:
    def fits(line: str) -> bool:
        return parser(line, False) is not None  # the message-only reading accepts the same lines

    return fits


def _json_fits(line: str) -> bool:
    return load_object(line) is not None


def _logfmt_fits(line: str) -> bool:
    fields = parse_logfmt(line)
    return fields is not None and (fields.get("timestamp") is not None or "severity" in fields)


# Tests of a line's first character that every line a format fits passes (see LogFormat.starts). The
# regexes' \d only matches characters str.isdigit accepts; a JSON object line may have whitespace before "{".
def _digit(first: str) -> bool:
    return first.isdigit()


def _digit_or_bracket(first: str) -> bool:
    return first == "[" or first.isdigit()


def _brace(first: str) -> bool:
    return first == "{" or first.isspace()


def _angle(first: str) -> bool:
    return first == "<"


def _bracket(first: str) -> bool:
    return first == "["


def _glog_letter(first: str) -> bool:
    return first in _GLOG_LETTERS


def _syslog3164_first(first: str) -> bool:
    # "<PRI>", a month name or (a digit) an ISO timestamp
    return first in _SYSLOG_FIRST or first.isdigit()


def _python_first(first: str) -> bool:
    # "[" or a digit: an ISO timestamp; a letter: the basic layout's level word
    return first == "[" or first in _PY_BASIC_FIRST or first.isdigit()


_GLOG_LETTERS: Final = frozenset("IWEF")
_SYSLOG_FIRST: Final = frozenset("<JFMASOND")


@dataclass(frozen=True, slots=True)
class LogFormat:
    id: str
    parse: HeaderParser
    headered: bool
    fits: Callable[[str], bool] | None
    description: str
    share: float = 0.9  # wins detection when it fits at least this share of the best format's lines
    # A test of a line's first character that every line ``fits`` accepts passes (None: no such test);
    # detection does not try the format on other lines.
    starts: Callable[[str], bool] | None = None
    # When set, ``fits(line)`` is ``parse_iso(line)`` giving fields that pass this test: detection then
    # parses each sample line once for every such format (parse_iso's message-only reading gives None on
    # exactly the lines its full reading does).
    fits_iso: Callable[[Fields], bool] | None = None


# Detection order: more specific first; ties in the share of fitting lines go to the earlier entry.
REGISTRY: Final[tuple[LogFormat, ...]] = (
    LogFormat(
        # json-file wrapping reads every JSON line too, so it wins once half the JSON lines wrap a "log"
        "docker_json",
        parse_any,
        False,
        docker_fits,
        "Docker json-file / fluent-bit: {log, stream, time}",
        0.5,
        starts=_brace,
    ),
    LogFormat("cri", parse_any, False, cri_fits, "CRI container log: time stream F|P message", starts=_digit),
    LogFormat("jsonl", parse_json, False, _json_fits, "one JSON object per line", starts=_brace),
    LogFormat("syslog5424", parse_rfc5424, False, _parses(parse_rfc5424), "RFC 5424 syslog", starts=_angle),
    LogFormat(
        "syslog3164",
        parse_rfc3164,
        False,
        _parses(parse_rfc3164),
        "RFC 3164 (BSD) syslog",
        starts=_syslog3164_first,
    ),
    LogFormat("apache_access", parse_access, False, _parses(parse_access), "Apache/nginx access log"),
    LogFormat("nginx_access", parse_access, False, None, "alias of apache_access"),
    LogFormat(
        "nginx_error",
        parse_nginx_error,
        True,
        _parses(parse_nginx_error),
        "nginx error log",
        starts=_digit,
    ),
    LogFormat(
        "apache_error",
        parse_apache_error,
        True,
        _parses(parse_apache_error),
        "Apache error log",
        starts=_bracket,
    ),
    LogFormat(
        "glog",
        parse_glog,
        True,
        _parses(parse_glog),
        "glog/klog: Lmmdd hh:mm:ss.uuuuuu tid file:line]",
        starts=_glog_letter,
    ),
    LogFormat(
        "postgres",
        parse_iso,
        True,
        _postgres_fits,
        "PostgreSQL: time zone [pid] LEVEL:  message",
        starts=_digit,
    ),
    LogFormat(
        "python",
        parse_python,
        True,
        _python_fits,
        "Python logging layouts",
        starts=_python_first,
    ),
    LogFormat(
        "log4j",
        parse_iso,
        True,
        _has_level_and_source,
        "log4j/logback: time [thread] LEVEL logger - msg",
        starts=_digit_or_bracket,
        fits_iso=_level_and_source,
    ),
    LogFormat(
        "hdfs",
        parse_hdfs,
        True,
        _parses(parse_hdfs),
        "yyMMdd HHmmss pid LEVEL logger: msg",
        starts=_digit,
    ),
    LogFormat(
        "epoch",
        parse_epoch,
        True,
        _parses(parse_epoch),
        "epoch seconds/millis then the message",
        starts=_digit_or_bracket,
    ),
    LogFormat(
        "iso",
        parse_iso,
        True,
        _parses(parse_iso),
        "ISO 8601 timestamp then the message",
        starts=_digit_or_bracket,
        fits_iso=_any_fields,
    ),
    LogFormat("logfmt", parse_logfmt, False, _logfmt_fits, "key=value pairs"),
    LogFormat("csv", _no_header, False, None, "CSV export with a header row"),
    LogFormat("plain", _no_header, False, None, "no header: each line is a message"),
)
BY_ID: Final = {entry.id: entry for entry in REGISTRY}
LOG_FORMATS: Final[tuple[str, ...]] = ("auto", *(entry.id for entry in REGISTRY))
