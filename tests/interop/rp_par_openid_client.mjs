// A code flow through pushed authorization requests (RFC 9126) as `openid-client` (a
// library Tessera does not use) walks it against a running node: discovery (the PAR
// endpoint) → buildAuthorizationUrlWithPAR (the library pushes PKCE, nonce and state with
// client_secret_basic and builds the URL of client_id and request_uri) → the hosted login
// form over plain HTTP → authorizationCodeGrant (the library validates state, iss and the
// ID token: RS256 signature against the JWKS, iss, aud, exp, iat, nonce). Then the same
// authorization URL again: the used request_uri must be refused.
//
// Environment: ISSUER, CLIENT_ID, CLIENT_SECRET (client_secret_basic), REDIRECT_URI,
// USERNAME, PASSWORD.
//
// Prints one JSON line per step ({"step", "ok", ...}) and exits 0, or prints the failing
// step with the library's error ({"step", "ok": false, "error", "oauth_error"}) and exits 1.
import * as client from "openid-client";

import { browse, submit } from "./hosted_browser.mjs";

function env(name) {
  const value = process.env[name];
  if (value === undefined || value === "") throw new Error(`${name} is not set`);
  return value;
}

const ISSUER = env("ISSUER");
const CLIENT_ID = env("CLIENT_ID");
const CLIENT_SECRET = env("CLIENT_SECRET");
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

async function main() {
  currentStep = "discovery";
  const config = await client.discovery(
    new URL(ISSUER),
    CLIENT_ID,
    CLIENT_SECRET,
    client.ClientSecretBasic(CLIENT_SECRET),
    { execute: [client.allowInsecureRequests, client.enableNonRepudiationChecks] },
  );
  const metadata = config.serverMetadata();
  report("discovery", {
    pushed_authorization_request_endpoint: metadata.pushed_authorization_request_endpoint,
    require_pushed_authorization_requests: metadata.require_pushed_authorization_requests,
  });

  currentStep = "par";
  const codeVerifier = client.randomPKCECodeVerifier();
  const nonce = client.randomNonce();
  const state = client.randomState();
  const authorizationUrl = await client.buildAuthorizationUrlWithPAR(config, {
    redirect_uri: REDIRECT_URI,
    scope: "openid email",
    code_challenge: await client.calculatePKCECodeChallenge(codeVerifier),
    code_challenge_method: "S256",
    nonce,
    state,
  });
  const query = [...authorizationUrl.searchParams.keys()].sort();
  check(JSON.stringify(query) === '["client_id","request_uri"]', `the URL carries ${query}`);
  const requestUri = authorizationUrl.searchParams.get("request_uri");
  check(requestUri.startsWith("urn:ietf:params:oauth:request_uri:"), requestUri);
  report("par", { query, request_uri_prefix: requestUri.slice(0, 34) });

  currentStep = "login";
  const page = await browse(authorizationUrl);
  const loginHtml = await page.text();
  check(page.status === 200 && loginHtml.includes('name="password"'), `the login page, got ${page.status}`);
  const done = await submit(ISSUER, loginHtml, { username: USERNAME, password: PASSWORD });
  const location = done.headers.get("location");
  check(done.status === 303 && location?.startsWith(REDIRECT_URI), `redirected to the client, got ${done.status}`);
  report("login", { iss: new URL(location).searchParams.get("iss") });

  currentStep = "authorization_code_grant";
  const tokens = await client.authorizationCodeGrant(config, new URL(location), {
    pkceCodeVerifier: codeVerifier,
    expectedNonce: nonce,
    expectedState: state,
    idTokenExpected: true,
  });
  report("authorization_code_grant", { scope: tokens.scope, claims: tokens.claims() });

  currentStep = "replay";
  const again = await browse(authorizationUrl);
  const againHtml = await again.text();
  check(again.status === 400, `a used request_uri answered ${again.status}`);
  report("replay", { status: again.status, used: againHtml.includes("already used") });
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
