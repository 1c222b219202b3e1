"""The `faultmaven` console script. Each subcommand lives in ``faultmaven/commands/<name>.py`` and exposes
``add_arguments(parser)`` and ``run(args, settings) -> int``; this module only wires them up."""

from __future__ import annotations

import argparse
import importlib
import logging
import sys
import uuid
from collections.abc import Sequence
from types import ModuleType

from core.errors import FaultMavenError
from faultmaven.logconfig import configure_logging
from faultmaven.settings import Settings

log = logging.getLogger(__name__)

COMMANDS: dict[str, str] = {
    "templates": "Mine log templates from files or stdin.",
    "analyze": "Analyze logs and metrics: anomalies, suspects, root-cause hypotheses.",
    "ask": "Ask a troubleshooting question, optionally with logs and metrics.",
    "serve": "Start the HTTP service (API, webhooks, Slack events).",
    "slack": "Run the Slack bot (Socket Mode or HTTP).",
    "config": "Print the effective configuration with secrets masked.",
}


# Services log at the configured level; one-shot commands keep stderr for warnings and errors.
LONG_RUNNING = frozenset({"serve", "slack"})


def build_parser(selected: str | None = None) -> argparse.ArgumentParser:
    """The parser; with ``selected``, only that command's module is imported (the others' imports —
    the Slack SDK, the OpenAI client, aiohttp — cost seconds and ~100 MB a one-shot command never uses)."""
    parser = argparse.ArgumentParser(
        prog="faultmaven", description="AI troubleshooting assistant for on-call."
    )
    parser.add_argument(
        "--log-level", default=None, help="DEBUG, INFO, WARNING or ERROR (default from config)."
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name, help_text in COMMANDS.items():
        command_parser = sub.add_parser(name, help=help_text, description=help_text)
        if selected is None or name == selected:
            module = _command_module(name)
            if module is not None:
                module.add_arguments(command_parser)
    return parser


def _selected_command(argv: Sequence[str]) -> str | None:
    """The subcommand named on the command line, if the options before it leave no doubt."""
    for arg in argv:
        if arg in COMMANDS:
            return arg
        if not arg.startswith("-"):
            return None
    return None


def _command_module(name: str) -> ModuleType | None:
    try:
        return importlib.import_module(f"faultmaven.commands.{name}")
    except ModuleNotFoundError as exc:
        if exc.name == f"faultmaven.commands.{name}":
            return None
        raise


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    args = build_parser(_selected_command(argv)).parse_args(argv)
    try:
        settings = Settings()
    except Exception as exc:  # pydantic's ValidationError names the offending setting
        print(f"faultmaven: invalid configuration: {exc}", file=sys.stderr)
        return 2
    level = args.log_level or (settings.log_level if args.command in LONG_RUNNING else "WARNING")
    configure_logging(level=level, fmt=settings.log_format)
    module = _command_module(args.command)
    if module is None:  # argparse only offers commands whose module exists
        raise SystemExit(f"faultmaven: unknown command {args.command!r}")
    try:
        return int(module.run(args, settings))
    except FaultMavenError as exc:
        print(f"faultmaven: {exc.user_message}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        return 0
    except Exception:
        error_id = uuid.uuid4().hex[:12]
        log.exception("unexpected error", extra={"error_id": error_id})
        print(f"faultmaven: internal error (error id {error_id}); see the log for details.", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
