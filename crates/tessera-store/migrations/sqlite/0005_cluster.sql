-- Many nodes on one database: which nodes are alive, which node runs each background job,
-- and back-channel logout deliveries that must survive the node that started them. Times
-- are unix seconds.

-- One row per running node, refreshed by its heartbeat; rows of nodes gone for a day are
-- deleted by the heartbeat of any node. A node counts as alive while last_seen_at is recent.
CREATE TABLE cluster_nodes (
    id           TEXT PRIMARY KEY,
    started_at   BIGINT NOT NULL,
    last_seen_at BIGINT NOT NULL
);
CREATE INDEX cluster_nodes_last_seen ON cluster_nodes (last_seen_at);

-- A lease per background job: held by one node until expires_at; its holder renews it, and
-- any node may take it over once it has expired (its holder died or stalled).
CREATE TABLE leases (
    name       TEXT PRIMARY KEY,
    holder     TEXT NOT NULL,
    expires_at BIGINT NOT NULL
);

-- Back-channel logout notifications not yet delivered. The logout token is signed at each
-- attempt (it lives two minutes), so no token is stored. next_attempt_at doubles as a claim:
-- whoever attempts a delivery first pushes it forward, so no two nodes send the same one.
CREATE TABLE backchannel_outbox (
    id              TEXT PRIMARY KEY,
    client_id       TEXT NOT NULL,
    uri             TEXT NOT NULL,
    user_id         TEXT NOT NULL,
    sso_session_id  TEXT NOT NULL,
    attempts        BIGINT NOT NULL,
    next_attempt_at BIGINT NOT NULL,
    created_at      BIGINT NOT NULL,
    last_error      TEXT
);
CREATE INDEX backchannel_outbox_due ON backchannel_outbox (next_attempt_at);
