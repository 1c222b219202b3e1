"""Reading physical lines safely from paths, stdin, bytes, open files and lists of strings.

Streams in blocks (never the whole input), recognises gzip by its magic bytes, skips binary input
(NUL bytes in the first block), decodes UTF-8 with replacement (reported once per source with the first
bad line), caps each physical line at :data:`MAX_LINE_CHARS` (keeping its head, reporting the line) and
reports an empty input or a truncated/corrupt gzip stream, keeping everything read before it.
"""

from __future__ import annotations

import logging
import os
import sys
import zlib
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import IO, Final, cast

from core.errors import InputError
from core.models import ParseIssue

logger = logging.getLogger(__name__)

MAX_LINE_CHARS: Final = 64 * 1024
BLOCK_SIZE: Final = 1 << 20
_SNIFF: Final = 8192
_MAX_LONG_LINE_REPORTS: Final = 20
_GZIP_MAGIC: Final = b"\x1f\x8b"

LogSource = str | os.PathLike[str] | bytes | Sequence[str] | IO[bytes] | IO[str]


class _Reporter:
    """Issue bookkeeping for one source: one report of bad UTF-8, a bounded number of long lines."""

    def __init__(self, name: str, issues: list[ParseIssue] | None) -> None:
        self.name = name
        self.issues = issues
        self.bad_utf8_reported = False
        self.long_lines = 0

    def add(self, message: str, *, line: int | None, level: str = "warning") -> None:
        if self.issues is not None:
            self.issues.append(
                ParseIssue(
                    source=self.name,
                    line=line,
                    level="error" if level == "error" else "warning",
                    message=message,
                )
            )

    def long_line(self, line: int, length_hint: str) -> None:
        self.long_lines += 1
        if self.long_lines <= _MAX_LONG_LINE_REPORTS:
            self.add(
                f"line longer than {MAX_LINE_CHARS} characters ({length_hint}); kept its first "
                f"{MAX_LINE_CHARS} characters",
                line=line,
            )
        elif self.long_lines == _MAX_LONG_LINE_REPORTS + 1:
            self.add("more over-long lines follow; they are truncated without further reports", line=line)

    def bad_utf8(self, line: int) -> None:
        if not self.bad_utf8_reported:
            self.bad_utf8_reported = True
            self.add(
                "invalid UTF-8 (first at this line); undecodable bytes were replaced with U+FFFD", line=line
            )


def source_name(source: LogSource, name: str | None) -> str:
    if name is not None:
        return name
    if isinstance(source, str):
        return "<stdin>" if source == "-" else source
    if isinstance(source, os.PathLike):
        return os.fspath(source)
    if isinstance(source, bytes | list | tuple):
        return "<memory>"
    file_name = getattr(source, "name", None)
    if isinstance(file_name, str) and file_name:
        return file_name
    return "<memory>"


def open_lines(source: LogSource, name: str, issues: list[ParseIssue] | None) -> Iterator[str]:
    """Physical lines of ``source`` without their line ends. Paths are opened now, so an unreadable
    path raises :class:`InputError` at once; everything else is reported into ``issues`` while reading."""
    reporter = _Reporter(name, issues)
    if isinstance(source, str | os.PathLike):
        path = os.fspath(source)
        if path == "-":
            return _byte_lines(_blocks_of(sys.stdin.buffer), reporter, close=None)
        try:
            handle = open(path, "rb")  # noqa: SIM115 - closed by the generator when it ends
        except FileNotFoundError as exc:
            raise InputError(f"Log file not found: {path}") from exc
        except IsADirectoryError as exc:
            raise InputError(f"Not a file: {path}") from exc
        except OSError as exc:
            raise InputError(f"Cannot read log file: {path}") from exc
        return _byte_lines(_blocks_of(handle), reporter, close=handle.close)
    if isinstance(source, bytes):
        data = source
        return _byte_lines(
            (data[start : start + BLOCK_SIZE] for start in range(0, len(data), BLOCK_SIZE)),
            reporter,
            close=None,
        )
    if isinstance(source, Sequence):
        # mypy keeps ``bytes`` in the union after the isinstance above (bytes promotion)
        return _sequence_lines(cast("Sequence[str]", source), reporter)
    if hasattr(source, "read"):
        return _stream_lines(source, reporter)
    raise InputError("Unsupported log source: expected a path, bytes, a list of lines or an open file")


def _blocks_of(handle: IO[bytes]) -> Iterator[bytes]:
    while True:
        block = handle.read(BLOCK_SIZE)
        if not block:
            return
        yield block


def _stream_lines(handle: IO[bytes] | IO[str], reporter: _Reporter) -> Iterator[str]:
    try:
        first = handle.read(BLOCK_SIZE)
    except OSError:
        reporter.add("could not read the input", line=None, level="error")
        return
    if isinstance(first, str):
        text_handle: IO[str] = handle  # type: ignore[assignment]
        yield from _text_lines(_chain_text(first, text_handle), reporter)
        return
    byte_handle: IO[bytes] = handle  # type: ignore[assignment]
    yield from _byte_lines(_chain_bytes(first, byte_handle), reporter, close=None)


def _chain_bytes(first: bytes, handle: IO[bytes]) -> Iterator[bytes]:
    if first:
        yield first
        yield from _blocks_of(handle)


def _chain_text(first: str, handle: IO[str]) -> Iterator[str]:
    block = first
    while block:
        yield block
        block = handle.read(BLOCK_SIZE)


def _gunzip(blocks: Iterable[bytes], reporter: _Reporter, lines_so_far: Callable[[], int]) -> Iterator[bytes]:
    """Decompress (possibly multi-member) gzip; a truncated or corrupt stream ends with an issue."""
    inflater = zlib.decompressobj(wbits=31)
    fed = False
    for block in blocks:
        data = block
        while data:
            try:
                out = inflater.decompress(data)
            except zlib.error:
                reporter.add(
                    f"corrupt gzip data after line {lines_so_far()}; the rest of the input was skipped",
                    line=lines_so_far() + 1,
                    level="error",
                )
                return
            fed = True
            if out:
                yield out
            if inflater.eof:
                data = inflater.unused_data.lstrip(b"\x00")
                inflater = zlib.decompressobj(wbits=31)
                fed = False
            else:
                data = b""
    if fed and not inflater.eof:
        tail = inflater.flush()
        if tail:
            yield tail
        reporter.add(
            f"gzip stream truncated after line {lines_so_far()}; the lines before it were used",
            line=lines_so_far() + 1,
            level="error",
        )


def _byte_lines(
    blocks: Iterator[bytes], reporter: _Reporter, *, close: Callable[[], None] | None
) -> Iterator[str]:
    count = 0

    def counted() -> int:
        return count

    try:
        try:
            first = next(blocks)
        except StopIteration:
            reporter.add("empty input: no lines to read", line=None)
            return
        except OSError:
            reporter.add("could not read the input", line=None, level="error")
            return
        stream: Iterator[bytes] = _prepend(first, blocks)
        if first[:2] == _GZIP_MAGIC:
            stream = _gunzip(stream, reporter, counted)
            try:
                first = next(stream)
            except StopIteration:
                reporter.add("empty input: the gzip stream holds no data", line=None)
                return
            stream = _prepend(first, stream)
        if first.startswith(b"\xef\xbb\xbf"):
            first = first[3:]
            stream = _prepend(first, _skip_one(stream))
        if b"\x00" in first[:_SNIFF]:
            reporter.add(
                "binary data (NUL bytes in the first block); the input was skipped", line=None, level="error"
            )
            return
        carry = b""
        skipping = False
        for raw_block in stream:
            block = raw_block
            if skipping:
                cut = block.find(b"\n")
                if cut < 0:
                    continue
                block = block[cut + 1 :]
                skipping = False
            buffer = carry + block if carry else block
            cut = buffer.rfind(b"\n")
            if cut < 0:
                carry = buffer
            else:
                lines = _decode(buffer[:cut], count, reporter)
                carry = buffer[cut + 1 :]
                count += len(lines)
                yield from lines
            if len(carry) > MAX_LINE_CHARS:
                count += 1
                reporter.long_line(count, "it goes on past the limit")
                yield _decode(_whole_characters(carry[:MAX_LINE_CHARS]), count - 1, reporter)[0]
                carry = b""
                skipping = True
        if carry:
            lines = _decode(carry, count, reporter)
            count += len(lines)
            yield from lines
    except OSError:
        reporter.add(
            f"read error after line {count}; the rest of the input was skipped", line=count + 1, level="error"
        )
    finally:
        if close is not None:
            close()


def _whole_characters(data: bytes) -> bytes:
    """Drop a UTF-8 sequence cut off at the end of ``data`` (a capped line may end mid-character)."""
    for back in range(1, min(4, len(data)) + 1):
        byte = data[-back]
        if byte & 0xC0 == 0x80:
            continue  # a continuation byte: look further back for the lead byte
        if byte >= 0xC0:
            needed = 2 if byte < 0xE0 else 3 if byte < 0xF0 else 4
            return data if back >= needed else data[:-back]
        return data
    return data


def _prepend(first: bytes, rest: Iterator[bytes]) -> Iterator[bytes]:
    if first:
        yield first
    yield from rest


def _skip_one(stream: Iterator[bytes]) -> Iterator[bytes]:
    next(stream, None)
    yield from stream


def _decode(data: bytes, before: int, reporter: _Reporter) -> list[str]:
    """Split a run of complete lines (without the final newline) and decode them."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        text = data.decode("utf-8", "replace")
        if not reporter.bad_utf8_reported:
            for offset, raw in enumerate(data.split(b"\n")):
                try:
                    raw.decode("utf-8")
                except UnicodeDecodeError:
                    reporter.bad_utf8(before + offset + 1)
                    break
    return _split(text, before, reporter)


def _split(text: str, before: int, reporter: _Reporter) -> list[str]:
    lines = text.split("\n")
    if "\r" in text:
        lines = [line[:-1] if line.endswith("\r") else line for line in lines]
    if len(text) > MAX_LINE_CHARS and max(map(len, lines)) > MAX_LINE_CHARS:
        for index, line in enumerate(lines):
            if len(line) > MAX_LINE_CHARS:
                reporter.long_line(before + index + 1, f"{len(line)} characters")
                lines[index] = line[:MAX_LINE_CHARS]
    return lines


def _text_lines(blocks: Iterator[str], reporter: _Reporter) -> Iterator[str]:
    count = 0
    carry = ""
    skipping = False
    first_block = True
    for raw_block in blocks:
        block = raw_block
        if first_block:
            first_block = False
            block = block.removeprefix("\ufeff")
            if "\x00" in block[:_SNIFF]:
                reporter.add(
                    "binary data (NUL characters in the first block); the input was skipped",
                    line=None,
                    level="error",
                )
                return
        if skipping:
            cut = block.find("\n")
            if cut < 0:
                continue
            block = block[cut + 1 :]
            skipping = False
        buffer = carry + block if carry else block
        cut = buffer.rfind("\n")
        if cut < 0:
            carry = buffer
        else:
            lines = _split(buffer[:cut], count, reporter)
            carry = buffer[cut + 1 :]
            count += len(lines)
            yield from lines
        if len(carry) > MAX_LINE_CHARS:
            count += 1
            reporter.long_line(count, "it goes on past the limit")
            yield carry[:MAX_LINE_CHARS]
            carry = ""
            skipping = True
    if first_block:
        reporter.add("empty input: no lines to read", line=None)
        return
    if carry:
        lines = _split(carry, count, reporter)
        count += len(lines)
        yield from lines


def _sequence_lines(items: Sequence[str], reporter: _Reporter) -> Iterator[str]:
    """Lines of a list of strings; an element may itself hold several lines."""
    if not items:
        reporter.add("empty input: no lines to read", line=None)
        return
    sniffed = 0
    count = 0
    for item in items:
        if not isinstance(item, str):
            count += 1
            reporter.add("not a string; counted as an empty line", line=count)
            yield ""
            continue
        if sniffed < _SNIFF:
            if "\x00" in item:
                what = "the input was" if count == 0 else "this line and the rest were"
                reporter.add(
                    f"binary data (NUL characters in the first block); {what} skipped",
                    line=count + 1,
                    level="error",
                )
                return
            sniffed += len(item)
        if "\n" in item or "\r" in item or len(item) > MAX_LINE_CHARS:
            text = item[:-1] if item.endswith("\n") else item
            lines = _split(text, count, reporter)
            count += len(lines)
            yield from lines
        else:
            count += 1
            yield item
