"""``manifests/slack-app.yaml`` stays in step with the code: listeners ↔ events and commands, Web API calls ↔
scopes."""

from __future__ import annotations

import re
from pathlib import Path

import yaml

from bot.app import BOT_SCOPES, COMMAND, EVENTS
from bot.scopes import METHOD_SCOPES, required_scopes
from tests.slack.datasets import orders_api_metrics_csv
from tests.slack.fake_slack import BOT_USER_ID, TEAM_ID
from tests.slack.harness import CHANNEL, RESPONDER, SlackHarness

ROOT = Path(__file__).resolve().parents[2]
MANIFEST = yaml.safe_load((ROOT / "manifests" / "slack-app.yaml").read_text(encoding="utf-8"))


def test_manifest_lists_what_the_app_listens_to() -> None:
    settings = MANIFEST["settings"]
    assert set(settings["event_subscriptions"]["bot_events"]) == set(EVENTS)
    assert [c["command"] for c in MANIFEST["features"]["slash_commands"]] == [COMMAND]
    assert settings["interactivity"]["is_enabled"] is True
    assert settings["socket_mode_enabled"] is True
    for url in (
        settings["event_subscriptions"]["request_url"],
        settings["interactivity"]["request_url"],
        MANIFEST["features"]["slash_commands"][0]["url"],
    ):
        assert url.endswith("/slack/events")
    assert MANIFEST["oauth_config"]["redirect_urls"][0].endswith("/slack/oauth_redirect")


def test_manifest_scopes_are_exactly_the_ones_the_code_needs() -> None:
    listed = set(MANIFEST["oauth_config"]["scopes"]["bot"])
    assert listed == required_scopes() == set(BOT_SCOPES)


def _called_methods() -> set[str]:
    """Every Web API method the bot's source calls through a client (``client.chat_postMessage(`` …)."""
    out: set[str] = set()
    for path in (ROOT / "bot").glob("*.py"):
        for name in re.findall(r"client\.([a-z]+_[A-Za-z0-9_]+)\(", path.read_text(encoding="utf-8")):
            if name == "files_upload_v2":
                out |= {"files.getUploadURLExternal", "files.completeUploadExternal"}
            else:
                out.add(name.replace("_", "."))
    return out


def test_every_method_in_the_source_has_its_scopes_listed() -> None:
    called = _called_methods()
    assert {"chat.postMessage", "chat.update", "conversations.replies", "views.open"} <= called
    assert called - set(METHOD_SCOPES) == set()


async def test_every_listed_event_and_command_reaches_a_listener(slack: SlackHarness) -> None:
    message = slack.fake.add_message(CHANNEL, user=RESPONDER, text=f"<@{BOT_USER_ID}> help")
    mention = {**message, "type": "app_mention", "channel": CHANNEL}
    dm = {**message, "type": "message", "channel_type": "im", "channel": "D0DM000001", "bot_id": "B0OTHER"}
    for event in (mention, dm):
        posted = await slack.post(slack.event_body(event), content_type="application/json")
        assert posted.status == 200, event["type"]
    assert (await slack.command("help")).status == 200
    # An event the manifest does not subscribe to has no listener: Bolt answers 404.
    other = {"type": "reaction_added", "user": RESPONDER, "reaction": "eyes", "item": {"type": "message"}}
    assert (await slack.post(slack.event_body(other), content_type="application/json")).status == 404
    await slack.settle()


async def test_methods_called_at_run_time_are_covered(slack: SlackHarness) -> None:
    metrics = slack.fake.add_file(
        "orders-metrics.csv", orders_api_metrics_csv().encode(), mimetype="text/csv"
    )
    await slack.mention("orders-api p99 latency jumped at 14:10, why?", files=[metrics])
    await slack.command("status")
    await slack.settle()
    called = {c.method for c in slack.fake.calls}
    assert "files.completeUploadExternal" in called
    assert called - set(METHOD_SCOPES) == set()
    assert all(c.args.get("team_id", TEAM_ID) == TEAM_ID for c in slack.fake.calls)
