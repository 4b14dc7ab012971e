-- Signing keys. The private key is encrypted under the key-encryption key from the
-- configuration (AES-256-GCM, the kid as associated data); the database alone never
-- yields a usable key. Times are unix seconds.
CREATE TABLE signing_keys (
    kid          TEXT PRIMARY KEY,
    alg          TEXT NOT NULL,
    private_key  BYTEA NOT NULL,
    public_jwk   TEXT NOT NULL,
    created_at   BIGINT NOT NULL,
    activates_at BIGINT NOT NULL,
    retires_at   BIGINT,
    expires_at   BIGINT
);
CREATE INDEX signing_keys_alg ON signing_keys (alg, activates_at);

-- One-time markers (e.g. "the first signing keys were created"), so that two nodes
-- starting together on an empty database do not both bootstrap.
CREATE TABLE store_markers (
    name       TEXT PRIMARY KEY,
    created_at BIGINT NOT NULL
);
