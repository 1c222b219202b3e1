"""The OpenAPI 3.1 document, generated from the routes' pydantic models.

Routes are added with ``add_operation`` so that the route table and the document cannot drift apart;
modules that add routes later (Slack, webhooks) can document theirs the same way or add undocumented ones
with plain ``app.router``.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web
from pydantic import BaseModel
from pydantic.json_schema import JsonSchemaMode, models_json_schema

from handlers.auth import Permission, auth_configured
from handlers.keys import SETTINGS_KEY
from handlers.problems import PROBLEM_CONTENT_TYPE, Problem

REF_TEMPLATE = "#/components/schemas/{model}"
API_VERSION = "1.0.0"

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

_ERROR_TEXT: dict[int, str] = {
    400: "The body is not valid JSON.",
    401: "Missing, malformed, expired or untrusted bearer token.",
    403: "The caller's role does not allow this.",
    404: "No such session or resource.",
    409: "The session is already resolved.",
    413: "The request body is larger than the configured limit.",
    422: "The body or query string failed validation; `errors` names each field path.",
    429: "Rate limited; see the Retry-After header.",
    503: "A dependency (store, identity provider) is unavailable.",
}


@dataclass(frozen=True)
class Operation:
    method: str
    path: str
    operation_id: str
    summary: str
    handler: Handler
    tag: str = "api"
    description: str = ""
    permission: Permission | None = None
    request_model: type[BaseModel] | None = None
    query_model: type[BaseModel] | None = None
    response_model: type[BaseModel] | None = None
    response_status: int = 200
    response_description: str = "OK"
    response_content_type: str = "application/json"
    response_schema: dict[str, Any] | None = None
    errors: Sequence[int] = field(default_factory=tuple)


OPERATIONS_KEY = web.AppKey("faultmaven.openapi_operations", list[Operation])


def add_operation(app: web.Application, operation: Operation) -> None:
    """Register the route and its documentation together."""
    app.router.add_route(operation.method, operation.path, operation.handler, name=operation.operation_id)
    app.setdefault(OPERATIONS_KEY, []).append(operation)


def build_document(app: web.Application) -> dict[str, Any]:
    operations = app.get(OPERATIONS_KEY, [])
    secured = auth_configured(app[SETTINGS_KEY])
    refs, schemas = _component_schemas(operations)
    if not secured:
        _require_user_id(schemas, [op.request_model for op in operations if op.request_model is not None])
    paths: dict[str, dict[str, Any]] = {}
    for op in operations:
        paths.setdefault(op.path, {})[op.method.lower()] = _operation(op, refs=refs, secured=secured)
    document: dict[str, Any] = {
        "openapi": "3.1.0",
        "info": {
            "title": "FaultMaven API",
            "version": API_VERSION,
            "description": (
                "Troubleshooting answers from logs, metrics and questions. Errors are RFC 9457 problem "
                "documents. When the server has authentication configured, every /api route needs an "
                "OAuth2 bearer JWT; its 'sub' claim is the user id and any 'user_id' in a body is "
                "ignored. Roles: viewer (query, read), responder (+ feedback, resolve), admin (+ audit "
                "and session deletion)."
            ),
        },
        "paths": paths,
        "components": {"schemas": schemas},
    }
    if secured:
        document["components"]["securitySchemes"] = {
            "bearerAuth": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"}
        }
    return document


_Refs = dict[tuple[type[BaseModel], JsonSchemaMode], dict[str, Any]]


def _component_schemas(operations: Sequence[Operation]) -> tuple[_Refs, dict[str, Any]]:
    models: list[tuple[type[BaseModel], JsonSchemaMode]] = [(Problem, "serialization")]
    for op in operations:
        if op.request_model is not None:
            models.append((op.request_model, "validation"))
        if op.response_model is not None:
            models.append((op.response_model, "serialization"))
    unique = list(dict.fromkeys(models))
    mapping, top = models_json_schema(unique, ref_template=REF_TEMPLATE)
    refs: _Refs = {(model, mode): dict(mapping[(model, mode)]) for model, mode in unique}
    return refs, dict(top.get("$defs", {}))


def _require_user_id(schemas: dict[str, Any], request_models: Sequence[type[BaseModel]]) -> None:
    """Without authentication the body's ``user_id`` is the only identity, so the handlers require it; the
    document says so (with authentication it is optional and ignored)."""
    for model in request_models:
        schema = schemas.get(model.__name__) or schemas.get(f"{model.__name__}-Input")
        if schema and "user_id" in schema.get("properties", {}):
            schema["properties"]["user_id"] = {"type": "string", "minLength": 1, "maxLength": 200}
            required = schema.setdefault("required", [])
            if "user_id" not in required:
                required.append("user_id")


def _operation(op: Operation, *, refs: _Refs, secured: bool) -> dict[str, Any]:
    out: dict[str, Any] = {"operationId": op.operation_id, "summary": op.summary, "tags": [op.tag]}
    if op.description:
        out["description"] = op.description
    parameters = _path_parameters(op.path)
    if op.query_model is not None:
        parameters.extend(_query_parameters(op.query_model))
    if parameters:
        out["parameters"] = parameters
    if op.request_model is not None:
        out["requestBody"] = {
            "required": True,
            "content": {"application/json": {"schema": refs[(op.request_model, "validation")]}},
        }
    ok: dict[str, Any] = {"description": op.response_description}
    if op.response_model is not None:
        ok["content"] = {op.response_content_type: {"schema": refs[(op.response_model, "serialization")]}}
    elif op.response_schema is not None:
        ok["content"] = {op.response_content_type: {"schema": op.response_schema}}
    responses: dict[str, Any] = {str(op.response_status): ok}
    problem = {PROBLEM_CONTENT_TYPE: {"schema": refs[(Problem, "serialization")]}}
    statuses = set(op.errors)
    if op.permission is not None:
        statuses |= {429}
        if secured:
            statuses |= {401, 403, 503}
    if op.request_model is not None:
        statuses |= {400, 413, 422}
    if op.query_model is not None or "{" in op.path:
        statuses |= {422}
    for status in sorted(statuses):
        responses[str(status)] = {"description": _ERROR_TEXT.get(status, "Error."), "content": problem}
    responses["default"] = {"description": "Unexpected error (with an error id).", "content": problem}
    out["responses"] = responses
    if op.permission is not None and secured:
        out["security"] = [{"bearerAuth": []}]
        out["x-faultmaven-permission"] = op.permission.value
    return out


def _path_parameters(path: str) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for part in path.split("/"):
        if part.startswith("{") and part.endswith("}"):
            name = part[1:-1]
            out.append(
                {
                    "name": name,
                    "in": "path",
                    "required": True,
                    "schema": {"type": "string", "minLength": 1, "maxLength": 200, "pattern": "^[^/]+$"},
                }
            )
    return out


def _query_parameters(model: type[BaseModel]) -> list[dict[str, Any]]:
    schema = model.model_json_schema(ref_template=REF_TEMPLATE)
    required = set(schema.get("required", []))
    out: list[dict[str, Any]] = []
    for name, prop in schema.get("properties", {}).items():
        param_schema = {key: value for key, value in prop.items() if key not in {"title", "description"}}
        param: dict[str, Any] = {
            "name": name,
            "in": "query",
            "required": name in required,
            "schema": param_schema,
        }
        if "description" in prop:
            param["description"] = prop["description"]
        out.append(param)
    return out


async def openapi_handler(request: web.Request) -> web.Response:
    return web.json_response(build_document(request.app))
