"""JWT client assertions built with python jwcrypto (a JOSE library Tessera does not use)
and posted by hand to a running node's token endpoint (RFC 7523 §2.2): a good ES256
assertion is accepted once, and refused when replayed; an unsigned one (alg none), one
signed HS256 with the client's public key as the HMAC secret (key confusion), one for
another audience and one that lives two hours are refused with invalid_client.

Then request objects (OpenID Connect Core §6.1) signed ES256 with the same key for a client
registered with request_object_signing_alg ES256: a good one gets the login page, a
tampered one and an unsigned one are redirected with invalid_request_object.

Environment: TOKEN_ENDPOINT, ISSUER, CLIENT_ID, KEY_PEM (the P-256 private key, PKCS#8
PEM), KEY_KID, RO_CLIENT_ID, REDIRECT_URI.

Prints one JSON line per case ({"step", "ok", "status"}) and exits 0, or prints the failing
case ({"step", "ok": false, "error"}) and exits 1."""

import base64
import json
import os
import sys
import time
import uuid

import requests
from jwcrypto import jwk, jws
from jwcrypto.common import json_encode

STEP = "start"


def env(name: str) -> str:
    value = os.environ.get(name)
    if not value:
        raise RuntimeError(f"{name} is not set")
    return value


def claims(**overrides) -> dict:
    now = int(time.time())
    body = {
        "iss": env("CLIENT_ID"),
        "sub": env("CLIENT_ID"),
        "aud": env("ISSUER"),
        "iat": now,
        "exp": now + 60,
        "jti": str(uuid.uuid4()),
    }
    body.update(overrides)
    return body


def signed(key: jwk.JWK, alg: str, payload: dict, kid=None) -> str:
    token = jws.JWS(json_encode(payload).encode())
    header = {"alg": alg}
    if kid:
        header["kid"] = kid
    token.add_signature(key, None, json_encode(header))
    return token.serialize(compact=True)


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def post(assertion: str) -> requests.Response:
    return requests.post(
        env("TOKEN_ENDPOINT"),
        data={
            "grant_type": "client_credentials",
            "client_assertion_type": "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
            "client_assertion": assertion,
        },
        timeout=10,
    )


def expect(step: str, assertion: str, status: int) -> None:
    global STEP
    STEP = step
    answer = post(assertion)
    assert answer.status_code == status, f"{answer.status_code} {answer.text}"
    if status == 401:
        assert answer.json()["error"] == "invalid_client", answer.text
    print(json.dumps({"step": step, "ok": True, "status": answer.status_code}), flush=True)


def main() -> None:
    key = jwk.JWK.from_pem(env("KEY_PEM").encode())
    kid = env("KEY_KID")
    good = signed(key, "ES256", claims(), kid)
    expect("accepted", good, 200)
    expect("replayed", good, 401)

    unsigned = b64(json.dumps({"alg": "none"}).encode()) + "." + b64(json.dumps(claims()).encode()) + "."
    expect("alg_none", unsigned, 401)

    public_pem = key.export_to_pem(private_key=False)
    confused = jwk.JWK(kty="oct", k=b64(public_pem))
    expect("hs256_with_public_key", signed(confused, "HS256", claims(), kid), 401)

    expect("wrong_audience", signed(key, "ES256", claims(aud="https://other-idp.example"), kid), 401)
    expect("two_hours", signed(key, "ES256", claims(exp=int(time.time()) + 7200), kid), 401)

    ro_client = env("RO_CLIENT_ID")
    request = {
        "iss": ro_client,
        "aud": env("ISSUER"),
        "client_id": ro_client,
        "response_type": "code",
        "redirect_uri": env("REDIRECT_URI"),
        "scope": "openid",
        "state": "st-jwcrypto",
        "code_challenge": b64(os.urandom(32)),
        "code_challenge_method": "S256",
    }
    good = signed(key, "ES256", request, kid)
    authorize("request_object", ro_client, good, 200)
    header, payload, signature = good.split(".")
    tampered = header + "." + b64(json.dumps({**request, "scope": "openid email"}).encode()) + "." + signature
    authorize("request_object_tampered", ro_client, tampered, 302, "invalid_request_object")
    unsigned_request = b64(json.dumps({"alg": "none"}).encode()) + "." + b64(json.dumps(request).encode()) + "."
    authorize("request_object_unsigned", ro_client, unsigned_request, 302, "invalid_request_object")


def authorize(step: str, client_id: str, request: str, status: int, error=None) -> None:
    global STEP
    STEP = step
    answer = requests.get(
        env("ISSUER") + "/oauth2/authorize",
        params={"client_id": client_id, "response_type": "code", "redirect_uri": env("REDIRECT_URI"), "request": request},
        allow_redirects=False,
        timeout=10,
    )
    assert answer.status_code == status, f"{answer.status_code} {answer.headers.get('location')}"
    if error:
        location = answer.headers["location"]
        assert f"error={error}" in location, location
    print(json.dumps({"step": step, "ok": True, "status": answer.status_code}), flush=True)


if __name__ == "__main__":
    try:
        main()
    except Exception as err:
        print(json.dumps({"step": STEP, "ok": False, "error": f"{type(err).__name__}: {err}"}), flush=True)
        sys.exit(1)
