-- JWT client authentication and request objects. JWT client authentication (RFC 7523 §2.2, OpenID Connect Core §9): the algorithm a client
-- signs its assertions with (NULL: any the method allows), its public keys inline (a JWKS
-- document) or by URL, and, for `client_secret_jwt` only, its secret sealed with the master
-- key (the server needs the secret itself to check an HMAC; a hash cannot). NULL for every
-- existing client: they keep authenticating as before.
ALTER TABLE clients ADD COLUMN token_endpoint_auth_signing_alg TEXT;
ALTER TABLE clients ADD COLUMN jwks TEXT;
ALTER TABLE clients ADD COLUMN jwks_uri TEXT;
ALTER TABLE clients ADD COLUMN secret_sealed TEXT;
-- Request objects (OpenID Connect Core §6.1, RFC 9101): the one algorithm (or `none`) the
-- client's request objects use; NULL: it sends none (`request` is refused).
ALTER TABLE clients ADD COLUMN request_object_signing_alg TEXT;
