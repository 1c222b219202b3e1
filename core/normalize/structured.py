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
# A pair and the whitespace before it. A logfmt line is at least two pairs, separated by whitespace, and
# nothing else (``\s*PAIR(?:\s+PAIR)+\s*`` as a whole-line match): one scan finds the pairs and shows
# whether they cover the line (see _pairs), where a whole-line match and then a search for the pairs
# would read it twice.
_GAP_AND_PAIR: Final = re.compile(rf"(\s*){_PAIR}")


def _unquote(value: str) -> str:
    if "\\" not in value:
        return value[1:-1]  # what JSON decoding gives, without decoding
    try:
        text = _loads(value)
    except ValueError:
        return value[1:-1]
    return text if isinstance(text, str) else value[1:-1]


def _pairs(line: str) -> list[tuple[str, str, str]] | None:
    """(whitespace before, key, raw value) of each pair of a logfmt line, or None when it is not one."""
    found: list[tuple[str, str, str]] = _GAP_AND_PAIR.findall(line)
    if len(found) < 2:
        return None
    covered = 0
    for gap, key, value in found:
        if covered and not gap:
            return None  # two pairs with nothing between them
        covered += len(gap) + len(key) + 1 + len(value)
    # The matches cover the line up to `covered` only if no text was skipped between or before them
    # (every pair ends in a non-space character, so skipped text leaves one after `covered`).
    if covered != len(line) and not line[covered:].isspace():
        return None
    return found


def parse_logfmt(line: str, full: bool = True) -> Fields | None:
    """``ts=2024-03-01T10:00:00Z level=error msg="upstream timeout" service=checkout latency_ms=5001``.

    At least two pairs, separated by whitespace, and nothing else on the line."""
    if "=" not in line:
        return None
    pairs = _pairs(line)
    if pairs is None:
        return None
    flat: dict[str, Scalar] = {}
    for _, key, value in pairs:
        flat[key] = _unquote(value) if value[:1] == '"' else value
    return fields_from_flat(flat, raw=line) if full else message_from_flat(flat, raw=line)
