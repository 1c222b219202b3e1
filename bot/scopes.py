"""The OAuth scopes the bot's code needs, by what it does. ``manifests/slack-app.yaml`` must list exactly
these (a test checks both directions, and that every Web API method called in ``bot/`` is listed here)."""

from __future__ import annotations

HISTORY_SCOPES = ("channels:history", "groups:history", "im:history", "mpim:history")

# Web API method → the bot scopes it needs (any one of a group is enough for a given conversation type;
# all are requested so the bot works in public and private channels, DMs and group DMs).
METHOD_SCOPES: dict[str, tuple[str, ...]] = {
    "auth.test": (),
    "chat.postMessage": ("chat:write",),
    "chat.update": ("chat:write",),
    "chat.postEphemeral": ("chat:write",),
    "conversations.replies": HISTORY_SCOPES,
    "files.getUploadURLExternal": ("files:write",),
    "files.completeUploadExternal": ("files:write",),
    "usergroups.users.list": ("usergroups:read",),
    "users.info": ("users:read",),
    "views.open": (),
    "apps.connections.open": (),  # app-level token (connections:write), not a bot scope
    "oauth.v2.access": (),
}

# Scopes that come with what the app receives or fetches rather than with a Web API method.
FEATURE_SCOPES: dict[str, tuple[str, ...]] = {
    "app_mention events": ("app_mentions:read",),
    "message.im events": ("im:history",),
    "slash command": ("commands",),
    "file downloads (url_private_download)": ("files:read",),
}


def required_scopes() -> set[str]:
    out: set[str] = set()
    for scopes in (*METHOD_SCOPES.values(), *FEATURE_SCOPES.values()):
        out.update(scopes)
    return out
