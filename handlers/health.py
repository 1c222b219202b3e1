"""Liveness, readiness and the Prometheus scrape endpoint."""

from __future__ import annotations

import asyncio
import logging

from aiohttp import web

from faultmaven.observability import PROMETHEUS_CONTENT_TYPE
from handlers.bodies import model_response
from handlers.keys import SERVICES_KEY
from handlers.openapi import Operation, add_operation, openapi_handler
from handlers.problems import problem_response
from handlers.schemas import Health, Readiness

log = logging.getLogger(__name__)


async def healthz(request: web.Request) -> web.Response:
    return model_response(Health())


async def readyz(request: web.Request) -> web.Response:
    services = request.app[SERVICES_KEY]
    timeout = services.settings.outbound_timeout_seconds
    try:
        checks = await asyncio.wait_for(services.stores.ping(), timeout=timeout)
    except Exception as exc:  # a ping that raises or hangs means "not reachable", whatever the cause
        log.warning("readiness check failed", extra={"error": type(exc).__name__})
        checks = {"stores": False}
    failed = sorted(name for name, ok in checks.items() if not ok)
    if failed:
        return problem_response(
            503,
            code="not_ready",
            detail=f"Not ready: {', '.join(failed)} unreachable.",
            extra={"checks": checks},
        )
    return model_response(Readiness(status="ready", checks=checks))


async def metrics(request: web.Request) -> web.Response:
    body = request.app[SERVICES_KEY].metrics.exposition()
    response = web.Response(body=body)
    response.headers["Content-Type"] = PROMETHEUS_CONTENT_TYPE
    return response


def add_health_routes(app: web.Application) -> None:
    add_operation(
        app,
        Operation(
            method="GET",
            path="/healthz",
            operation_id="healthz",
            summary="The process is up",
            handler=healthz,
            tag="ops",
            response_model=Health,
        ),
    )
    add_operation(
        app,
        Operation(
            method="GET",
            path="/readyz",
            operation_id="readyz",
            summary="Dependencies (session and history stores) are reachable",
            handler=readyz,
            tag="ops",
            response_model=Readiness,
            errors=(503,),
        ),
    )
    add_operation(
        app,
        Operation(
            method="GET",
            path="/metrics",
            operation_id="metrics",
            summary="Prometheus metrics",
            handler=metrics,
            tag="ops",
            response_content_type="text/plain",
            response_schema={"type": "string"},
        ),
    )
    add_operation(
        app,
        Operation(
            method="GET",
            path="/api/openapi.json",
            operation_id="openapi",
            summary="This document",
            handler=openapi_handler,
            tag="ops",
            response_schema={"type": "object"},
        ),
    )
