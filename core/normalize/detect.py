"""Choosing a source's format from a sample of its first lines."""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from typing import Final

from core.normalize.csv_export import csv_fits
from core.normalize.fields import Fields
from core.normalize.formats import REGISTRY, LogFormat
from core.normalize.text_formats import parse_iso

logger = logging.getLogger(__name__)

SAMPLE_LINES: Final = 200
_MAX_SAMPLE_CHARS: Final = 4096


def detect_format(sample: Sequence[str]) -> str:
    """The format id that fits most of the non-blank sample lines (more specific formats win near-ties);
    ``"plain"`` when none fits any line. Continuation lines (stack frames) fit nothing and do not matter."""
    return detect_parsing(sample)[0]


def detect_parsing(sample: Sequence[str]) -> tuple[str, dict[str, Fields | None]]:
    """:func:`detect_format`'s answer, and ``parse_iso(line)`` (the full reading) of the sample lines it
    parsed that way on the way, by line: the reader's parse of those lines need not be done again. Lines
    longer than the sample's cut are not in it (detection read only their head)."""
    lines = [line[:_MAX_SAMPLE_CHARS] for line in sample[: SAMPLE_LINES * 2] if line.strip()][:SAMPLE_LINES]
    if not lines:
        return "plain", {}
    if csv_fits(lines):
        return "csv", {}
    grouped = _Sample(lines)
    # The first format that fits the first line, counted in full, gives a lower bound of the best count;
    # a format whose count is sure to stay below ``bound * share`` cannot win and is no best (its count is
    # below the bound), so its counting stops there (most formats miss a sample's first lines).
    probe = _probe(grouped)
    bound = probe[1] if probe is not None else 0
    counts: list[tuple[str, int, float]] = []  # the formats that can win, with their counts
    for entry in REGISTRY:
        if entry.fits is None:
            continue
        if probe is not None and entry.id == probe[0]:
            count = probe[1]
        else:
            counted = grouped.count(entry, need=bound * min(entry.share, 1.0))
            if counted is None:
                continue
            count = counted
        bound = max(bound, count)
        counts.append((entry.id, count, entry.share))
        if count == len(lines):
            # Every line fits: no later format can have more, and this one or an earlier one wins below
            # (formats are tried in registry order), so the rest need not be tried.
            break
    whole = {line: fields for line, fields in grouped.iso_fields.items() if len(line) < _MAX_SAMPLE_CHARS}
    best = max((count for _, count, _ in counts), default=0)
    if best == 0:
        return "plain", whole
    for format_id, count, share in counts:
        if count > 0 and count >= best * share:
            logger.debug("detected log format %s (%d of %d sample lines)", format_id, count, len(lines))
            return format_id, whole
    return "plain", whole


class _Sample:
    """The sample lines grouped by first character, and parse_iso's fields of those read so far (for the
    formats that read them; their tests only read the fields)."""

    def __init__(self, lines: list[str]) -> None:
        self.lines = lines
        self.by_first: dict[str, list[str]] = {}
        for line in lines:
            group = self.by_first.get(line[0])  # (a non-blank line has a first character)
            if group is None:
                self.by_first[line[0]] = [line]
            else:
                group.append(line)
        self.iso_fields: dict[str, Fields | None] = {}

    def tried(self, entry: LogFormat) -> list[str]:
        """The lines whose first character ``entry.starts`` allows: the only ones ``entry`` can fit (in
        another order; a format's count does not depend on it)."""
        starts = entry.starts
        if starts is None:
            return self.lines
        if len(self.by_first) == 1:
            return self.lines if starts(self.lines[0][0]) else []
        return [line for first, group in self.by_first.items() if starts(first) for line in group]

    def test(self, entry: LogFormat) -> Callable[[str], bool]:
        """``entry.fits``; for a format with ``fits_iso``, the same answers from the fields kept here."""
        fits, test = entry.fits, entry.fits_iso
        if fits is None:
            raise ValueError(f"format {entry.id!r} is not detected")
        if test is None:
            return fits
        known = self.iso_fields

        def fits_iso(line: str) -> bool:
            if line in known:
                fields = known[line]
            else:
                fields = known[line] = parse_iso(line)
            return fields is not None and test(fields)

        return fits_iso

    def count(self, entry: LogFormat, *, need: float) -> int | None:
        """How many lines ``entry`` fits; None as soon as that is sure to be fewer than ``need``."""
        tried = self.tried(entry)
        size = len(tried)
        if size < need:
            return None
        fits = self.test(entry)
        if need <= 0:
            return len(list(filter(fits, tried)))  # (counted without a generator)
        count = 0
        misses = 0
        for line in tried:
            if fits(line):
                count += 1
            else:
                misses += 1
                if size - misses < need:
                    return None
        return count


def _probe(sample: _Sample) -> tuple[str, int] | None:
    """The first format (in registry order) that fits the first sample line, and its count."""
    first = sample.lines[0]
    for entry in REGISTRY:
        if entry.fits is None or (entry.starts is not None and not entry.starts(first[0])):
            continue
        if sample.test(entry)(first):
            count = sample.count(entry, need=0.0)
            assert count is not None  # (never None without a need)
            return entry.id, count
    return None
