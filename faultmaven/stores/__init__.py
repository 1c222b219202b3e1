"""Storage: pick and open the stores the settings ask for.

``redis_url`` set → Redis sessions, else SQLite; ``postgres_dsn`` set → PostgreSQL history (migrations
applied at start-up), else SQLite. Embedded files live under ``settings.data_dir``.
"""

from __future__ import annotations

import logging

from faultmaven.crypto import keyring_from_settings
from faultmaven.settings import Settings
from faultmaven.stores.base import AuditEvent, HistoryStore, RateDecision, SessionStore, Stores
from faultmaven.stores.postgres import PostgresHistoryStore
from faultmaven.stores.redis_sessions import RedisSessionStore
from faultmaven.stores.sqlite import HISTORY_FILE, SESSIONS_FILE, SqliteHistoryStore, SqliteSessionStore

log = logging.getLogger(__name__)

__all__ = ["AuditEvent", "HistoryStore", "RateDecision", "SessionStore", "Stores", "open_stores"]


async def open_stores(settings: Settings) -> Stores:
    keyring = keyring_from_settings(settings)
    sessions: SessionStore
    history: HistoryStore
    if settings.redis_url is not None:
        sessions = await RedisSessionStore.connect(
            settings.redis_url.get_secret_value(), ttl_seconds=settings.session_ttl_seconds
        )
    else:
        sessions = await SqliteSessionStore.open(
            settings.data_dir / SESSIONS_FILE, ttl_seconds=settings.session_ttl_seconds
        )
    try:
        if settings.postgres_dsn is not None:
            history = await PostgresHistoryStore.connect(
                settings.postgres_dsn.get_secret_value(), keyring=keyring
            )
        else:
            history = await SqliteHistoryStore.open(settings.data_dir / HISTORY_FILE, keyring=keyring)
    except BaseException:
        await sessions.close()
        raise
    log.info(
        "stores opened",
        extra={
            "sessions": type(sessions).__name__,
            "history": type(history).__name__,
            "encryption_key_id": keyring.primary_key_id,
        },
    )
    return Stores(sessions=sessions, history=history)
