"""Text lines that start with a timestamp: ISO 8601 and its log4j/logback, Python-logging and PostgreSQL
layouts, HDFS ``yyMMdd HHmmss``, epoch seconds/millis, and glog/klog ``Lmmdd hh:mm:ss.uuuuuu``."""

from __future__ import annotations

import logging
import re
from datetime import datetime
from typing import Final

from core.models import Severity
from core.normalize.fields import Fields
from core.normalize.severity import severity_from_text
from core.normalize.structured import parse_logfmt
from core.normalize.timestamps import ISO_PREFIX, from_epoch_text, iso_parts, month_day

logger = logging.getLogger(__name__)

LEVEL_WORDS: Final = (
    r"TRACE|DEBUG[1-5]?|INFO|NOTICE|WARN(?:ING)?|ERROR|ERR|SEVERE|FATAL|CRIT(?:ICAL)?|ALERT|EMERG|PANIC"
    r"|FINEST|FINER|FINE|CONFIG|LOG|DETAIL|HINT|STATEMENT|CONTEXT"
    r"|[Tt]race|[Dd]ebug|[Ii]nfo|[Nn]otice|[Ww]arn(?:ing)?|[Ee]rror|[Ff]atal|[Cc]ritical"
)

# After the timestamp: [thread] or pid, level, spring-boot "pid ---", [thread]. Groups are numbered.
_LEVEL_TEXT: Final = (
    r"(?:\[([^\]]{0,120})\]\s+|(\d{1,7})\s+)?"
    rf"(?:\[({LEVEL_WORDS})\]|({LEVEL_WORDS})(?=[\s:]|$)):?\s*"
    r"(?:\d{1,7}\s+---\s+)?"
    r"(?:\[([^\]]{0,120})\]\s*(?:-\s+)?)?"
)
_LEVEL_PART: Final = re.compile(_LEVEL_TEXT)
# A logger: one token then ":" (dotted names only), " - " or " : ".
_LOGGER_PART: Final = re.compile(r"([A-Za-z_$][^\s:]{0,200}+)(?:(:)|\s+[-:])\s+")
# Python logging's "%(asctime)s - %(name)s - %(levelname)s - %(message)s".
_PY_PART: Final = re.compile(rf"(?:-\s+)?([^\s\[]\S*)\s+-\s+({LEVEL_WORDS})\s+-\s+")

_ISO_HEAD: Final = re.compile(rf"\[?{ISO_PREFIX}\]?(?:\s+|$)")
# The common case in one regex call: timestamp, then the level part when there is one.
_ISO_LEVEL: Final = re.compile(rf"\[?{ISO_PREFIX}\]?\s+{_LEVEL_TEXT}")
_HDFS_HEAD: Final = re.compile(r"(\d{6}) (\d{6})(?:[.,](\d{1,6}))?\s+")
_EPOCH_HEAD: Final = re.compile(r"\[?(\d{9,10}(?:\.\d{1,9})?|\d{12,13}|\d{15,16}|\d{18,19})\]?\s+")
_GLOG_LINE: Final = re.compile(
    r"(?P<level>[IWEF])(?P<month>\d{2})(?P<day>\d{2}) (?P<clock>\d{2}:\d{2}:\d{2})(?:\.(?P<frac>\d{1,9}))?"
    r"\s+(?P<tid>\d+) (?P<where>[^:\]\s]+(?::\d+)?)\] ?(?P<message>.*)",
    re.S,
)
# Python's default basicConfig layout: "ERROR:payments.db:connection lost".
_PY_BASIC: Final = re.compile(
    r"(?P<level>DEBUG|INFO|WARNING|ERROR|CRITICAL):(?P<logger>[\w.]*):(?P<message>.*)", re.S
)

_DATE_SEPARATORS: Final = ("-", "/")
_fromisoformat = datetime.fromisoformat
_GLOG_SEVERITY: Final = {"I": Severity.INFO, "W": Severity.WARN, "E": Severity.ERROR, "F": Severity.FATAL}
_GLOG_TEXT: Final = {"I": "INFO", "W": "WARNING", "E": "ERROR", "F": "FATAL"}
_sev_cache: dict[str, Severity] = {}


def _severity(text: str) -> Severity:
    found = _sev_cache.get(text)
    if found is None:
        found = severity_from_text(text)
        if len(_sev_cache) < 256:
            _sev_cache[text] = found
    return found


def after_timestamp(line: str, pos: int, moment: datetime | None, full: bool = True) -> Fields:
    """Fields from what follows a leading timestamp: level, thread, logger and message, as far as present.
    With ``full`` False, only the message (see :func:`core.normalize.structured.parse_json`)."""
    head = _LEVEL_PART.match(line, pos)
    if head is None:
        return _without_level(line, pos, moment, full)
    return _with_level(line, head.end(), moment, head.groups() if full else (), full)


def _without_level(line: str, pos: int, moment: datetime | None, full: bool) -> Fields:
    python = _PY_PART.match(line, pos)
    if python is None:
        if "=" in line:
            pairs = _logfmt_after(line, pos, moment, full)
            if pairs is not None:
                return pairs
        return {"timestamp": moment, "message": line[pos:]}
    if not full:
        return {"message": line[python.end() :]}
    level = python[2]
    return {
        "timestamp": moment,
        "severity": _severity(level),
        "severity_text": level,
        "logger": python[1],
        "message": line[python.end() :],
    }


def _logfmt_after(line: str, pos: int, moment: datetime | None, full: bool) -> Fields | None:
    """Fields of logfmt pairs after a leading timestamp (``<time> level=error msg="..." k=v``), or None
    when the rest of the line is not logfmt. The leading timestamp is the record's time; a time field
    among the pairs counts only when the leading one is missing."""
    fields = parse_logfmt(line[pos:], full)
    if fields is None or not full:
        return fields
    if moment is not None or fields.get("timestamp") is None:
        fields["timestamp"] = moment
    return fields


def _with_level(
    line: str, pos: int, moment: datetime | None, groups: tuple[str | None, ...], full: bool
) -> Fields:
    logger_name = None
    found = _LOGGER_PART.match(line, pos)
    if found is not None:
        token = found[1]
        if found[2] is None or "." in token:
            logger_name = token
            pos = found.end()
    if not full:
        return {"message": line[pos:]}
    thread, pid, blevel, level, thread2 = groups
    if level is None:
        level = blevel or ""
    fields: Fields = {
        "timestamp": moment,
        "severity": _severity(level),
        "severity_text": level,
        "logger": logger_name,
        "message": line[pos:],
    }
    if thread2 is not None:
        thread = thread2
    elif thread is not None and pid is None and thread.isdigit():
        thread, pid = None, thread  # "[12345]" before the level is a process id (PostgreSQL, daemons)
    if thread is not None or pid is not None:
        attributes: dict[str, str] = {}
        if thread:
            attributes["thread"] = thread
        if pid:
            attributes["pid"] = pid
        fields["attributes"] = attributes
    return fields


# The commonest header, "2024-05-14T13:55:00.142Z INFO  checkout-7f9c4 order placed", in one simple
# regex: ASCII date and time ("T" or space), optional "." or "," fraction of 1-9 digits, optional "Z", one
# space, a word of letters, spaces, then a message not starting with whitespace, a digit or "[", and
# (optionally, last, so it matches exactly as it does on its own) the logger part of _LOGGER_PART.
_PLAIN_HEAD: Final = re.compile(
    r"([0-9]{4}-[0-9]{2}-[0-9]{2}[T ][0-9]{2}:[0-9]{2}:[0-9]{2})(?:[.,]([0-9]{1,9}))?Z? ([A-Za-z]+) +"
    rf"(?=[^\s\d\[])(?:{_LOGGER_PART.pattern})?"
)
# The level words the fast path takes, with their severities: each is a whole word of LEVEL_WORDS (a unit
# test checks this), and its severity is the one _severity gives it.
PLAIN_LEVELS: Final[dict[str, Severity]] = {
    word: severity_from_text(word)
    for word in (
        *("TRACE", "DEBUG", "INFO", "NOTICE", "WARN", "WARNING", "ERROR", "ERR", "FATAL", "CRITICAL"),
        *("trace", "debug", "info", "notice", "warn", "warning", "error", "fatal", "critical"),
        *("Trace", "Debug", "Info", "Notice", "Warn", "Warning", "Error", "Fatal", "Critical"),
    )
}


def plain_iso_level(line: str, full: bool = True) -> Fields | None:
    """The fields of a line with the commonest header (see :data:`_PLAIN_HEAD`), or None when the line
    has another shape or an impossible date: the caller then runs the general regexes (which give None
    for an impossible date too). About a third cheaper than they are on such lines.

    Equivalent to :data:`_ISO_LEVEL` + :func:`_with_level` on every line it accepts: the general pattern
    matches there with the same date and fraction (ASCII digits are digits to it too), no thread or pid
    before the level (the level starts with a letter), the zone Z or none (no level word starts with Z,
    U, G, + or -), the level the whole word (a word of the language followed by a space), its whitespace
    run ending where " +" ends (the next character is not whitespace), and no spring-boot pid or
    "[thread]" after it (they start with a digit or "["). The logger part is _LOGGER_PART's pattern at
    the same position, last in the regex, so it matches as ``_LOGGER_PART.match`` does there, and the
    timestamp is the one :func:`iso_parts` gives.
    """
    match = _PLAIN_HEAD.match(line)
    if match is None:
        return None
    base, frac, level, logger_name, colon = match.groups()
    severity = PLAIN_LEVELS.get(level)
    if severity is None:
        return None
    try:  # the text iso_parts hands fromisoformat for a time in UTC, without the call
        moment = _fromisoformat(f"{base}.{frac}+00:00" if frac else base + "+00:00")
    except ValueError:
        return None
    start = match.end()
    if logger_name is not None and colon is not None and "." not in logger_name:
        logger_name, start = None, match.start(4)  # "word: ..." is the message, not a logger
    if not full:
        return {"message": line[start:]}
    return {
        "timestamp": moment,
        "severity": severity,
        "severity_text": level,
        "logger": logger_name,
        "message": line[start:],
    }


def parse_iso(line: str, full: bool = True) -> Fields | None:
    """A line starting with an ISO 8601 timestamp (with log4j/logback/Python/PostgreSQL layouts after it)."""
    fields = plain_iso_level(line, full)  # most timestamped lines; its regex fails at once on the others
    if fields is not None:
        return fields
    # cheap test before the general regexes: every ISO line has "-" or "/" after its four-digit year
    if line[4:5] not in _DATE_SEPARATORS and (line[:1] != "[" or line[5:6] not in _DATE_SEPARATORS):
        return None
    return parse_iso_by_regex(line, full)


def parse_iso_by_regex(line: str, full: bool = True) -> Fields | None:
    """:func:`parse_iso` without the fast path: the general regexes for every layout."""
    match = _ISO_LEVEL.match(line)
    if match is not None:
        groups = match.groups()
        moment = iso_parts(groups[0], groups[1], tz=groups[2])
        if moment is None:
            return None
        return _with_level(line, match.end(), moment, groups[3:], full)
    match = _ISO_HEAD.match(line)
    if match is None:
        return None
    base, frac, tz = match.groups()
    moment = iso_parts(base, frac, tz=tz)
    if moment is None:
        return None
    return _without_level(line, match.end(), moment, full)


def parse_hdfs(line: str, full: bool = True) -> Fields | None:
    """``081109 203615 148 INFO dfs.DataNode$PacketResponder: ...`` (yyMMdd HHmmss)."""
    if line[6:7] != " ":
        return None
    match = _HDFS_HEAD.match(line)
    if match is None:
        return None
    date, clock, frac = match.groups()
    base = f"20{date[0:2]}-{date[2:4]}-{date[4:6]} {clock[0:2]}:{clock[2:4]}:{clock[4:6]}"
    moment = iso_parts(base, frac)
    if moment is None:
        return None
    return after_timestamp(line, match.end(), moment, full)


def parse_epoch(line: str, full: bool = True) -> Fields | None:
    """A line starting with epoch seconds (optionally fractional), millis, micros or nanos."""
    start = 1 if line[:1] == "[" else 0
    if not line[start : start + 9].isdigit():
        return None
    match = _EPOCH_HEAD.match(line)
    if match is None:
        return None
    moment = from_epoch_text(match[1])
    if moment is None:
        return None
    return after_timestamp(line, match.end(), moment, full)


def parse_glog(line: str, full: bool = True) -> Fields | None:
    """glog/klog: ``E0301 10:00:00.123456    1 controller.go:114] message``."""
    match = _GLOG_LINE.match(line)
    if match is None:
        return None
    # The fraction (1-9 digits, 6 used) cannot make a valid time invalid: the message-only reading skips it.
    frac = match["frac"] if full else None
    moment = month_day(int(match["month"]), int(match["day"]), clock=match["clock"], frac=frac)
    if moment is None:
        return None
    if not full:
        return {"message": match["message"]}
    letter = match["level"]
    return {
        "timestamp": moment,
        "severity": _GLOG_SEVERITY[letter],
        "severity_text": _GLOG_TEXT[letter],
        "logger": match["where"],
        "message": match["message"],
        "attributes": {"thread": match["tid"]},
    }


def parse_python_basic(line: str, full: bool = True) -> Fields | None:
    """Python's default layout without a timestamp: ``WARNING:root:disk almost full``."""
    match = _PY_BASIC.match(line)
    if match is None:
        return None
    if not full:
        return {"message": match["message"]}
    level = match["level"]
    return {
        "severity": _severity(level),
        "severity_text": level,
        "logger": match["logger"] or None,
        "message": match["message"],
    }


def parse_python(line: str, full: bool = True) -> Fields | None:
    """Python logging: a timestamped layout (see parse_iso) or the default ``LEVEL:logger:message``."""
    fields = parse_iso(line, full)
    if fields is not None:
        return fields
    return parse_python_basic(line, full)
