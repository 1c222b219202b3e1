"""`faultmaven templates FILE...`: mine log templates from files or stdin.

``--format text`` (the default) prints the template table, most frequent first: count, template id,
template and one example. ``--format jsonl`` prints one object per record, in input order, with the
record's first physical line, its number of physical lines and the *final* template of its cluster
(templates generalise as more lines come in, so records are resolved once all input is read).
Problems with the input go to stderr as ``source:line: message``; the exit status is 0 when it ran.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from array import array
from collections.abc import Iterator, Sequence
from itertools import repeat
from typing import TextIO

from core.models import ParseIssue
from core.normalize import LOG_FORMATS, read_messages
from core.templates import TemplateMiner, first_line, template_id_for
from faultmaven.settings import Settings

log = logging.getLogger(__name__)

EXAMPLE_CHARS = 200
RESOLVED_CACHE = 50_000


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "files", nargs="+", metavar="FILE", help="Log file to read ('-' for stdin; .gz is fine)."
    )
    parser.add_argument(
        "--format",
        choices=["text", "jsonl"],
        default="text",
        help="text: the template table; jsonl: one object per record, in input order.",
    )
    parser.add_argument(
        "--log-format",
        choices=sorted(LOG_FORMATS),
        default=None,
        metavar="FMT",
        help=f"Log format of the input (default: detected per file). One of: {', '.join(sorted(LOG_FORMATS))}.",
    )


class _Ledger:
    """Per-record bookkeeping in typed arrays: a few bytes a record, no text. Records are in input order,
    so the source of each is kept as the number of records each source gave (``per_source``)."""

    def __init__(self) -> None:
        self.cluster: array[int] = array("i")
        self.line: array[int] = array("q")
        self.lines: array[int] = array("i")
        self.per_source: list[int] = []

    def sources(self) -> Iterator[int]:
        """The source index of every record, in order."""
        for index, records in enumerate(self.per_source):
            yield from repeat(index, records)


class Mined:
    """What mining a set of inputs leaves: the miner, and per record either its ledger entry (``--format
    jsonl``) or, per cluster, the first record's first line as an example (the table)."""

    def __init__(self, *, ledger: bool) -> None:
        self.miner = TemplateMiner()
        self.ledger = _Ledger() if ledger else None
        self.examples: dict[int, str] = {}
        self.sources: list[str] = []
        self.records = 0


def mine(paths: Sequence[str], *, log_format: str | None, ledger: bool, errors: TextIO) -> Mined:
    """Read every input with :func:`read_messages` (only messages and line numbers are needed here) and
    mine its records, in order; problems with the input go to ``errors``."""
    mined = Mined(ledger=ledger)
    add = mined.miner.add
    book = mined.ledger
    examples = mined.examples
    for path in paths:
        issues: list[ParseIssue] = []
        mined.sources.append("<stdin>" if path == "-" else path)
        before = mined.records
        try:
            if book is not None:
                put_cluster, put_line, put_lines = book.cluster.append, book.line.append, book.lines.append
                for message, line, lines in read_messages(path, fmt=log_format, issues=issues):
                    put_cluster(add(message))
                    put_line(line)
                    put_lines(lines)
            else:
                for message, _, _ in read_messages(path, fmt=log_format, issues=issues):
                    cluster = add(message)
                    mined.records += 1
                    if cluster not in examples:
                        examples[cluster] = first_line(message)[:EXAMPLE_CHARS]
        finally:
            if book is not None:
                mined.records = len(book.cluster)
                book.per_source.append(mined.records - before)
            _report(issues, errors)
    return mined


def run(args: argparse.Namespace, settings: Settings) -> int:
    mined = mine(args.files, log_format=args.log_format, ledger=args.format == "jsonl", errors=sys.stderr)
    miner = mined.miner
    log.debug(
        "mined templates",
        extra={"records": mined.records, "clusters": len(miner), "files": len(mined.sources)},
    )
    if mined.ledger is not None:
        _write_jsonl(miner, mined.ledger, mined.sources if len(args.files) > 1 else None, sys.stdout)
    else:
        _write_table(miner, mined.examples, mined.records, sys.stdout)
    return 0


def _report(issues: list[ParseIssue], out: TextIO) -> None:
    for issue in issues:
        out.write(f"{issue}\n")
    out.flush()


def _write_jsonl(miner: TemplateMiner, ledger: _Ledger, sources: list[str] | None, out: TextIO) -> None:
    # Each cluster's final template, encoded once (a bounded cache: records of a cluster come in runs).
    resolved: dict[int, str] = {}
    source_json = [json.dumps(s, ensure_ascii=False) for s in sources] if sources is not None else None
    chunk: list[str] = []
    for cluster, line, lines, source in zip(
        ledger.cluster, ledger.line, ledger.lines, ledger.sources(), strict=True
    ):
        tail = resolved.get(cluster)
        if tail is None:
            if len(resolved) >= RESOLVED_CACHE:
                resolved.clear()
            template = miner.template(cluster)
            tail = resolved[cluster] = (
                f'"template_id": "{template_id_for(template)}", '
                f'"template": {json.dumps(template, ensure_ascii=False)}}}'
            )
        if source_json is not None:
            chunk.append(f'{{"source": {source_json[source]}, "line": {line}, "lines": {lines}, {tail}\n')
        else:
            chunk.append(f'{{"line": {line}, "lines": {lines}, {tail}\n')
        if len(chunk) >= 4096:
            out.write("".join(chunk))
            chunk.clear()
    out.write("".join(chunk))
    out.flush()


def _write_table(miner: TemplateMiner, examples: dict[int, str], records: int, out: TextIO) -> None:
    counts: dict[str, int] = {}
    texts: dict[str, str] = {}
    example_of: dict[str, str] = {}
    for cluster in miner.clusters():
        template = miner.template(cluster)
        tid = template_id_for(template)
        counts[tid] = counts.get(tid, 0) + miner.count(cluster)
        if tid not in texts:
            texts[tid] = template
            example_of[tid] = examples.get(cluster, "")
    ordered = sorted(counts, key=lambda tid: (-counts[tid], tid))
    width = max([len(str(records)), len("COUNT")])
    out.write(f"{'COUNT':>{width}}  {'TEMPLATE_ID':<12}  TEMPLATE\n")
    pad = " " * (width + 2 + 12 + 2)
    for tid in ordered:
        out.write(f"{counts[tid]:>{width}}  {tid:<12}  {texts[tid]}\n")
        out.write(f"{pad}e.g. {example_of[tid]}\n")
    out.write(f"{records} records, {len(ordered)} templates\n")
    out.flush()
