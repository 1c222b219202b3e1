"""CSV exports with a header row, as OpenSearch Dashboards, Kibana, Splunk or Grafana download them:
quoted fields (which may span lines), a time column, a message column and level/service/host columns by
their usual names. Columns map onto record fields as JSON keys do; the rest become attributes."""

from __future__ import annotations

import csv
import logging
from collections.abc import Iterable, Iterator
from typing import Final

from core.models import LogRecord, ParseIssue
from core.normalize.fields import (
    HOST_KEYS,
    LEVEL_KEYS,
    LOGGER_KEYS,
    MESSAGE_KEYS,
    POD_KEYS,
    SERVICE_KEYS,
    TIME_KEYS,
    Fields,
    Scalar,
    fields_from_flat,
    record_builder,
)

logger = logging.getLogger(__name__)

_MAX_ROW_ISSUES: Final = 20
_TIME_COLUMNS: Final = frozenset(key.lower() for key in TIME_KEYS)
_MESSAGE_COLUMNS: Final = frozenset(key.lower() for key in MESSAGE_KEYS)
# Column headers are matched to the known field names without regard to case ("Timestamp", "Message").
_CANONICAL: Final = {
    key.lower(): key
    for keys in (TIME_KEYS, MESSAGE_KEYS, LEVEL_KEYS, SERVICE_KEYS, HOST_KEYS, POD_KEYS, LOGGER_KEYS)
    for key in reversed(keys)
}


def _delimiter(header: str) -> str:
    """The most frequent of comma, semicolon and tab in the header row."""
    return max(",;\t", key=header.count)


def header_columns(line: str) -> list[str] | None:
    """The column names when ``line`` looks like the header of a log export, else None."""
    if "," not in line and ";" not in line and "\t" not in line:
        return None
    try:
        row = next(csv.reader([line], delimiter=_delimiter(line)), [])
    except csv.Error:
        return None
    names = [name.strip().lower() for name in row]
    if len(names) < 2 or not any(names):
        return None
    if any(name in _TIME_COLUMNS for name in names) and any(name in _MESSAGE_COLUMNS for name in names):
        return row
    return None


def csv_fits(sample: list[str]) -> bool:
    return bool(sample) and header_columns(sample[0]) is not None


def _with_newlines(lines: Iterable[str]) -> Iterator[str]:
    for line in lines:
        yield line + "\n"


def csv_records(
    lines: Iterable[str],
    *,
    source: str,
    issues: list[ParseIssue] | None,
    defaults: Fields | None,
) -> Iterator[LogRecord]:
    iterator = iter(lines)
    first = ""
    skipped = 0
    for line in iterator:
        skipped += 1
        if line.strip():
            first = line
            break
    header = header_columns(first)
    if header is None:
        if issues is not None:
            issues.append(
                ParseIssue(
                    source=source,
                    line=skipped or None,
                    level="error",
                    message="no CSV header with a time and a message column",
                )
            )
        return
    names = [_CANONICAL.get(name.strip().lower(), name.strip()) for name in header]
    reader = csv.reader(_with_newlines(iterator), delimiter=_delimiter(first))
    reported = 0
    build = record_builder(source=source, fmt="csv", defaults=defaults)
    pending: Fields | None = None
    start = 0
    span = 0
    consumed = skipped
    while True:
        try:
            row = next(reader)
        except StopIteration:
            break
        except csv.Error:
            if issues is not None and reported < _MAX_ROW_ISSUES:
                reported += 1
                issues.append(
                    ParseIssue(source=source, line=consumed + 1, message="malformed CSV row; skipped")
                )
            span += skipped + reader.line_num - consumed if pending is not None else 0
            consumed = skipped + reader.line_num
            continue
        now = skipped + reader.line_num
        physical = now - consumed
        first_line = consumed + 1
        consumed = now
        if not row or not any(cell.strip() for cell in row):
            if pending is not None:
                span += physical
            continue
        if len(row) != len(names) and issues is not None and reported < _MAX_ROW_ISSUES:
            reported += 1
            issues.append(
                ParseIssue(
                    source=source,
                    line=first_line,
                    message=f"row has {len(row)} fields, the header has {len(names)}",
                )
            )
        flat: dict[str, Scalar] = {}
        for name, value in zip(names, row, strict=False):
            if value and value != "-":
                flat[name] = value
        fields = fields_from_flat(flat, raw=",".join(row))
        if pending is not None:
            yield build(pending, pending.get("message", ""), start, span)
        pending = fields
        start = first_line
        span = physical
    if pending is not None:
        yield build(pending, pending.get("message", ""), start, span)
