"""Synthetic incidents built from LogRecords, for detector tests that need exact control of time."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

from core.models import LogRecord, Severity

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


def record(
    i: int,
    *,
    at: datetime,
    service: str,
    message: str,
    severity: Severity = Severity.INFO,
    pod: str | None = None,
) -> LogRecord:
    return LogRecord(
        source=f"{service}.log",
        line=i + 1,
        timestamp=at,
        severity=severity,
        service=service,
        pod=pod,
        message=message,
    )


def pool_exhaustion_incident(seed: int = 7) -> list[LogRecord]:
    """40 min of healthy traffic; at 09:30 payments' pool runs dry; checkout logs 4x more errors about it."""
    rng = random.Random(seed)
    out: list[LogRecord] = []
    t = T0
    i = 0
    while t < T0 + timedelta(minutes=40):
        incident = t >= T0 + timedelta(minutes=30)
        order = rng.randint(100000, 999999)
        ms = rng.randint(8, 60)
        out.append(
            record(
                i,
                at=t,
                service="checkout",
                message=f"POST /api/checkout order={order} status=200 took {ms}ms",
            )
        )
        i += 1
        out.append(
            record(
                i,
                at=t,
                service="payments",
                message=f"charge ok order={order} amount={rng.randint(5, 400)}.00 USD",
            )
        )
        i += 1
        if rng.random() < 0.02:
            out.append(
                record(
                    i,
                    at=t,
                    service="checkout",
                    message="slow cache refresh took 1200ms",
                    severity=Severity.WARN,
                )
            )
            i += 1
        if incident and rng.random() < 0.5:
            out.append(
                record(
                    i,
                    at=t,
                    service="payments",
                    severity=Severity.ERROR,
                    pod="payments-6c8f9d7b5-k2x7p",
                    message="HikariPool-1 - Connection is not available, request timed out after 30000ms.",
                )
            )
            i += 1
            for _ in range(4):
                out.append(
                    record(
                        i,
                        at=t,
                        service="checkout",
                        severity=Severity.ERROR,
                        message=f"call to payments:8080 timed out after 5000ms order={order}, retrying",
                    )
                )
                i += 1
        t += timedelta(seconds=rng.uniform(1.0, 3.0))
    return out
