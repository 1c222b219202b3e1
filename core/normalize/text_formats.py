"""Text lines that start with a timestamp: ISO 8601 and its log4j/logback, Python-logging and PostgreSQL
layouts, HDFS ``yyMMdd HHmmss``, epoch seconds/millis, and glog/klog ``Lmmdd hh:mm:ss.uuuuuu``."""

from __future__ import annotations

import logging
import re
from datetime import datetime
from typing import Final

from core.models import Severity
from core.normalize.fields import Fields, bounded_attributes
from core.normalize.severity import severity_from_text
from core.normalize.timestamps import ISO_PREFIX, from_epoch_text, iso_parts, month_day

logger = logging.getLogger(__name__)

LEVEL_WORDS: Final = (
    r"TRACE|DEBUG[1-5]?|INFO|NOTICE|WARN(?:ING)?|ERROR|ERR|SEVERE|FATAL|CRIT(?:ICAL)?|ALERT|EMERG|PANIC"
    r"|FINEST|FINER|FINE|CONFIG|LOG|DETAIL|HINT|STATEMENT|CONTEXT"
    r"|[Tt]race|[Dd]ebug|[Ii]nfo|[Nn]otice|[Ww]arn(?:ing)?|[Ee]rror|[Ff]atal|[Cc]ritical"
)

# After the timestamp: [thread] / pid, level, spring-boot "pid ---", [thread], logger, message.
_REST: Final = (
    r"(?:\[(?P<thread>[^\]]{0,120})\]\s+|(?P<pid>\d{1,7})\s+)?"
    rf"(?:\[(?P<blevel>{LEVEL_WORDS})\]|(?P<level>{LEVEL_WORDS})(?=[\s:]|$)):?\s*"
    r"(?:\d{1,7}\s+---\s+)?"
    r"(?:\[(?P<thread2>[^\]]{0,120})\]\s*(?:-\s+)?)?"
    r"(?:(?P<logger>[A-Za-z_$][\w$]*(?:\.[\w$]+)+(?:\[[\w\s.-]*\])?)\s*(?::|\s-)\s+"
    r"|(?P<logger2>[A-Za-z_$][\w$./-]{0,120})\s+(?::|-)\s+)?"
    r"(?P<message>.*)"
)
# Python logging's "%(asctime)s - %(name)s - %(levelname)s - %(message)s".
_PY_REST: Final = (
    rf"(?:-\s+)?(?P<pylogger>[^\s\[]\S*)\s+-\s+(?P<pylevel>{LEVEL_WORDS})\s+-\s+(?P<pymessage>.*)"
)

_ISO_LINE: Final = re.compile(rf"\[?{ISO_PREFIX}\]?(?:\s+|$)(?:{_PY_REST}|{_REST}|(?P<plain>.*))", re.S)
_HDFS_LINE: Final = re.compile(
    rf"(?P<date>\d{{6}}) (?P<clock>\d{{6}})(?:[.,](?P<frac>\d{{1,6}}))?\s+(?:{_REST}|(?P<plain>.*))", re.S
)
_EPOCH_LINE: Final = re.compile(
    rf"\[?(?P<epoch>\d{{10}}(?:\.\d{{1,9}})?|\d{{13}}|\d{{16}}|\d{{19}})\]?\s+(?:{_REST}|(?P<plain>.*))", re.S
)
_GLOG_LINE: Final = re.compile(
    r"(?P<level>[IWEF])(?P<month>\d{2})(?P<day>\d{2}) (?P<clock>\d{2}:\d{2}:\d{2})(?:\.(?P<frac>\d{1,9}))?"
    r"\s+(?P<tid>\d+) (?P<where>[^:\]\s]+(?::\d+)?)\] ?(?P<message>.*)",
    re.S,
)
# Python's default basicConfig layout: "ERROR:payments.db:connection lost".
_PY_BASIC: Final = re.compile(
    r"(?P<level>DEBUG|INFO|WARNING|ERROR|CRITICAL):(?P<logger>[\w.]*):(?P<message>.*)", re.S
)

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


def _rest_fields(match: re.Match[str], moment: datetime | None) -> Fields:
    """Fields from the groups of a line matched with the _REST / _PY_REST / plain alternatives."""
    groups = match.groupdict()
    plain = groups.get("plain")
    if plain is not None:
        return {"timestamp": moment, "message": plain}
    pylevel = groups.get("pylevel")
    if pylevel is not None:
        return {
            "timestamp": moment,
            "severity": _severity(pylevel),
            "severity_text": pylevel,
            "logger": groups["pylogger"],
            "message": groups["pymessage"],
        }
    level = groups["level"] or groups["blevel"]
    fields: Fields = {
        "timestamp": moment,
        "severity": _severity(level),
        "severity_text": level,
        "logger": groups["logger"] or groups["logger2"],
        "message": groups["message"],
    }
    thread = groups["thread"] or groups["thread2"]
    pid = groups["pid"]
    if thread or pid:
        attributes: list[tuple[str, str]] = []
        if thread:
            attributes.append(("thread", thread))
        if pid:
            attributes.append(("pid", pid))
        fields["attributes"] = bounded_attributes(attributes)
    return fields


def parse_iso(line: str) -> Fields | None:
    """A line starting with an ISO 8601 timestamp (with log4j/logback/Python/PostgreSQL layouts after it)."""
    match = _ISO_LINE.match(line)
    if match is None:
        return None
    moment = iso_parts(match["base"], match["frac"], match["tz"])
    if moment is None:
        return None
    return _rest_fields(match, moment)


def parse_hdfs(line: str) -> Fields | None:
    """``081109 203615 148 INFO dfs.DataNode$PacketResponder: ...`` (yyMMdd HHmmss)."""
    match = _HDFS_LINE.match(line)
    if match is None:
        return None
    date, clock = match["date"], match["clock"]
    base = f"20{date[0:2]}-{date[2:4]}-{date[4:6]} {clock[0:2]}:{clock[2:4]}:{clock[4:6]}"
    moment = iso_parts(base, match["frac"], None)
    if moment is None:
        return None
    return _rest_fields(match, moment)


def parse_epoch(line: str) -> Fields | None:
    """A line starting with epoch seconds (optionally fractional), millis, micros or nanos."""
    match = _EPOCH_LINE.match(line)
    if match is None:
        return None
    moment = from_epoch_text(match["epoch"])
    if moment is None:
        return None
    return _rest_fields(match, moment)


def parse_glog(line: str) -> Fields | None:
    """glog/klog: ``E0301 10:00:00.123456    1 controller.go:114] message``."""
    match = _GLOG_LINE.match(line)
    if match is None:
        return None
    moment = month_day(int(match["month"]), int(match["day"]), match["clock"], match["frac"])
    if moment is None:
        return None
    letter = match["level"]
    return {
        "timestamp": moment,
        "severity": _GLOG_SEVERITY[letter],
        "severity_text": _GLOG_TEXT[letter],
        "logger": match["where"],
        "message": match["message"],
        "attributes": {"thread": match["tid"]},
    }


def parse_python_basic(line: str) -> Fields | None:
    """Python's default layout without a timestamp: ``WARNING:root:disk almost full``."""
    match = _PY_BASIC.match(line)
    if match is None:
        return None
    level = match["level"]
    return {
        "severity": _severity(level),
        "severity_text": level,
        "logger": match["logger"] or None,
        "message": match["message"],
    }


def parse_python(line: str) -> Fields | None:
    """Python logging: a timestamped layout (see parse_iso) or the default ``LEVEL:logger:message``."""
    fields = parse_iso(line)
    if fields is not None:
        return fields
    return parse_python_basic(line)
