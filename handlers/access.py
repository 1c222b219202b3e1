"""The gate every protected API action goes through: authenticate, rate-limit, authorize, and audit.

    async with guarded(request, action="feedback", permission=Permission.FEEDBACK) as act:
        ...                      # act.principal is the caller; set act.session_id / act.detail as known

Failed authentication (401) and rate limiting (429) happen before the audited block; a permission denial
(403) and everything after it are audited with their outcome. Audit details are short strings only: never
raw logs, queries or secrets.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

from aiohttp import web
from pydantic import ValidationError

from core.errors import FaultMavenError
from faultmaven.logconfig import request_id_var, session_id_var
from faultmaven.stores.base import AuditEvent
from handlers.auth import Permission, Principal
from handlers.keys import AUTHENTICATOR_KEY, PRINCIPAL_REQUEST_KEY, SERVICES_KEY
from handlers.limits import enforce_rate_limit

log = logging.getLogger(__name__)

_MAX_DETAIL_CHARS = 200


@dataclass
class Act:
    principal: Principal
    action: str
    actor: str
    session_id: str | None = None
    detail: dict[str, str] = field(default_factory=dict)

    def set_session(self, session_id: str | None) -> None:
        self.session_id = session_id
        session_id_var.set(session_id)


async def authenticate(request: web.Request) -> Principal:
    """The caller (401 on a bad token), counted against the rate limit (429)."""
    principal = await request.app[AUTHENTICATOR_KEY].authenticate(request.headers.get("Authorization"))
    request[PRINCIPAL_REQUEST_KEY] = principal
    await enforce_rate_limit(request, principal, request.app[SERVICES_KEY])
    return principal


@asynccontextmanager
async def guarded(
    request: web.Request, *, action: str, permission: Permission, session_id: str | None = None
) -> AsyncIterator[Act]:
    principal = await authenticate(request)
    act = Act(principal=principal, action=action, actor=principal.user_id)
    act.set_session(session_id)
    outcome = "ok"
    try:
        principal.require(permission)
        yield act
    except FaultMavenError as exc:
        outcome = exc.code
        raise
    except ValidationError:
        outcome = "invalid_input"
        raise
    except web.HTTPException as exc:
        outcome = f"http_{exc.status}"
        raise
    except BaseException:
        outcome = "error"
        raise
    finally:
        await write_audit(request, act, outcome=outcome)


async def write_audit(request: web.Request, act: Act, *, outcome: str) -> None:
    """Record the action in the audit trail (written behind the answer unless FAULTMAVEN_AUDIT_BLOCKING; a
    failing audit store is logged and counted, not turned into a user error)."""
    services = request.app[SERVICES_KEY]
    detail = {key: value[:_MAX_DETAIL_CHARS] for key, value in act.detail.items()}
    detail["outcome"] = outcome
    detail["role"] = act.principal.role
    request_id = request_id_var.get()
    if request_id:
        detail["request_id"] = request_id
    event = AuditEvent(
        actor=act.actor[:200] or "anonymous", action=act.action, session_id=act.session_id, detail=detail
    )
    await services.audit.record(event)
