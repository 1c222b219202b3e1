-- FaultMaven history store, embedded SQLite: feedback, resolved incidents, audit trail, encrypted payloads.
-- Times are ISO-8601 UTC strings with microseconds, so text order is time order.

CREATE TABLE feedback (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    session_id  TEXT NOT NULL,
    item_id     TEXT NOT NULL,
    user_id     TEXT NOT NULL,
    created_at  TEXT NOT NULL,
    body        TEXT NOT NULL,
    recorded_at TEXT NOT NULL,
    UNIQUE (session_id, item_id, user_id, created_at)
);
CREATE INDEX feedback_by_session ON feedback (session_id, created_at, id);

CREATE TABLE incidents (
    id          TEXT PRIMARY KEY,
    team        TEXT NOT NULL,
    session_id  TEXT,
    category    TEXT NOT NULL,
    title       TEXT NOT NULL,
    search_text TEXT NOT NULL,
    body        TEXT NOT NULL,
    created_at  TEXT NOT NULL,
    updated_at  TEXT NOT NULL
);
CREATE INDEX incidents_by_created ON incidents (created_at DESC);

CREATE TABLE audit_events (
    id          TEXT PRIMARY KEY,
    at          TEXT NOT NULL,
    actor       TEXT NOT NULL,
    action      TEXT NOT NULL,
    session_id  TEXT,
    detail      TEXT NOT NULL
);
CREATE INDEX audit_by_at ON audit_events (at DESC);
CREATE INDEX audit_by_action_at ON audit_events (action, at DESC);

CREATE TABLE payloads (
    id          TEXT PRIMARY KEY,
    session_id  TEXT NOT NULL,
    name        TEXT NOT NULL,
    size        INTEGER NOT NULL,
    key_id      TEXT NOT NULL,
    envelope    BLOB NOT NULL,
    created_at  TEXT NOT NULL
);
CREATE INDEX payloads_by_session ON payloads (session_id);
