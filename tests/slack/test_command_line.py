"""`faultmaven slack` refuses to start half-configured, with a message naming what is missing."""

from __future__ import annotations

from pathlib import Path

import pytest

from core.errors import InputError
from faultmaven.cli import build_parser
from faultmaven.commands import slack as slack_command
from faultmaven.settings import Settings


def _args(*argv: str):  # type: ignore[no-untyped-def]
    return build_parser().parse_args(["slack", *argv])


def test_parser_knows_socket_mode() -> None:
    assert _args("--socket-mode").socket_mode is True
    assert _args().socket_mode is False


def test_unconfigured_slack_is_refused(tmp_path: Path) -> None:
    settings = Settings(_env_file=None, data_dir=tmp_path)
    with pytest.raises(InputError, match="SLACK_BOT_TOKEN"):
        slack_command.run(_args(), settings)


def test_http_mode_needs_the_signing_secret(tmp_path: Path) -> None:
    settings = Settings(_env_file=None, data_dir=tmp_path, slack_bot_token="xoxb-1")
    with pytest.raises(InputError, match="SLACK_SIGNING_SECRET"):
        slack_command.run(_args(), settings)


def test_socket_mode_needs_the_app_token(tmp_path: Path) -> None:
    settings = Settings(_env_file=None, data_dir=tmp_path, slack_bot_token="xoxb-1")
    with pytest.raises(InputError, match="SLACK_APP_TOKEN"):
        slack_command.run(_args("--socket-mode"), settings)
