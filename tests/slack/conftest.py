"""Fixtures for the Slack tests: the fake Slack Web API and a running FaultMaven server with the bot."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tests.slack.fake_slack import FakeSlack
from tests.slack.harness import SlackHarness, start_harness


@pytest.fixture
async def fake_slack() -> AsyncIterator[FakeSlack]:
    fake = FakeSlack()
    await fake.start()
    try:
        yield fake
    finally:
        await fake.stop()


@pytest.fixture
async def slack(fake_slack: FakeSlack, tmp_path: Path) -> AsyncIterator[SlackHarness]:
    harness, runner = await start_harness(fake_slack, tmp_path / "data")
    try:
        yield harness
    finally:
        await harness.http.close()
        await runner.cleanup()
