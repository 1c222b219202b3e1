"""Realistic incident data for the Slack tests, built deterministically.

The incident: ``orders-api`` (Go, logfmt lines) runs normally from 14:00 UTC; at 14:10 its
PostgreSQL pool is exhausted (a slow migration holds connections): connection-acquire timeouts, ``pq: sorry,
too many clients already``, 503s with 5 s latencies, until 14:20. The metrics show p99 latency and active
connections jumping in the same window."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

START = datetime(2026, 5, 2, 14, 0, 0, tzinfo=UTC)
INCIDENT_START = START + timedelta(minutes=10)
INCIDENT_END = START + timedelta(minutes=20)


def _stamp(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def orders_api_log(*, minutes: int = 25, seed: int = 7) -> str:
    rng = random.Random(seed)
    lines: list[str] = []
    moment = START
    end = START + timedelta(minutes=minutes)
    while moment < end:
        moment += timedelta(milliseconds=rng.randint(300, 1400))
        trace = f"{rng.getrandbits(64):016x}"
        order = f"ord_{rng.getrandbits(40):010x}"
        incident = INCIDENT_START <= moment < INCIDENT_END
        if not incident:
            took = rng.randint(18, 90)
            lines.append(
                f'ts={_stamp(moment)} level=info service=orders-api msg="request completed" method=POST '
                f"path=/v1/orders status=201 duration_ms={took} trace_id={trace} order_id={order}"
            )
            if rng.random() < 0.08:
                lines.append(
                    f'ts={_stamp(moment)} level=debug service=orders-api msg="db pool stats" pool=orders-db '
                    f"open={rng.randint(8, 14)} in_use={rng.randint(2, 9)} idle={rng.randint(3, 8)} wait_count=0"
                )
            continue
        roll = rng.random()
        if roll < 0.45:
            lines.append(
                f'ts={_stamp(moment)} level=error service=orders-api msg="failed to acquire connection from pool" '
                f'pool=orders-db error="context deadline exceeded: timeout after 5000ms" in_use=50 idle=0 '
                f"waiting={rng.randint(60, 140)} trace_id={trace}"
            )
        elif roll < 0.65:
            lines.append(
                f'ts={_stamp(moment)} level=error service=orders-api msg="insert order failed" '
                f'error="pq: sorry, too many clients already" order_id={order} trace_id={trace}'
            )
        elif roll < 0.7:
            lines.append(
                f'ts={_stamp(moment)} level=warn service=orders-api msg="db pool stats" pool=orders-db open=50 '
                f"in_use=50 idle=0 wait_count={rng.randint(200, 900)} max_open=50"
            )
        else:
            lines.append(
                f'ts={_stamp(moment)} level=warn service=orders-api msg="request completed" method=POST '
                f"path=/v1/orders status=503 duration_ms={rng.randint(5001, 5090)} trace_id={trace}"
            )
    return "\n".join(lines) + "\n"


def orders_api_metrics_csv(*, minutes: int = 25, seed: int = 11) -> str:
    """One point every 20 s per series: p99 latency (ms) and active DB connections."""
    rng = random.Random(seed)
    rows = ["timestamp,orders_api_p99_latency_ms,orders_db_connections_active"]
    for step in range(minutes * 3):
        moment = START + timedelta(seconds=20 * step)
        if INCIDENT_START <= moment < INCIDENT_END:
            latency = 4800 + rng.uniform(0, 400)
            active = 50
        else:
            latency = 70 + rng.uniform(-12, 18)
            active = rng.randint(6, 12)
        rows.append(f"{moment.strftime('%Y-%m-%dT%H:%M:%SZ')},{latency:.1f},{active}")
    return "\n".join(rows) + "\n"
