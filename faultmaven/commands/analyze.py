"""`faultmaven analyze`: anomalies, suspects and root-cause hypotheses for log and metric files."""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from core.analysis import LogFile, analyze
from core.errors import InputError
from core.knowledge_base import KnowledgeBase
from core.metrics import read_metrics
from core.models import MetricSeries, ParseIssue
from core.render import render_markdown, render_text
from faultmaven.settings import Settings


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "logs", nargs="*", metavar="LOG_FILE", help="Log files (plain or .gz); '-' reads stdin."
    )
    parser.add_argument(
        "--metrics", action="append", default=[], metavar="FILE", help="A metrics file (repeatable)."
    )
    parser.add_argument("--query", default="", help="The question that steers the analysis.")
    parser.add_argument("--format", choices=["text", "json", "markdown"], default="text")
    parser.add_argument("--log-format", default=None, help="Force a log format instead of detecting it.")


class _Progress:
    """A one-line progress counter on stderr, only when stderr is a terminal."""

    def __init__(self) -> None:
        self.enabled = sys.stderr.isatty()
        self.started = time.monotonic()
        self.shown = False

    def __call__(self, records: int) -> None:
        if not self.enabled or records < 50_000:
            return
        rate = records / max(time.monotonic() - self.started, 1e-6)
        sys.stderr.write(f"\ranalyzing: {records:,} records ({rate:,.0f}/s)")
        sys.stderr.flush()
        self.shown = True

    def done(self) -> None:
        if self.shown:
            sys.stderr.write("\n")


def run(args: argparse.Namespace, settings: Settings) -> int:
    if not args.logs and not args.metrics:
        raise InputError("give at least one log file or --metrics file")
    issues: list[ParseIssue] = []
    series: list[MetricSeries] = []
    for name in args.metrics:
        path = Path(name)
        if not path.is_file():
            raise InputError(f"metrics file not found: {name}")
        series += read_metrics(path, issues=issues)
    for name in args.logs:
        if name != "-" and not Path(name).is_file():
            raise InputError(f"log file not found: {name}")
    knowledge = KnowledgeBase.load(extra_dirs=[settings.runbooks_dir] if settings.runbooks_dir else [])
    progress = _Progress()
    sources = [LogFile(path=Path(name), format=args.log_format) for name in args.logs]
    report = analyze(
        logs=sources, metrics=series, query=args.query, knowledge=knowledge, progress=progress, issues=issues
    )
    progress.done()
    if args.format == "json":
        sys.stdout.write(report.model_dump_json(indent=2) + "\n")
    elif args.format == "markdown":
        sys.stdout.write(render_markdown(report))
    else:
        sys.stdout.write(render_text(report))
    return 0
