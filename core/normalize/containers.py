"""Container runtime log files: Docker json-file and CRI (containerd/CRI-O). Both wrap the application's
own line, which is then parsed as a log line of its own; partial lines are joined before that."""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable, Iterator
from typing import Final

from core.normalize.fields import Fields, Scalar, bounded_attributes, fields_from_flat, flatten
from core.normalize.structured import load_object
from core.normalize.timestamps import parse_time_text

logger = logging.getLogger(__name__)

# (first physical line, physical line count, text, fields of the wrapper or None)
Item = tuple[int, int, str, Fields | None]

_CRI: Final = re.compile(
    r"(?P<ts>\d{4}-\d{2}-\d{2}T\S+) (?P<stream>stdout|stderr) (?P<tag>[FP])(?: (?P<text>.*))?$", re.S
)
_MAX_JOINED: Final = 256 * 1024
_DOCKER_KEYS: Final = frozenset({"log", "stream", "time", "attrs"})


def cri_fits(line: str) -> bool:
    return " std" in line and _CRI.match(line) is not None  # (the regex needs " stdout " or " stderr ")


def docker_fits(line: str) -> bool:
    obj = load_object(line)
    return obj is not None and isinstance(obj.get("log"), str) and ("stream" in obj or "time" in obj)


def _outer(stamp: str, stream: str) -> Fields:
    return {"timestamp": parse_time_text(stamp), "attributes": bounded_attributes([("stream", stream)])}


def unwrap_cri(lines: Iterable[str]) -> Iterator[Item]:
    """``2024-03-01T10:00:00.123456789Z stdout F message``; ``P`` pieces join the next line's text."""
    start = 0
    count = 0
    pieces: list[str] = []
    size = 0
    for number, line in enumerate(lines, start=1):
        match = _CRI.match(line)
        if match is None:
            if pieces:
                yield start, count, "".join(pieces), None
                pieces, size = [], 0
            yield number, 1, line, None
            continue
        text = match["text"] or ""
        if not pieces:
            start, count = number, 0
        count += 1
        if size < _MAX_JOINED:
            pieces.append(text)
            size += len(text)
        if match["tag"] == "P":
            continue
        yield start, count, "".join(pieces), _outer(match["ts"], match["stream"])
        pieces, size = [], 0
    if pieces:
        yield start, count, "".join(pieces), None


def unwrap_docker(lines: Iterable[str]) -> Iterator[Item]:
    """``{"log":"message\\n","stream":"stderr","time":"..."}``; a ``log`` without its newline is a piece
    of a longer line (Docker splits at 16 KiB) and joins the next one."""
    start = 0
    count = 0
    pieces: list[str] = []
    size = 0
    for number, line in enumerate(lines, start=1):
        obj = load_object(line) if line.startswith("{") else None
        text = obj.get("log") if obj is not None else None
        if obj is None or not isinstance(text, str):
            if pieces:
                yield start, count, "".join(pieces), None
                pieces, size = [], 0
            yield number, 1, line, None
            continue
        if not pieces:
            start, count = number, 0
        count += 1
        if size < _MAX_JOINED:
            pieces.append(text)
            size += len(text)
        if not text.endswith("\n") and obj.keys() <= _DOCKER_KEYS:
            continue
        rest = {key: value for key, value in obj.items() if key != "log"}
        flat: dict[str, Scalar] = {}
        flatten(rest, flat)
        outer = fields_from_flat(flat, raw="")
        joined = "".join(pieces)
        yield start, count, joined.removesuffix("\n").removesuffix("\r"), outer
        pieces, size = [], 0
    if pieces:
        yield start, count, "".join(pieces), None
