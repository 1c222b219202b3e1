"""Per-request observability: request id (accepted from ``X-Request-Id`` or made up, echoed back), a server
span, the latency histogram by route template and status, and one structured log line per request."""

from __future__ import annotations

import logging
import re
import time
import uuid
from collections.abc import Awaitable, Callable

from aiohttp import web
from opentelemetry.trace import SpanKind, Status, StatusCode

from faultmaven.logconfig import request_id_var, session_id_var
from handlers.keys import SERVICES_KEY

log = logging.getLogger(__name__)

REQUEST_ID_HEADER = "X-Request-Id"
_REQUEST_ID_RE = re.compile(r"[A-Za-z0-9._:\-]{1,128}")
_QUIET_ROUTES = frozenset({"/healthz", "/readyz", "/metrics"})

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def request_id_from(header: str | None) -> str:
    """The caller's request id when it is a sane token, else a fresh one (junk never reaches the logs)."""
    if header and _REQUEST_ID_RE.fullmatch(header):
        return header
    return uuid.uuid4().hex


def route_label(request: web.Request) -> str:
    """The route template ('/api/sessions/{id}'), never the raw path: bounded metric cardinality."""
    resource = request.match_info.route.resource
    if resource is None:
        return "unmatched"
    return resource.canonical


@web.middleware
async def observe_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    services = request.app[SERVICES_KEY]
    request_id = request_id_from(request.headers.get(REQUEST_ID_HEADER))
    rid_token = request_id_var.set(request_id)
    sid_token = session_id_var.set(None)
    route = route_label(request)
    started = time.perf_counter()
    status = 500
    try:
        with services.tracing.tracer.start_as_current_span(
            f"{request.method} {route}", kind=SpanKind.SERVER
        ) as span:
            span.set_attribute("http.request.method", request.method)
            span.set_attribute("http.route", route)
            span.set_attribute("faultmaven.request_id", request_id)
            try:
                response = await handler(request)
            except web.HTTPException as exc:  # only non-errors get here; the problem middleware maps errors
                status = exc.status
                exc.headers[REQUEST_ID_HEADER] = request_id
                raise
            status = response.status
            span.set_attribute("http.response.status_code", status)
            if status >= 500:
                span.set_status(Status(StatusCode.ERROR))
            if not response.prepared:
                response.headers[REQUEST_ID_HEADER] = request_id
            return response
    finally:
        elapsed = time.perf_counter() - started
        services.metrics.http_request_seconds.labels(
            method=request.method, route=route, status=str(status)
        ).observe(elapsed)
        level = logging.DEBUG if route in _QUIET_ROUTES and status < 400 else logging.INFO
        log.log(
            level,
            "request",
            extra={
                "method": request.method,
                "route": route,
                "status": status,
                "duration_ms": round(elapsed * 1000, 2),
            },
        )
        session_id_var.reset(sid_token)
        request_id_var.reset(rid_token)
