-- FaultMaven session store, embedded SQLite: sessions, idempotency keys and rate-limit windows, each with
-- an expiry in Unix seconds. Expired rows are invisible to reads and purged from time to time.

CREATE TABLE sessions (
    id          TEXT PRIMARY KEY,
    body        TEXT NOT NULL,
    expires_at  REAL NOT NULL
);
CREATE INDEX sessions_by_expiry ON sessions (expires_at);

CREATE TABLE idempotency_keys (
    key         TEXT PRIMARY KEY,
    expires_at  REAL NOT NULL
);
CREATE INDEX idempotency_by_expiry ON idempotency_keys (expires_at);

CREATE TABLE rate_windows (
    key          TEXT PRIMARY KEY,
    window_start REAL NOT NULL,
    window_end   REAL NOT NULL,
    hits         INTEGER NOT NULL
);
CREATE INDEX rate_windows_by_end ON rate_windows (window_end);
