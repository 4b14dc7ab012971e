-- Authorization (R26): roles that hold permissions and inherit their parents', and static
-- separation-of-duty rules. The graph is small and read whole: each role keeps its
-- permissions and parents as JSON arrays. Every change bumps rbac_version.version in the
-- same transaction, and commits only if the version is still the one its checks saw (the
-- domain refuses cycles and conflicts on that snapshot), so no two concurrent changes can
-- together make a cycle. A user's roles stay in users.roles.
CREATE TABLE roles (
    name        TEXT PRIMARY KEY,
    description TEXT NOT NULL,
    permissions TEXT NOT NULL,
    parents     TEXT NOT NULL,
    created_at  BIGINT NOT NULL,
    updated_at  BIGINT NOT NULL
);

-- Roles no user may hold together (JSON array of 2 or more role names).
CREATE TABLE sod_rules (
    id         TEXT PRIMARY KEY,
    roles      TEXT NOT NULL,
    created_at BIGINT NOT NULL
);

CREATE TABLE rbac_version (
    id      INTEGER PRIMARY KEY,
    version BIGINT NOT NULL
);
INSERT INTO rbac_version (id, version) VALUES (1, 0);
