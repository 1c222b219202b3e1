"""Syslog: RFC 3164 (BSD, optional ``<PRI>``, year-less timestamps) and RFC 5424 (structured data)."""

from __future__ import annotations

import logging
import re
from typing import Final

from core.models import Severity
from core.normalize.fields import Fields, bounded_attributes
from core.normalize.severity import SYSLOG_SEVERITY, severity_from_text
from core.normalize.text_formats import LEVEL_WORDS
from core.normalize.timestamps import ISO_PREFIX, iso_parts, parse_time_text, yearless

logger = logging.getLogger(__name__)

FACILITIES: Final = (
    "kern", "user", "mail", "daemon", "auth", "syslog", "lpr", "news", "uucp", "cron", "authpriv", "ftp",
    "ntp", "security", "console", "solaris-cron", "local0", "local1", "local2", "local3", "local4",
    "local5", "local6", "local7",
)  # fmt: skip

_RFC3164: Final = re.compile(
    r"(?:<(?P<pri>\d{1,3})>)?"
    r"(?:(?P<mon>Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec) {1,2}(?P<day>\d{1,2}) "
    r"(?P<clock>\d{2}:\d{2}:\d{2})(?:\.(?P<bfrac>\d{1,9}))?"
    rf"|{ISO_PREFIX})"
    r" (?P<host>[^\s:\[]+) "
    r"(?:(?P<tag>[^\s:\[\]]{1,128})(?:\[(?P<pid>[^\]\s]{0,32})\])?: ?)?"
    r"(?P<message>.*)",
    re.S,
)
_RFC5424: Final = re.compile(
    r"<(?P<pri>\d{1,3})>(?P<version>\d{1,2}) (?P<ts>\S+) (?P<host>\S+) (?P<app>\S+) (?P<procid>\S+) "
    r"(?P<msgid>\S+) (?P<sd>-|(?:\[(?:[^\]\"\\]|\"(?:[^\"\\]|\\.)*\"|\\.)*\])+)(?: (?P<message>.*))?$",
    re.S,
)
_SD_ELEMENT: Final = re.compile(r"\[(?P<id>[^\s\]=\"]+)(?P<params>(?:[^\]\"\\]|\"(?:[^\"\\]|\\.)*\"|\\.)*)\]")
_SD_PARAM: Final = re.compile(r"(?P<name>[^\s=\"\]]+)=\"(?P<value>(?:[^\"\\]|\\.)*)\"")
_SD_UNESCAPE: Final = re.compile(r"\\([\"\\\]])")
_LEVEL_WORD: Final = re.compile(LEVEL_WORDS)
_MESSAGE_LEVEL: Final = re.compile(rf"(?:\[(?P<b>{LEVEL_WORDS})\]|(?P<w>{LEVEL_WORDS}))[:\s]")


def _pri(text: str | None) -> tuple[Severity, str | None, list[tuple[str, str]]]:
    if text is None:
        return Severity.UNSPECIFIED, None, []
    pri = int(text)
    if pri > 191:
        return Severity.UNSPECIFIED, None, [("syslog.pri", text)]
    severity, name = SYSLOG_SEVERITY[pri % 8]
    return severity, name, [("syslog.facility", FACILITIES[pri // 8])]


def _level_in_message(fields: Fields, message: str) -> None:
    match = _MESSAGE_LEVEL.match(message)
    if match is not None:
        word = match["b"] or match["w"]
        fields["severity"] = severity_from_text(word)
        fields["severity_text"] = word


def parse_rfc3164(line: str, full: bool = True) -> Fields | None:
    """``<34>Oct 11 22:14:15 mymachine su[230]: 'su root' failed for lonvick on /dev/pts/8``."""
    if line[:1].isdigit() and line.find(":", 19) < 0:
        # A line opening with a digit can only be the ISO form (a month name starts with a letter, a
        # priority with "<"), which needs "tag:" after the host; the ISO date and time take 19 characters
        # (its own colons come before), so with no ":" after them the answer is None (spares the regex).
        return None
    match = _RFC3164.match(line)
    if match is None:
        return None
    if match["mon"] is None and (
        match["tag"] is None or "=" in match["host"] or _LEVEL_WORD.fullmatch(match["host"])
    ):
        # an ISO-timestamped line is syslog only with "host app[pid]:"; a level word or a key=value pair
        # (``<time> level=error msg="failed: ..."``) is no host
        return None
    if match["mon"] is not None:
        # the fraction (digits, 6 used) cannot make a valid time invalid: the message-only reading skips it
        frac = match["bfrac"] if full else None
        moment = yearless(match["mon"], match["day"], clock=match["clock"], frac=frac)
    else:
        moment = iso_parts(match["base"], match["frac"], tz=match["tz"])
    if moment is None:
        return None
    if not full:
        return {"message": match["message"]}
    severity, severity_text, attributes = _pri(match["pri"])
    if match["pid"]:
        attributes.append(("pid", match["pid"]))
    message = match["message"]
    fields: Fields = {
        "timestamp": moment,
        "severity": severity,
        "severity_text": severity_text,
        "host": match["host"],
        "service": match["tag"],
        "message": message,
    }
    if severity_text is None:
        _level_in_message(fields, message)
    if attributes:
        fields["attributes"] = bounded_attributes(attributes)
    return fields


def _nil(value: str) -> str | None:
    return None if value == "-" else value


def parse_rfc5424(line: str, full: bool = True) -> Fields | None:
    """``<165>1 2003-10-11T22:14:15.003Z host app 1234 ID47 [id@32473 k="v"] message``."""
    match = _RFC5424.match(line)
    if match is None:
        return None
    if not full:
        return {"message": (match["message"] or "").removeprefix("\ufeff")}
    stamp = _nil(match["ts"])
    moment = parse_time_text(stamp) if stamp is not None else None
    severity, severity_text, attributes = _pri(match["pri"])
    procid = _nil(match["procid"])
    if procid is not None:
        attributes.append(("pid", procid))
    msgid = _nil(match["msgid"])
    if msgid is not None:
        attributes.append(("syslog.msgid", msgid))
    structured = match["sd"]
    if structured != "-":
        for element in _SD_ELEMENT.finditer(structured):
            for param in _SD_PARAM.finditer(element["params"]):
                value = _SD_UNESCAPE.sub(r"\1", param["value"])
                attributes.append((f"{element['id']}.{param['name']}", value))
    message = match["message"] or ""
    return {
        "timestamp": moment,
        "severity": severity,
        "severity_text": severity_text,
        "host": _nil(match["host"]),
        "service": _nil(match["app"]),
        "message": message.removeprefix("\ufeff"),
        "attributes": bounded_attributes(attributes),
    }
