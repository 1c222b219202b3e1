"""Work that runs after Slack has been acknowledged: tracked, so it is neither garbage-collected mid-flight
nor cut off at shutdown, and so tests can wait for it."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Coroutine
from typing import Any

log = logging.getLogger(__name__)


class TaskTracker:
    def __init__(self) -> None:
        self._tasks: set[asyncio.Task[None]] = set()
        self._closed = False

    def spawn(self, coro: Coroutine[Any, Any, None], *, name: str) -> asyncio.Task[None]:
        """Run ``coro`` in the background. It must handle its own errors; anything escaping is logged."""
        if self._closed:
            coro.close()
            raise RuntimeError("the Slack bot is shutting down")
        task = asyncio.get_running_loop().create_task(coro, name=name)
        self._tasks.add(task)
        task.add_done_callback(self._done)
        return task

    def _done(self, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error(
                "background Slack task failed", exc_info=task.exception(), extra={"task": task.get_name()}
            )

    @property
    def pending(self) -> int:
        return len(self._tasks)

    async def drain(self, *, wait_seconds: float = 30.0) -> bool:
        """Wait until no task is running (tasks may spawn more); False if ``wait_seconds`` passed first."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + wait_seconds
        while self._tasks:
            remaining = deadline - loop.time()
            if remaining <= 0:
                return False
            await asyncio.wait(set(self._tasks), timeout=remaining)
        return True

    async def close(self, *, grace_seconds: float = 30.0) -> None:
        """Stop accepting work, let running tasks finish for ``grace_seconds``, then cancel the rest."""
        self._closed = True
        if await self.drain(wait_seconds=grace_seconds):
            return
        leftover = list(self._tasks)
        log.warning("cancelling unfinished Slack tasks at shutdown", extra={"count": len(leftover)})
        for task in leftover:
            task.cancel()
        await asyncio.gather(*leftover, return_exceptions=True)
