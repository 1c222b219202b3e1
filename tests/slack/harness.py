"""Drive the real Bolt app the way Slack does: signed HTTP requests to the real aiohttp server, which talks to
the fake Web API (``fake_slack.FakeSlack``); the troubleshooter is the real one over embedded SQLite stores."""

from __future__ import annotations

import hashlib
import hmac
import itertools
import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import aiohttp
from aiohttp import web

from bot.app import SlackBot
from bot.http import SLACK_BOT_KEY, slack_routes
from faultmaven.services import Services
from faultmaven.settings import Settings
from handlers.app import create_app
from tests.slack.fake_slack import BOT_TOKEN, BOT_USER_ID, TEAM_ID, FakeSlack

SIGNING_SECRET = "8f742231b10e8888abcd99yyyzzz85a5"
RESPONDER = "U0RESP0001"
VIEWER = "U0VIEW0001"
ONCALL_GROUP = "S0ONCALL01"
GROUP_MEMBER = "U0GRPM0001"
CHANNEL = "C0INCIDENT"


def make_settings(data_dir: Path, fake: FakeSlack, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "data_dir": data_dir,
        "slack_bot_token": BOT_TOKEN,
        "slack_signing_secret": SIGNING_SECRET,
        "slack_api_url": fake.api_url,
        "slack_role_map": {RESPONDER: "responder", ONCALL_GROUP: "responder"},
        "outbound_timeout_seconds": 3.0,
        "rate_limit_per_minute": 1000,
    }
    values.update(overrides)
    return Settings(_env_file=None, **values)


def sign(body: str, *, timestamp: int | None = None, secret: str = SIGNING_SECRET) -> dict[str, str]:
    ts = str(int(time.time()) if timestamp is None else timestamp)
    base = f"v0:{ts}:{body}".encode()
    digest = hmac.new(secret.encode(), base, hashlib.sha256).hexdigest()
    return {"X-Slack-Request-Timestamp": ts, "X-Slack-Signature": f"v0={digest}"}


@dataclass
class Posted:
    status: int
    text: str

    def json(self) -> Any:
        return json.loads(self.text) if self.text.startswith("{") else None


@dataclass
class SlackHarness:
    fake: FakeSlack
    settings: Settings
    base_url: str
    app: web.Application
    http: aiohttp.ClientSession
    _ids: itertools.count[int] = field(default_factory=lambda: itertools.count(1))

    @property
    def bot(self) -> SlackBot:
        return self.app[SLACK_BOT_KEY]

    async def settle(self) -> None:
        """Wait until every answer the bot started has been posted, and its audit records written."""
        assert await self.bot.tasks.drain(wait_seconds=60)
        await self.bot.services.audit.flush()

    async def post(
        self, body: str, *, content_type: str, headers: dict[str, str] | None = None, signed: bool = True
    ) -> Posted:
        all_headers = {"Content-Type": content_type, **(sign(body) if signed else {}), **(headers or {})}
        async with self.http.post(
            f"{self.base_url}/slack/events", data=body.encode(), headers=all_headers
        ) as r:
            return Posted(r.status, await r.text())

    def event_body(self, event: dict[str, Any], *, event_id: str | None = None) -> str:
        return json.dumps(
            {
                "token": "legacy-verification-token",
                "team_id": TEAM_ID,
                "api_app_id": "A0TEST",
                "type": "event_callback",
                "event_id": event_id or f"Ev{next(self._ids):08d}",
                "event_time": int(time.time()),
                "authorizations": [{"team_id": TEAM_ID, "user_id": BOT_USER_ID, "is_bot": True}],
                "event": event,
            }
        )

    async def mention(
        self,
        text: str,
        *,
        user: str = RESPONDER,
        channel: str = CHANNEL,
        thread_ts: str | None = None,
        files: list[dict[str, Any]] | None = None,
        event_id: str | None = None,
    ) -> tuple[dict[str, Any], Posted]:
        """A user posts ``@FaultMaven text`` (recorded in the fake channel), and Slack sends app_mention."""
        message = self.fake.add_message(
            channel, user=user, text=f"<@{BOT_USER_ID}> {text}", thread_ts=thread_ts, files=files
        )
        event = {**message, "type": "app_mention", "team": TEAM_ID, "channel": channel}
        response = await self.post(self.event_body(event, event_id=event_id), content_type="application/json")
        return event, response

    async def command(self, text: str, *, user: str = RESPONDER, channel: str = CHANNEL) -> Posted:
        form = {
            "token": "legacy",
            "team_id": TEAM_ID,
            "team_domain": "test",
            "channel_id": channel,
            "channel_name": "incident",
            "user_id": user,
            "user_name": user.lower(),
            "command": "/faultmaven",
            "text": text,
            "api_app_id": "A0TEST",
            "response_url": self.fake.response_url(f"cmd{next(self._ids)}"),
            "trigger_id": f"trig.{next(self._ids)}",
        }
        return await self.post(urlencode(form), content_type="application/x-www-form-urlencoded")

    async def click(
        self,
        message: dict[str, Any],
        action: dict[str, Any],
        *,
        user: str = RESPONDER,
        channel: str = CHANNEL,
    ) -> Posted:
        """A user clicks a button of a bot message (the payload Slack sends for block_actions)."""
        payload = {
            "type": "block_actions",
            "team": {"id": TEAM_ID, "domain": "test"},
            "user": {"id": user, "team_id": TEAM_ID},
            "api_app_id": "A0TEST",
            "trigger_id": f"trig.{next(self._ids)}",
            "channel": {"id": channel},
            "container": {"type": "message", "message_ts": message["ts"], "channel_id": channel},
            "message": message,
            "response_url": self.fake.response_url(f"act{next(self._ids)}"),
            "actions": [{**action, "type": "button", "block_id": "b", "action_ts": str(time.time())}],
        }
        return await self.post(
            urlencode({"payload": json.dumps(payload)}), content_type="application/x-www-form-urlencoded"
        )

    async def submit_view(
        self, view: dict[str, Any], values: dict[str, str], *, user: str = RESPONDER
    ) -> Posted:
        state = {
            "values": {
                block_id: {"value": {"type": "plain_text_input", "value": v}}
                for block_id, v in values.items()
            }
        }
        payload = {
            "type": "view_submission",
            "team": {"id": TEAM_ID},
            "user": {"id": user, "team_id": TEAM_ID},
            "api_app_id": "A0TEST",
            "view": {**view, "id": "V0001", "state": state},
        }
        return await self.post(
            urlencode({"payload": json.dumps(payload)}), content_type="application/x-www-form-urlencoded"
        )


def find_action(message: dict[str, Any], prefix: str) -> list[dict[str, Any]]:
    """The buttons of a message whose action id starts with ``prefix``."""
    out = []
    for block in message.get("blocks") or []:
        if block.get("type") == "actions":
            out += [e for e in block["elements"] if str(e.get("action_id", "")).startswith(prefix)]
    return out


async def start_harness(
    fake: FakeSlack, data_dir: Path, **overrides: Any
) -> tuple[SlackHarness, web.AppRunner]:
    settings = make_settings(data_dir, fake, **overrides)
    app = create_app(settings, Services(settings), extensions=[slack_routes])
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    server = site._server
    assert server is not None
    port = server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    http = aiohttp.ClientSession()
    return SlackHarness(
        fake=fake, settings=settings, base_url=f"http://127.0.0.1:{port}", app=app, http=http
    ), runner
