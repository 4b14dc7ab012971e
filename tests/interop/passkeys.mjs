// Passkeys in a real browser: Debian's headless Chromium, driven by playwright-core, with
// the DevTools virtual authenticator (WebAuthn.addVirtualAuthenticator: CTAP2, internal,
// resident keys, user verification). Run by crates/tessera/tests/it/passkeys.rs against a
// node whose issuer is http://localhost:PORT (WebAuthn refuses IP addresses as RP ids).
//
// Environment:
//   ISSUER            the node, http://localhost:PORT
//   ACCESS_TOKEN      an access token of USERNAME (registers the passkey)
//   USERNAME, PASSWORD
//   AUTHORIZE_URL_1   authorization URL of a first-party client (usernameless sign-in)
//   AUTHORIZE_URL_2   the same client again (password, then the passkey as second factor)
//   REDIRECT_PREFIX   the client's redirect URI (not a real host: answered here)
//   CHROMIUM          (optional) the browser; /usr/bin/chromium by default
//
// Scenarios: (1) registration through the JSON API from a page of the node, with the
// page's own passkey.js; (2) the JSON API's second step with the passkey; (3) the JSON
// API's usernameless sign-in; (4) the hosted login page's passkey button; (5) the hosted
// second-factor page's passkey button; (6) forged assertions, signed with the virtual
// authenticator's own key (read through WebAuthn.getCredentials) so that each differs from
// a valid one in one thing only: the origin, the RP id, the challenge, the counter, the
// signature, the credential — each refused, and the untouched one accepted.
// Prints one JSON summary line on stdout (tokens and codes for the Rust side to check);
// exits 1 when a check failed.

import { createHash, createPrivateKey, randomBytes, sign } from 'node:crypto';
import { chromium } from 'playwright-core';

function need(name) {
  const value = process.env[name];
  if (!value) {
    console.error(`passkeys.mjs: environment variable ${name} is not set`);
    process.exit(2);
  }
  return value;
}

const ISSUER = need('ISSUER').replace(/\/$/, '');
const ACCESS_TOKEN = need('ACCESS_TOKEN');
const USERNAME = need('USERNAME');
const PASSWORD = need('PASSWORD');
const AUTHORIZE_URL_1 = need('AUTHORIZE_URL_1');
const AUTHORIZE_URL_2 = need('AUTHORIZE_URL_2');
const REDIRECT_PREFIX = need('REDIRECT_PREFIX');
const CHROMIUM = process.env.CHROMIUM || '/usr/bin/chromium';
const RP_ID = new URL(ISSUER).hostname;

const checks = [];
const failures = [];
const results = {};
let currentStep = '';

function check(name, ok, detail = '') {
  const label = `${currentStep}: ${name}`;
  checks.push(label);
  if (!ok) {
    failures.push(detail ? `${label} (${detail})` : label);
    console.error(`FAIL ${label} ${detail}`);
  }
  return ok;
}

function equal(name, actual, expected) {
  return check(name, actual === expected, `got ${JSON.stringify(actual)}, want ${JSON.stringify(expected)}`);
}

async function step(name, body) {
  currentStep = name;
  try {
    await body();
  } catch (err) {
    check('ran to the end', false, String(err && err.stack ? err.stack : err).split('\n').slice(0, 5).join(' | '));
  }
}

async function api(path, body, token) {
  const headers = { 'Content-Type': 'application/json' };
  if (token) headers.Authorization = `Bearer ${token}`;
  const response = await fetch(`${ISSUER}${path}`, { method: 'POST', headers, body: JSON.stringify(body) });
  const text = await response.text();
  let json = null;
  try {
    json = JSON.parse(text);
  } catch {
    json = { text };
  }
  return { status: response.status, body: json };
}

/** Logs in with the password: the mfaToken of the second step. */
async function passwordStep() {
  const login = await api('/auth/login', { email: USERNAME, password: PASSWORD });
  equal('the password login asks for a factor', login.status, 401);
  equal('error mfa_required', login.body.error, 'mfa_required');
  check('webauthn is among the methods', (login.body.methods || []).includes('webauthn'), JSON.stringify(login.body));
  return login.body.mfaToken;
}

// ---------------------------------------------------------------------------------------
// Forged assertions
// ---------------------------------------------------------------------------------------

const b64url = (bytes) => Buffer.from(bytes).toString('base64url');
const sha256 = (data) => createHash('sha256').update(data).digest();

/** An assertion by the credential `cred` (WebAuthn.getCredentials), changed by `change`. */
function forge(cred, challenge, change = {}) {
  const clientData = Buffer.from(
    JSON.stringify({
      type: change.type || 'webauthn.get',
      challenge: change.challenge || challenge,
      origin: change.origin || new URL(ISSUER).origin,
      crossOrigin: false,
    }),
  );
  const counter = Buffer.alloc(4);
  counter.writeUInt32BE(change.counter);
  // Flags: user present (0x01) and verified (0x04).
  const authData = Buffer.concat([sha256(change.rpId || RP_ID), Buffer.from([0x05]), counter]);
  const key = createPrivateKey({ key: Buffer.from(cred.privateKey, 'base64'), format: 'der', type: 'pkcs8' });
  let signature = sign('sha256', Buffer.concat([authData, sha256(clientData)]), key);
  if (change.tamper) signature = Buffer.from(signature.map((b, i) => (i === signature.length - 1 ? b ^ 1 : b)));
  const id = change.credentialId || b64url(Buffer.from(cred.credentialId, 'base64'));
  return {
    id,
    rawId: id,
    type: 'public-key',
    response: {
      authenticatorData: b64url(authData),
      clientDataJSON: b64url(clientData),
      signature: b64url(signature),
      userHandle: b64url(Buffer.from(cred.userHandle, 'base64')),
    },
    extensions: {},
  };
}

// ---------------------------------------------------------------------------------------
// The browser
// ---------------------------------------------------------------------------------------

const CLIENT_PAGE = '<!DOCTYPE html><html lang="en"><title>client</title><p>back at the client</p></html>';

const browser = await chromium.launch({
  executablePath: CHROMIUM,
  headless: true,
  args: [
    '--no-sandbox',
    '--disable-gpu',
    '--no-first-run',
    '--disable-background-networking',
    '--disable-component-update',
    '--disable-sync',
    `--host-resolver-rules=MAP ${RP_ID} 127.0.0.1, MAP * ~NOTFOUND`,
  ],
});
const watchdog = setTimeout(() => {
  console.error('passkeys.mjs: gave up after 150 s');
  process.exit(1);
}, 150_000);

const context = await browser.newContext();
context.setDefaultTimeout(20_000);
const page = await context.newPage();
const devtools = await context.newCDPSession(page);
// The client's redirect URI is answered here (see pages.mjs for why not page.route).
devtools.on('Fetch.requestPaused', (event) => {
  devtools
    .send('Fetch.fulfillRequest', {
      requestId: event.requestId,
      responseCode: 200,
      responseHeaders: [{ name: 'Content-Type', value: 'text/html; charset=utf-8' }],
      body: Buffer.from(CLIENT_PAGE).toString('base64'),
    })
    .catch(() => {});
});
await devtools.send('Fetch.enable', {
  patterns: [{ urlPattern: `${new URL(REDIRECT_PREFIX).origin}/*`, requestStage: 'Request' }],
});
await devtools.send('WebAuthn.enable');
const { authenticatorId } = await devtools.send('WebAuthn.addVirtualAuthenticator', {
  options: {
    protocol: 'ctap2',
    transport: 'internal',
    hasResidentKey: true,
    hasUserVerification: true,
    isUserVerified: true,
    automaticPresenceSimulation: true,
  },
});

/** Runs `action`, which must end at the client's redirect URI; its query parameters. */
async function toClient(action) {
  try {
    await Promise.all([page.waitForURL((url) => url.href.startsWith(REDIRECT_PREFIX), { timeout: 20_000 }), action()]);
  } catch (err) {
    const alert = (await page.getByRole('alert').allInnerTexts().catch(() => [])).join(' ');
    throw new Error(`not back at the client: at ${page.url()}, "${await page.title()}" ${alert}: ${err.message}`);
  }
  return Object.fromEntries(new URL(page.url()).searchParams);
}

try {
  await step('registration through the JSON API', async () => {
    const loaded = await page.goto(AUTHORIZE_URL_1);
    equal('the login page loads', loaded.status(), 200);
    await page.getByRole('button', { name: 'Sign in with a passkey' }).waitFor({ state: 'visible' });
    const csp = loaded.headers()['content-security-policy'] || '';
    check("scripts only from the node's origin", csp.includes("script-src 'self'") && !/unsafe/.test(csp), csp);
    const outcome = await page.evaluate(async (token) => {
      const post = (path, body) =>
        fetch(path, {
          method: 'POST',
          headers: { 'Content-Type': 'application/json', Authorization: `Bearer ${token}` },
          body: JSON.stringify(body),
        }).then(async (r) => ({ status: r.status, body: await r.json() }));
      const begun = await post('/auth/mfa/webauthn', { name: 'Laptop' });
      const credential = await window.TesseraPasskeys.create(begun.body);
      const confirmed = await post('/auth/mfa/webauthn/confirm', {
        registrationToken: begun.body.registrationToken,
        credential,
      });
      // The same registration again: its token is used up.
      const again = await post('/auth/mfa/webauthn/confirm', {
        registrationToken: begun.body.registrationToken,
        credential,
      });
      // A second ceremony excludes the passkey already registered.
      const second = await post('/auth/mfa/webauthn', {});
      return { begun, confirmed, again, second };
    }, ACCESS_TOKEN);
    equal('begin answers 200', outcome.begun.status, 200);
    equal('the RP id is the issuer host', outcome.begun.body.publicKey.rp.id, RP_ID);
    equal('a discoverable credential is asked for', outcome.begun.body.publicKey.authenticatorSelection.residentKey, 'required');
    equal('user verification is required', outcome.begun.body.publicKey.authenticatorSelection.userVerification, 'required');
    equal('confirm answers 201', outcome.confirmed.status, 201);
    equal('the first factor brings ten recovery codes', (outcome.confirmed.body.recoveryCodes || []).length, 10);
    equal('a registration token works once', outcome.again.status, 401);
    equal('the registered passkey is excluded next time', (outcome.second.body.publicKey.excludeCredentials || []).length, 1);
    const { credentials } = await devtools.send('WebAuthn.getCredentials', { authenticatorId });
    equal('the authenticator holds one resident credential', credentials.length, 1);
    check('the credential is resident', credentials[0] && credentials[0].isResidentCredential === true);
    results.factorId = outcome.confirmed.body.factorId;
  });

  await step('second factor through the JSON API', async () => {
    const mfaToken = await passwordStep();
    const outcome = await page.evaluate(async (mfaToken) => {
      const post = (path, body) =>
        fetch(path, { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify(body) }).then(
          async (r) => ({ status: r.status, body: await r.json() }),
        );
      const options = await post('/auth/mfa/challenge', { mfaToken, method: 'webauthn' });
      const credential = await window.TesseraPasskeys.get(options.body);
      const verified = await post('/auth/mfa/verify', { mfaToken, method: 'webauthn', credential });
      // The same assertion once more, with a fresh challenge on the same sign-in: refused.
      return { options, verified };
    }, mfaToken);
    equal('the challenge answers 200', outcome.options.status, 200);
    equal('the options list the passkey', (outcome.options.body.publicKey.allowCredentials || []).length, 1);
    equal('verify answers 200', outcome.verified.status, 200);
    results.secondFactorAccessToken = outcome.verified.body.accessToken;
  });

  await step('usernameless sign-in through the JSON API', async () => {
    const outcome = await page.evaluate(async () => {
      const post = (path, body) =>
        fetch(path, { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify(body) }).then(
          async (r) => ({ status: r.status, body: await r.json() }),
        );
      const options = await post('/auth/passkey/options', {});
      const credential = await window.TesseraPasskeys.get(options.body);
      const login = await post('/auth/passkey/login', { passkeyToken: options.body.passkeyToken, credential });
      const replayed = await post('/auth/passkey/login', { passkeyToken: options.body.passkeyToken, credential });
      return { options, login, replayed };
    });
    equal('options answer 200', outcome.options.status, 200);
    equal('no credential list: the authenticator offers its own', (outcome.options.body.publicKey.allowCredentials || []).length, 0);
    equal('login answers 200', outcome.login.status, 200);
    equal('the same answer again is refused', outcome.replayed.status, 401);
    results.usernamelessAccessToken = outcome.login.body.accessToken;
  });

  await step('hosted login: the passkey button', async () => {
    await context.clearCookies();
    await page.goto(AUTHORIZE_URL_1);
    const params = await toClient(() => page.getByRole('button', { name: 'Sign in with a passkey' }).click());
    check('a code came back', typeof params.code === 'string' && params.code.length > 10, JSON.stringify(params));
    results.usernamelessCode = params.code;
  });

  await step('hosted second factor: the passkey button', async () => {
    await context.clearCookies();
    await page.goto(AUTHORIZE_URL_2);
    await page.getByLabel('E-mail address', { exact: true }).fill(USERNAME);
    await page.getByLabel('Password', { exact: true }).fill(PASSWORD);
    await page.getByRole('button', { name: 'Sign in', exact: true }).click();
    await page.getByRole('button', { name: 'Use your passkey' }).waitFor({ state: 'visible' });
    const params = await toClient(() => page.getByRole('button', { name: 'Use your passkey' }).click());
    check('a code came back', typeof params.code === 'string' && params.code.length > 10, JSON.stringify(params));
    results.secondFactorCode = params.code;
  });

  await step('forged assertions', async () => {
    const { credentials } = await devtools.send('WebAuthn.getCredentials', { authenticatorId });
    const cred = credentials[0];
    let counter = cred.signCount + 10;
    const attempt = async (change, expected, name) => {
      const mfaToken = await passwordStep();
      const options = await api('/auth/mfa/challenge', { mfaToken, method: 'webauthn' });
      const credential = forge(cred, options.body.publicKey.challenge, { counter, ...change });
      const verified = await api('/auth/mfa/verify', { mfaToken, method: 'webauthn', credential });
      equal(name, verified.status, expected);
      if (expected !== 200) equal(`${name}: invalid_credential`, verified.body.code, 'invalid_credential');
      return { mfaToken, credential, verified };
    };
    // The untouched forgery verifies: each refusal below is for its one change.
    const good = await attempt({}, 200, 'a faithful assertion is accepted');
    counter += 1;
    await attempt({ origin: 'http://localhost:1' }, 401, 'another origin is refused');
    await attempt({ origin: 'https://evil.example' }, 401, 'another site is refused');
    await attempt({ rpId: 'evil.localhost' }, 401, 'another RP id is refused');
    await attempt({ challenge: b64url(randomBytes(32)) }, 401, 'another challenge is refused');
    await attempt({ type: 'webauthn.create' }, 401, 'a registration clientData is refused');
    await attempt({ tamper: true }, 401, 'a broken signature is refused');
    await attempt({ credentialId: b64url(randomBytes(16)) }, 401, 'an unknown credential is refused');
    await attempt({ counter: counter - 1 }, 401, 'a counter that did not move on is refused (a cloned key)');
    // Replay: the accepted assertion, presented again on a new sign-in's challenge.
    const mfaToken = await passwordStep();
    await api('/auth/mfa/challenge', { mfaToken, method: 'webauthn' });
    const replayed = await api('/auth/mfa/verify', { mfaToken, method: 'webauthn', credential: good.credential });
    equal('a replayed assertion is refused', replayed.status, 401);
    // And the faithful one still works after all that (the account is not locked by 10).
    counter += 5;
    await attempt({}, 200, 'a faithful assertion still works');
  });
} finally {
  clearTimeout(watchdog);
  const chromiumVersion = browser.version();
  await browser.close();
  console.log(JSON.stringify({ ok: failures.length === 0, chromium: chromiumVersion, checks: checks.length, failures, results }));
  process.exitCode = failures.length === 0 ? 0 : 1;
}
