"""Slack file attachments: which ones to analyze, downloading them with the bot token (size-capped, with a
timeout, gzip decompressed), and turning them into engine input (logs → ``LogInput``, metrics →
``MetricSeries``). Files that are neither (images, PDFs, archives, binaries) are reported, not analyzed."""

from __future__ import annotations

import asyncio
import codecs
import csv
import io
import json
import logging
import zlib
from collections.abc import Iterable, Mapping
from pathlib import PurePosixPath
from typing import Any, Literal

import aiohttp
from pydantic import BaseModel, ConfigDict, Field

from core.answers import LogInput
from core.metrics import read_metrics
from core.models import MetricSeries, ParseIssue

log = logging.getLogger(__name__)

FileKind = Literal["logs", "metrics", "unsupported"]

MAX_FILES_PER_TURN = 10
_SNIFF_BYTES = 8192
_GZIP_MAGIC = b"\x1f\x8b"

_UNSUPPORTED_EXTENSIONS = frozenset(
    {
        ".png", ".jpg", ".jpeg", ".gif", ".bmp", ".webp", ".svg", ".ico", ".heic", ".tif", ".tiff",
        ".pdf", ".doc", ".docx", ".xls", ".xlsx", ".ppt", ".pptx", ".odt", ".key", ".numbers", ".pages",
        ".zip", ".tar", ".tgz", ".7z", ".rar", ".bz2", ".xz", ".zst", ".jar", ".war",
        ".exe", ".dll", ".so", ".dylib", ".bin", ".class", ".pyc", ".o", ".a", ".iso", ".dmg",
        ".mp3", ".mp4", ".mov", ".wav", ".avi", ".mkv", ".pcap", ".pcapng", ".hprof", ".core", ".parquet",
    }
)  # fmt: skip
_UNSUPPORTED_MIME_PREFIXES = ("image/", "video/", "audio/", "font/")
_UNSUPPORTED_MIMES = frozenset(
    {
        "application/pdf", "application/zip", "application/x-tar", "application/x-7z-compressed",
        "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
        "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet", "application/msword",
        "application/octet-stream", "application/x-executable", "application/x-sharedlib",
    }
)  # fmt: skip
_METRIC_WORDS = ("metric", "prometheus", "promql", "timeseries", "time-series", "grafana")
_LOG_COLUMNS = frozenset({"message", "msg", "log", "@message", "_source", "line", "_raw", "body", "text"})


class SlackFile(BaseModel):
    """The fields of a Slack file object that matter here."""

    model_config = ConfigDict(extra="ignore")

    id: str
    name: str = ""
    title: str = ""
    mimetype: str = ""
    filetype: str = ""
    size: int | None = None
    url_private_download: str | None = None
    url_private: str | None = None
    mode: str | None = None

    @property
    def label(self) -> str:
        return (self.name or self.title or self.id)[:200]

    @property
    def download_url(self) -> str | None:
        return self.url_private_download or self.url_private


class SkippedFile(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str
    reason: str


class Attachments(BaseModel):
    """Engine input built from a thread's files, plus what could not be used and why."""

    model_config = ConfigDict(extra="forbid")

    logs: list[LogInput] = Field(default_factory=list)
    metrics: list[MetricSeries] = Field(default_factory=list)
    skipped: list[SkippedFile] = Field(default_factory=list)
    issues: list[ParseIssue] = Field(default_factory=list)

    @property
    def analyzed_names(self) -> list[str]:
        return [item.name for item in self.logs] + sorted({series.source for series in self.metrics})


class FileTooLargeError(Exception):
    """The download (or its decompressed content) passed the configured cap."""


class DownloadRefusedError(Exception):
    """Slack would not hand the file over; the message is ours and safe to show."""


def collect_files(messages: Iterable[Mapping[str, Any]]) -> list[SlackFile]:
    """The distinct files of a list of Slack messages (event payloads or ``conversations.replies``), in order."""
    seen: set[str] = set()
    out: list[SlackFile] = []
    for message in messages:
        for raw in message.get("files") or []:
            if not isinstance(raw, Mapping) or not raw.get("id") or raw["id"] in seen:
                continue
            if raw.get("mode") in {"tombstone", "hidden_by_limit"}:
                continue
            seen.add(str(raw["id"]))
            out.append(SlackFile.model_validate(raw))
    return out


def _extension(name: str) -> str:
    suffixes = [s.lower() for s in PurePosixPath(name).suffixes]
    if suffixes and suffixes[-1] == ".gz":
        suffixes = suffixes[:-1]
    return suffixes[-1] if suffixes else ""


def unsupported_reason(file: SlackFile) -> str | None:
    """Why a file is not worth downloading, judged from its metadata alone; None if it may be text."""
    ext = _extension(file.label)
    mime = file.mimetype.lower()
    if file.name.lower().endswith(".gz") or mime in {"application/gzip", "application/x-gzip"}:
        return None
    if ext in _UNSUPPORTED_EXTENSIONS:
        return f"{ext} files are not logs or metrics"
    if mime.startswith(_UNSUPPORTED_MIME_PREFIXES) or mime in _UNSUPPORTED_MIMES:
        return f"{mime} content is not logs or metrics"
    if file.download_url is None:
        return "Slack gave no download link (external or deleted file)"
    return None


def decompress(data: bytes, *, max_bytes: int) -> bytes:
    """Gunzip ``data`` when it is gzip (several members allowed), refusing output beyond ``max_bytes``."""
    if not data.startswith(_GZIP_MAGIC):
        return data
    out = bytearray()
    rest = data
    while rest.startswith(_GZIP_MAGIC):
        inflater = zlib.decompressobj(wbits=16 + zlib.MAX_WBITS)
        chunk = inflater.decompress(rest, max_bytes + 1 - len(out))
        out += chunk
        if len(out) > max_bytes or inflater.unconsumed_tail:
            raise FileTooLargeError(f"decompressed content is over {max_bytes} bytes")
        if not inflater.eof:
            raise ValueError("the gzip stream is truncated")
        rest = inflater.unused_data
    return bytes(out)


def looks_binary(data: bytes) -> bool:
    """NUL bytes, or text that is not UTF-8 and mostly control characters, in the first few KB."""
    head = data[:_SNIFF_BYTES]
    if b"\x00" in head:
        return True
    decoder = codecs.getincrementaldecoder("utf-8")(errors="strict")
    try:
        decoder.decode(head, final=False)
        return False
    except UnicodeDecodeError:
        controls = sum(1 for b in head if b < 9 or 13 < b < 32)
        return controls > len(head) // 10


def classify_content(name: str, text_head: str) -> FileKind:
    """Logs or metrics, from the file name and the first few KB of its (decoded) text."""
    lowered = name.lower()
    ext = _extension(name)
    if any(word in lowered for word in _METRIC_WORDS) or ext == ".prom":
        return "metrics"
    stripped = text_head.lstrip()
    if ext in {".json", ""} and stripped.startswith("{") and '"resultType"' in stripped[:2000]:
        return "metrics"
    if ext in {".csv", ".tsv"}:
        first = stripped.splitlines()[0] if stripped else ""
        delimiter = "\t" if first.count("\t") > first.count(",") else ","
        header = next(csv.reader(io.StringIO(first), delimiter=delimiter), [])
        columns = {column.strip().strip('"').lower() for column in header}
        return "logs" if columns & _LOG_COLUMNS else "metrics"
    if ext == ".json" and stripped.startswith("["):
        try:
            doc = json.loads(text_head)
        except ValueError:
            return "logs"
        if isinstance(doc, list) and doc and isinstance(doc[0], (list, dict)):
            first_item = doc[0]
            if isinstance(first_item, list) or ({"value", "v", "y"} & set(first_item)):
                return "metrics"
    return "logs"


async def download(
    session: aiohttp.ClientSession, file: SlackFile, *, token: str, max_bytes: int, timeout_seconds: float
) -> bytes:
    """The file's bytes, fetched with ``Authorization: Bearer``; stops reading past ``max_bytes``."""
    url = file.download_url
    if url is None:
        raise DownloadRefusedError("Slack gave no download link")
    if file.size is not None and file.size > max_bytes:
        raise FileTooLargeError(f"{file.size} bytes is over the {max_bytes}-byte limit")
    timeout = aiohttp.ClientTimeout(total=timeout_seconds)
    headers = {"Authorization": f"Bearer {token}"}
    async with session.get(url, headers=headers, timeout=timeout, allow_redirects=True) as response:
        if response.status != 200:
            raise DownloadRefusedError(f"Slack answered HTTP {response.status} for the download")
        content_type = response.headers.get("Content-Type", "")
        if content_type.startswith("text/html"):
            # Slack serves its login page (HTML) when the token may not read the file.
            raise DownloadRefusedError(
                "Slack served a web page instead of the file (missing files:read scope?)"
            )
        buffer = bytearray()
        async for chunk in response.content.iter_chunked(64 * 1024):
            buffer += chunk
            if len(buffer) > max_bytes:
                raise FileTooLargeError(f"over the {max_bytes}-byte limit")
        return bytes(buffer)


def to_engine_input(name: str, data: bytes, *, max_bytes: int, into: Attachments) -> None:
    """Add one downloaded file to ``into``: as logs, as metrics, or as a skipped file with the reason."""
    try:
        raw = decompress(data, max_bytes=max_bytes)
    except FileTooLargeError as exc:
        into.skipped.append(SkippedFile(name=name, reason=f"too large: {exc}"))
        return
    except (ValueError, zlib.error, EOFError):
        into.skipped.append(SkippedFile(name=name, reason="not a readable gzip file"))
        return
    if looks_binary(raw):
        into.skipped.append(SkippedFile(name=name, reason="binary content, not text logs or metrics"))
        return
    text = raw.decode("utf-8", errors="replace")
    bare = name[:-3] if name.lower().endswith(".gz") else name
    kind = classify_content(bare, text[:_SNIFF_BYTES])
    if kind == "metrics":
        issues: list[ParseIssue] = []
        series = read_metrics(raw, name=bare, issues=issues)
        usable = [s for s in series if s.points]
        into.issues.extend(issues[:20])
        if usable:
            into.metrics.extend(usable)
            return
        if _extension(bare) in {".csv", ".tsv", ".prom"} or "resultType" in text[:2000]:
            into.skipped.append(SkippedFile(name=name, reason="no metric series could be read from it"))
            return
        # A JSON or text file named like metrics that holds no series: read it as logs instead.
    lines = text.splitlines()
    if not any(line.strip() for line in lines):
        into.skipped.append(SkippedFile(name=name, reason="the file is empty"))
        return
    into.logs.append(LogInput(name=bare[:300], lines=lines))


async def gather_attachments(
    session: aiohttp.ClientSession,
    files: list[SlackFile],
    *,
    token: str,
    max_bytes: int,
    timeout_seconds: float,
) -> Attachments:
    """Download and read every usable file (at most ``MAX_FILES_PER_TURN``), two at a time."""
    out = Attachments()
    wanted: list[SlackFile] = []
    for file in files:
        reason = unsupported_reason(file)
        if reason is not None:
            out.skipped.append(SkippedFile(name=file.label, reason=reason))
        elif len(wanted) >= MAX_FILES_PER_TURN:
            out.skipped.append(
                SkippedFile(name=file.label, reason=f"only {MAX_FILES_PER_TURN} files per turn")
            )
        else:
            wanted.append(file)
    gate = asyncio.Semaphore(2)

    async def fetch(file: SlackFile) -> tuple[SlackFile, bytes | None, str | None]:
        async with gate:
            try:
                data = await download(
                    session, file, token=token, max_bytes=max_bytes, timeout_seconds=timeout_seconds
                )
                return file, data, None
            except FileTooLargeError as exc:
                return file, None, f"too large: {exc}"
            except TimeoutError:
                return file, None, f"the download took longer than {timeout_seconds:g}s"
            except DownloadRefusedError as exc:
                return file, None, str(exc)
            except (aiohttp.ClientError, ValueError) as exc:
                log.warning("file download failed", extra={"file_id": file.id, "error": type(exc).__name__})
                return file, None, "the download failed"

    for file, data, reason in await asyncio.gather(*(fetch(f) for f in wanted)):
        if data is None:
            out.skipped.append(SkippedFile(name=file.label, reason=reason or "the download failed"))
            continue
        await asyncio.to_thread(to_engine_input, file.label, data, max_bytes=max_bytes, into=out)
    return out
