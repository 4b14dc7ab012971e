-- Partner API keys (R27): several per account, a user or a confidential client (exactly one
-- of user_id, client_id; the key goes with its account). The key is shown once at creation
-- (`tsk_` + id + secret); only its SHA-256 (base64url) is kept. scopes, permissions and
-- allowed_ips are JSON arrays of strings (an empty allow-list: any address). Times are unix
-- seconds. A revoked key keeps its row (listed as revoked) and is put on the revocation feed
-- (kind `api_key`, by id) until it would have expired. last_used_at is written in batches.
CREATE TABLE api_keys (
    id           TEXT PRIMARY KEY,
    user_id      TEXT REFERENCES users (id) ON DELETE CASCADE,
    client_id    TEXT REFERENCES clients (client_id) ON DELETE CASCADE,
    name         TEXT NOT NULL,
    secret_hash  TEXT NOT NULL,
    scopes       TEXT NOT NULL,
    permissions  TEXT NOT NULL,
    allowed_ips  TEXT NOT NULL,
    created_at   INTEGER NOT NULL,
    expires_at   INTEGER NOT NULL,
    last_used_at INTEGER,
    revoked_at   INTEGER,
    CHECK ((user_id IS NULL AND client_id IS NOT NULL) OR (user_id IS NOT NULL AND client_id IS NULL))
);
CREATE INDEX api_keys_user ON api_keys (user_id);
CREATE INDEX api_keys_client ON api_keys (client_id);
