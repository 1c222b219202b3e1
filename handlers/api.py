"""The query API: ask, feedback, sessions, resolve, incidents, and the admin audit trail."""

from __future__ import annotations

import logging

from aiohttp import web

from core.answers import Answer, Feedback, IncidentCase, LogInput, Question, ResolveRequest, Session
from core.metrics import metrics_from_snapshot
from core.models import MetricSeries, ParseIssue
from handlers.access import Act, guarded
from handlers.auth import Permission
from handlers.bodies import model_response, read_model, read_query
from handlers.keys import SERVICES_KEY
from handlers.openapi import Operation, add_operation
from handlers.problems import FieldError, FieldValidationError
from handlers.schemas import (
    AuditQuery,
    AuditResponse,
    FeedbackRequest,
    IncidentsQuery,
    IncidentsResponse,
    QueryRequest,
    ResolveBody,
)

log = logging.getLogger(__name__)

_MAX_SESSION_ID = 200


def _acting_user(act: Act, claimed: str | None) -> str:
    """The token's subject when authenticated; otherwise the body's user_id, which is then required."""
    if act.principal.authenticated:
        return act.principal.user_id
    if claimed is None:
        raise FieldValidationError(
            [
                FieldError(
                    loc="user_id",
                    msg="Field required when the server runs without authentication",
                    type="missing",
                )
            ]
        )
    act.actor = claimed
    return claimed


def _path_id(request: web.Request) -> str:
    """The raw path id, bounded, for the audit record (validated separately by ``_session_id``)."""
    return request.match_info["id"][:_MAX_SESSION_ID]


def _session_id(request: web.Request) -> str:
    session_id = request.match_info["id"]
    if not session_id or len(session_id) > _MAX_SESSION_ID:
        raise FieldValidationError(
            [
                FieldError(
                    loc="id", msg=f"A session id is 1 to {_MAX_SESSION_ID} characters", type="string_too_long"
                )
            ]
        )
    return session_id


def _metrics_of(body: QueryRequest) -> list[MetricSeries]:
    if body.metrics is None:
        return []
    if isinstance(body.metrics, list):
        return body.metrics
    issues: list[ParseIssue] = []
    series = metrics_from_snapshot(body.metrics, source="api", issues=issues)
    if issues:
        raise FieldValidationError([_snapshot_field_error(issue) for issue in issues])
    return series


def _snapshot_field_error(issue: ParseIssue) -> FieldError:
    """core reports '$.cpu_usage: "high" is not a number'; the API names the body path 'metrics.cpu_usage'."""
    path, sep, message = issue.message.partition(": ")
    if sep and path.startswith("$"):
        return FieldError(loc=f"metrics{path[1:]}", msg=message, type="value_error")
    return FieldError(loc="metrics", msg=issue.message, type="value_error")


async def query(request: web.Request) -> web.Response:
    services = request.app[SERVICES_KEY]
    async with guarded(request, action="query", permission=Permission.QUERY) as act:
        body = await read_model(request, QueryRequest)
        user_id = _acting_user(act, body.user_id)
        act.set_session(body.session_id)
        metric_series = _metrics_of(body)
        question = Question(
            user_id=user_id,
            query=body.query,
            logs=[LogInput(name="api", lines=body.logs)] if body.logs else [],
            metrics=metric_series,
            session_id=body.session_id,
        )
        act.detail.update(
            {"kind": question.kind.value, "log_lines": str(len(body.logs)), "series": str(len(metric_series))}
        )
        # engine latency, answer and anomaly counts are recorded by the troubleshooter itself (every edge)
        answer = await services.troubleshooter.ask(question)
        act.set_session(answer.session_id)
        act.detail.update({"engine": answer.engine, "turn": str(answer.turn)})
        return model_response(answer)


async def feedback(request: web.Request) -> web.Response:
    services = request.app[SERVICES_KEY]
    async with guarded(
        request, action="feedback", permission=Permission.FEEDBACK, session_id=_path_id(request)
    ) as act:
        session_id = _session_id(request)
        body = await read_model(request, FeedbackRequest)
        user_id = _acting_user(act, body.user_id)
        act.detail.update({"item_id": body.item_id, "item_kind": body.item_kind, "verdict": body.verdict})
        session = await services.troubleshooter.feedback(
            Feedback(
                session_id=session_id,
                item_id=body.item_id,
                item_kind=body.item_kind,
                verdict=body.verdict,
                user_id=user_id,
                comment=body.comment,
            )
        )
        return model_response(session)


async def get_session(request: web.Request) -> web.Response:
    services = request.app[SERVICES_KEY]
    async with guarded(
        request, action="read_session", permission=Permission.READ, session_id=_path_id(request)
    ):
        session_id = _session_id(request)
        session = await services.troubleshooter.get_session(session_id)
        return model_response(session)


async def delete_session(request: web.Request) -> web.Response:
    services = request.app[SERVICES_KEY]
    async with guarded(
        request, action="admin:forget_session", permission=Permission.ADMIN, session_id=_path_id(request)
    ):
        session_id = _session_id(request)
        await services.troubleshooter.get_session(session_id)  # 404 for an unknown id
        await services.troubleshooter.forget(session_id)
        return web.Response(status=204)


async def resolve(request: web.Request) -> web.Response:
    services = request.app[SERVICES_KEY]
    async with guarded(
        request, action="resolve", permission=Permission.RESOLVE, session_id=_path_id(request)
    ) as act:
        session_id = _session_id(request)
        body = await read_model(request, ResolveBody)
        user_id = _acting_user(act, body.user_id)
        case = await services.troubleshooter.resolve(
            session_id,
            ResolveRequest(
                user_id=user_id,
                title=body.title,
                root_cause=body.root_cause,
                fix=body.fix,
                category=body.category,
            ),
        )
        act.detail.update({"incident_id": case.id, "category": case.category.value})
        return model_response(case)


async def incidents(request: web.Request) -> web.Response:
    services = request.app[SERVICES_KEY]
    async with guarded(request, action="search_incidents", permission=Permission.READ):
        params = read_query(request, IncidentsQuery)
        text = (params.q or "").strip()
        stored = await services.stores.history.list_incidents(query=text or None, limit=params.limit)
        similar = await services.troubleshooter.search_incidents(text, limit=params.limit) if text else []
        return model_response(IncidentsResponse(query=params.q, incidents=stored, similar=similar))


async def admin_audit(request: web.Request) -> web.Response:
    services = request.app[SERVICES_KEY]
    async with guarded(request, action="admin:read_audit", permission=Permission.ADMIN):
        params = read_query(request, AuditQuery)
        await services.audit.flush()  # what this process answered so far is in the trail it reads
        events = await services.stores.history.list_audit(limit=params.limit, action=params.action)
        return model_response(AuditResponse(events=events))


_SESSION_ERRORS = (404,)


def add_api_routes(app: web.Application) -> None:
    operations = [
        Operation(
            method="POST",
            path="/api/query",
            operation_id="query",
            summary="Ask a troubleshooting question, with logs and metrics",
            description=(
                "Body: the question, raw log lines and metrics (a snapshot object or a list of series). "
                "Returns the answer: `recommendations` plus ranked root causes, next steps and similar "
                "incidents. Pass `session_id` to continue a session."
            ),
            handler=query,
            permission=Permission.QUERY,
            request_model=QueryRequest,
            response_model=Answer,
            errors=_SESSION_ERRORS,
        ),
        Operation(
            method="GET",
            path="/api/sessions/{id}",
            operation_id="get_session",
            summary="Read a session: turns, feedback, last answer, resolution",
            handler=get_session,
            permission=Permission.READ,
            response_model=Session,
            errors=_SESSION_ERRORS,
        ),
        Operation(
            method="DELETE",
            path="/api/sessions/{id}",
            operation_id="forget_session",
            summary="Drop a session's state (admin; feedback history and audit stay)",
            handler=delete_session,
            permission=Permission.ADMIN,
            response_status=204,
            response_description="Deleted.",
            errors=_SESSION_ERRORS,
        ),
        Operation(
            method="POST",
            path="/api/sessions/{id}/feedback",
            operation_id="session_feedback",
            summary="Accept or reject a next step or root cause",
            handler=feedback,
            permission=Permission.FEEDBACK,
            request_model=FeedbackRequest,
            response_model=Session,
            errors=_SESSION_ERRORS,
        ),
        Operation(
            method="POST",
            path="/api/sessions/{id}/resolve",
            operation_id="resolve_session",
            summary="Close a session and store it as an incident case",
            handler=resolve,
            permission=Permission.RESOLVE,
            request_model=ResolveBody,
            response_model=IncidentCase,
            errors=(*_SESSION_ERRORS, 409),
        ),
        Operation(
            method="GET",
            path="/api/incidents",
            operation_id="search_incidents",
            summary="Search resolved incidents and runbooks",
            handler=incidents,
            permission=Permission.READ,
            query_model=IncidentsQuery,
            response_model=IncidentsResponse,
        ),
        Operation(
            method="GET",
            path="/api/admin/audit",
            operation_id="admin_audit",
            summary="The audit trail, newest first (admin)",
            handler=admin_audit,
            tag="admin",
            permission=Permission.ADMIN,
            query_model=AuditQuery,
            response_model=AuditResponse,
        ),
    ]
    for operation in operations:
        add_operation(app, operation)
