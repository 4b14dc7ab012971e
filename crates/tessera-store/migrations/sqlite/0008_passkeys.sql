-- Passkeys (WebAuthn, R11): a factor of kind `webauthn` keeps its credential here.
-- credential_id is the authenticator's credential id (base64url), unique across every
-- account: a usernameless sign-in finds its account by it. credential is the verified
-- public key with its sign counter and backup flags (JSON, webauthn-rs's `Passkey`); a use
-- replaces it by one compare-and-swap UPDATE, so one assertion counts once across nodes.
ALTER TABLE mfa_factors ADD COLUMN credential_id TEXT;
ALTER TABLE mfa_factors ADD COLUMN credential TEXT;
CREATE UNIQUE INDEX mfa_factors_credential ON mfa_factors (credential_id);
