-- OpenID Connect standard claims of a user beyond e-mail and locale (OIDC Core §5.1:
-- name, given_name, …, address, phone_number): one JSON object per user, written only by
-- the domain after validation. A user without a profile has no row.
CREATE TABLE user_profiles (
    user_id TEXT PRIMARY KEY REFERENCES users (id) ON DELETE CASCADE,
    claims  TEXT NOT NULL
);

-- The `claims` request parameter (OIDC Core §5.5) of the authorization request, as JSON:
-- which claims the ID token issued with the code carries. NULL when the request had none.
ALTER TABLE authorization_codes ADD COLUMN claims TEXT;
