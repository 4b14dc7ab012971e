-- Federated sign-in (R14): identities held at upstream OpenID Connect / OAuth 2.0
-- providers, linked to Tessera accounts, and which provider a sign-in went through. Times
-- are unix seconds.

-- One row per linked upstream identity. The key is (provider, upstream subject), never the
-- e-mail: an address can change hands at the upstream, its subject cannot. email is what
-- the upstream said at the last sign-in (for the user's list of linked identities).
CREATE TABLE federated_identities (
    provider     TEXT NOT NULL,
    subject      TEXT NOT NULL,
    user_id      TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    email        TEXT,
    created_at   BIGINT NOT NULL,
    last_used_at BIGINT NOT NULL,
    PRIMARY KEY (provider, subject)
);
CREATE INDEX federated_identities_user ON federated_identities (user_id);

-- The upstream provider a browser sign-in (and the token sessions it starts) went
-- through: the `idp` claim. NULL for a sign-in at Tessera itself.
ALTER TABLE sso_sessions ADD COLUMN idp TEXT;
ALTER TABLE sessions ADD COLUMN idp TEXT;
