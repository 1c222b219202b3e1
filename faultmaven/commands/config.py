"""`faultmaven config`: the effective configuration, secrets masked."""

from __future__ import annotations

import argparse
import json

from faultmaven.settings import Settings


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--format", choices=["json"], default="json")


def run(args: argparse.Namespace, settings: Settings) -> int:
    print(json.dumps(settings.masked(), indent=2, sort_keys=True, default=str))
    return 0
