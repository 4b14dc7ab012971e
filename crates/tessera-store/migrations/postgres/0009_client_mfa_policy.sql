-- A client's own second-factor policy (`off`, `optional`, `adaptive`, `required`); NULL follows the
-- deployment's `mfa.policy`.
ALTER TABLE clients ADD COLUMN mfa_policy TEXT;
