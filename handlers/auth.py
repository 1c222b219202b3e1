"""OAuth2 bearer tokens (JWT) and role-based access control.

Tokens are HS256 with the shared secret ``auth_jwt_secret`` or RS256/ES256 with keys from the JWKS at
``auth_jwks_url``; the token's own ``alg`` header picks which, and only those pairings are accepted (no
algorithm confusion). Expiry is always required; issuer and audience are checked when configured. The
``sub`` claim is the user id; the role comes from the ``auth_role_claim`` claim (a string, or a list of
strings of which the strongest counts), else ``auth_default_role``.
"""

from __future__ import annotations

import asyncio
import logging
import time
from enum import StrEnum
from typing import Any

import jwt
from pydantic import BaseModel, ConfigDict

from core.errors import AuthenticationError, DependencyError, PermissionDeniedError
from faultmaven.settings import Role, Settings

log = logging.getLogger(__name__)

_JWKS_ALGORITHMS = ("RS256", "RS384", "RS512", "ES256", "ES384")
_JWKS_CACHE_SECONDS = 300
_JWKS_MIN_REFRESH_SECONDS = 60.0
_LEEWAY_SECONDS = 30
VERIFIED_TOKEN_SECONDS = 60.0
_VERIFIED_TOKENS_MAX = 10_000


class Permission(StrEnum):
    QUERY = "query"
    READ = "read"
    FEEDBACK = "feedback"
    RESOLVE = "resolve"
    ADMIN = "admin"


ROLE_PERMISSIONS: dict[Role, frozenset[Permission]] = {
    "viewer": frozenset({Permission.QUERY, Permission.READ}),
    "responder": frozenset({Permission.QUERY, Permission.READ, Permission.FEEDBACK, Permission.RESOLVE}),
    "admin": frozenset(Permission),
}
_ROLE_RANK: dict[str, int] = {"viewer": 1, "responder": 2, "admin": 3}


class Principal(BaseModel):
    """Who is calling. ``authenticated`` is False only when the server runs without auth configured."""

    model_config = ConfigDict(frozen=True)

    user_id: str
    role: Role
    authenticated: bool

    def can(self, permission: Permission) -> bool:
        return permission in ROLE_PERMISSIONS[self.role]

    def require(self, permission: Permission) -> None:
        if not self.can(permission):
            raise PermissionDeniedError(
                f"Your role '{self.role}' does not allow '{permission.value}'.",
                detail=f"user={self.user_id}",
            )


ANONYMOUS = Principal(user_id="anonymous", role="admin", authenticated=False)


def auth_configured(settings: Settings) -> bool:
    return settings.auth_jwt_secret is not None or bool(settings.auth_jwks_url)


class Authenticator:
    """Verifies bearer tokens against the configured secret and/or JWKS."""

    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._secret = settings.auth_jwt_secret.get_secret_value() if settings.auth_jwt_secret else None
        self._jwks: jwt.PyJWKClient | None = None
        if settings.auth_jwks_url:
            self._jwks = jwt.PyJWKClient(
                settings.auth_jwks_url,
                cache_jwk_set=True,
                lifespan=_JWKS_CACHE_SECONDS,
                cache_keys=True,
                timeout=int(max(1, settings.outbound_timeout_seconds)),
            )
        self._jwks_lock = asyncio.Lock()
        self._last_refresh: float | None = None
        self._verified: dict[str, tuple[Principal, float]] = {}

    @property
    def enabled(self) -> bool:
        return self._secret is not None or self._jwks is not None

    async def authenticate(self, authorization: str | None) -> Principal:
        """The caller behind an ``Authorization`` header; ANONYMOUS (admin) when auth is not configured."""
        if not self.enabled:
            return ANONYMOUS
        token = _bearer_token(authorization)
        now = time.time()
        cached = self._verified.get(token)
        if cached is not None:
            principal, valid_until = cached
            if now < valid_until:
                return principal
            del self._verified[token]
        claims = await self._verify(token)
        subject = claims.get("sub")
        if not isinstance(subject, str) or not subject.strip():
            raise AuthenticationError("The token has no subject ('sub') claim.")
        principal = Principal(user_id=subject, role=self._role_from(claims), authenticated=True)
        # A client sends the same token on every request until it expires: remember the verdict (never past
        # the token's expiry, nor longer than VERIFIED_TOKEN_SECONDS, so a changed key or setting applies).
        if len(self._verified) >= _VERIFIED_TOKENS_MAX:
            self._verified.clear()
        valid_until = min(float(claims["exp"]) + _LEEWAY_SECONDS, now + VERIFIED_TOKEN_SECONDS)
        self._verified[token] = (principal, valid_until)
        return principal

    async def _verify(self, token: str) -> dict[str, Any]:
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError as exc:
            raise AuthenticationError("The bearer token is not a well-formed JWT.") from exc
        alg = header.get("alg")
        if alg == "HS256" and self._secret is not None:
            key: Any = self._secret
            algorithms = ["HS256"]
        elif alg in _JWKS_ALGORITHMS and self._jwks is not None:
            key = await self._signing_key(token)
            algorithms = [str(alg)]
        else:
            raise AuthenticationError(f"Tokens signed with '{alg}' are not accepted here.")
        settings = self._settings
        try:
            return jwt.decode(
                token,
                key,
                algorithms=algorithms,
                audience=settings.auth_audience,
                issuer=settings.auth_issuer,
                leeway=_LEEWAY_SECONDS,
                options={
                    "require": ["exp", "sub"],
                    "verify_aud": settings.auth_audience is not None,
                    "verify_iss": settings.auth_issuer is not None,
                },
            )
        except jwt.ExpiredSignatureError as exc:
            raise AuthenticationError("The bearer token has expired.") from exc
        except jwt.InvalidAudienceError as exc:
            raise AuthenticationError("The bearer token is not meant for this service (audience).") from exc
        except jwt.InvalidIssuerError as exc:
            raise AuthenticationError("The bearer token comes from an untrusted issuer.") from exc
        except jwt.MissingRequiredClaimError as exc:
            raise AuthenticationError(f"The bearer token lacks the required '{exc.claim}' claim.") from exc
        except jwt.PyJWTError as exc:
            raise AuthenticationError("The bearer token is invalid.") from exc

    async def _signing_key(self, token: str) -> Any:
        kid = jwt.get_unverified_header(token).get("kid")
        try:
            # PyJWKClient does blocking HTTP: run it in a thread, bounded by the outbound timeout. The lock
            # keeps a burst of requests from fetching the key set many times over.
            async with self._jwks_lock:
                signing_key = await asyncio.wait_for(
                    asyncio.to_thread(self._lookup_key, kid if isinstance(kid, str) else None),
                    timeout=self._settings.outbound_timeout_seconds + 1,
                )
        except jwt.PyJWKClientConnectionError as exc:
            raise DependencyError(
                "The identity provider's key set could not be fetched; try again shortly.",
                detail=type(exc).__name__,
            ) from exc
        except TimeoutError as exc:
            raise DependencyError("The identity provider's key set timed out; try again shortly.") from exc
        except jwt.PyJWTError as exc:
            raise AuthenticationError(
                "The bearer token's signing key is not in the trusted key set."
            ) from exc
        if signing_key is None:
            raise AuthenticationError("The bearer token's signing key is not in the trusted key set.")
        return signing_key.key

    def _lookup_key(self, kid: str | None) -> jwt.PyJWK | None:
        """The key for ``kid`` from the cached set. An unknown kid refetches the set (key rotation), but at
        most once per _JWKS_MIN_REFRESH_SECONDS, so tokens with made-up kids cannot hammer the provider."""
        assert self._jwks is not None
        now = time.monotonic()
        if self._last_refresh is None:
            self._last_refresh = now
        found = _match_key(self._jwks.get_signing_keys(), kid)
        if found is None and now - self._last_refresh >= _JWKS_MIN_REFRESH_SECONDS:
            self._last_refresh = now
            found = _match_key(self._jwks.get_signing_keys(refresh=True), kid)
        return found

    def _role_from(self, claims: dict[str, Any]) -> Role:
        value = claims.get(self._settings.auth_role_claim)
        if value is None:
            return self._settings.auth_default_role
        candidates = [value] if isinstance(value, str) else value if isinstance(value, list) else []
        known = [item for item in candidates if isinstance(item, str) and item in _ROLE_RANK]
        if not known:
            raise PermissionDeniedError(
                f"The token's '{self._settings.auth_role_claim}' claim names no known role "
                "(viewer, responder, admin)."
            )
        best = max(known, key=lambda item: _ROLE_RANK[item])
        role: Role = "admin" if best == "admin" else "responder" if best == "responder" else "viewer"
        return role


def _match_key(keys: list[jwt.PyJWK], kid: str | None) -> jwt.PyJWK | None:
    """The key with this kid; a token without a kid is accepted only when the set holds a single key."""
    if kid is None:
        return keys[0] if len(keys) == 1 else None
    return next((key for key in keys if key.key_id == kid), None)


def _bearer_token(authorization: str | None) -> str:
    if not authorization:
        raise AuthenticationError("This endpoint needs a bearer token (Authorization: Bearer <JWT>).")
    scheme, _, token = authorization.strip().partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise AuthenticationError("The Authorization header must be 'Bearer <JWT>'.")
    return token.strip()
