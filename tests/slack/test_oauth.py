"""Multi-workspace OAuth: install → redirect → installation stored (encrypted, in the service's database) →
events from that workspace are answered with its bot token."""

from __future__ import annotations

import re
from pathlib import Path

from bot.app import session_id_for
from tests.slack.fake_slack import BOT_TOKEN, TEAM_ID, FakeSlack
from tests.slack.harness import CHANNEL, start_harness


async def test_install_then_answer_with_the_installed_token(fake_slack: FakeSlack, tmp_path: Path) -> None:
    harness, runner = await start_harness(
        fake_slack,
        tmp_path / "data",
        slack_bot_token=None,
        slack_client_id="1111.2222",
        slack_client_secret="oauth-client-secret",
    )
    try:
        async with harness.http.get(f"{harness.base_url}/slack/install", allow_redirects=False) as r:
            assert r.status in (200, 302)
            page = await r.text()
            location = r.headers.get("Location", "")
            cookie = r.headers.get("Set-Cookie", "")
        state = re.search(r"state=([A-Za-z0-9_\-]+)", location or page)
        assert state is not None, "the install page links to Slack's authorize URL with a state"
        assert "client_id=1111.2222" in (location or page)
        scopes = re.search(r"scope=([^&\"]+)", location or page)
        assert scopes is not None
        assert "app_mentions%3Aread" in scopes.group(1) or "app_mentions:read" in scopes.group(1)

        # A forged state is refused.
        async with harness.http.get(
            f"{harness.base_url}/slack/oauth_redirect?code=oauth-code-1&state=forged"
        ) as r:
            assert r.status >= 400
        cookie_value = cookie.split(";", 1)[0]
        async with harness.http.get(
            f"{harness.base_url}/slack/oauth_redirect?code=oauth-code-1&state={state.group(1)}",
            headers={"Cookie": cookie_value},
        ) as r:
            assert r.status == 200, await r.text()
        bot = await harness.bot.store.async_find_bot(enterprise_id=None, team_id=TEAM_ID)
        assert bot is not None and bot.bot_token == BOT_TOKEN

        event, response = await harness.mention("orders-api 503s since 14:10, what changed?")
        assert response.status == 200
        await harness.settle()
        replies = fake_slack.bot_replies(CHANNEL, event["ts"])
        assert len(replies) == 1 and replies[0]["blocks"]
        posts = fake_slack.calls_to("chat.postMessage")
        assert posts and all(c.token == BOT_TOKEN for c in posts)
        session = await harness.bot.troubleshooter.get_session(session_id_for(TEAM_ID, CHANNEL, event["ts"]))
        assert len(session.turns) == 1
    finally:
        await harness.http.close()
        await runner.cleanup()
