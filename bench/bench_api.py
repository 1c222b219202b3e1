"""HTTP API benchmark: the real app (real embedded stores, real troubleshooter) on 127.0.0.1, driven by
concurrent aiohttp clients over real TCP. Prints JSON.

Scenarios, each for ``--requests`` requests at ``--concurrency`` in flight:

* ``healthz``: the bare HTTP stack (middlewares, routing, JSON).
* ``incidents_auth``: an authenticated, rate-limited, audited read: HS256 verification, one rate-limit
  hit and one audit write in the embedded stores, and an incident search.
* ``query_seed``: the seed payload (a question, 12 log lines, a metrics snapshot) through the whole engine,
  each request in a fresh session.

Reported per scenario: requests per second, latency p50 / p90 / p99 / max in milliseconds, and the status
codes seen. Run: ``python -m bench.bench_api [--requests 400] [--concurrency 8]``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import platform
import statistics
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import aiohttp
import jwt
from aiohttp import web

from faultmaven.services import Services
from faultmaven.settings import Settings
from handlers.app import create_app

log = logging.getLogger("bench.api")

SECRET = "bench-shared-secret-0123456789abcdef0123456789"

SEED_LOGS = [
    "2024-05-14T14:05:58Z INFO  checkout-7f9c Started CheckoutApplication in 6.2 seconds",
    "2024-05-14T14:06:00Z INFO  checkout-7f9c GET /api/cart 200 41ms",
    "2024-05-14T14:06:01Z ERROR checkout-7f9c java.lang.OutOfMemoryError: Java heap space",
    "2024-05-14T14:06:01Z ERROR checkout-7f9c \tat com.shop.cart.CartService.load(CartService.java:88)",
    "2024-05-14T14:06:02Z WARN  checkout-7f9c GC overhead limit exceeded, heap=1986MB/2048MB",
    "2024-05-14T14:06:03Z INFO  checkout-7f9c GET /api/cart 200 1877ms",
    "2024-05-14T14:06:05Z ERROR kubelet Back-off restarting failed container checkout in pod checkout-7f9c",
    "2024-05-14T14:06:06Z WARN  payments-5d8 upstream checkout slow: 2450ms (threshold 1000ms)",
    "2024-05-14T14:06:09Z ERROR checkout-7f9c upstream payments timeout after 5000ms",
    "2024-05-14T14:06:12Z INFO  checkout-9a1b Started CheckoutApplication in 6.4 seconds",
    "2024-05-14T14:06:15Z ERROR checkout-9a1b java.lang.OutOfMemoryError: Java heap space",
    "2024-05-14T14:06:16Z ERROR kubelet Back-off restarting failed container checkout in pod checkout-9a1b",
]
SEED = {
    "user_id": "bench-user",
    "query": "checkout pods keep restarting since the 14:05 deploy, what is going on?",
    "logs": SEED_LOGS,
    "metrics": {"cpu_usage": 92, "memory_usage": 97.5, "error_rate": 0.18},
}


def _token(sub: str) -> str:
    now = int(time.time())
    claims = {"sub": sub, "exp": now + 3600, "iat": now, "faultmaven_role": "viewer"}
    return jwt.encode(claims, SECRET, algorithm="HS256")


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))
    return ordered[index]


async def _drive(
    make_call: Callable[[aiohttp.ClientSession, int], Awaitable[int]], *, requests: int, concurrency: int
) -> dict[str, Any]:
    latencies: list[float] = []
    statuses: Counter[int] = Counter()
    counter = iter(range(requests))

    async def worker(session: aiohttp.ClientSession) -> None:
        for number in counter:
            started = time.perf_counter()
            status = await make_call(session, number)
            latencies.append((time.perf_counter() - started) * 1000)
            statuses[status] += 1

    connector = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(connector=connector) as session:
        started = time.perf_counter()
        await asyncio.gather(*(worker(session) for _ in range(concurrency)))
        elapsed = time.perf_counter() - started
    return {
        "requests": requests,
        "concurrency": concurrency,
        "seconds": round(elapsed, 3),
        "rps": round(requests / elapsed, 1),
        "latency_ms": {
            "p50": round(_percentile(latencies, 0.50), 2),
            "p90": round(_percentile(latencies, 0.90), 2),
            "p99": round(_percentile(latencies, 0.99), 2),
            "max": round(max(latencies), 2),
            "mean": round(statistics.fmean(latencies), 2),
        },
        "statuses": {str(code): count for code, count in sorted(statuses.items())},
    }


async def run(*, requests: int, concurrency: int, data_dir: Path) -> dict[str, Any]:
    settings = Settings(
        _env_file=None,
        data_dir=data_dir,
        auth_jwt_secret=SECRET,
        rate_limit_per_minute=1_000_000,
        log_level="WARNING",
    )
    app = create_app(settings, Services(settings))
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    base = f"http://127.0.0.1:{runner.addresses[0][1]}"
    headers = {"Authorization": f"Bearer {_token('bench-user')}"}
    results: dict[str, Any] = {}
    try:

        async def healthz(session: aiohttp.ClientSession, number: int) -> int:
            async with session.get(f"{base}/healthz") as resp:
                await resp.read()
                return resp.status

        async def incidents(session: aiohttp.ClientSession, number: int) -> int:
            params = {"q": "heap restarting"}
            async with session.get(f"{base}/api/incidents", params=params, headers=headers) as resp:
                await resp.read()
                return resp.status

        async def query(session: aiohttp.ClientSession, number: int) -> int:
            async with session.post(f"{base}/api/query", json=SEED, headers=headers) as resp:
                await resp.read()
                return resp.status

        await _drive(healthz, requests=min(50, requests), concurrency=concurrency)  # warm-up
        results["healthz"] = await _drive(healthz, requests=requests, concurrency=concurrency)
        results["incidents_auth"] = await _drive(incidents, requests=requests, concurrency=concurrency)
        query_requests = max(concurrency, requests // 4)
        results["query_seed"] = await _drive(query, requests=query_requests, concurrency=concurrency)
    finally:
        await runner.cleanup()
    return results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--requests", type=int, default=400)
    parser.add_argument("--concurrency", type=int, default=8)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    with tempfile.TemporaryDirectory(prefix="fm-bench-api-") as tmp:
        results = asyncio.run(run(requests=args.requests, concurrency=args.concurrency, data_dir=Path(tmp)))
    report = {
        "python": platform.python_version(),
        "machine": platform.machine(),
        "storage": "embedded sqlite",
        "scenarios": results,
    }
    json.dump(report, sys.stdout, indent=2)
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
