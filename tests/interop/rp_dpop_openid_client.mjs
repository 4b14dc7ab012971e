// DPoP (RFC 9449) as `openid-client` (a library Tessera does not use) does it against a
// running node, for a public client: discovery (dpop_signing_alg_values_supported) → a
// fresh ES256 key pair and the library's DPoP handle → an authorization URL with PKCE and
// `dpop_jkt` (the key's thumbprint, computed by `jose`) → the hosted login form →
// authorizationCodeGrant with DPoP (the library signs the proofs; token_type DPoP) →
// fetchUserInfo with DPoP (Authorization: DPoP and a proof with ath) → refreshTokenGrant
// with DPoP (the bound refresh token) → the DPoP token presented as Bearer at userinfo,
// which must be refused with a DPoP challenge.
//
// Environment: ISSUER, CLIENT_ID (a public client), REDIRECT_URI, USERNAME, PASSWORD.
//
// Prints one JSON line per step ({"step", "ok", ...}) and exits 0, or prints the failing
// step with the library's error ({"step", "ok": false, "error", "oauth_error"}) and exits 1.
import * as client from "openid-client";
import { calculateJwkThumbprint, exportJWK } from "jose";

import { browse, submit } from "./hosted_browser.mjs";

function env(name) {
  const value = process.env[name];
  if (value === undefined || value === "") throw new Error(`${name} is not set`);
  return value;
}

const ISSUER = env("ISSUER");
const CLIENT_ID = env("CLIENT_ID");
const REDIRECT_URI = env("REDIRECT_URI");
const USERNAME = env("USERNAME");
const PASSWORD = env("PASSWORD");

let currentStep = "start";
function report(step, facts = {}) {
  console.log(JSON.stringify({ step, ok: true, ...facts }));
}
function check(condition, message) {
  if (!condition) throw new Error(`check failed: ${message}`);
}
function claimsOf(jwt) {
  return JSON.parse(Buffer.from(jwt.split(".")[1], "base64url").toString());
}

async function main() {
  currentStep = "discovery";
  const config = await client.discovery(new URL(ISSUER), CLIENT_ID, undefined, client.None(), {
    execute: [client.allowInsecureRequests],
  });
  const metadata = config.serverMetadata();
  report("discovery", { dpop_signing_alg_values_supported: metadata.dpop_signing_alg_values_supported });

  currentStep = "key";
  const keyPair = await client.randomDPoPKeyPair("ES256");
  const DPoP = client.getDPoPHandle(config, keyPair);
  const jkt = await calculateJwkThumbprint(await exportJWK(keyPair.publicKey), "sha256");
  report("key", { jkt });

  currentStep = "login";
  const codeVerifier = client.randomPKCECodeVerifier();
  const state = client.randomState();
  const authorizationUrl = client.buildAuthorizationUrl(config, {
    redirect_uri: REDIRECT_URI,
    scope: "openid email",
    code_challenge: await client.calculatePKCECodeChallenge(codeVerifier),
    code_challenge_method: "S256",
    state,
    dpop_jkt: jkt,
  });
  const page = await browse(authorizationUrl);
  const loginHtml = await page.text();
  check(page.status === 200 && loginHtml.includes('name="password"'), `the login page, got ${page.status}`);
  const done = await submit(ISSUER, loginHtml, { username: USERNAME, password: PASSWORD });
  const location = done.headers.get("location");
  check(done.status === 303 && location?.startsWith(REDIRECT_URI), `redirected to the client, got ${done.status}`);
  report("login");

  currentStep = "authorization_code_grant";
  const tokens = await client.authorizationCodeGrant(
    config,
    new URL(location),
    { pkceCodeVerifier: codeVerifier, expectedState: state, idTokenExpected: true },
    undefined,
    { DPoP },
  );
  check(tokens.token_type.toLowerCase() === "dpop", `token_type ${tokens.token_type}`);
  const cnf = claimsOf(tokens.access_token).cnf;
  check(cnf?.jkt === jkt, `cnf ${JSON.stringify(cnf)}`);
  report("authorization_code_grant", { token_type: tokens.token_type, cnf, sub: tokens.claims().sub });

  currentStep = "userinfo";
  const info = await client.fetchUserInfo(config, tokens.access_token, tokens.claims().sub, { DPoP });
  report("userinfo", { sub: info.sub, email: info.email });

  currentStep = "refresh_token_grant";
  const refreshed = await client.refreshTokenGrant(config, tokens.refresh_token, undefined, { DPoP });
  check(refreshed.token_type.toLowerCase() === "dpop", `token_type ${refreshed.token_type}`);
  check(claimsOf(refreshed.access_token).cnf?.jkt === jkt, "the refreshed token is bound to the key");
  report("refresh_token_grant", { token_type: refreshed.token_type });

  currentStep = "bearer_refused";
  const bearer = await fetch(metadata.userinfo_endpoint, {
    headers: { authorization: `Bearer ${refreshed.access_token}` },
  });
  const challenge = bearer.headers.get("www-authenticate") ?? "";
  check(bearer.status === 401 && challenge.startsWith("DPoP "), `as Bearer: ${bearer.status} ${challenge}`);
  report("bearer_refused", { status: bearer.status, challenge });
}

try {
  await main();
  report("done", { library: "openid-client" });
} catch (err) {
  const messages = [];
  for (let e = err; e instanceof Error; e = e.cause) messages.push(e.message);
  console.log(
    JSON.stringify({
      step: currentStep,
      ok: false,
      error: messages.join(": "),
      code: err.code ?? err.name,
      oauth_error: err.error,
    }),
  );
  process.exit(1);
}
