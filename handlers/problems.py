"""Every error the HTTP service returns, as RFC 9457 ``application/problem+json``. The mapping lives here
and only here: FaultMaven errors keep their status and user-safe message, aiohttp's HTTP errors keep
their status, pydantic validation errors name each offending field path, and anything else becomes a 500
whose error id is logged with the traceback (its text is never shown)."""

from __future__ import annotations

import json
import logging
import math
import uuid
from collections.abc import Awaitable, Callable, Mapping, Sequence
from http import HTTPStatus
from typing import Any

from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from core.errors import AuthenticationError, FaultMavenError, InputError, RateLimitedError
from faultmaven.logconfig import request_id_var

log = logging.getLogger(__name__)

PROBLEM_CONTENT_TYPE = "application/problem+json"
_MAX_FIELD_ERRORS = 20

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class FieldError(BaseModel):
    model_config = ConfigDict(extra="forbid")

    loc: str = Field(description="Path of the offending field in the request body, e.g. 'metrics.cpu_usage'.")
    msg: str = Field(description="What is wrong with it.")
    type: str = Field(description="pydantic's error type, e.g. 'missing' or 'float_parsing'.")


class Problem(BaseModel):
    """An RFC 9457 problem document, with FaultMaven's extension members."""

    model_config = ConfigDict(extra="allow")

    type: str = Field(default="about:blank", description="URI reference naming the kind of problem.")
    title: str
    status: int = Field(ge=400, le=599)
    detail: str = ""
    code: str = Field(description="Stable machine-readable error code, e.g. 'invalid_input'.")
    request_id: str | None = None
    error_id: str | None = Field(default=None, description="Quote this to an operator; it is in the log.")
    errors: list[FieldError] | None = None


class FieldValidationError(InputError):
    """Field-level validation done after pydantic (e.g. a metrics snapshot value that is not a number)."""

    code = "validation_failed"
    http_status = 422

    def __init__(self, errors: Sequence[FieldError]) -> None:
        shown = "; ".join(f"{item.loc}: {item.msg}" for item in errors[:5])
        super().__init__(f"The request body failed validation: {shown}.")
        self.field_errors = list(errors)


def problem_type(code: str) -> str:
    return f"urn:faultmaven:problem:{code}"


def problem_response(
    status: int,
    *,
    code: str,
    detail: str,
    title: str | None = None,
    errors: Sequence[FieldError] | None = None,
    error_id: str | None = None,
    headers: Mapping[str, str] | None = None,
    extra: Mapping[str, Any] | None = None,
) -> web.Response:
    problem = Problem(
        type=problem_type(code),
        title=title or _reason(status),
        status=status,
        detail=detail,
        code=code,
        request_id=request_id_var.get(),
        error_id=error_id,
        errors=list(errors) if errors is not None else None,
        **dict(extra or {}),
    )
    body = problem.model_dump_json(exclude_none=True)
    response = web.Response(status=status, text=body, content_type=PROBLEM_CONTENT_TYPE, charset="utf-8")
    for key, value in (headers or {}).items():
        response.headers[key] = value
    return response


UNION_TAG_PREFIX = "~"


def union_tag(name: str) -> str:
    """A pydantic discriminator tag that ``field_path`` leaves out: it names a union member, not a body key."""
    return f"{UNION_TAG_PREFIX}{name}"


def field_path(loc: Sequence[int | str]) -> str:
    """pydantic's error location as a path: ('logs', 3) → 'logs[3]', ('metrics', 'cpu') → 'metrics.cpu'.
    Union tags made by ``union_tag`` are skipped."""
    out = ""
    for index, part in enumerate(loc):
        if isinstance(part, str) and part.startswith(UNION_TAG_PREFIX) and index > 0:
            continue
        if isinstance(part, int):
            out += f"[{part}]"
        elif part == "":
            out += '[""]'
        elif part.startswith("["):
            out += part
        else:
            out += f".{part}" if out else part
    return out or "(body)"


def field_errors(exc: ValidationError) -> list[FieldError]:
    """The validation errors, one per offending field; input values are never echoed back."""
    return [
        FieldError(loc=field_path(err["loc"]), msg=err["msg"], type=err["type"])
        for err in exc.errors(include_url=False, include_input=False)
    ]


def validation_problem(exc: ValidationError) -> web.Response:
    """400 when the body is not JSON at all, else 422 naming every offending field path."""
    errors = exc.errors(include_url=False, include_input=False)
    if errors and all(err["type"] == "json_invalid" for err in errors):
        reason = str(errors[0].get("ctx", {}).get("error", "")) or "malformed JSON"
        return problem_response(
            400,
            code="invalid_json",
            detail=f"The request body is not valid JSON: {reason}.",
        )
    fields = field_errors(exc)
    shown = "; ".join(f"{item.loc}: {item.msg}" for item in fields[:5])
    more = f" (and {len(fields) - 5} more)" if len(fields) > 5 else ""
    return problem_response(
        422,
        code="validation_failed",
        detail=f"The request body failed validation: {shown}{more}.",
        errors=fields[:_MAX_FIELD_ERRORS],
    )


def faultmaven_problem(exc: FaultMavenError) -> web.Response:
    headers: dict[str, str] = {}
    if isinstance(exc, RateLimitedError):
        headers["Retry-After"] = str(max(1, math.ceil(exc.retry_after)))
    if isinstance(exc, AuthenticationError):
        headers["WWW-Authenticate"] = 'Bearer realm="faultmaven", error="invalid_token"'
    errors = exc.field_errors[:_MAX_FIELD_ERRORS] if isinstance(exc, FieldValidationError) else None
    return problem_response(
        exc.http_status, code=exc.code, detail=exc.user_message, headers=headers, errors=errors
    )


def http_problem(exc: web.HTTPException, *, max_request_bytes: int | None = None) -> web.Response:
    """aiohttp's own HTTP errors (unknown route, wrong method, body too large) as problem documents."""
    status = exc.status
    headers = {key: value for key, value in exc.headers.items() if key.lower() in {"allow", "retry-after"}}
    if isinstance(exc, web.HTTPRequestEntityTooLarge):
        limit = f"the {max_request_bytes}-byte limit" if max_request_bytes else "the size limit"
        return problem_response(
            413,
            code="payload_too_large",
            detail=f"The request body is larger than {limit} this server accepts.",
            headers=headers,
        )
    if isinstance(exc, web.HTTPNotFound):
        detail = "No such resource."
    elif isinstance(exc, web.HTTPMethodNotAllowed):
        detail = (
            f"Method {exc.method} is not allowed here; allowed: {', '.join(sorted(exc.allowed_methods))}."
        )
    else:
        detail = _reason(status)
    code = _reason(status).lower().replace(" ", "_").replace("-", "_")
    return problem_response(status, code=code, detail=detail, headers=headers)


def unexpected_problem(exc: BaseException) -> web.Response:
    """500 with an error id; the traceback goes to the log, never to the user."""
    error_id = uuid.uuid4().hex[:12]
    log.error("unhandled error", exc_info=exc, extra={"error_id": error_id})
    return problem_response(
        500,
        code="internal_error",
        detail=f"An internal error occurred. Quote error id {error_id} when reporting it.",
        error_id=error_id,
    )


def problem_for(exc: BaseException, *, max_request_bytes: int | None = None) -> web.Response:
    if isinstance(exc, FaultMavenError):
        level = logging.WARNING if exc.http_status >= 500 else logging.INFO
        log.log(level, "request failed", extra={"error_code": exc.code, "error_detail": exc.detail or ""})
        return faultmaven_problem(exc)
    if isinstance(exc, ValidationError):
        return validation_problem(exc)
    if isinstance(exc, web.HTTPException):
        return http_problem(exc, max_request_bytes=max_request_bytes)
    return unexpected_problem(exc)


def make_problem_middleware(
    *, max_request_bytes: int | None = None
) -> Callable[..., Awaitable[web.StreamResponse]]:
    """Middleware turning every raised error (and aiohttp's 4xx/5xx) into a problem document."""

    @web.middleware
    async def problem_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        try:
            response = await handler(request)
        except web.HTTPException as exc:
            if exc.status < 400:  # redirects and other non-errors pass through
                raise
            return http_problem(exc, max_request_bytes=max_request_bytes)
        except (FaultMavenError, ValidationError) as exc:
            return problem_for(exc, max_request_bytes=max_request_bytes)
        except Exception as exc:
            return unexpected_problem(exc)
        return response

    return problem_middleware


def parse_problem(text: str) -> Problem:
    """Read a problem document back (used by clients and tests)."""
    return Problem.model_validate(json.loads(text))


def _reason(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Error"
