"""Joining physical lines into logical records: stack traces (Java, Python, Go), indented continuation
lines, and blank lines, which belong to the record before them.

Line accounting: every physical line belongs to exactly one record, except blank lines before the
first record (and a CSV header), which belong to none.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Iterable, Iterator
from typing import Final, TypeVar

from core.models import LogRecord, Severity
from core.normalize.containers import Item
from core.normalize.fields import Fields, HeaderParser, record_builder

logger = logging.getLogger(__name__)

# A record's message, its first physical line and its number of physical lines: all that template mining
# reads of a record (see :func:`assemble_messages`).
MessageSpan = tuple[str, int, int]
_T = TypeVar("_T")

_NO_TRACE: Final = 0
_PYTHON: Final = 1
_GO: Final = 2

# Lines that continue the record before them whatever format it has.
_CONTINUATION_PREFIXES: Final = (
    "Caused by:",
    "Suppressed:",
    "... ",
    "Traceback (most recent call last):",
    "During handling of the above exception",
    "The above exception was the direct cause",
    "goroutine ",
    "created by ",
    "exit status ",
    "[signal ",
)
_JAVA_EXCEPTION: Final = re.compile(r"(?:[a-z_$][\w$]*\.)+[A-Z][\w$]*(?:Exception|Error|Throwable)(?::|$)")
_GO_PANIC_PREFIXES: Final = ("panic: ", "fatal error: ")
_TRACE_STARTS: Final = ("Traceback (most recent call last):", "goroutine ", *_GO_PANIC_PREFIXES)


def starts_go_panic(text: str) -> bool:
    return text.startswith(_GO_PANIC_PREFIXES)


def _is_continuation(text: str) -> bool:
    first = text[0]
    if first in " \t":
        return True
    if text.startswith(_CONTINUATION_PREFIXES):
        return True
    return _JAVA_EXCEPTION.match(text) is not None


def _trace_after(text: str, current: int) -> int:
    if text.startswith("Traceback (most recent call last):"):
        return _PYTHON
    if text.startswith("goroutine ") or starts_go_panic(text):
        return _GO
    return current


def _same_origin(pending: Fields, outer: Fields) -> bool:
    """A wrapped continuation line joins only a record from the same pod (aggregated streams interleave)."""
    pod = outer.get("pod")
    return pod is None or pod == pending.get("pod")


def _merge(inner: Fields, outer: Fields) -> Fields:
    """Fields of a line wrapped by a container runtime: the inner line's own values win."""
    if inner.get("timestamp") is None and outer.get("timestamp") is not None:
        inner["timestamp"] = outer["timestamp"]
    if inner.get("severity", Severity.UNSPECIFIED) is Severity.UNSPECIFIED and "severity" in outer:
        inner["severity"] = outer["severity"]
        inner["severity_text"] = outer.get("severity_text")
    for key in ("service", "host", "pod", "logger"):
        if inner.get(key) is None and outer.get(key) is not None:
            inner[key] = outer[key]
    outer_attributes = outer.get("attributes")
    if outer_attributes:
        inner_attributes = inner.get("attributes")
        inner["attributes"] = (
            {**outer_attributes, **inner_attributes} if inner_attributes else outer_attributes
        )
    return inner


def assemble(
    items: Iterable[Item],
    parse: HeaderParser,
    *,
    fallback: HeaderParser | None,
    headered: bool,
    source: str,
    fmt: str,
    defaults: Fields | None,
    parsed: dict[str, Fields | None] | None = None,
) -> Iterator[LogRecord]:
    """Turn (line, span, text, wrapper fields) items into records (see :func:`_join` for the rules).
    ``parsed`` holds ``parse(text, True)`` for some texts of the first SAMPLE_LINES items, already made
    (each is used once: a text that comes again is parsed again)."""
    emit = record_builder(source=source, fmt=fmt, defaults=defaults)
    return _join(items, parse, fallback=fallback, headered=headered, full=True, emit=emit, parsed=parsed)


def _message_span(fields: Fields, message: str, start: int, span: int) -> MessageSpan:
    return (message, start, span)


def assemble_messages(
    items: Iterable[Item],
    parse: HeaderParser,
    *,
    fallback: HeaderParser | None,
    headered: bool,
    full: bool = False,
) -> Iterator[MessageSpan]:
    """The same joining as :func:`assemble`, giving each record's message and line accounting only. The
    parsers run in their message-only reading unless ``full``."""
    return _join(items, parse, fallback=fallback, headered=headered, full=full, emit=_message_span)


def _join(
    items: Iterable[Item],
    parse: HeaderParser,
    *,
    fallback: HeaderParser | None,
    headered: bool,
    full: bool,
    emit: Callable[[Fields, str, int, int], _T],
    parsed: dict[str, Fields | None] | None = None,
) -> Iterator[_T]:
    """Join physical lines into records and hand each to ``emit(fields, message, first line, lines)``.

    ``parse`` is the format's header parser (called with ``full``); a line it rejects is, in order: blank (joins the record
    before), an obvious continuation (indented, ``Caused by:``, a Java exception, ...), a header of
    another shape found by ``fallback``, a continuation because the format is ``headered`` (every
    record starts with a header) or a Go panic / Python traceback is open, and otherwise a record of
    its own with the whole line as its message.
    """
    pending: Fields | None = None
    head = ""
    parts: list[str] | None = None
    blanks = 0
    start = 0
    span = 0
    trace = _NO_TRACE
    for number, count, text, outer in items:
        if parsed is not None and text in parsed:
            fields = parsed.pop(text)  # (popped: the record may take the dict's values as its own)
            if not parsed:
                parsed = None
        else:
            fields = parse(text, full)
        if fields is None:
            if not text or text.isspace():
                if pending is not None:
                    span += count
                    blanks += 1
                continue
            if (
                pending is not None
                and _is_continuation(text)
                and (outer is None or _same_origin(pending, outer))
            ):
                if parts is None:
                    parts = [head]
                if blanks:
                    parts.extend([""] * blanks)
                    blanks = 0
                parts.append(text)
                span += count
                trace = _trace_after(text, trace)
                continue
            if fallback is not None:
                fields = fallback(text, full)
            if fields is None:
                if pending is not None and (headered or trace != _NO_TRACE) and not starts_go_panic(text):
                    if parts is None:
                        parts = [head]
                    if blanks:
                        parts.extend([""] * blanks)
                        blanks = 0
                    parts.append(text)
                    span += count
                    if trace == _PYTHON:
                        trace = _NO_TRACE  # the exception line ends a Python traceback
                    continue
                fields = {"message": text}
                if starts_go_panic(text):
                    fields["severity"] = Severity.FATAL
                    fields["severity_text"] = "panic"
        if outer is not None:
            fields = _merge(fields, outer)
        if pending is not None:
            yield emit(pending, head if parts is None else "\n".join(parts), start, span)
        pending = fields
        head = fields.get("message", "")
        parts = None
        blanks = 0
        start = number
        span = count
        trace = _trace_after(head, _NO_TRACE) if head.startswith(_TRACE_STARTS) else _NO_TRACE
    if pending is not None:
        yield emit(pending, head if parts is None else "\n".join(parts), start, span)
