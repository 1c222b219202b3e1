"""Mapping of the many ways logs spell a level onto the OpenTelemetry severity ranges."""

from __future__ import annotations

import logging

from core.models import Severity

logger = logging.getLogger(__name__)

_BY_NAME: dict[str, Severity] = {
    # the usual words
    "trace": Severity.TRACE,
    "finest": Severity.TRACE,
    "finer": Severity.TRACE,
    "verbose": Severity.TRACE,
    "debug": Severity.DEBUG,
    "dbg": Severity.DEBUG,
    "fine": Severity.DEBUG,
    "config": Severity.DEBUG,
    "debug1": Severity.DEBUG,
    "debug2": Severity.DEBUG,
    "debug3": Severity.DEBUG,
    "debug4": Severity.DEBUG,
    "debug5": Severity.DEBUG,
    "info": Severity.INFO,
    "information": Severity.INFO,
    "informational": Severity.INFO,
    "inf": Severity.INFO,
    "notice": Severity.INFO,
    "log": Severity.INFO,  # PostgreSQL
    "default": Severity.UNSPECIFIED,  # GCP
    "statement": Severity.INFO,
    "detail": Severity.INFO,
    "hint": Severity.INFO,
    "context": Severity.INFO,
    "warn": Severity.WARN,
    "warning": Severity.WARN,
    "wrn": Severity.WARN,
    "error": Severity.ERROR,
    "err": Severity.ERROR,
    "eror": Severity.ERROR,
    "severe": Severity.ERROR,
    "fatal": Severity.FATAL,
    "critical": Severity.FATAL,
    "crit": Severity.FATAL,
    "alert": Severity.FATAL,
    "emerg": Severity.FATAL,
    "emergency": Severity.FATAL,
    "panic": Severity.FATAL,
    "dpanic": Severity.FATAL,
    # single letters (glog/klog, Android, zap console)
    "t": Severity.TRACE,
    "v": Severity.TRACE,
    "d": Severity.DEBUG,
    "i": Severity.INFO,
    "n": Severity.INFO,
    "w": Severity.WARN,
    "e": Severity.ERROR,
    "f": Severity.FATAL,
    "c": Severity.FATAL,
}

# Syslog PRI severities 0..7 (RFC 5424 section 6.2.1).
SYSLOG_SEVERITY: tuple[tuple[Severity, str], ...] = (
    (Severity.FATAL, "emerg"),
    (Severity.FATAL, "alert"),
    (Severity.FATAL, "crit"),
    (Severity.ERROR, "err"),
    (Severity.WARN, "warning"),
    (Severity.INFO, "notice"),
    (Severity.INFO, "info"),
    (Severity.DEBUG, "debug"),
)


def severity_from_text(text: str) -> Severity:
    """The severity a level word stands for; UNSPECIFIED when the word is unknown."""
    found = _BY_NAME.get(text.strip().lower())
    if found is not None:
        return found
    stripped = text.strip().strip("[]<>:").lower()
    return _BY_NAME.get(stripped, Severity.UNSPECIFIED)


def severity_from_otel_number(number: int) -> Severity:
    """OpenTelemetry SeverityNumber 1..24 (each level spans four numbers)."""
    if number <= 0 or number > 24:
        return Severity.UNSPECIFIED
    return Severity(((number - 1) // 4) * 4 + 1)


def severity_from_bunyan(number: int) -> Severity:
    """Bunyan/pino numeric levels: 10 trace, 20 debug, 30 info, 40 warn, 50 error, 60 fatal."""
    if number >= 60:
        return Severity.FATAL
    if number >= 50:
        return Severity.ERROR
    if number >= 40:
        return Severity.WARN
    if number >= 30:
        return Severity.INFO
    if number >= 20:
        return Severity.DEBUG
    if number >= 10:
        return Severity.TRACE
    return Severity.UNSPECIFIED


def severity_from_http_status(status: int) -> Severity:
    """Access logs: 5xx is an error, 4xx a warning, everything else informational."""
    if status >= 500:
        return Severity.ERROR
    if status >= 400:
        return Severity.WARN
    return Severity.INFO


def severity_from_number(number: int, *, key: str) -> Severity:
    """A numeric level whose meaning depends on the field it came from."""
    lowered = key.lower()
    if "severitynumber" in lowered or "severity_number" in lowered:
        return severity_from_otel_number(number)
    if lowered in ("priority", "syslog.priority", "log.syslog.severity.code") and 0 <= number <= 7:
        return SYSLOG_SEVERITY[number][0]
    if 10 <= number <= 60:
        return severity_from_bunyan(number)
    if 0 <= number <= 7:
        return SYSLOG_SEVERITY[number][0]
    return Severity.UNSPECIFIED
