-- FaultMaven history store, PostgreSQL: feedback, resolved incidents, audit trail, encrypted payloads.
-- Applied once, in a transaction, under an advisory lock; recorded in schema_migrations.

CREATE TABLE feedback (
    id          bigserial   PRIMARY KEY,
    session_id  text        NOT NULL,
    item_id     text        NOT NULL,
    user_id     text        NOT NULL,
    created_at  timestamptz NOT NULL,
    body        jsonb       NOT NULL,
    recorded_at timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT feedback_once UNIQUE (session_id, item_id, user_id, created_at)
);
CREATE INDEX feedback_by_session ON feedback (session_id, created_at, id);

CREATE TABLE incidents (
    id          text        PRIMARY KEY,
    team        text        NOT NULL,
    session_id  text,
    category    text        NOT NULL,
    title       text        NOT NULL,
    search_text text        NOT NULL,
    body        jsonb       NOT NULL,
    created_at  timestamptz NOT NULL,
    updated_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX incidents_by_created ON incidents (created_at DESC);
CREATE INDEX incidents_by_team_category ON incidents (team, category);

-- Substring search (ILIKE) uses a trigram index when pg_trgm can be installed (a trusted extension since
-- PostgreSQL 13); without it the search still works, by a scan.
DO $$
BEGIN
    CREATE EXTENSION IF NOT EXISTS pg_trgm;
EXCEPTION WHEN OTHERS THEN
    RAISE NOTICE 'pg_trgm unavailable (%); incident search will scan', SQLERRM;
END
$$;
DO $$
BEGIN
    IF EXISTS (SELECT 1 FROM pg_extension WHERE extname = 'pg_trgm') THEN
        EXECUTE 'CREATE INDEX incidents_search_trgm ON incidents USING gin (search_text gin_trgm_ops)';
    END IF;
END
$$;

CREATE TABLE audit_events (
    id          text        PRIMARY KEY,
    at          timestamptz NOT NULL,
    actor       text        NOT NULL,
    action      text        NOT NULL,
    session_id  text,
    detail      jsonb       NOT NULL DEFAULT '{}'::jsonb
);
CREATE INDEX audit_by_at ON audit_events (at DESC);
CREATE INDEX audit_by_action_at ON audit_events (action, at DESC);

CREATE TABLE payloads (
    id          text        PRIMARY KEY,
    session_id  text        NOT NULL,
    name        text        NOT NULL,
    size        bigint      NOT NULL,
    key_id      text        NOT NULL,
    envelope    bytea       NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX payloads_by_session ON payloads (session_id);
