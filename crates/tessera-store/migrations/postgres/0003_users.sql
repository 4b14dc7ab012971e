-- Accounts: users, their previous password hashes, and single-use tokens (e-mail
-- verification, password reset). Times are unix seconds; a state is a nullable time.

-- id is the stable subject (`sub`); email is stored normalised and unique. roles is a JSON
-- array of strings (TEXT). password_hash is NULL for a user without a password.
CREATE TABLE users (
    id                  TEXT PRIMARY KEY,
    email               TEXT NOT NULL UNIQUE,
    email_verified_at   BIGINT,
    password_hash       TEXT,
    roles               TEXT NOT NULL,
    locale              TEXT,
    disabled_at         BIGINT,
    created_at          BIGINT NOT NULL,
    updated_at          BIGINT NOT NULL,
    password_changed_at BIGINT
);

-- Previous password hashes, trimmed to the newest N per user by the store. id breaks ties
-- between entries of the same second (an identity column: always increasing).
CREATE TABLE password_history (
    id         BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    user_id    TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    hash       TEXT NOT NULL,
    created_at BIGINT NOT NULL
);
CREATE INDEX password_history_user ON password_history (user_id, created_at, id);

-- Single-use tokens, stored as SHA-256 hashes. email is the address the token was sent to.
CREATE TABLE one_time_tokens (
    token_hash TEXT PRIMARY KEY,
    purpose    TEXT NOT NULL,
    user_id    TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    email      TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    used_at    BIGINT
);
CREATE INDEX one_time_tokens_user_purpose ON one_time_tokens (user_id, purpose);
CREATE INDEX one_time_tokens_expires ON one_time_tokens (expires_at);
CREATE INDEX one_time_tokens_used ON one_time_tokens (used_at);
