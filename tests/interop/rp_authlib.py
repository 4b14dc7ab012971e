"""A relying party built on Authlib, a library Tessera does not use, walking the
authorization code flow against a running node:

    discovery -> authorization URL with PKCE S256, state and nonce (OAuth2Session) -> the
    hosted login form over plain HTTP (requests.Session, cookies kept, no redirects
    followed) -> fetch_token with the code and the code_verifier (client_secret_basic; the
    library checks the callback's state) -> the ID token verified against the JWKS the way
    Authlib's own OpenID clients do it (joserfc, Authlib's JOSE backend, with the algorithms
    from discovery) and validated with authlib.oidc.core.CodeIDToken (iss, aud, exp, iat,
    nonce, at_hash, auth_time with max_age, amr, azp) -> userinfo -> refresh token grant.

The discovery document itself is checked with Authlib's OpenIDProviderMetadata validators.

Environment: ISSUER, CLIENT_ID, CLIENT_SECRET, REDIRECT_URI, USERNAME, PASSWORD.

Flags (negative cases, each must make the library raise):
    --wrong-nonce       validate against another nonce than the one sent
    --tamper-id-token   flip a byte of the ID token's signature before verifying it
    --tamper-code       change the code in the callback (Tessera answers invalid_grant)

Prints one JSON line per step ({"step", "ok", ...}) and exits 0, or prints the failing
step with the library's error ({"step", "ok": false, "error", "code"}) and exits 1."""

import html
import json
import os
import re
import sys
import warnings
from urllib.parse import urljoin, urlparse, parse_qs

import requests
from authlib.common.security import generate_token
from authlib.integrations.requests_client import OAuth2Session
from authlib.oauth2 import rfc9207
from authlib.oidc import discovery, rpinitiated
from authlib.oidc.core import CodeIDToken
from joserfc import jwt
from joserfc.jwk import KeySet
from joserfc.jws import JWSRegistry

FLAGS = {"--wrong-nonce", "--tamper-id-token", "--tamper-code"}
STEP = "start"


def env(name: str) -> str:
    value = os.environ.get(name)
    if not value:
        raise RuntimeError(f"{name} is not set")
    return value


def report(step: str, **facts) -> None:
    print(json.dumps({"step": step, "ok": True, **facts}), flush=True)


def check(condition: bool, message: str) -> None:
    if not condition:
        raise AssertionError(f"check failed: {message}")


def parse_form(page: str):
    """The first form of a page: its action and its named inputs with their values
    (html.unescape undoes &amp; &quot; &#39; &lt; &gt;)."""
    form = re.search(r"<form\b[^>]*>", page)
    check(form is not None, "the page has a form")

    def attribute(tag: str, name: str):
        match = re.search(rf'\s{name}="([^"]*)"', tag)
        return html.unescape(match.group(1)) if match else None

    fields = {}
    for tag in re.findall(r"<input\b[^>]*>", page):
        name, value = attribute(tag, "name"), attribute(tag, "value")
        if name is not None and value is not None:
            fields[name] = value
    return attribute(form.group(0), "action"), fields


def main(flags: set) -> None:
    global STEP
    issuer = env("ISSUER")
    client_id = env("CLIENT_ID")
    redirect_uri = env("REDIRECT_URI")

    STEP = "discovery"
    metadata = requests.get(f"{issuer}/.well-known/openid-configuration", timeout=10).json()
    check(metadata["issuer"] == issuer, f"issuer {metadata['issuer']!r} is not {issuer!r}")
    # Authlib's validators of OpenID Provider Metadata (Discovery 1.0 §3, RFC 8414), with
    # the RP-Initiated Logout and RFC 9207 extensions.
    discovery.OpenIDProviderMetadata(metadata).validate(
        metadata_classes=[rpinitiated.OpenIDProviderMetadata, rfc9207.AuthorizationServerMetadata]
    )
    check("S256" in metadata["code_challenge_methods_supported"], "S256 is advertised")
    report("discovery", issuer=metadata["issuer"], metadata_valid=True)

    STEP = "authorization_url"
    rp = OAuth2Session(
        client_id=client_id,
        client_secret=env("CLIENT_SECRET"),
        token_endpoint_auth_method="client_secret_basic",
        scope="openid profile email",
        redirect_uri=redirect_uri,
        code_challenge_method="S256",
    )
    code_verifier = generate_token(48)
    nonce = generate_token(20)
    # state is any printable ASCII (RFC 6749 §A.5): these must survive the hosted form's
    # hidden fields and the redirect byte for byte (the library compares them).
    url, state = rp.create_authorization_url(
        metadata["authorization_endpoint"],
        state=generate_token(20) + " &=\"<>'+%;",
        code_verifier=code_verifier,
        nonce=nonce,
        max_age=600,
    )
    sent = parse_qs(urlparse(url).query)
    check(sent["code_challenge_method"] == ["S256"], "the URL carries an S256 challenge")
    report("authorization_url", url=url)

    STEP = "login"
    browser = requests.Session()
    page = browser.get(url, allow_redirects=False, timeout=10)
    check(page.status_code == 200, f"login page status {page.status_code}: {page.text[:200]}")
    check('name="password"' in page.text, "the page is the login form")
    action, fields = parse_form(page.text)
    check("csrf" in fields and fields.get("client_id") == client_id, "the form carries csrf and the request")
    fields["username"] = env("USERNAME")
    fields["password"] = env("PASSWORD")
    done = browser.post(urljoin(issuer, action), data=fields, allow_redirects=False, timeout=10)
    location = done.headers.get("location", "")
    check(done.status_code == 303, f"login answered {done.status_code}: {done.text[:300]}")
    check(location.startswith(redirect_uri), f"redirected to the client, not {location!r}")
    callback = parse_qs(urlparse(location).query)
    # RFC 9207: Authlib's OAuth2Session does not look at `iss`; this script does.
    check(callback.get("iss") == [issuer], f"iss in the authorization response is {callback.get('iss')}")
    report("login", form_action=action, iss=callback["iss"][0], cookies=sorted(browser.cookies.keys()))

    STEP = "fetch_token"
    if "--tamper-code" in flags:
        code = callback["code"][0]
        location = location.replace(f"code={code}", f"code={'B' if code[0] == 'A' else 'A'}{code[1:]}")
    token = rp.fetch_token(
        metadata["token_endpoint"], authorization_response=location, code_verifier=code_verifier, state=state
    )
    check(token.get("token_type", "").lower() == "bearer", "a Bearer token")
    check("id_token" in token and "refresh_token" in token, "an ID token and a refresh token")
    report("fetch_token", token_type=token["token_type"], scope=token.get("scope"), expires_in=token.get("expires_in"))

    STEP = "id_token"
    id_token = token["id_token"]
    if "--tamper-id-token" in flags:
        i = len(id_token) - 5
        id_token = id_token[:i] + ("B" if id_token[i] == "A" else "A") + id_token[i + 1 :]
    jwks = KeySet.import_key_set(requests.get(metadata["jwks_uri"], timeout=10).json())
    decoded = jwt.decode(
        id_token,
        jwks,
        registry=JWSRegistry(algorithms=metadata["id_token_signing_alg_values_supported"]),
    )
    claims = CodeIDToken(
        decoded.claims,
        decoded.header,
        options={
            "iss": {"essential": True, "value": metadata["issuer"]},
            "aud": {"essential": True, "value": client_id},
        },
        params={
            "nonce": generate_token(20) if "--wrong-nonce" in flags else nonce,
            "client_id": client_id,
            "access_token": token["access_token"],
            "max_age": 600,
        },
    )
    claims.validate(leeway=30)
    check("at_hash" in claims, "at_hash is present (and was checked)")
    report("id_token", alg=decoded.header["alg"], kid=decoded.header.get("kid"), claims=dict(claims))

    STEP = "userinfo"
    info = rp.get(metadata["userinfo_endpoint"], timeout=10)
    check(info.status_code == 200, f"userinfo answered {info.status_code}: {info.text}")
    userinfo = info.json()
    check(userinfo["sub"] == claims["sub"], "userinfo is about the ID token's subject")
    report("userinfo", userinfo=userinfo)

    STEP = "refresh"
    old_access = token["access_token"]
    refreshed = rp.refresh_token(metadata["token_endpoint"], refresh_token=token["refresh_token"])
    check(refreshed["access_token"] != old_access, "a new access token")
    check(refreshed["refresh_token"] != token["refresh_token"], "the refresh token rotated")
    info = rp.get(metadata["userinfo_endpoint"], timeout=10)
    check(info.status_code == 200 and info.json()["sub"] == claims["sub"], "userinfo with the new token")
    report("refresh", scope=refreshed.get("scope"), rotated=True, userinfo_sub=info.json()["sub"])


if __name__ == "__main__":
    warnings.simplefilter("ignore", DeprecationWarning)
    args = set(sys.argv[1:])
    unknown = args - FLAGS
    if unknown:
        print(f"unknown flags: {sorted(unknown)}", file=sys.stderr)
        sys.exit(2)
    try:
        main(args)
        report("done", library="authlib")
    except Exception as err:  # noqa: BLE001 - any failure is reported with its step
        print(
            json.dumps(
                {
                    "step": STEP,
                    "ok": False,
                    "error": str(err) or repr(err),
                    "code": type(err).__name__,
                    "oauth_error": getattr(err, "error", None),
                }
            ),
            flush=True,
        )
        sys.exit(1)
