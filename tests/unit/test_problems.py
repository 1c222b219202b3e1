"""Error → RFC 9457 problem document mapping (no network: handlers are called directly)."""

from __future__ import annotations

import json
import logging
import re
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import make_mocked_request
from hypothesis import example, given
from hypothesis import strategies as st
from pydantic import ValidationError

from core.errors import (
    AuthenticationError,
    DependencyError,
    FaultMavenError,
    InputError,
    NotFoundError,
    PayloadTooLargeError,
    PermissionDeniedError,
    RateLimitedError,
)
from faultmaven.logconfig import request_id_var
from handlers.observe import request_id_from
from handlers.problems import (
    PROBLEM_CONTENT_TYPE,
    FieldError,
    FieldValidationError,
    field_path,
    make_problem_middleware,
    parse_problem,
    problem_for,
    union_tag,
    validation_problem,
)
from handlers.schemas import QueryRequest


def _body(response: web.Response) -> dict[str, Any]:
    assert response.content_type == PROBLEM_CONTENT_TYPE
    assert isinstance(response.text, str)
    data = json.loads(response.text)
    assert isinstance(data, dict)
    return data


def _validation_error(raw: str) -> ValidationError:
    with pytest.raises(ValidationError) as info:
        QueryRequest.model_validate_json(raw)
    return info.value


@pytest.mark.parametrize(
    ("loc", "expected"),
    [
        ((), "(body)"),
        (("user_id",), "user_id"),
        (("logs", 3), "logs[3]"),
        (("metrics", union_tag("snapshot"), "cpu_usage"), "metrics.cpu_usage"),
        (("metrics", union_tag("series"), 0, "points", 2, "value"), "metrics[0].points[2].value"),
        (("metrics", union_tag("snapshot")), "metrics"),
        (("metrics", union_tag("snapshot"), "", "[key]"), 'metrics[""][key]'),
    ],
)
def test_field_path(loc: tuple[int | str, ...], expected: str) -> None:
    assert field_path(loc) == expected


@given(st.lists(st.one_of(st.integers(min_value=0, max_value=10_000), st.text(max_size=20)), max_size=8))
def test_field_path_never_fails_and_keeps_indexes(loc: list[int | str]) -> None:
    path = field_path(loc)
    assert path
    for part in loc:
        if isinstance(part, int):
            assert f"[{part}]" in path


def test_malformed_json_is_400() -> None:
    response = validation_problem(_validation_error('{"user_id": "u1", "logs": ['))
    body = _body(response)
    assert response.status == 400 and body["code"] == "invalid_json"
    assert "not valid JSON" in body["detail"]


def test_schema_errors_are_422_with_every_path_and_no_input_echo() -> None:
    secretish = "hunter2-is-not-a-number"
    raw = json.dumps({"user_id": "u1", "logs": ["fine", 5], "metrics": {"cpu_usage": secretish}, "extra": 1})
    response = validation_problem(_validation_error(raw))
    body = _body(response)
    assert response.status == 422 and body["code"] == "validation_failed"
    locs = {item["loc"] for item in body["errors"]}
    assert {"logs[1]", "metrics.cpu_usage", "extra"} <= locs
    assert "logs[1]" in body["detail"]
    assert secretish not in response.text  # type: ignore[operator]


@pytest.mark.parametrize(
    ("exc", "status", "code"),
    [
        (InputError("The file is not a log."), 400, "invalid_input"),
        (AuthenticationError("The bearer token has expired."), 401, "unauthenticated"),
        (PermissionDeniedError("Your role 'viewer' does not allow 'feedback'."), 403, "forbidden"),
        (NotFoundError("No session 'abc'."), 404, "not_found"),
        (PayloadTooLargeError("Too big."), 413, "payload_too_large"),
        (
            DependencyError("Redis is unreachable.", detail="ConnectionRefusedError 10.0.0.5:6379"),
            503,
            "dependency_unavailable",
        ),
        (FaultMavenError("Something we anticipated went wrong."), 500, "internal_error"),
    ],
)
def test_faultmaven_errors_keep_status_and_user_message(exc: FaultMavenError, status: int, code: str) -> None:
    response = problem_for(exc)
    body = _body(response)
    assert response.status == status and body["status"] == status and body["code"] == code
    assert body["detail"] == exc.user_message
    assert body["type"] == f"urn:faultmaven:problem:{code}"
    if exc.detail:
        assert exc.detail not in response.text  # type: ignore[operator]


def test_rate_limited_sets_retry_after_rounded_up() -> None:
    response = problem_for(RateLimitedError("Slow down.", retry_after=12.2))
    assert response.status == 429 and response.headers["Retry-After"] == "13"
    tiny = problem_for(RateLimitedError("Slow down.", retry_after=0.0))
    assert tiny.headers["Retry-After"] == "1"


def test_unauthenticated_sets_www_authenticate() -> None:
    response = problem_for(AuthenticationError("The bearer token has expired."))
    assert response.headers["WWW-Authenticate"].startswith("Bearer ")


def test_field_validation_error_lists_fields() -> None:
    exc = FieldValidationError(
        [FieldError(loc="metrics.cpu", msg="value 'x' is not a number", type="value_error")]
    )
    body = _body(problem_for(exc))
    assert body["status"] == 422 and body["errors"][0]["loc"] == "metrics.cpu"
    assert "metrics.cpu" in body["detail"]


def test_aiohttp_http_errors() -> None:
    too_big = problem_for(
        web.HTTPRequestEntityTooLarge(max_size=1024, actual_size=4096), max_request_bytes=1024
    )
    assert too_big.status == 413 and "1024-byte limit" in _body(too_big)["detail"]
    not_allowed = problem_for(web.HTTPMethodNotAllowed("PUT", ["POST", "GET"]))
    assert not_allowed.status == 405 and not_allowed.headers["Allow"] == "GET,POST"
    assert "PUT" in _body(not_allowed)["detail"]


async def test_middleware_hides_unexpected_errors_and_logs_error_id(caplog: pytest.LogCaptureFixture) -> None:
    async def broken(request: web.Request) -> web.Response:
        raise RuntimeError("connect failed: postgresql://fm:s3cr3t-pw@db.internal/fm")

    middleware = make_problem_middleware(max_request_bytes=1024)
    token = request_id_var.set("req-42")
    try:
        with caplog.at_level(logging.ERROR, logger="handlers.problems"):
            response = await middleware(make_mocked_request("POST", "/api/query"), broken)
    finally:
        request_id_var.reset(token)
    assert isinstance(response, web.Response)
    body = _body(response)
    assert response.status == 500 and body["code"] == "internal_error"
    assert "s3cr3t" not in response.text and "RuntimeError" not in response.text  # type: ignore[operator]
    assert body["request_id"] == "req-42"
    error_id = body["error_id"]
    assert re.fullmatch(r"[0-9a-f]{12}", error_id) and error_id in body["detail"]
    logged = [r for r in caplog.records if getattr(r, "error_id", None) == error_id]
    assert logged and logged[0].exc_info is not None


async def test_middleware_passes_responses_and_redirects_through() -> None:
    middleware = make_problem_middleware()

    async def ok(request: web.Request) -> web.Response:
        return web.json_response({"fine": True})

    async def moved(request: web.Request) -> web.Response:
        raise web.HTTPFound("/elsewhere")

    response = await middleware(make_mocked_request("GET", "/"), ok)
    assert response.status == 200
    with pytest.raises(web.HTTPFound):
        await middleware(make_mocked_request("GET", "/"), moved)


def test_problem_round_trips() -> None:
    response = problem_for(NotFoundError("No session 'abc'."))
    problem = parse_problem(response.text or "")
    assert problem.status == 404 and problem.code == "not_found"


@given(st.text(max_size=300))
@example("req-1\n")
@example("req-1\r\nSet-Cookie: x=1")
@example("a" * 129)
def test_request_id_is_always_a_safe_token(header: str) -> None:
    value = request_id_from(header)
    assert re.fullmatch(r"[A-Za-z0-9._:\-]{1,128}", value)
    if re.fullmatch(r"[A-Za-z0-9._:\-]{1,128}", header):
        assert value == header
    else:
        assert value != header
