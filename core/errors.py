"""The error hierarchy. Each error carries a message that is safe to show a user.

Edges (CLI, HTTP, Slack) map these once: they show ``user_message`` and an error id, never ``str(exc)``
of an arbitrary exception.
"""

from __future__ import annotations


class FaultMavenError(Exception):
    """Base of every error FaultMaven raises on purpose."""

    code = "internal_error"
    http_status = 500

    def __init__(self, user_message: str, *, detail: str | None = None) -> None:
        super().__init__(user_message)
        self.user_message = user_message
        self.detail = detail


class InputError(FaultMavenError):
    """The caller's input cannot be used (unknown format, unreadable file, invalid body)."""

    code = "invalid_input"
    http_status = 400


class NotFoundError(FaultMavenError):
    code = "not_found"
    http_status = 404


class ConflictError(FaultMavenError):
    """The request contradicts the current state (e.g. resolving a session that is already resolved)."""

    code = "conflict"
    http_status = 409


class PermissionDeniedError(FaultMavenError):
    code = "forbidden"
    http_status = 403


class AuthenticationError(FaultMavenError):
    code = "unauthenticated"
    http_status = 401


class RateLimitedError(FaultMavenError):
    code = "rate_limited"
    http_status = 429

    def __init__(self, user_message: str, *, retry_after: float, detail: str | None = None) -> None:
        super().__init__(user_message, detail=detail)
        self.retry_after = retry_after


class PayloadTooLargeError(FaultMavenError):
    code = "payload_too_large"
    http_status = 413


class DependencyError(FaultMavenError):
    """An outside system (store, LLM, Slack, OpenSearch) failed or timed out."""

    code = "dependency_unavailable"
    http_status = 503
