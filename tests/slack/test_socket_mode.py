"""Socket Mode: the real Bolt app over a WebSocket served by the fake Slack (``apps.connections.open``)."""

from __future__ import annotations

import asyncio
import json

import pytest

from bot.socket import SocketModeRunner
from core.errors import InputError
from faultmaven.services import Services
from tests.slack.fake_slack import APP_TOKEN, BOT_USER_ID, TEAM_ID, FakeSlack
from tests.slack.harness import CHANNEL, RESPONDER, make_settings


async def test_socket_mode_acks_envelopes_and_answers(fake_slack: FakeSlack, tmp_path) -> None:
    settings = make_settings(
        tmp_path / "data", fake_slack, slack_app_token=APP_TOKEN, slack_signing_secret=None
    )
    runner = SocketModeRunner(settings, Services(settings))
    stop = asyncio.Event()
    task = asyncio.create_task(runner.run(stop))
    try:
        await asyncio.wait_for(runner.connected.wait(), 15)
        opened = fake_slack.calls_to("apps.connections.open")
        assert len(opened) == 1 and opened[0].token == APP_TOKEN

        message = fake_slack.add_message(
            CHANNEL, user=RESPONDER, text=f"<@{BOT_USER_ID}> orders-api 503s since 14:10"
        )
        body = {
            "team_id": TEAM_ID,
            "api_app_id": "A0TEST",
            "type": "event_callback",
            "event_id": "Ev0SOCKET1",
            "event_time": 1_780_000_000,
            "event": {**message, "type": "app_mention", "channel": CHANNEL},
        }
        envelope = {
            "envelope_id": "env-1",
            "type": "events_api",
            "accepts_response_payload": False,
            "retry_attempt": 0,
            "retry_reason": "",
            "payload": body,
        }
        await fake_slack.socket_send(envelope)
        await fake_slack.wait_for(
            lambda: any(a.get("envelope_id") == "env-1" for a in fake_slack.socket_acks)
        )
        assert runner.bot is not None
        assert await runner.bot.tasks.drain(wait_seconds=60)
        replies = fake_slack.bot_replies(CHANNEL, message["ts"])
        assert len(replies) == 1 and replies[0]["blocks"]

        # Slack redelivers the same event: acked again, never answered twice.
        await fake_slack.socket_send(
            {**envelope, "envelope_id": "env-2", "retry_attempt": 1, "retry_reason": "timeout"}
        )
        await fake_slack.wait_for(
            lambda: any(a.get("envelope_id") == "env-2" for a in fake_slack.socket_acks)
        )
        assert await runner.bot.tasks.drain(wait_seconds=60)
        assert len(fake_slack.bot_replies(CHANNEL, message["ts"])) == 1

        # A slash command over the socket: the ack envelope carries the reply.
        command = {
            "team_id": TEAM_ID,
            "channel_id": CHANNEL,
            "user_id": RESPONDER,
            "command": "/faultmaven",
            "text": "help",
            "response_url": fake_slack.response_url(),
            "trigger_id": "trig.s1",
        }
        await fake_slack.socket_send(
            {
                "envelope_id": "env-3",
                "type": "slash_commands",
                "accepts_response_payload": True,
                "payload": command,
            }
        )
        await fake_slack.wait_for(
            lambda: any(a.get("envelope_id") == "env-3" for a in fake_slack.socket_acks)
        )
        ack = next(a for a in fake_slack.socket_acks if a["envelope_id"] == "env-3")
        assert "/faultmaven ask" in json.dumps(ack.get("payload"))
    finally:
        stop.set()
        await asyncio.wait_for(task, 30)


def test_socket_mode_needs_an_app_token(fake_slack: FakeSlack, tmp_path) -> None:
    settings = make_settings(tmp_path / "data", fake_slack)
    with pytest.raises(InputError, match="SLACK_APP_TOKEN"):
        SocketModeRunner(settings, Services(settings))
