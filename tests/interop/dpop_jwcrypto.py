"""DPoP proofs (RFC 9449) built with Python jwcrypto, a JOSE library Tessera does not use,
sent to a running node's token endpoint (client credentials): for each key type (RS256,
PS256, ES256, EdDSA) a proof made here binds the token to the key (token_type DPoP, cnf.jkt
the RFC 7638 thumbprint jwcrypto computes); the same proof again, a proof whose jwk carries
the private key, one for another URI and one signed with HS256 are refused with
invalid_dpop_proof.

Environment: ISSUER, CLIENT_ID, CLIENT_SECRET (client_secret_basic, client_credentials).
Prints one JSON line per step and exits 0, or the failing step and exits 1.
"""

import base64
import json
import os
import sys
import time
import uuid

import requests
from jwcrypto import jwk, jws
from jwcrypto.common import json_encode

ISSUER = os.environ["ISSUER"]
TOKEN = ISSUER + "/oauth2/token"
AUTH = (os.environ["CLIENT_ID"], os.environ["CLIENT_SECRET"])
step = "start"


def report(name, **facts):
    print(json.dumps({"step": name, "ok": True, **facts}))


def proof(key, alg, htu=TOKEN, public=True, htm="POST"):
    header = {"typ": "dpop+jwt", "alg": alg, "jwk": json.loads(key.export(private_key=not public))}
    claims = {"jti": str(uuid.uuid4()), "htm": htm, "htu": htu, "iat": int(time.time())}
    token = jws.JWS(json_encode(claims))
    token.add_signature(key, alg=alg, protected=json_encode(header))
    return token.serialize(compact=True)


def grant(dpop):
    return requests.post(
        TOKEN,
        auth=AUTH,
        data={"grant_type": "client_credentials", "scope": "tessera:admin"},
        headers={"DPoP": dpop},
        timeout=10,
    )


def claims_of(jwt):
    payload = jwt.split(".")[1]
    return json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))


def refused(response, what):
    body = response.json()
    if response.status_code != 400 or body.get("error") != "invalid_dpop_proof" or "access_token" in body:
        raise AssertionError(f"{what}: {response.status_code} {body}")


def main():
    global step
    keys = {
        "RS256": jwk.JWK.generate(kty="RSA", size=2048),
        "PS256": jwk.JWK.generate(kty="RSA", size=2048),
        "ES256": jwk.JWK.generate(kty="EC", crv="P-256"),
        "EdDSA": jwk.JWK.generate(kty="OKP", crv="Ed25519"),
    }
    for alg, key in keys.items():
        step = f"bound_{alg}"
        response = grant(proof(key, alg))
        body = response.json()
        if response.status_code != 200 or body.get("token_type") != "DPoP":
            raise AssertionError(f"{alg}: {response.status_code} {body}")
        jkt = claims_of(body["access_token"]).get("cnf", {}).get("jkt")
        if jkt != key.thumbprint():
            raise AssertionError(f"{alg}: cnf.jkt {jkt} is not the thumbprint {key.thumbprint()}")
        report(step, jkt=jkt)

    key = keys["ES256"]
    step = "replayed"
    once = proof(key, "ES256")
    if grant(once).status_code != 200:
        raise AssertionError("the first use of a proof was refused")
    refused(grant(once), "a replayed proof")
    report(step)

    step = "private_key_in_jwk"
    refused(grant(proof(key, "ES256", public=False)), "a jwk with the private key")
    report(step)

    step = "another_uri"
    refused(grant(proof(key, "ES256", htu=ISSUER + "/oauth2/revoke")), "a proof for another URI")
    report(step)

    step = "hs256"
    secret = jwk.JWK.generate(kty="oct", size=256)
    header = {"typ": "dpop+jwt", "alg": "HS256", "jwk": json.loads(key.export_public())}
    claims = {"jti": str(uuid.uuid4()), "htm": "POST", "htu": TOKEN, "iat": int(time.time())}
    token = jws.JWS(json_encode(claims))
    token.add_signature(secret, alg="HS256", protected=json_encode(header))
    refused(grant(token.serialize(compact=True)), "an HS256 proof")
    report(step)


try:
    main()
    report("done", library="jwcrypto")
except Exception as err:  # noqa: BLE001 - every failure is reported as the step's
    print(json.dumps({"step": step, "ok": False, "error": repr(err)}))
    sys.exit(1)
