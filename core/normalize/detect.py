"""Choosing a source's format from a sample of its first lines."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Final

from core.normalize.csv_export import csv_fits
from core.normalize.formats import REGISTRY

logger = logging.getLogger(__name__)

SAMPLE_LINES: Final = 200
_MAX_SAMPLE_CHARS: Final = 4096


def detect_format(sample: Sequence[str]) -> str:
    """The format id that fits most of the non-blank sample lines (more specific formats win near-ties);
    ``"plain"`` when none fits any line. Continuation lines (stack frames) fit nothing and do not matter."""
    lines = [line[:_MAX_SAMPLE_CHARS] for line in sample[: SAMPLE_LINES * 2] if line.strip()][:SAMPLE_LINES]
    if not lines:
        return "plain"
    if csv_fits(lines):
        return "csv"
    counts: list[tuple[str, int, float]] = []
    for entry in REGISTRY:
        if entry.fits is None:
            continue
        count = len(list(filter(entry.fits, lines)))  # (the lines it fits, counted without a generator)
        counts.append((entry.id, count, entry.share))
        if count == len(lines):
            # Every line fits: no later format can have more, and this one or an earlier one wins below
            # (formats are tried in registry order), so the rest need not be tried.
            break
    best = max(count for _, count, _ in counts)
    if best == 0:
        return "plain"
    for format_id, count, share in counts:
        if count > 0 and count >= best * share:
            logger.debug("detected log format %s (%d of %d sample lines)", format_id, count, len(lines))
            return format_id
    return "plain"
