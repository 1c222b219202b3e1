"""`faultmaven ask`: one turn of a troubleshooting session from the command line (embedded stores)."""

from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path

from pydantic import ValidationError

from core.answers import Answer, LogInput, Question
from core.errors import InputError
from core.metrics import read_metrics
from core.models import MetricSeries
from core.render import render_answer_text
from faultmaven.service import create_troubleshooter
from faultmaven.settings import Settings
from faultmaven.stores import open_stores

MAX_CLI_LOG_BYTES = 512 * 1024 * 1024


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("question", help='The question, e.g. "why is checkout slow?" (may be empty: "").')
    parser.add_argument(
        "--logs", action="append", default=[], metavar="FILE", help="A log file (repeatable)."
    )
    parser.add_argument(
        "--metrics", action="append", default=[], metavar="FILE", help="A metrics file (repeatable)."
    )
    parser.add_argument("--session", default=None, metavar="ID", help="Continue this session.")
    parser.add_argument("--user", default="cli", help="User id recorded with the session (default: cli).")
    parser.add_argument("--format", choices=["text", "json"], default="text")


def _read_lines(path: Path) -> list[str]:
    if not path.is_file():
        raise InputError(f"log file not found: {path}")
    if path.stat().st_size > MAX_CLI_LOG_BYTES:
        raise InputError(f"{path} is larger than 512 MB; use `faultmaven analyze` for files this large")
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise InputError(f"cannot read log file {path}: {exc.strerror or type(exc).__name__}") from exc
    if data[:2] == b"\x1f\x8b":
        import gzip

        try:
            data = gzip.decompress(data)
        except (OSError, EOFError) as exc:
            raise InputError(f"{path}: not a readable gzip file") from exc
    return data.decode("utf-8", errors="replace").splitlines()


def run(args: argparse.Namespace, settings: Settings) -> int:
    metrics: list[MetricSeries] = []
    for name in args.metrics:
        path = Path(name)
        if not path.is_file():
            raise InputError(f"metrics file not found: {name}")
        metrics += read_metrics(path)
    # LogInput names are capped at 300 characters; a deeper path keeps its file name (the service hint).
    logs = [
        LogInput(name=name if len(name) <= 300 else Path(name).name[-300:], lines=_read_lines(Path(name)))
        for name in args.logs
    ]
    if not args.question.strip() and not any(log.lines for log in logs) and not metrics:
        raise InputError("nothing to ask: give a question, or --logs / --metrics files that are not empty")
    try:
        question = Question(
            user_id=args.user, query=args.question, logs=logs, metrics=metrics, session_id=args.session
        )
    except ValidationError as exc:
        where = {".".join(str(p) for p in error["loc"]) for error in exc.errors(include_input=False)}
        names = {"query": "question", "user_id": "--user", "session_id": "--session"}
        raise InputError(
            "invalid " + ", ".join(sorted(names.get(w, w) for w in where)) + ": " + exc.errors()[0]["msg"]
        ) from exc
    answer = asyncio.run(_ask(settings, question))
    if args.format == "json":
        sys.stdout.write(answer.model_dump_json(indent=2) + "\n")
    else:
        sys.stdout.write(render_answer_text(answer))
    return 0


async def _ask(settings: Settings, question: Question) -> Answer:
    stores = await open_stores(settings)
    try:
        service = await create_troubleshooter(settings, stores)
        try:
            return await service.ask(question)
        finally:
            await service.close()
    finally:
        await stores.close()
