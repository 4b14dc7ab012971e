// The device authorization grant (RFC 8628) as `openid-client` (a library Tessera does not
// use) walks it against a running node: discovery (the device authorization endpoint) →
// initiateDeviceAuthorization (a public client, `none`) → pollDeviceAuthorizationGrant,
// which polls at the announced interval, waits through `authorization_pending` and adds
// 5 s on `slow_down` — while the user's side approves on the hosted `/device` page over
// plain HTTP (the code from verification_uri_complete, the hosted login, the
// confirmation). The library validates the ID token (RS256 signature against the JWKS
// with enableNonRepudiationChecks, iss, aud, exp, iat).
//
// Environment: ISSUER, CLIENT_ID (a public client with the device grant), USERNAME,
// PASSWORD.
//
// Flags:
//   --deny        the user denies: the poll must raise access_denied
//   --nudge       one extra poll of our own just before the library's first: the library
//                 gets slow_down, must add 5 s to its interval and still finish
//
// Prints one JSON line per step ({"step", "ok", ...}) and exits 0, or prints the failing
// step with the library's error ({"step", "ok": false, "error", "oauth_error"}) and exits 1.
import * as client from "openid-client";

import { browse, jar, submit } from "./hosted_browser.mjs";

const flags = new Set(process.argv.slice(2));
for (const flag of flags) {
  if (!["--deny", "--nudge"].includes(flag)) {
    console.error(`unknown flag ${flag}`);
    process.exit(2);
  }
}

function env(name) {
  const value = process.env[name];
  if (value === undefined || value === "") throw new Error(`${name} is not set`);
  return value;
}

const ISSUER = env("ISSUER");
const CLIENT_ID = env("CLIENT_ID");
const USERNAME = env("USERNAME");
const PASSWORD = env("PASSWORD");

let currentStep = "start";
function report(step, facts = {}) {
  console.log(JSON.stringify({ step, ok: true, ...facts }));
}
function check(condition, message) {
  if (!condition) throw new Error(`check failed: ${message}`);
}

/// The user's side: the page of verification_uri_complete, the sign-in, the answer.
async function answerOnThePage(uri, decision) {
  const entry = await browse(uri);
  const entryHtml = await entry.text();
  check(entry.status === 200, `the /device page answered ${entry.status}`);
  const login = await submit(ISSUER, entryHtml, {});
  const loginHtml = await login.text();
  check(login.status === 200 && loginHtml.includes('name="password"'), `the hosted login, got ${login.status}`);
  const signedIn = await submit(ISSUER, loginHtml, { username: USERNAME, password: PASSWORD });
  const back = signedIn.headers.get("location");
  check(signedIn.status === 303 && back?.startsWith("/device?"), `back to /device, got ${signedIn.status} ${back}`);
  check(jar.has("tessera_sso"), "an SSO cookie was set");
  const confirm = await browse(new URL(back, ISSUER));
  const confirmHtml = await confirm.text();
  check(confirm.status === 200 && confirmHtml.includes('name="decision"'), `the confirmation, got ${confirm.status}`);
  const done = await submit(ISSUER, confirmHtml, { decision });
  check(done.status === 200, `the answer was taken: ${done.status}`);
  return done.text();
}

async function main() {
  currentStep = "discovery";
  const config = await client.discovery(new URL(ISSUER), CLIENT_ID, undefined, client.None(), {
    execute: [client.allowInsecureRequests, client.enableNonRepudiationChecks],
  });
  const metadata = config.serverMetadata();
  check(
    metadata.grant_types_supported?.includes("urn:ietf:params:oauth:grant-type:device_code"),
    "the grant is advertised",
  );
  report("discovery", { device_authorization_endpoint: metadata.device_authorization_endpoint });

  currentStep = "device_authorization";
  const started = await client.initiateDeviceAuthorization(config, { scope: "openid email" });
  check(/^[BCDFGHJKLMNPQRSTVWXZ]{4}-[BCDFGHJKLMNPQRSTVWXZ]{4}$/.test(started.user_code), started.user_code);
  report("device_authorization", {
    user_code: started.user_code,
    verification_uri: started.verification_uri,
    verification_uri_complete: started.verification_uri_complete,
    expires_in: started.expires_in,
    interval: started.interval,
  });

  currentStep = "poll";
  const began = Date.now();
  const polling = client.pollDeviceAuthorizationGrant(config, started);
  // Keep an early rejection from being reported as unhandled while the user answers.
  polling.catch(() => {});
  if (flags.has("--nudge")) {
    // Our own poll, a quarter second before the library's first (it waits `interval`
    // first): the library's then comes too soon and is answered slow_down.
    await new Promise((resolve) => setTimeout(resolve, started.interval * 1000 - 250));
    const response = await fetch(metadata.token_endpoint, {
      method: "POST",
      headers: { "content-type": "application/x-www-form-urlencoded" },
      body: new URLSearchParams({
        grant_type: "urn:ietf:params:oauth:grant-type:device_code",
        device_code: started.device_code,
        client_id: CLIENT_ID,
      }),
    });
    const body = await response.json();
    check(body.error === "authorization_pending", `our poll: ${JSON.stringify(body)}`);
  }
  const decision = flags.has("--deny") ? "deny" : "allow";
  currentStep = "approve";
  const donePage = await answerOnThePage(started.verification_uri_complete, decision);
  report("approve", { decision, page: donePage.includes("Device connected") ? "connected" : "denied" });

  currentStep = "poll";
  const tokens = await polling;
  const claims = tokens.claims();
  check(claims.aud === CLIENT_ID, `aud ${claims.aud}`);
  report("poll", {
    token_type: tokens.token_type,
    scope: tokens.scope,
    has_refresh_token: typeof tokens.refresh_token === "string",
    waited_ms: Date.now() - began,
    claims,
  });

  currentStep = "userinfo";
  const userinfo = await client.fetchUserInfo(config, tokens.access_token, claims.sub);
  report("userinfo", { userinfo });
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
