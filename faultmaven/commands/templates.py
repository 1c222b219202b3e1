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
from typing import TextIO

from core.models import ParseIssue
from core.normalize import LOG_FORMATS, read_logs
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
    """Per-record bookkeeping in typed arrays: a few bytes a record, no text."""

    def __init__(self) -> None:
        self.cluster: array[int] = array("i")
        self.line: array[int] = array("q")
        self.lines: array[int] = array("i")
        self.source: array[int] = array("H")

    def add(self, *, cluster: int, line: int, lines: int, source: int) -> None:
        self.cluster.append(cluster)
        self.line.append(line)
        self.lines.append(lines)
        self.source.append(source)


def run(args: argparse.Namespace, settings: Settings) -> int:
    miner = TemplateMiner()
    ledger = _Ledger() if args.format == "jsonl" else None
    examples: dict[int, str] | None = {} if ledger is None else None
    sources: list[str] = []
    records = 0
    for path in args.files:
        issues: list[ParseIssue] = []
        source_index = len(sources)
        sources.append("<stdin>" if path == "-" else path)
        try:
            for record in read_logs(path, fmt=args.log_format, issues=issues):
                cluster = miner.add(record.message)
                records += 1
                if examples is not None and cluster not in examples:
                    examples[cluster] = first_line(record.message)[:EXAMPLE_CHARS]
                if ledger is not None:
                    ledger.add(cluster=cluster, line=record.line, lines=record.lines, source=source_index)
        finally:
            _report(issues, sys.stderr)
    log.debug("mined templates", extra={"records": records, "clusters": len(miner), "files": len(sources)})
    if ledger is not None:
        _write_jsonl(miner, ledger, sources if len(args.files) > 1 else None, sys.stdout)
    else:
        _write_table(miner, examples or {}, records, sys.stdout)
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
        ledger.cluster, ledger.line, ledger.lines, ledger.source, strict=True
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
