-- OAuth/OIDC flows: the browser's SSO session at the provider, authorization codes and
-- remembered consent; token sessions learn which SSO session they came through. Times are
-- unix seconds; a state is a nullable time.

-- One row per browser login at the provider. id is public (the `sid` of ID and logout
-- tokens); the cookie secret is stored only as its SHA-256 hash. Alive while revoked_at IS
-- NULL and expires_at is in the future.
CREATE TABLE sso_sessions (
    id           TEXT PRIMARY KEY,
    secret_hash  TEXT NOT NULL UNIQUE,
    user_id      TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    auth_time    INTEGER NOT NULL,
    amr          TEXT NOT NULL,
    created_at   INTEGER NOT NULL,
    last_seen_at INTEGER NOT NULL,
    expires_at   INTEGER NOT NULL,
    revoked_at   INTEGER
);
CREATE INDEX sso_sessions_user ON sso_sessions (user_id);
CREATE INDEX sso_sessions_expires ON sso_sessions (expires_at);
CREATE INDEX sso_sessions_revoked ON sso_sessions (revoked_at);

-- Authorization codes, stored as SHA-256 hashes. used_at marks redemption; the row stays
-- (a replay must find it and revoke token_session_id) until purged a day after expiry.
-- client_id and sso_session_id are deliberately not foreign keys (as for sessions).
CREATE TABLE authorization_codes (
    code_hash             TEXT PRIMARY KEY,
    client_id             TEXT NOT NULL,
    user_id               TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    sso_session_id        TEXT NOT NULL,
    redirect_uri          TEXT NOT NULL,
    scope                 TEXT NOT NULL,
    nonce                 TEXT,
    code_challenge        TEXT,
    code_challenge_method TEXT,
    auth_time             INTEGER NOT NULL,
    amr                   TEXT NOT NULL,
    created_at            INTEGER NOT NULL,
    expires_at            INTEGER NOT NULL,
    used_at               INTEGER,
    token_session_id      TEXT
);
CREATE INDEX authorization_codes_expires ON authorization_codes (expires_at);

-- Remembered consent: the scope (space-separated) a user granted a client.
CREATE TABLE consents (
    user_id    TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    client_id  TEXT NOT NULL,
    scope      TEXT NOT NULL,
    granted_at INTEGER NOT NULL,
    PRIMARY KEY (user_id, client_id)
);

-- The SSO session a token session came through; NULL for the first-party JSON API (and
-- for every session created before this migration). Not a foreign key: an SSO session is
-- purged on its own schedule.
ALTER TABLE sessions ADD COLUMN sso_session_id TEXT;
CREATE INDEX sessions_sso_session ON sessions (sso_session_id);
