// A relying party built on `openid-client` (panva, over `oauth4webapi`), a library Tessera
// does not use, walking the whole OpenID Connect surface of a running node:
//
//   discovery → authorization URL (PKCE S256, nonce, state) → the hosted login form over
//   plain HTTP → authorization code grant (the library validates the callback's state and
//   iss, and the ID token: RS256 signature against the JWKS, iss, aud, exp, iat, nonce,
//   auth_time against max_age; the signature only with enableNonRepudiationChecks, which
//   this script turns on) → userinfo (sub must match) → refresh token grant →
//   client credentials grant → revocation → introspection → a silent SSO login
//   (prompt=none) → max_age=0 asks for the password again → RP-initiated logout (the ended
//   session's token refused by userinfo with a Bearer challenge) → prompt=none answers
//   login_required (the library checks state and iss before raising it).
//
// Environment: ISSUER, CLIENT_ID, CLIENT_SECRET, REDIRECT_URI, POST_LOGOUT_REDIRECT_URI
// (default REDIRECT_URI + "/logged-out"), USERNAME, PASSWORD, CC_CLIENT_ID, CC_CLIENT_SECRET.
// The RP client authenticates with client_secret_basic (as registered); the client
// credentials client with the library's default, client_secret_post.
//
// --acr-mfa (with MFA_CODE: the current TOTP code of USERNAME, who has an authenticator)
// runs only discovery and an authorization request with acr_values=urn:tessera:acr:mfa:
// password, then the code on the hosted factor page, then the code grant; the library
// validates the ID token, and its acr and amr must show the factor.
//
// Flags (negative cases, each must make the library raise):
//   --wrong-nonce       expect another nonce than the one sent
//   --tamper-id-token   flip a byte of the ID token's signature in the token response
//   --tamper-code       change the code in the callback (Tessera answers invalid_grant)
//
// Prints one JSON line per step ({"step", "ok", ...}) and exits 0, or prints the failing
// step with the library's error ({"step", "ok": false, "error", "code"}) and exits 1.
import * as client from "openid-client";

import { browse, jar, parseForm, submit as submitForm } from "./hosted_browser.mjs";

const flags = new Set(process.argv.slice(2));
for (const flag of flags) {
  if (!["--wrong-nonce", "--tamper-id-token", "--tamper-code", "--acr-mfa", "--claims"].includes(flag)) {
    console.error(`unknown flag ${flag}`);
    process.exit(2);
  }
}

function env(name, fallback) {
  const value = process.env[name] ?? fallback;
  if (value === undefined || value === "") throw new Error(`${name} is not set`);
  return value;
}

const ISSUER = env("ISSUER");
const CLIENT_ID = env("CLIENT_ID");
const CLIENT_SECRET = env("CLIENT_SECRET");
const REDIRECT_URI = env("REDIRECT_URI");
const POST_LOGOUT_REDIRECT_URI = env("POST_LOGOUT_REDIRECT_URI", `${REDIRECT_URI}/logged-out`);
const USERNAME = env("USERNAME");
const PASSWORD = env("PASSWORD");
const CC_CLIENT_ID = env("CC_CLIENT_ID");
const CC_CLIENT_SECRET = env("CC_CLIENT_SECRET");

let currentStep = "start";
function report(step, facts = {}) {
  console.log(JSON.stringify({ step, ok: true, ...facts }));
}
function check(condition, message) {
  if (!condition) throw new Error(`check failed: ${message}`);
}
/// Runs `action`, which must throw an error of class `kind` with OAuth error `error`.
async function expectRejection(action, kind, error) {
  try {
    await action();
  } catch (err) {
    check(err instanceof kind, `expected ${kind.name}, got ${err.name}: ${err.message}`);
    check(err.error === error, `expected ${error}, got ${err.error}`);
    return err;
  }
  throw new Error(`check failed: expected ${kind.name} ${error}, but it succeeded`);
}

/// Walks the hosted login at `authorizationUrl`; returns the 303's Location.
async function logIn(authorizationUrl) {
  const page = await browse(authorizationUrl);
  const html = await page.text();
  check(page.status === 200, `login page status ${page.status}: ${html.slice(0, 200)}`);
  check(html.includes('name="password"'), "the page is the login form");
  check(jar.has("tessera_csrf"), "a CSRF cookie came with the form");
  const { action, fields } = parseForm(html);
  check(fields.has("csrf"), "the form carries a CSRF token");
  check(fields.get("client_id") === CLIENT_ID, "the form carries the authorization parameters");
  fields.set("username", USERNAME);
  fields.set("password", PASSWORD);
  const loginUrl = new URL(action, ISSUER);
  const done = await browse(loginUrl, {
    method: "POST",
    headers: { "content-type": "application/x-www-form-urlencoded" },
    body: fields.toString(),
  });
  const location = done.headers.get("location");
  check(done.status === 303, `login answered ${done.status}: ${(await done.text()).slice(0, 300)}`);
  check(location?.startsWith(REDIRECT_URI), `redirected to the client, not ${location}`);
  check(jar.has("tessera_sso"), "an SSO cookie was set");
  return { location, loginPath: loginUrl.pathname };
}

/// Posts the first form of `html` (a hosted page) with `extra` fields set.
function submit(html, extra) {
  return submitForm(ISSUER, html, extra);
}

/// The step-up of `--acr-mfa`: an authorization request asking for the MFA class.
async function acrMfa(config) {
  currentStep = "acr_values";
  const MFA = "urn:tessera:acr:mfa";
  check(config.serverMetadata().acr_values_supported?.includes(MFA), "discovery lists the MFA class");
  const codeVerifier = client.randomPKCECodeVerifier();
  const nonce = client.randomNonce();
  const state = client.randomState();
  const authorizationUrl = client.buildAuthorizationUrl(config, {
    redirect_uri: REDIRECT_URI,
    scope: "openid email",
    code_challenge: await client.calculatePKCECodeChallenge(codeVerifier),
    code_challenge_method: "S256",
    nonce,
    state,
    acr_values: MFA,
  });
  const page = await browse(authorizationUrl);
  const loginHtml = await page.text();
  check(page.status === 200 && loginHtml.includes('name="password"'), `the login page, got ${page.status}`);
  const factor = await submit(loginHtml, { username: USERNAME, password: PASSWORD });
  const factorHtml = await factor.text();
  check(factor.status === 200 && factorHtml.includes('name="mfa_token"'), `the factor page, got ${factor.status}`);
  check(!jar.has("tessera_sso"), "no SSO session before the factor");
  const done = await submit(factorHtml, { code: env("MFA_CODE") });
  const location = done.headers.get("location");
  check(done.status === 303 && location?.startsWith(REDIRECT_URI), `redirected to the client, got ${done.status}`);
  const tokens = await client.authorizationCodeGrant(config, new URL(location), {
    pkceCodeVerifier: codeVerifier,
    expectedNonce: nonce,
    expectedState: state,
    idTokenExpected: true,
  });
  const claims = tokens.claims();
  check(claims.acr === MFA, `acr ${claims.acr}`);
  check(claims.amr?.includes("otp") && claims.amr?.includes("mfa"), `amr ${JSON.stringify(claims.amr)}`);
  report("acr_values", { acr: claims.acr, amr: claims.amr, auth_time: typeof claims.auth_time });
}

/// `--claims`: the claims request parameter (OIDC Core §5.5) asking for `email` and
/// `name` in the ID token; the library validates the ID token, userinfo keeps the scope's.
async function claimsParameter(config) {
  currentStep = "claims";
  check(config.serverMetadata().claims_parameter_supported === true, "discovery supports the claims parameter");
  const codeVerifier = client.randomPKCECodeVerifier();
  const nonce = client.randomNonce();
  const state = client.randomState();
  const authorizationUrl = client.buildAuthorizationUrl(config, {
    redirect_uri: REDIRECT_URI,
    scope: "openid email",
    code_challenge: await client.calculatePKCECodeChallenge(codeVerifier),
    code_challenge_method: "S256",
    nonce,
    state,
    display: "touch",
    claims: JSON.stringify({ id_token: { email: { essential: true }, name: null }, userinfo: { email: null } }),
  });
  const page = await browse(authorizationUrl);
  const loginHtml = await page.text();
  check(page.status === 200 && loginHtml.includes('name="password"'), `the login page, got ${page.status}`);
  const done = await submit(loginHtml, { username: USERNAME, password: PASSWORD });
  const location = done.headers.get("location");
  check(done.status === 303 && location?.startsWith(REDIRECT_URI), `redirected to the client, got ${done.status}`);
  const tokens = await client.authorizationCodeGrant(config, new URL(location), {
    pkceCodeVerifier: codeVerifier,
    expectedNonce: nonce,
    expectedState: state,
    idTokenExpected: true,
  });
  const claims = tokens.claims();
  const userinfo = await client.fetchUserInfo(config, tokens.access_token, claims.sub);
  report("claims", { id_token: claims, userinfo });
}

// --- The flow. ------------------------------------------------------------------------------
async function main() {
  currentStep = "discovery";
  const config = await client.discovery(
    new URL(ISSUER),
    CLIENT_ID,
    CLIENT_SECRET,
    client.ClientSecretBasic(CLIENT_SECRET),
    // The issuer is plain http on loopback. And openid-client skips the ID token's
    // signature when it comes straight from the token endpoint (OIDC Core §3.1.3.7 lets TLS
    // vouch for it): enableNonRepudiationChecks makes it verify the RS256 signature
    // against the JWKS too.
    { execute: [client.allowInsecureRequests, client.enableNonRepudiationChecks] },
  );
  const metadata = config.serverMetadata();
  check(metadata.supportsPKCE("S256"), "S256 is advertised");
  report("discovery", {
    issuer: metadata.issuer,
    authorization_response_iss_parameter_supported: metadata.authorization_response_iss_parameter_supported,
    id_token_signing_alg_values_supported: metadata.id_token_signing_alg_values_supported,
  });

  if (flags.has("--acr-mfa")) {
    await acrMfa(config);
    return;
  }
  if (flags.has("--claims")) {
    await claimsParameter(config);
    return;
  }

  if (flags.has("--tamper-id-token")) {
    // A man in the middle (or a bug) changing the ID token: flip one byte of its signature.
    config[client.customFetch] = async (url, options) => {
      const response = await fetch(url, options);
      if (new URL(url).href !== new URL(metadata.token_endpoint).href) return response;
      const body = await response.json();
      if (typeof body.id_token === "string") {
        const i = body.id_token.length - 5;
        const flipped = body.id_token[i] === "A" ? "B" : "A";
        body.id_token = body.id_token.slice(0, i) + flipped + body.id_token.slice(i + 1);
      }
      return new Response(JSON.stringify(body), { status: response.status, headers: response.headers });
    };
  }

  currentStep = "authorization_url";
  const codeVerifier = client.randomPKCECodeVerifier();
  const codeChallenge = await client.calculatePKCECodeChallenge(codeVerifier);
  const nonce = client.randomNonce();
  // state is any printable ASCII (RFC 6749 §A.5): these must survive the hosted form's
  // hidden fields and the redirect byte for byte (the library compares them).
  const state = `${client.randomState()} &="<>'+%;`;
  const authorizationUrl = client.buildAuthorizationUrl(config, {
    redirect_uri: REDIRECT_URI,
    scope: "openid profile email",
    code_challenge: codeChallenge,
    code_challenge_method: "S256",
    nonce,
    state,
    max_age: "600",
  });
  report("authorization_url", { url: authorizationUrl.href });

  currentStep = "login";
  const { location, loginPath } = await logIn(authorizationUrl);
  const callback = new URL(location);
  if (flags.has("--tamper-code")) {
    const code = callback.searchParams.get("code");
    callback.searchParams.set("code", (code[0] === "A" ? "B" : "A") + code.slice(1));
  }
  report("login", {
    form_action: loginPath,
    redirect: `${callback.origin}${callback.pathname}`,
    iss: callback.searchParams.get("iss"),
    state_returned: callback.searchParams.get("state") === state,
  });

  currentStep = "authorization_code_grant";
  const expectedNonce = flags.has("--wrong-nonce") ? client.randomNonce() : nonce;
  const tokens = await client.authorizationCodeGrant(config, callback, {
    pkceCodeVerifier: codeVerifier,
    expectedNonce,
    expectedState: state,
    maxAge: 600,
    idTokenExpected: true,
  });
  const claims = tokens.claims();
  check(claims.nonce === nonce, "the nonce came back");
  check(typeof tokens.refresh_token === "string", "a refresh token was issued");
  report("authorization_code_grant", {
    token_type: tokens.token_type,
    scope: tokens.scope,
    expires_in: tokens.expires_in,
    has_refresh_token: true,
    id_token_alg: JSON.parse(Buffer.from(tokens.id_token.split(".")[0], "base64url").toString()).alg,
    claims,
  });

  currentStep = "userinfo";
  const userinfo = await client.fetchUserInfo(config, tokens.access_token, claims.sub);
  report("userinfo", { userinfo });

  currentStep = "refresh_token_grant";
  const refreshed = await client.refreshTokenGrant(config, tokens.refresh_token);
  check(typeof refreshed.access_token === "string", "a new access token");
  check(refreshed.refresh_token !== tokens.refresh_token, "the refresh token rotated");
  const userinfoAfterRefresh = await client.fetchUserInfo(config, refreshed.access_token, claims.sub);
  report("refresh_token_grant", {
    token_type: refreshed.token_type,
    scope: refreshed.scope,
    rotated: true,
    userinfo_sub: userinfoAfterRefresh.sub,
  });

  currentStep = "client_credentials_grant";
  const ccConfig = await client.discovery(new URL(ISSUER), CC_CLIENT_ID, CC_CLIENT_SECRET, undefined, {
    execute: [client.allowInsecureRequests],
  });
  const cc = await client.clientCredentialsGrant(ccConfig, { scope: "api:read" });
  check(cc.refresh_token === undefined && cc.id_token === undefined, "only an access token");
  const ccIntrospection = await client.tokenIntrospection(ccConfig, cc.access_token);
  check(ccIntrospection.active === true, "the client token is active");
  report("client_credentials_grant", {
    token_type: cc.token_type,
    scope: cc.scope,
    introspection: { active: ccIntrospection.active, client_id: ccIntrospection.client_id, scope: ccIntrospection.scope },
    active_after_revocation: false,
  });

  // A client token revoked by its client (RFC 7009, token_type_hint=access_token).
  await client.tokenRevocation(ccConfig, cc.access_token, { token_type_hint: "access_token" });
  const ccRevoked = await client.tokenIntrospection(ccConfig, cc.access_token);
  check(ccRevoked.active === false, "the revoked client token is inactive");

  currentStep = "revocation";
  const before = await client.tokenIntrospection(config, refreshed.refresh_token);
  check(before.active === true, "the refresh token is active before revocation");
  await client.tokenRevocation(config, refreshed.refresh_token, { token_type_hint: "refresh_token" });
  const after = await client.tokenIntrospection(config, refreshed.refresh_token);
  check(after.active === false, "the revoked refresh token is inactive");
  report("revocation", { active_before: before.active, active_after: after.active });

  currentStep = "end_session";
  // A new login on the same browser is silent (SSO), and its ID token names the session.
  const verifier2 = client.randomPKCECodeVerifier();
  const nonce2 = client.randomNonce();
  const state2 = client.randomState();
  const silent = await browse(
    client.buildAuthorizationUrl(config, {
      redirect_uri: REDIRECT_URI,
      scope: "openid",
      code_challenge: await client.calculatePKCECodeChallenge(verifier2),
      code_challenge_method: "S256",
      nonce: nonce2,
      state: state2,
      prompt: "none",
    }),
  );
  check(silent.status === 302, `prompt=none with an SSO session redirects (got ${silent.status})`);
  const second = await client.authorizationCodeGrant(config, new URL(silent.headers.get("location")), {
    pkceCodeVerifier: verifier2,
    expectedNonce: nonce2,
    expectedState: state2,
  });
  check(second.claims().sid === claims.sid, "the same SSO session");

  // max_age=0 is prompt=login (OIDC Core §3.1.2.1): even a session seconds old must sign
  // in again, and may not be answered with a code.
  currentStep = "max_age_zero";
  const reauth = await browse(
    client.buildAuthorizationUrl(config, {
      redirect_uri: REDIRECT_URI,
      scope: "openid",
      code_challenge: await client.calculatePKCECodeChallenge(client.randomPKCECodeVerifier()),
      code_challenge_method: "S256",
      state: client.randomState(),
      max_age: "0",
    }),
  );
  const reauthPage = await reauth.text();
  check(
    reauth.status === 200 && reauthPage.includes('name="password"'),
    `max_age=0 must show the login page, got ${reauth.status} ${reauth.headers.get("location") ?? ""}`,
  );
  report("max_age_zero", { status: reauth.status, login_page: true });

  currentStep = "end_session";
  const logoutState = client.randomState();
  const endSessionUrl = client.buildEndSessionUrl(config, {
    id_token_hint: second.id_token,
    post_logout_redirect_uri: POST_LOGOUT_REDIRECT_URI,
    state: logoutState,
  });
  const loggedOut = await browse(endSessionUrl);
  const logoutLocation = loggedOut.headers.get("location");
  check(loggedOut.status === 302, `end_session answered ${loggedOut.status}`);
  const expectedLogoutLocation = new URL(POST_LOGOUT_REDIRECT_URI);
  expectedLogoutLocation.searchParams.set("state", logoutState);
  check(logoutLocation === expectedLogoutLocation.href, `logged out to ${logoutLocation}`);
  check(!jar.has("tessera_sso"), "the SSO cookie was cleared");
  const afterLogout = await client.tokenIntrospection(config, second.access_token);
  check(afterLogout.active === false, "the session's access token is inactive after logout");
  // RFC 6750: the ended session's access token is refused with a Bearer challenge.
  const refused = await expectRejection(
    () => client.fetchUserInfo(config, second.access_token, claims.sub),
    client.WWWAuthenticateChallengeError,
    undefined,
  );
  const challenge = refused.cause?.[0];
  check(challenge?.scheme === "bearer", `a Bearer challenge, not ${JSON.stringify(refused.cause)}`);
  check(challenge.parameters.error === "invalid_token", "error=invalid_token in the challenge");
  report("end_session", {
    status: loggedOut.status,
    location: logoutLocation,
    sso_cookie_cleared: true,
    access_token_active_after: afterLogout.active,
    userinfo_after: { status: refused.status, challenge: challenge.parameters },
  });

  currentStep = "prompt_none_after_logout";
  // No session any more: prompt=none answers login_required at the redirect URI, with the
  // state and iss the library checks before it surfaces the error.
  const state3 = client.randomState();
  const verifier3 = client.randomPKCECodeVerifier();
  const silentAgain = await browse(
    client.buildAuthorizationUrl(config, {
      redirect_uri: REDIRECT_URI,
      scope: "openid",
      code_challenge: await client.calculatePKCECodeChallenge(verifier3),
      code_challenge_method: "S256",
      state: state3,
      prompt: "none",
    }),
  );
  check(silentAgain.status === 302, `prompt=none redirects (got ${silentAgain.status})`);
  const loginRequired = await expectRejection(
    () =>
      client.authorizationCodeGrant(config, new URL(silentAgain.headers.get("location")), {
        pkceCodeVerifier: verifier3,
        expectedState: state3,
      }),
    client.AuthorizationResponseError,
    "login_required",
  );
  const again = await browse(authorizationUrl);
  check(again.status === 200, "the next authorization shows the login page again");
  report("prompt_none_after_logout", { error: loginRequired.error });
}

try {
  await main();
  report("done", { library: "openid-client" });
} catch (err) {
  // openid-client wraps oauth4webapi's error: keep the chain of messages and the claim.
  const messages = [];
  let claim;
  for (let e = err; e instanceof Error; e = e.cause) {
    messages.push(e.message);
    claim ??= e.cause && typeof e.cause === "object" && !(e.cause instanceof Error) ? e.cause.claim : undefined;
  }
  console.log(
    JSON.stringify({
      step: currentStep,
      ok: false,
      error: messages.join(": "),
      code: err.code ?? err.name,
      oauth_error: err.error,
      claim,
    }),
  );
  process.exit(1);
}
