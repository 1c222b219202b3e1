"""Writing the audit trail: every action an edge serves (HTTP API, Slack) is recorded in the history store.

By default a record is written behind the answer: the request hands it over and goes on, and the history
store commits it with the others that arrive meanwhile (group commit). The answer never depended on the
write (a failed write is logged and counted, never shown to the user), but waiting for it put the audit
store's commit latency, fsync included, into every request: one slow fsync on a busy disk delayed every
answer in flight. The cost of not waiting: a process that dies (not one that is stopped) can lose the
records of its last few milliseconds. ``FAULTMAVEN_AUDIT_BLOCKING=true`` restores the strict order (answer
only once its record is committed) for deployments that need it.

Reads of the trail (``flush`` first) and shutdown (``close``) wait for the records this process handed over
so far; another worker's records of the last milliseconds may still be on their way.
"""

from __future__ import annotations

import asyncio
import logging

from faultmaven.observability import Metrics
from faultmaven.stores.base import AuditEvent, HistoryStore

log = logging.getLogger(__name__)


# Records written behind the answers wait this long for others to share their commit: under load a commit
# (a transaction and, on SQLite, an fsync) every few milliseconds instead of one per request.
GATHER_SECONDS = 0.02


class AuditTrail:
    def __init__(
        self,
        history: HistoryStore,
        *,
        metrics: Metrics,
        blocking: bool,
        gather_seconds: float = GATHER_SECONDS,
    ) -> None:
        self._history = history
        self._metrics = metrics
        self._blocking = blocking
        self._gather_seconds = gather_seconds
        self._waiting: list[AuditEvent] = []
        self._writer: asyncio.Task[None] | None = None

    async def record(self, event: AuditEvent) -> None:
        """Record ``event``: written before this returns when blocking, behind it otherwise."""
        if self._blocking:
            await self._write(event)
            return
        self._waiting.append(event)
        if self._writer is None:
            self._writer = asyncio.get_running_loop().create_task(self._write_waiting())

    async def flush(self) -> None:
        """Wait until every record handed over so far is written (or its failure logged)."""
        while self._writer is not None:
            # (asyncio.wait, not gather: a cancelled flush must not cancel the writes)
            await asyncio.wait({self._writer})

    async def close(self) -> None:
        await self.flush()

    async def _write_waiting(self) -> None:
        try:
            await asyncio.sleep(self._gather_seconds)
            while self._waiting:  # what arrived during a write goes in the next one, without waiting again
                batch, self._waiting = self._waiting, []
                # the history store group-commits concurrent writes: one transaction for the batch
                await asyncio.gather(*(self._write(event) for event in batch))
        finally:
            self._writer = None

    async def _write(self, event: AuditEvent) -> None:
        try:
            await self._history.audit(event)
        except Exception as exc:
            self._metrics.audit_failures.inc()
            log.error("audit write failed", extra={"action": event.action, "error": type(exc).__name__})
