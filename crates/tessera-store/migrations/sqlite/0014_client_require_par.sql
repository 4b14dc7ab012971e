-- RFC 9126 §5: a client that must push its authorization requests (`/oauth2/par`); its
-- plain `/oauth2/authorize` requests are refused. 0 (false) for every existing client.
ALTER TABLE clients ADD COLUMN require_pushed_authorization_requests INTEGER NOT NULL DEFAULT 0;
