-- RFC 9449: the DPoP key (its RFC 7638 thumbprint) a token session's refresh tokens are bound
-- to (public clients that presented a proof), and the `dpop_jkt` an authorization request
-- bound its code to (§10). NULL: not bound.
ALTER TABLE sessions ADD COLUMN dpop_jkt TEXT;
ALTER TABLE authorization_codes ADD COLUMN dpop_jkt TEXT;
