"""Verifies an access token against the provider's published JWKS with jwcrypto, a JOSE
library Tessera does not use. Usage:
    python3 verify_jwt.py JWKS_URL TOKEN ISSUER AUDIENCE
Prints the verified claims as JSON and exits 0, or prints the error and exits 1."""

import json
import sys
import time
import urllib.request

from jwcrypto import jwk, jwt


def main() -> int:
    jwks_url, token, issuer, audience = sys.argv[1:5]
    with urllib.request.urlopen(jwks_url, timeout=10) as response:
        keys = jwk.JWKSet.from_json(response.read())
    try:
        verified = jwt.JWT(
            jwt=token,
            key=keys,
            algs=["ES256", "RS256", "EdDSA"],
            check_claims={"iss": issuer, "aud": audience, "exp": int(time.time())},
            expected_type="JWS",
        )
        header = json.loads(verified.header)
        if header.get("typ", "").lower() not in ("at+jwt", "application/at+jwt"):
            raise ValueError(f"typ is {header.get('typ')!r}, not at+jwt")
    except Exception as err:  # noqa: BLE001 - any failure is a verification failure
        print(f"{type(err).__name__}: {err}", file=sys.stderr)
        return 1
    print(json.dumps({"header": header, "claims": json.loads(verified.claims)}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
