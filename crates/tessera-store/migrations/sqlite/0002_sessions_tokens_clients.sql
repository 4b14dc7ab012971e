-- Clients, sessions with their refresh-token families, the revocation feed and the audit
-- trail. Times are unix seconds; "no booleans": a flag is 0/1, a state is a nullable time.

-- Registered OAuth clients. List fields are JSON arrays of strings (TEXT).
CREATE TABLE clients (
    client_id                  TEXT PRIMARY KEY,
    name                       TEXT NOT NULL,
    secret_hash                TEXT,
    token_endpoint_auth_method TEXT NOT NULL,
    channel                    TEXT NOT NULL,
    grant_types                TEXT NOT NULL,
    scopes                     TEXT NOT NULL,
    redirect_uris              TEXT NOT NULL,
    post_logout_redirect_uris  TEXT NOT NULL,
    allowed_cors_origins       TEXT NOT NULL,
    backchannel_logout_uri     TEXT,
    first_party                INTEGER NOT NULL CHECK (first_party IN (0, 1)),
    access_token_ttl_secs      INTEGER,
    refresh_token_ttl_secs     INTEGER,
    created_at                 INTEGER NOT NULL,
    updated_at                 INTEGER NOT NULL
);

-- One row per login. Alive while revoked_at IS NULL and both expiries are in the future.
-- client_id is deliberately not a foreign key: deleting a client must not silently delete
-- sessions (and with them the trail that puts their sid on the revocation feed).
CREATE TABLE sessions (
    id                  TEXT PRIMARY KEY,
    subject             TEXT NOT NULL,
    client_id           TEXT NOT NULL,
    channel             TEXT NOT NULL,
    user_agent          TEXT,
    ip                  TEXT,
    scope               TEXT NOT NULL,
    amr                 TEXT NOT NULL,
    roles               TEXT NOT NULL,
    auth_time           INTEGER NOT NULL,
    created_at          INTEGER NOT NULL,
    last_seen_at        INTEGER NOT NULL,
    idle_expires_at     INTEGER NOT NULL,
    absolute_expires_at INTEGER NOT NULL,
    access_expires_at   INTEGER NOT NULL,
    revoked_at          INTEGER,
    revoke_reason       TEXT
);
CREATE INDEX sessions_subject_channel ON sessions (subject, channel);
CREATE INDEX sessions_idle_expires ON sessions (idle_expires_at);
CREATE INDEX sessions_absolute_expires ON sessions (absolute_expires_at);
CREATE INDEX sessions_revoked ON sessions (revoked_at);

-- Serialises session creation per (subject, channel): the creating transaction upserts
-- this row first, so on PostgreSQL concurrent creations queue on its row lock.
CREATE TABLE session_locks (
    subject    TEXT NOT NULL,
    channel    TEXT NOT NULL,
    touched_at INTEGER NOT NULL,
    PRIMARY KEY (subject, channel)
);

-- Refresh tokens, stored as SHA-256 hashes; one family (chain) per session.
CREATE TABLE refresh_tokens (
    token_hash     TEXT PRIMARY KEY,
    session_id     TEXT NOT NULL REFERENCES sessions (id) ON DELETE CASCADE,
    client_id      TEXT NOT NULL,
    generation     INTEGER NOT NULL,
    issued_at      INTEGER NOT NULL,
    expires_at     INTEGER NOT NULL,
    rotated_at     INTEGER,
    successor_hash TEXT
);
CREATE INDEX refresh_tokens_session ON refresh_tokens (session_id);
CREATE INDEX refresh_tokens_expires ON refresh_tokens (expires_at);

-- The revocation feed: revoked sids and jtis until the last token they cover expires.
-- seq is the pollers' cursor; AUTOINCREMENT so a seq is never reused after deletion.
CREATE TABLE revocations (
    seq        INTEGER PRIMARY KEY AUTOINCREMENT,
    kind       TEXT NOT NULL,
    value      TEXT NOT NULL,
    expires_at INTEGER NOT NULL,
    revoked_at INTEGER NOT NULL
);
CREATE INDEX revocations_expires ON revocations (expires_at);
CREATE INDEX revocations_kind_value ON revocations (kind, value);
CREATE INDEX revocations_revoked ON revocations (revoked_at);

-- The audit trail, append-only (but for retention).
CREATE TABLE audit_events (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    at         INTEGER NOT NULL,
    event      TEXT NOT NULL,
    actor      TEXT,
    subject    TEXT,
    session_id TEXT,
    client_id  TEXT,
    ip         TEXT,
    user_agent TEXT,
    outcome    TEXT NOT NULL,
    request_id TEXT,
    detail     TEXT
);
CREATE INDEX audit_events_subject ON audit_events (subject, id);
CREATE INDEX audit_events_event ON audit_events (event, id);
CREATE INDEX audit_events_at ON audit_events (at);
