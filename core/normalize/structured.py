"""Structured lines: JSON objects (ECS, OpenTelemetry, Bunyan/pino, GCP, fluentd/fluent-bit/filebeat
Kubernetes metadata, journald) and logfmt."""

from __future__ import annotations

import json
import logging
import re
from typing import Final

from core.normalize.fields import Fields, Scalar, fields_from_flat, flatten, message_from_flat

logger = logging.getLogger(__name__)

_loads = json.loads


def load_object(line: str) -> dict[str, object] | None:
    """The JSON object on a line, or None when the line is not one."""
    text = line.strip()
    if not text.startswith("{") or not text.endswith("}"):
        return None
    try:
        value = _loads(text)
    except (ValueError, RecursionError):
        return None
    return value if isinstance(value, dict) else None


def fields_from_object(obj: dict[str, object], raw: str, full: bool = True) -> Fields:
    flat: dict[str, Scalar] = {}
    try:
        flatten(obj, flat)
    except RecursionError:
        flat = {}
    return fields_from_flat(flat, raw=raw) if full else message_from_flat(flat, raw=raw)


def parse_json(line: str, full: bool = True) -> Fields | None:
    """One JSON object per line. Every parser here takes ``full``: False gives only the message (the
    same text, the same lines accepted) and skips converting the other fields."""
    obj = load_object(line)
    if obj is None:
        return None
    return fields_from_object(obj, line, full)


_PAIR: Final = r'([A-Za-z_@][\w.@/-]*)=("[^"\\]*(?:\\.[^"\\]*)*"|[^\s"=]*)'
_LOGFMT_PAIR: Final = re.compile(_PAIR)
# The whole line: at least two pairs, separated by whitespace, and nothing else.
_LOGFMT_LINE: Final = re.compile(rf"\s*{_PAIR}(?:\s+{_PAIR})+\s*")


def _unquote(value: str) -> str:
    if "\\" not in value:
        return value[1:-1]  # what JSON decoding gives, without decoding
    try:
        text = _loads(value)
    except ValueError:
        return value[1:-1]
    return text if isinstance(text, str) else value[1:-1]


def parse_logfmt(line: str, full: bool = True) -> Fields | None:
    """``ts=2024-03-01T10:00:00Z level=error msg="upstream timeout" service=checkout latency_ms=5001``.

    At least two pairs, separated by whitespace, and nothing else on the line."""
    if "=" not in line or _LOGFMT_LINE.fullmatch(line) is None:
        return None
    flat: dict[str, Scalar] = {}
    for key, value in _LOGFMT_PAIR.findall(line):
        flat[key] = _unquote(value) if value[:1] == '"' else value
    return fields_from_flat(flat, raw=line) if full else message_from_flat(flat, raw=line)
