-- Conditions on a role's permissions (R26, ABAC): a JSON object from permission name to
-- {networks, channels, acr}; a permission with a condition is granted only where it holds.
ALTER TABLE roles ADD COLUMN conditions TEXT NOT NULL DEFAULT '{}';
