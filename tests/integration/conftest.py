"""Fixtures for the integration tests. Service fixtures (Redis, PostgreSQL...) live in ``services.py``."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from tests.integration.fake_openai import FakeOpenAI


@pytest.fixture
async def fake_openai() -> AsyncIterator[FakeOpenAI]:
    """A running fake OpenAI-compatible server on 127.0.0.1 (random port); ``.base_url`` ends in ``/v1``."""
    server = FakeOpenAI()
    await server.start()
    try:
        yield server
    finally:
        await server.stop()
