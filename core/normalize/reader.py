"""``read_logs``: one source in, a stream of LogRecords out."""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator
from itertools import chain, count, islice, repeat
from typing import Final

from core.errors import InputError
from core.models import LogRecord, ParseIssue
from core.normalize.containers import Item, unwrap_cri, unwrap_docker
from core.normalize.csv_export import csv_records
from core.normalize.detect import SAMPLE_LINES, detect_parsing
from core.normalize.fields import Fields, HeaderParser
from core.normalize.formats import BY_ID, LOG_FORMATS, parse_any
from core.normalize.kubernetes import pod_from_path, workload_from_pod
from core.normalize.multiline import MessageSpan, assemble, assemble_messages
from core.normalize.sources import LogSource, open_lines, source_name
from core.normalize.text_formats import parse_iso

logger = logging.getLogger(__name__)

_MAX_JSON_ISSUES: Final = 20


def check_format(fmt: str | None) -> str:
    if fmt is None:
        return "auto"
    if fmt not in LOG_FORMATS:
        raise InputError(f"Unknown log format {fmt!r}; valid formats: {', '.join(LOG_FORMATS)}")
    return fmt


def read_logs(
    source: LogSource,
    *,
    name: str | None = None,
    fmt: str | None = None,
    issues: list[ParseIssue] | None = None,
) -> Iterator[LogRecord]:
    """Stream the records of one source (see the package docstring). An unknown ``fmt`` or an unreadable
    path raises :class:`InputError` at once; every other problem is appended to ``issues``."""
    chosen = check_format(fmt)
    label = source_name(source, name)
    lines = open_lines(source, label, issues)
    defaults: Fields | None = None
    where = pod_from_path(label)
    if where is not None:
        defaults = {"pod": where[0], "service": workload_from_pod(where[0])}
    return _records(lines, label, chosen, issues, defaults)


def _numbered(lines: Iterable[str]) -> Iterator[Item]:
    return zip(count(1), repeat(1), lines, repeat(None))


class _JsonReporter:
    """A JSON line parser that reports lines which look like JSON but do not parse (bounded per source)."""

    def __init__(self, parse: HeaderParser, source: str, issues: list[ParseIssue]) -> None:
        self.parse = parse
        self.source = source
        self.issues = issues
        self.line = 0
        self.reported = 0

    def __call__(self, line: str, full: bool = True) -> Fields | None:
        self.line += 1
        found = self.parse(line, full)
        if found is None and line.startswith("{") and self.reported < _MAX_JSON_ISSUES:
            self.reported += 1
            self.issues.append(
                ParseIssue(source=self.source, line=self.line, message="malformed JSON; kept as plain text")
            )
        return found


def _detected(lines: Iterator[str], chosen: str) -> tuple[str, Iterator[str]]:
    fmt, stream, _ = _detected_parsing(lines, chosen)
    return fmt, stream


def _detected_parsing(
    lines: Iterator[str], chosen: str
) -> tuple[str, Iterator[str], dict[str, Fields | None]]:
    """The format, the lines again, and the full ``parse_iso`` fields of sample lines that detection
    parsed (see :func:`~core.normalize.detect.detect_parsing`; empty when the format was chosen)."""
    sample = list(islice(lines, SAMPLE_LINES))
    if chosen != "auto":
        return chosen, chain(sample, lines), {}
    fmt, parsed = detect_parsing(sample)
    return fmt, chain(sample, lines), parsed


def _unwrapped(fmt: str, stream: Iterator[str]) -> Iterable[Item] | None:
    """The items of a container runtime's log file, or None when ``fmt`` is not one."""
    if fmt == "cri":
        return unwrap_cri(stream)
    if fmt == "docker_json":
        return unwrap_docker(stream)
    return None


def _line_parsers(
    fmt: str, chosen: str, *, source: str, issues: list[ParseIssue] | None
) -> tuple[HeaderParser, HeaderParser | None]:
    """The header parser and fallback for a line-based format."""
    parse: HeaderParser = BY_ID[fmt].parse
    fallback: HeaderParser | None = parse_any
    if fmt == "plain" and chosen == "plain":
        # An explicit "plain" takes lines as they are; a detected one still tries each line's shape.
        fallback = None
    if fmt == "jsonl" and issues is not None:
        parse = _JsonReporter(parse, source, issues)
    return parse, fallback


def _records(
    lines: Iterator[str], source: str, chosen: str, issues: list[ParseIssue] | None, defaults: Fields | None
) -> Iterator[LogRecord]:
    fmt, stream, parsed = _detected_parsing(lines, chosen)
    if fmt == "csv":
        yield from csv_records(stream, source=source, issues=issues, defaults=defaults)
        return
    items = _unwrapped(fmt, stream)
    if items is not None:
        yield from assemble(
            items, parse_any, fallback=None, headered=False, source=source, fmt=fmt, defaults=defaults
        )
        return
    parse, fallback = _line_parsers(fmt, chosen, source=source, issues=issues)
    yield from assemble(
        _numbered(stream),
        parse,
        fallback=fallback,
        headered=BY_ID[fmt].headered,
        source=source,
        fmt=fmt,
        defaults=defaults,
        # the sample lines detection already read with the format's own parser (its full reading)
        parsed=parsed if parse is parse_iso and parsed else None,
    )


def read_messages(
    source: LogSource,
    *,
    name: str | None = None,
    fmt: str | None = None,
    issues: list[ParseIssue] | None = None,
) -> Iterator[MessageSpan]:
    """What :func:`read_logs` gives, reduced to ``(message, line, lines)`` per record: the same format
    detection, header parsers, joining of multi-line records and issues, the same message text and line
    accounting, without converting timestamps, severities or attributes and without building LogRecords.
    For callers that read nothing else of a record (template mining)."""
    chosen = check_format(fmt)
    label = source_name(source, name)
    return _messages(open_lines(source, label, issues), label, chosen, issues)


def _messages(
    lines: Iterator[str], source: str, chosen: str, issues: list[ParseIssue] | None
) -> Iterator[MessageSpan]:
    fmt, stream = _detected(lines, chosen)
    if fmt == "csv":
        for record in csv_records(stream, source=source, issues=issues, defaults=None):
            yield record.message, record.line, record.lines
        return
    items = _unwrapped(fmt, stream)
    if items is not None:
        # full parsing here: whether a wrapped continuation joins depends on the pod of the record before
        yield from assemble_messages(items, parse_any, fallback=None, headered=False, full=True)
        return
    parse, fallback = _line_parsers(fmt, chosen, source=source, issues=issues)
    yield from assemble_messages(_numbered(stream), parse, fallback=fallback, headered=BY_ID[fmt].headered)
