"""Slack users → FaultMaven roles.

``settings.slack_role_map`` maps a user id (``U…``/``W…``) or a user-group id (``S…``) to viewer,
responder or admin. A user's role is the highest of their own entry and the entries of every mapped group
they belong to (``usergroups.users.list``, cached per group); anyone else is a viewer. Guests
(restricted accounts), deactivated users and bots never get more than viewer, whatever the map says
(``users.info``, cached). Viewers may ask; responders and admins may also give feedback and resolve."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Mapping

from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from faultmaven.settings import Role

log = logging.getLogger(__name__)

ROLE_RANK: dict[Role, int] = {"viewer": 0, "responder": 1, "admin": 2}
DEFAULT_ROLE: Role = "viewer"
GROUP_CACHE_SECONDS = 300.0


def is_group_id(key: str) -> bool:
    return key.startswith("S")


def can_act(role: Role) -> bool:
    """Feedback and resolve need at least a responder."""
    return ROLE_RANK[role] >= ROLE_RANK["responder"]


class SlackAccess:
    """Role look-ups with a per-group membership cache (``ttl_seconds``)."""

    def __init__(self, role_map: Mapping[str, Role], *, ttl_seconds: float = GROUP_CACHE_SECONDS) -> None:
        self._users = {k: v for k, v in role_map.items() if not is_group_id(k)}
        self._groups = {k: v for k, v in role_map.items() if is_group_id(k)}
        self._ttl = ttl_seconds
        self._members: dict[tuple[str, str], tuple[float, frozenset[str]]] = {}
        self._capped: dict[tuple[str, str], tuple[float, bool]] = {}
        self._lock = asyncio.Lock()

    async def role_of(self, client: AsyncWebClient, *, user_id: str, team_id: str | None) -> Role:
        best: Role = self._users.get(user_id, DEFAULT_ROLE)
        for group_id, role in self._groups.items():
            if ROLE_RANK[role] <= ROLE_RANK[best]:
                continue
            if user_id in await self._members_of(client, group_id=group_id, team_id=team_id or ""):
                best = role
        if best != DEFAULT_ROLE and await self._is_capped(client, user_id=user_id, team_id=team_id or ""):
            return DEFAULT_ROLE
        return best

    async def _is_capped(self, client: AsyncWebClient, *, user_id: str, team_id: str) -> bool:
        """Guests, deactivated accounts and bots stay viewers; an unreadable profile counts as capped."""
        key = (team_id, user_id)
        now = time.monotonic()
        cached = self._capped.get(key)
        if cached is not None and now - cached[0] < self._ttl:
            return cached[1]
        try:
            response = await client.users_info(user=user_id)
            user = response.get("user") or {}
            capped = any(
                bool(user.get(flag)) for flag in ("deleted", "is_restricted", "is_ultra_restricted", "is_bot")
            )
        except SlackApiError as exc:
            log.warning("users.info failed", extra={"error": exc.response.get("error", "unknown")})
            capped = True
        self._capped[key] = (now, capped)
        return capped

    async def _members_of(self, client: AsyncWebClient, *, group_id: str, team_id: str) -> frozenset[str]:
        key = (team_id, group_id)
        now = time.monotonic()
        cached = self._members.get(key)
        if cached is not None and now - cached[0] < self._ttl:
            return cached[1]
        async with self._lock:
            cached = self._members.get(key)
            if cached is not None and now - cached[0] < self._ttl:
                return cached[1]
            try:
                response = await client.usergroups_users_list(usergroup=group_id)
                members = frozenset(str(u) for u in response.get("users") or [])
            except SlackApiError as exc:
                # A group that cannot be read grants nothing; retry after the TTL, not on every event.
                log.warning(
                    "usergroups.users.list failed",
                    extra={"usergroup": group_id, "error": exc.response.get("error", "unknown")},
                )
                members = frozenset()
            self._members[key] = (now, members)
            return members
