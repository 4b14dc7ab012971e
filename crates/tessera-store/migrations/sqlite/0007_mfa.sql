-- Second factors (R11): each user's enrolled factors, and their recovery codes. Times are
-- unix seconds.

-- One row per factor. kind is `totp` for now (later `webauthn`, `email_otp`,
-- `sms_otp`). secret is the TOTP key sealed with AES-256-GCM under the master key, the
-- factor id bound as associated data (like signing keys); NULL for kinds without one. A
-- factor is usable only once confirmed (confirmed_at: the first correct code). last_step
-- is the newest TOTP time step accepted: a code of that step or an older one is refused,
-- by one conditional UPDATE, so a code works once across every node.
CREATE TABLE mfa_factors (
    id           TEXT PRIMARY KEY,
    user_id      TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    kind         TEXT NOT NULL,
    name         TEXT NOT NULL,
    secret       BLOB,
    created_at   INTEGER NOT NULL,
    confirmed_at INTEGER,
    last_used_at INTEGER,
    last_step    INTEGER
);
CREATE INDEX mfa_factors_user ON mfa_factors (user_id);

-- Recovery codes: SHA-256 of each code (high-entropy, shown once), single use (used_at).
-- A new set replaces the old one in one transaction.
CREATE TABLE mfa_recovery_codes (
    user_id    TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    code_hash  TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    used_at    INTEGER,
    PRIMARY KEY (user_id, code_hash)
);
