"""private_key_jwt and client_secret_jwt (RFC 7523 §2.2) as Authlib, a library Tessera does
not use, does them against a running node: an OAuth2Session whose token endpoint
authentication is authlib.oauth2.rfc7523.PrivateKeyJWT (an RS256/ES256 assertion with
aud = the token endpoint URL, a fresh jti, exp = iat + 3600 — Authlib's default lifetime)
fetches a client-credentials token; the same with ClientSecretJWT (HS256 of the secret).
Then a second PrivateKeyJWT session with a key the client never registered must fail.

Environment: TOKEN_ENDPOINT, KEY_CLIENT_ID, KEY_PEM (the P-256 private key, PKCS#8 PEM),
KEY_KID, OTHER_PEM (a key not registered), HMAC_CLIENT_ID, HMAC_SECRET.

Prints one JSON line per step ({"step", "ok", ...}) and exits 0, or prints the failing
step with the library's error ({"step", "ok": false, "error"}) and exits 1."""

import json
import os
import sys

from authlib.integrations.requests_client import OAuth2Session
from authlib.oauth2.rfc7523 import ClientSecretJWT, PrivateKeyJWT
from joserfc.jwk import ECKey

STEP = "start"


def env(name: str) -> str:
    value = os.environ.get(name)
    if not value:
        raise RuntimeError(f"{name} is not set")
    return value


def report(step: str, **facts) -> None:
    print(json.dumps({"step": step, "ok": True, **facts}), flush=True)


def key_session(pem: str) -> OAuth2Session:
    token_endpoint = env("TOKEN_ENDPOINT")
    # Authlib reads a PEM string as an RSA key; an EC key is handed over as a joserfc key.
    return OAuth2Session(
        env("KEY_CLIENT_ID"),
        ECKey.import_key(pem),
        token_endpoint_auth_method=PrivateKeyJWT(token_endpoint, alg="ES256", headers={"kid": env("KEY_KID")}),
        scope="openid",
    )


def main() -> None:
    global STEP
    token_endpoint = env("TOKEN_ENDPOINT")

    STEP = "private_key_jwt"
    token = key_session(env("KEY_PEM")).fetch_token(token_endpoint, grant_type="client_credentials")
    assert token.get("access_token"), token
    report(STEP, token_type=token["token_type"])

    STEP = "client_secret_jwt"
    session = OAuth2Session(
        env("HMAC_CLIENT_ID"),
        env("HMAC_SECRET"),
        token_endpoint_auth_method=ClientSecretJWT(token_endpoint),
        scope="openid",
    )
    token = session.fetch_token(token_endpoint, grant_type="client_credentials")
    assert token.get("access_token"), token
    report(STEP, token_type=token["token_type"])

    STEP = "unregistered_key"
    try:
        key_session(env("OTHER_PEM")).fetch_token(token_endpoint, grant_type="client_credentials")
    except Exception as err:  # the library raises OAuthError with the server's error code
        error = getattr(err, "error", None) or str(err)
        assert error == "invalid_client", error
        report(STEP, error=error)
        return
    raise AssertionError("a key the client never registered was accepted")


if __name__ == "__main__":
    try:
        main()
    except Exception as err:
        print(json.dumps({"step": STEP, "ok": False, "error": f"{type(err).__name__}: {err}"}), flush=True)
        sys.exit(1)
