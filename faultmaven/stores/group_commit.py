"""Group commit: many concurrent writers of small rows share one transaction.

Under load every request writes an audit row. One transaction (and, on SQLite with ``synchronous=FULL``,
one fsync) per row costs more than the row; here the rows that arrive while a write is in progress are
written together by the next one. Each caller still waits until its own row is committed, so nothing is
acknowledged before it is durable, and a failed write fails every caller whose row it held.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from typing import Generic, TypeVar

T = TypeVar("T")

MAX_BATCH = 500


class GroupCommit(Generic[T]):
    """``await group.submit(item)`` returns once ``write`` has committed a batch holding ``item``."""

    def __init__(
        self, write: Callable[[Sequence[T]], Awaitable[None]], *, max_batch: int = MAX_BATCH
    ) -> None:
        self._write = write
        self._max_batch = max_batch
        self._pending: list[tuple[T, asyncio.Future[None]]] = []
        self._flusher: asyncio.Task[None] | None = None

    async def submit(self, item: T) -> None:
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._pending.append((item, future))
        if self._flusher is None or self._flusher.done():
            self._flusher = asyncio.create_task(self._flush())
        await future

    async def _flush(self) -> None:
        while self._pending:
            batch = self._pending[: self._max_batch]
            del self._pending[: self._max_batch]
            try:
                await self._write([item for item, _ in batch])
            except BaseException as exc:
                for _, future in batch:
                    if not future.done():
                        future.set_exception(exc)
                if not isinstance(exc, Exception):
                    raise
            else:
                for _, future in batch:
                    if not future.done():
                        future.set_result(None)
