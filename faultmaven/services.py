"""The long-lived objects one running service shares: settings, stores, the troubleshooter, the audit
trail, metrics and tracing. Built once at the entry point; the stores and the troubleshooter are opened when the server starts
(``start``) and closed at shutdown (``close``)."""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING

from faultmaven.audit_trail import AuditTrail
from faultmaven.observability import Metrics, Tracing, setup_tracing
from faultmaven.settings import Settings

if TYPE_CHECKING:
    from faultmaven.stores import Stores
    from faultmaven.troubleshooter import Troubleshooter

log = logging.getLogger(__name__)


class ServicesNotStartedError(RuntimeError):
    """A store or the troubleshooter was used before ``Services.start`` ran (a wiring bug, never user input)."""


class Services:
    """What every request handler needs. Pass ``stores`` / ``troubleshooter`` to use ready-made ones (they are
    then left open by ``close``); otherwise ``start`` opens them from the settings."""

    def __init__(
        self,
        settings: Settings,
        *,
        stores: Stores | None = None,
        troubleshooter: Troubleshooter | None = None,
        metrics: Metrics | None = None,
        tracing: Tracing | None = None,
    ) -> None:
        self.settings = settings
        self.metrics = metrics or Metrics()
        self.tracing = tracing or setup_tracing(settings, metrics=self.metrics)
        self._stores = stores
        self._troubleshooter = troubleshooter
        self._owns_stores = stores is None
        self._owns_troubleshooter = troubleshooter is None
        self._audit: AuditTrail | None = None
        self._started = False
        self._tracing_shut = False

    @property
    def stores(self) -> Stores:
        if self._stores is None:
            raise ServicesNotStartedError("stores used before Services.start()")
        return self._stores

    @property
    def troubleshooter(self) -> Troubleshooter:
        if self._troubleshooter is None:
            raise ServicesNotStartedError("troubleshooter used before Services.start()")
        return self._troubleshooter

    @property
    def audit(self) -> AuditTrail:
        if self._audit is None:
            raise ServicesNotStartedError("audit trail used before Services.start()")
        return self._audit

    @property
    def started(self) -> bool:
        return self._started

    async def start(self) -> None:
        """Open the stores and build the troubleshooter, unless they were handed in."""
        if self._started:
            return
        if self._stores is None:
            from faultmaven.stores import open_stores

            self._stores = await open_stores(self.settings)
        if self._troubleshooter is None:
            from faultmaven.service import create_troubleshooter

            try:
                self._troubleshooter = await create_troubleshooter(
                    self.settings, self._stores, metrics=self.metrics, tracing=self.tracing
                )
            except BaseException:
                await self._close_stores()
                raise
        self._audit = AuditTrail(
            self._stores.history, metrics=self.metrics, blocking=self.settings.audit_blocking
        )
        self._started = True
        log.info("services started")

    async def close(self) -> None:
        """Write the audit records still pending, close what ``start`` opened and flush traces. Safe to call
        more than once."""
        if self._audit is not None:
            await self._audit.close()
        if self._owns_troubleshooter and self._troubleshooter is not None:
            troubleshooter, self._troubleshooter = self._troubleshooter, None
            # not part of the Troubleshooter protocol (yet): the service closes its LLM client here
            close = getattr(troubleshooter, "close", None)
            if close is not None:
                try:
                    await close()
                except Exception as exc:
                    log.warning("error while closing the troubleshooter", extra={"error": type(exc).__name__})
        await self._close_stores()
        if not self._tracing_shut:
            self._tracing_shut = True
            # flushing may POST to the collector: keep that blocking call off the event loop
            await asyncio.to_thread(self.tracing.shutdown)
        self._started = False
        log.info("services closed")

    async def __aenter__(self) -> Services:
        """For entry points without an aiohttp app (e.g. the Socket Mode Slack bot)."""
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    async def _close_stores(self) -> None:
        if self._owns_stores and self._stores is not None:
            stores, self._stores = self._stores, None
            await stores.close()
