-- Abnormal-login alerts: the devices and networks each user has signed in from, and the
-- session a single-use link may end. Times are unix seconds.

-- One row per (user, device, network) sighting, refreshed at each sign-in. device_hash is
-- SHA-256 of the user id and the device id (the `tessera_device` cookie or the id a native
-- client sends), never the id itself; network is the client IP's /24 (IPv4) or /64 (IPv6)
-- prefix in CIDR form, or `unknown`. The store keeps the newest N rows per user; the
-- clean-up pass deletes rows not seen within the retention period.
CREATE TABLE known_devices (
    user_id       TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    device_hash   TEXT NOT NULL,
    network       TEXT NOT NULL,
    first_seen_at BIGINT NOT NULL,
    last_seen_at  BIGINT NOT NULL,
    PRIMARY KEY (user_id, device_hash, network)
);
CREATE INDEX known_devices_last_seen ON known_devices (last_seen_at);

-- The session a single-use token is bound to (`end_session` links of new-sign-in e-mails:
-- `session:<id>` for a token session, `sso:<id>` for a browser sign-in at the provider);
-- NULL for the other purposes.
ALTER TABLE one_time_tokens ADD COLUMN session_id TEXT;
