-- Terms of a user's role assignments (R26): a JSON object from role name (one of
-- users.roles) to {until, condition}; a role without an entry is assigned without terms.
ALTER TABLE users ADD COLUMN role_terms TEXT NOT NULL DEFAULT '{}';

-- A dynamic separation-of-duty rule: its roles may be held together but not be active in
-- one session (0: static, the roles may not be held together).
ALTER TABLE sod_rules ADD COLUMN dynamic BIGINT NOT NULL DEFAULT 0 CHECK (dynamic IN (0, 1));

-- The roles a session chose to activate (space-separated; NULL: it chose none, and every
-- assigned role not in a broken dynamic rule is active).
ALTER TABLE sessions ADD COLUMN active_roles TEXT;
