"""Reading sources safely: paths, stdin, bytes, open files, lists; bad input becomes ParseIssues."""

from __future__ import annotations

import gzip
import io
import sys
from collections.abc import Generator
from pathlib import Path

import pytest

from core.errors import InputError
from core.models import LogRecord, ParseIssue, Severity
from core.normalize import LOG_FORMATS, read_logs
from core.normalize.sources import MAX_LINE_CHARS

LINES = [
    "2024-03-01T10:00:00Z INFO checkout started",
    "2024-03-01T10:00:01Z ERROR checkout payment failed",
    "2024-03-01T10:00:02Z WARN checkout retrying",
]
TEXT = "\n".join(LINES) + "\n"


def read(source: object, **kwargs: object) -> tuple[list[LogRecord], list[ParseIssue]]:
    issues: list[ParseIssue] = []
    records = list(read_logs(source, issues=issues, **kwargs))  # type: ignore[arg-type]
    return records, issues


def messages(records: list[LogRecord]) -> list[str]:
    return [record.message for record in records]


EXPECTED = ["checkout started", "checkout payment failed", "checkout retrying"]


def test_path_str_pathlike_bytes_list_and_files_agree(tmp_path: Path) -> None:
    path = tmp_path / "app.log"
    path.write_text(TEXT, encoding="utf-8")
    for source in (str(path), path, TEXT.encode(), LINES, tuple(LINES)):
        records, issues = read(source)
        assert messages(records) == EXPECTED, source
        assert issues == []
    with path.open("rb") as binary:
        assert messages(read(binary)[0]) == EXPECTED
    with path.open("r", encoding="utf-8") as text:
        assert messages(read(text)[0]) == EXPECTED
    assert messages(read(io.StringIO(TEXT))[0]) == EXPECTED
    assert messages(read(io.BytesIO(TEXT.encode()))[0]) == EXPECTED


def test_default_names(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "app.log"
    path.write_text(TEXT, encoding="utf-8")
    assert read(path)[0][0].source == str(path)
    assert read(LINES)[0][0].source == "<memory>"
    assert read(TEXT.encode())[0][0].source == "<memory>"
    assert read(LINES, name="checkout-pod")[0][0].source == "checkout-pod"
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(TEXT.encode()), encoding="utf-8"))
    records, _ = read("-")
    assert messages(records) == EXPECTED
    assert records[0].source == "<stdin>"


def test_list_elements_may_hold_several_lines() -> None:
    records, _ = read(
        ["2024-03-01T10:00:00Z INFO a\n2024-03-01T10:00:01Z INFO b\n", "2024-03-01T10:00:02Z INFO c"]
    )
    assert messages(records) == ["a", "b", "c"]
    assert [record.line for record in records] == [1, 2, 3]


def test_crlf_and_bom() -> None:
    data = "\ufeff" + TEXT.replace("\n", "\r\n")
    records, issues = read(data.encode())
    assert messages(records) == EXPECTED
    assert issues == []
    assert messages(read(io.StringIO(data))[0]) == EXPECTED


def test_gzip_is_recognised_by_magic_bytes_not_suffix(tmp_path: Path) -> None:
    path = tmp_path / "rotated.log.1"
    path.write_bytes(gzip.compress(TEXT.encode()))
    records, issues = read(path)
    assert messages(records) == EXPECTED
    assert issues == []
    assert messages(read(gzip.compress(TEXT.encode()))[0]) == EXPECTED


def test_multi_member_gzip(tmp_path: Path) -> None:
    path = tmp_path / "joined.gz"
    path.write_bytes(gzip.compress((LINES[0] + "\n").encode()) + gzip.compress("\n".join(LINES[1:]).encode()))
    assert messages(read(path)[0]) == EXPECTED


def test_truncated_gzip_keeps_what_was_read(tmp_path: Path) -> None:
    body = "".join(f"2024-03-01T10:00:{i % 60:02d}Z INFO request {i} done\n" for i in range(5000)).encode()
    blob = gzip.compress(body)
    path = tmp_path / "cut.log.gz"
    path.write_bytes(blob[: len(blob) // 2])
    records, issues = read(path)
    assert 0 < len(records) < 5000
    assert records[0].message == "request 0 done"
    assert [record.line for record in records] == list(range(1, len(records) + 1))
    assert len(issues) == 1
    assert issues[0].level == "error"
    assert issues[0].source == str(path)
    assert "truncated" in issues[0].message
    assert issues[0].line is not None and issues[0].line >= len(records)


def test_corrupt_gzip_is_reported(tmp_path: Path) -> None:
    blob = bytearray(gzip.compress(TEXT.encode() * 50))
    blob[20:40] = b"\xff" * 20
    records, issues = read(bytes(blob), name="bad.gz")
    assert issues and issues[0].source == "bad.gz"
    assert issues[0].level == "error"
    assert len(records) < 150


def test_binary_input_is_reported_and_skipped(tmp_path: Path) -> None:
    path = tmp_path / "core.dump"
    path.write_bytes(b"\x7fELF\x02\x01\x01\x00\x00\x00" + bytes(range(256)) * 20)
    records, issues = read(path)
    assert records == []
    assert len(issues) == 1
    assert issues[0].level == "error"
    assert "binary" in issues[0].message
    assert issues[0].source == str(path)
    records, issues = read(["ok line", "bad\x00line", "more"])
    assert messages(records) == ["ok line"]  # what came before the binary data is kept
    assert issues[0].line == 2
    assert "binary" in issues[0].message


def test_invalid_utf8_is_replaced_and_reported_once() -> None:
    data = (
        LINES[0]
        + "\n"
        + "2024-03-01T10:00:01Z ERROR caf\xe9 \xff\xfe broke\n"
        + "2024-03-01T10:00:02Z INFO \xc3(\n"
    ).encode("latin-1")
    records, issues = read(data, name="mixed.log")
    assert len(records) == 3
    assert "\ufffd" in records[1].message
    assert records[1].severity is Severity.ERROR
    assert len(issues) == 1
    assert (issues[0].source, issues[0].line) == ("mixed.log", 2)
    assert "UTF-8" in issues[0].message


def test_empty_inputs_are_reported(tmp_path: Path) -> None:
    path = tmp_path / "empty.log"
    path.write_bytes(b"")
    sources: list[object] = [path, b"", [], io.StringIO("")]
    for source in sources:
        records, issues = read(source)
        assert records == []
        assert len(issues) == 1
        assert "empty" in issues[0].message


def test_blank_only_input_yields_nothing() -> None:
    records, issues = read(b"\n\n   \n")
    assert records == []
    assert issues == []


def test_huge_line_is_capped_and_reported(tmp_path: Path) -> None:
    path = tmp_path / "huge.log"
    with path.open("wb") as handle:
        handle.write((LINES[0] + "\n").encode())
        handle.write(b"2024-03-01T10:00:01Z ERROR " + b"x" * (5 * 1024 * 1024) + b"\n")
        handle.write((LINES[2] + "\n").encode())
    records, issues = read(path)
    assert len(records) == 3
    assert [record.line for record in records] == [1, 2, 3]
    assert records[1].severity is Severity.ERROR
    assert len(records[1].message) < MAX_LINE_CHARS
    assert records[2].message == "checkout retrying"
    assert len(issues) == 1
    assert (issues[0].line, issues[0].source) == (2, str(path))


def test_long_line_inside_a_block_is_capped() -> None:
    records, issues = read(("a" * (MAX_LINE_CHARS + 10) + "\nnext\n").encode())
    assert [len(record.message) for record in records] == [MAX_LINE_CHARS, 4]
    assert issues[0].line == 1
    records, issues = read(["b" * (MAX_LINE_CHARS * 2), "next"])
    assert len(records[0].message) == MAX_LINE_CHARS
    assert issues[0].line == 1


def test_last_line_without_newline() -> None:
    assert messages(read(TEXT.rstrip("\n").encode())[0]) == EXPECTED


def test_unknown_format_names_the_valid_ones() -> None:
    with pytest.raises(InputError) as caught:
        read_logs(LINES, fmt="xml")
    assert "xml" in caught.value.user_message
    assert "syslog5424" in caught.value.user_message
    assert "auto" in LOG_FORMATS and "plain" in LOG_FORMATS


def test_missing_path_is_an_input_error(tmp_path: Path) -> None:
    with pytest.raises(InputError) as caught:
        read_logs(tmp_path / "nope.log")
    assert "nope.log" in caught.value.user_message
    with pytest.raises(InputError):
        read_logs(tmp_path)


def test_file_is_closed_after_reading(tmp_path: Path) -> None:
    path = tmp_path / "app.log"
    path.write_text(TEXT, encoding="utf-8")
    stream = read_logs(path)
    assert isinstance(stream, Generator)
    next(stream)
    stream.close()  # a generator closed early closes its file too (no ResourceWarning)
    assert list(read_logs(path))


class _EndlessLine(io.RawIOBase):
    """A stream holding one header line, then a single line of ``size`` bytes, then a final line;
    produced lazily so the test itself never holds the long line in memory."""

    def __init__(self, size: int) -> None:
        self.parts = [b"2024-03-01T10:00:00Z INFO before\n2024-03-01T10:00:01Z ERROR "]
        self.remaining = size
        self.tail = b"\n2024-03-01T10:00:02Z INFO after\n"

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: bytearray) -> int:  # type: ignore[override]
        if self.parts:
            chunk = self.parts.pop()
        elif self.remaining:
            chunk = b"y" * min(self.remaining, len(buffer))
            self.remaining -= len(chunk)
        else:
            chunk, self.tail = self.tail, b""
        buffer[: len(chunk)] = chunk
        return len(chunk)


def test_a_100_mb_line_is_streamed_capped_and_reported() -> None:
    stream = io.BufferedReader(_EndlessLine(100 * 1024 * 1024), buffer_size=1 << 20)  # type: ignore[type-var]
    records, issues = read(stream, name="huge-stream")
    assert [record.message[:6] for record in records] == ["before", "yyyyyy", "after"]
    assert len(records[1].message) < MAX_LINE_CHARS
    assert [(issue.source, issue.line) for issue in issues] == [("huge-stream", 2)]


def test_cap_inside_a_multibyte_character_is_not_reported_as_bad_utf8() -> None:
    # longer than a read block, so it is capped in bytes; "x" puts the cut inside a two-byte "é"
    line = ("x" + "é" * (1024 * 1024)).encode()
    records, issues = read(line + b"\nnext\n", name="accents.log")
    assert set(records[0].message) == {"x", "é"}
    assert len(records[0].message) == MAX_LINE_CHARS // 2
    assert [record.message for record in records[1:]] == ["next"]
    assert len(issues) == 1
    assert "longer than" in issues[0].message
