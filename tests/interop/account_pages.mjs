// The account pages (/account) in a real browser: Debian's headless Chromium driven by
// playwright-core. Run by crates/tessera/tests/it/account_browser.rs against two nodes it
// started; never downloads a browser.
//
// Environment:
//   ISSUER          the node of the main walk (mail goes to the test's SMTP sink)
//   EXPIRY_ISSUER   a node with a 20 s idle timeout whose clock follows the real one
//   SIGN_UP_EMAIL   the address signed up with; NEW_EMAIL the address changed to
//   EXPIRY_EMAIL    a verified user of EXPIRY_ISSUER; PASSWORD everyone's password
//   SCREENSHOT_DIR  where the PNG screenshots go
//
// A mail link is asked of the Rust test: this script prints `NEED {"kind":"mail-link",…}`
// and reads the answer, one JSON line, from stdin.
//
// Checks: every page in English and Korean has <html lang>, the CSP and anti-framing
// headers, zero axe-core WCAG 2.1 A/AA violations, no sideways scrolling at 320 and 375 px,
// and weighs under 50 KB (HTML + CSS + JS, printed); each form is driven by keyboard alone
// (Tab, typing, Space, Enter); values shown back (a user agent with markup) stay text.
// Prints one JSON summary line on stdout; exits 1 when a check failed.

import { mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { chromium } from 'playwright-core';

function need(name) {
  const value = process.env[name];
  if (!value) {
    console.error(`account_pages.mjs: environment variable ${name} is not set`);
    process.exit(2);
  }
  return value;
}

const ISSUER = need('ISSUER').replace(/\/$/, '');
const EXPIRY_ISSUER = need('EXPIRY_ISSUER').replace(/\/$/, '');
const SIGN_UP_EMAIL = need('SIGN_UP_EMAIL');
const NEW_EMAIL = need('NEW_EMAIL');
const EXPIRY_EMAIL = need('EXPIRY_EMAIL');
const PASSWORD = need('PASSWORD');
const SCREENSHOT_DIR = need('SCREENSHOT_DIR');
const CHROMIUM = process.env.CHROMIUM || '/usr/bin/chromium';
const AXE = readFileSync(new URL('./node_modules/axe-core/axe.min.js', import.meta.url), 'utf8');
const XSS_AGENT = '<img src=x onerror=alert(1)> Evil/1.0';
const started = Date.now();

// ---------------------------------------------------------------------------------------
// Bookkeeping
// ---------------------------------------------------------------------------------------

const checks = [];
const failures = [];
const weights = {};
const violations = {};
const consoleErrors = [];
let currentStep = '';

function check(name, ok, detail = '') {
  const label = `${currentStep}: ${name}`;
  checks.push(label);
  if (!ok) {
    const message = detail ? `${label} (${detail})` : label;
    failures.push(message);
    console.error(`FAIL ${message}`);
  }
  return ok;
}

function equal(name, actual, expected) {
  return check(name, actual === expected, `got ${JSON.stringify(actual)}, want ${JSON.stringify(expected)}`);
}

async function step(name, body) {
  currentStep = name;
  console.error(`step: ${name}`);
  try {
    await body();
  } catch (err) {
    const text = String(err && err.stack ? err.stack : err).replace(/\u001b\[[0-9;]*m/g, '');
    check('ran to the end', false, text.split('\n').slice(0, 6).join(' | '));
  }
}

// The Rust test answers NEED lines, one JSON line each.
const answers = createInterface({ input: process.stdin })[Symbol.asyncIterator]();
async function ask(request) {
  console.log(`NEED ${JSON.stringify(request)}`);
  const { value, done } = await answers.next();
  if (done) throw new Error('the test closed stdin');
  const answer = JSON.parse(value);
  if (request.kind === 'mail-link' && !answer.link) throw new Error(`no mail to ${request.to} with ${request.path}`);
  return answer;
}

// ---------------------------------------------------------------------------------------
// The browser
// ---------------------------------------------------------------------------------------

const browser = await chromium.launch({
  executablePath: CHROMIUM,
  headless: true,
  args: [
    '--no-sandbox',
    '--disable-gpu',
    '--disable-quic',
    '--no-first-run',
    '--disable-background-networking',
    '--disable-component-update',
    '--disable-sync',
    `--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE ${new URL(ISSUER).hostname}`,
  ],
});

async function open({ javaScript = true } = {}) {
  const context = await browser.newContext({
    javaScriptEnabled: javaScript,
    viewport: { width: 1280, height: 800 },
    locale: 'en-US',
  });
  context.setDefaultTimeout(20_000);
  context.setDefaultNavigationTimeout(30_000);
  const page = await context.newPage();
  // Every load counts the whole page (HTML + CSS + JS), as a first visit would.
  const devtools = await context.newCDPSession(page);
  await devtools.send('Network.enable');
  await devtools.send('Network.setCacheDisabled', { cacheDisabled: true });
  page.on('response', async (response) => {
    if (response.request().resourceType() === 'document' && response.status() >= 400) {
      const text = await response.text().catch(() => '');
      const alert = (text.match(/<div class="alert"[^]*?<\/div>/) || [''])[0].replace(/<[^>]+>/g, ' ').trim();
      console.error(`note: ${response.request().method()} ${new URL(response.url()).pathname} -> ${response.status()} ${alert}`);
    }
  });
  page.on('console', (message) => {
    if (message.type() === 'error') consoleErrors.push({ step: currentStep, text: message.text() });
  });
  return { context, page };
}

async function setLanguage(context, issuer, lang) {
  await context.addCookies([{ name: 'tessera_lang', value: lang, url: `${issuer}/` }]);
}

/**
 * Loads `path` as it stands in both languages: language, security headers, axe-core (no
 * WCAG 2.1 A/AA violation), weight, no sideways scrolling at 320 and 375 px, and
 * screenshots at 375 and 1280 px. Leaves the page in English at 1280 px.
 */
async function audit(page, context, issuer, name, path) {
  for (const lang of ['ko', 'en']) {
    await setLanguage(context, issuer, lang);
    await page.setViewportSize({ width: 1280, height: 800 });
    let bytes = 0;
    const counting = async (response) => {
      const type = response.request().resourceType();
      if (['document', 'stylesheet', 'script'].includes(type)) {
        const sizes = await response.request().sizes().catch(() => null);
        if (sizes) bytes += sizes.responseBodySize + sizes.responseHeadersSize;
      }
    };
    page.on('response', counting);
    const response = await page.goto(`${issuer}${path}`, { waitUntil: 'load' });
    await page.waitForTimeout(150);
    page.off('response', counting);
    const headers = response.headers();
    equal(`${name} ${lang}: status`, response.status(), 200);
    equal(`${name} ${lang}: <html lang>`, await page.locator('html').getAttribute('lang'), lang);
    check(`${name} ${lang}: CSP forbids framing`, /frame-ancestors 'none'/.test(headers['content-security-policy'] || ''));
    check(`${name} ${lang}: CSP allows no inline script`, !/unsafe-inline/.test(headers['content-security-policy'] || ''));
    equal(`${name} ${lang}: X-Frame-Options`, headers['x-frame-options'], 'DENY');
    equal(`${name} ${lang}: no inline <script>`, await page.locator('script:not([src])').count(), 0);
    weights[`${name}-${lang}`] = bytes;
    check(`${name} ${lang}: under 50 KB`, bytes > 0 && bytes < 50 * 1024, `${bytes} bytes`);
    await page.evaluate(AXE);
    const result = await page.evaluate(() =>
      // eslint-disable-next-line no-undef
      axe.run(document, { runOnly: { type: 'tag', values: ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa'] } }),
    );
    const found = result.violations.map((v) => `${v.id}: ${v.nodes.map((n) => n.target.join(' ')).join(', ')}`);
    if (found.length) violations[`${name}-${lang}`] = found;
    check(`${name} ${lang}: no axe violation`, found.length === 0, found.join(' | '));
    for (const width of [320, 375]) {
      await page.setViewportSize({ width, height: 800 });
      const sideways = await page.evaluate(() => document.documentElement.scrollWidth > window.innerWidth);
      check(`${name} ${lang}: no sideways scrolling at ${width} px`, !sideways);
    }
    await page.setViewportSize({ width: 375, height: 812 });
    await page.screenshot({ path: join(SCREENSHOT_DIR, `${name}-${lang}-375.png`), fullPage: true });
    await page.setViewportSize({ width: 1280, height: 800 });
    await page.screenshot({ path: join(SCREENSHOT_DIR, `${name}-${lang}-1280.png`), fullPage: true });
  }
}

/** Presses Tab until the focused element matches `selector` (at most 40 times). */
async function tabTo(page, selector) {
  for (let i = 0; i < 40; i += 1) {
    await page.keyboard.press('Tab');
    const there = await page.evaluate((s) => document.activeElement && document.activeElement.matches(s), selector);
    if (there) return;
  }
  throw new Error(`Tab never reached ${selector}`);
}

/** Types into the focused field after reaching it by Tab. */
async function typeAt(page, selector, text) {
  await tabTo(page, selector);
  await page.keyboard.type(text);
}

/** From the top of the page (focus reset), Tab through the form and submit with Enter. */
async function keyboardSubmit(page, fields, submit) {
  await page.evaluate(() => {
    if (document.activeElement) document.activeElement.blur();
    window.scrollTo(0, 0);
  });
  await page.locator('body').focus();
  for (const [selector, text] of fields) await typeAt(page, selector, text);
  if (submit) await tabTo(page, submit);
  await Promise.all([page.waitForLoadState('load'), page.waitForNavigation(), page.keyboard.press('Enter')]);
}

/** Signs in on the hosted login page the browser was sent to. */
async function signIn(page, email) {
  await page.waitForURL((url) => url.pathname === '/oauth2/authorize');
  await keyboardSubmit(page, [['#username', email], ['#password', PASSWORD]], null);
}

const watchdog = setTimeout(() => {
  console.error('account_pages.mjs: gave up after 400 s');
  process.exit(1);
}, 400_000);

try {
  mkdirSync(SCREENSHOT_DIR, { recursive: true });
  const { context, page } = await open();
  let refreshToken = '';

  await step('sign up', async () => {
    await audit(page, context, ISSUER, 'signup', '/account/signup');
    // A password that breaks a rule: the rule is marked and the error announced.
    await keyboardSubmit(
      page,
      [['#f-email', SIGN_UP_EMAIL], ['#f-password', 'short'], ['#f-repeat_password', 'short']],
      'button[type=submit]',
    );
    equal('refused sign-up', await page.getByRole('alert').count(), 1);
    equal('the broken rule is marked', await page.locator('.rules .broken').count(), 1);
    equal('the typed address stays', await page.locator('#f-email').inputValue(), SIGN_UP_EMAIL);
    await page.screenshot({ path: join(SCREENSHOT_DIR, 'signup-error-en-1280.png'), fullPage: true });
    await page.locator('#f-email').focus();
    await keyboardSubmit(
      page,
      [['#f-password', PASSWORD], ['#f-repeat_password', PASSWORD]],
      'button[type=submit]',
    );
    check('check your inbox', (await page.locator('h1').innerText()).length > 0);
    check('the address is shown', (await page.locator('main').innerText()).includes(SIGN_UP_EMAIL));
  });

  await step('verify e-mail', async () => {
    const { link } = await ask({ kind: 'mail-link', to: SIGN_UP_EMAIL, path: '/auth/verify-email' });
    await page.goto(link);
    equal('the link lands on the verification page', new URL(page.url()).pathname, '/account/verify-email');
    const token = new URL(link).searchParams.get('token');
    await audit(page, context, ISSUER, 'verify-email', `/account/verify-email?token=${encodeURIComponent(token)}`);
    await keyboardSubmit(page, [], 'button[type=submit]');
    check('verified', (await page.locator('main').innerText()).includes(SIGN_UP_EMAIL));
  });

  await step('sign in', async () => {
    await page.goto(`${ISSUER}/account`);
    await signIn(page, SIGN_UP_EMAIL);
    await page.waitForURL(`${ISSUER}/account`);
    check('signed in', (await page.locator('main').innerText()).includes(SIGN_UP_EMAIL));
    await audit(page, context, ISSUER, 'overview', '/account');
    await audit(page, context, ISSUER, 'security', '/account/security');
  });

  await step('language switch', async () => {
    await page.goto(`${ISSUER}/account`);
    await page.getByRole('link', { name: '한국어' }).click();
    await page.waitForLoadState('load');
    equal('switched to Korean', await page.locator('html').getAttribute('lang'), 'ko');
    await page.goto(`${ISSUER}/account/sessions`);
    equal('remembered', await page.locator('html').getAttribute('lang'), 'ko');
    await page.getByRole('link', { name: 'English' }).click();
    await page.waitForLoadState('load');
    equal('back to English', await page.locator('html').getAttribute('lang'), 'en');
  });

  await step('change e-mail', async () => {
    await audit(page, context, ISSUER, 'email', '/account/email');
    await keyboardSubmit(
      page,
      [['#f-new_email', NEW_EMAIL], ['#f-current_password', PASSWORD]],
      'main button[type=submit]',
    );
    check('confirmation sent', (await page.getByRole('status').allInnerTexts()).join(' ').includes(NEW_EMAIL));
    await page.screenshot({ path: join(SCREENSHOT_DIR, 'email-sent-en-1280.png'), fullPage: true });
    const { link } = await ask({ kind: 'mail-link', to: NEW_EMAIL, path: '/account/email/confirm' });
    const token = new URL(link).searchParams.get('token');
    await audit(page, context, ISSUER, 'email-confirm', `/account/email/confirm?token=${encodeURIComponent(token)}`);
    await keyboardSubmit(page, [], 'main button[type=submit]');
    check('changed', (await page.locator('main').innerText()).includes(NEW_EMAIL));
    await page.goto(`${ISSUER}/account`);
    check('the overview shows the new address', (await page.locator('main').innerText()).includes(NEW_EMAIL));
  });

  await step('another session', async () => {
    // Another device signs in through the first-party JSON API, with markup for a name.
    const login = await fetch(`${ISSUER}/auth/login`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'user-agent': XSS_AGENT },
      body: JSON.stringify({ email: NEW_EMAIL, password: PASSWORD }),
    });
    equal('the other device signs in', login.status, 200);
    refreshToken = (await login.json()).refreshToken;
    check('it has a refresh token', typeof refreshToken === 'string' && refreshToken.length > 20);
    await audit(page, context, ISSUER, 'sessions', '/account/sessions');
    equal('two sessions listed', await page.locator('.items > li').count(), 2);
    check('the user agent is shown as text', (await page.locator('main').innerText()).includes('<img src=x'));
    equal('no element came from it', await page.locator('main img').count(), 0);
  });

  await step('end the other session', async () => {
    await page.goto(`${ISSUER}/account/sessions`);
    await keyboardSubmit(page, [], '.items form button[type=submit]');
    equal('one session left', await page.locator('.items > li').count(), 1);
    check('ended notice', (await page.getByRole('status').count()) >= 1);
    const refused = await fetch(`${ISSUER}/oauth2/token`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({
        grant_type: 'refresh_token',
        refresh_token: refreshToken,
        client_id: 'tessera-first-party',
      }).toString(),
    });
    equal('its refresh token fails', refused.status, 400);
    equal('as invalid_grant', (await refused.json()).error, 'invalid_grant');
  });

  await step('change password', async () => {
    await audit(page, context, ISSUER, 'password', '/account/password');
    await keyboardSubmit(
      page,
      [['#f-current_password', 'not the password'], ['#f-new_password', `${PASSWORD} 2`], ['#f-repeat_password', `${PASSWORD} 2`]],
      'main button[type=submit]',
    );
    equal('a wrong current password is announced', await page.getByRole('alert').count(), 1);
    await keyboardSubmit(
      page,
      [['#f-current_password', PASSWORD], ['#f-new_password', `${PASSWORD} 2`], ['#f-repeat_password', `${PASSWORD} 2`]],
      'main button[type=submit]',
    );
    equal('changed', await page.getByRole('status').count(), 1);
    // Back, so the rest of the walk uses the same password.
    await keyboardSubmit(
      page,
      [['#f-current_password', `${PASSWORD} 2`], ['#f-new_password', `${PASSWORD} 3`], ['#f-repeat_password', `${PASSWORD} 3`]],
      'main button[type=submit]',
    );
    equal('changed again', await page.getByRole('status').count(), 1);
  });

  await step('delete account', async () => {
    await audit(page, context, ISSUER, 'delete', '/account/delete');
    await page.evaluate(() => document.activeElement && document.activeElement.blur());
    await page.locator('body').focus();
    await typeAt(page, '#f-current_password', `${PASSWORD} 3`);
    await tabTo(page, '#f-confirm');
    await page.keyboard.press('Space');
    await tabTo(page, 'main button[type=submit]');
    await Promise.all([page.waitForNavigation(), page.keyboard.press('Enter')]);
    check('deleted', (await page.locator('h1').innerText()).length > 0);
    await page.screenshot({ path: join(SCREENSHOT_DIR, 'deleted-en-1280.png'), fullPage: true });
    await page.goto(`${ISSUER}/account`);
    equal('signed out: the login page', new URL(page.url()).pathname, '/oauth2/authorize');
  });

  await step('forgot password pages', async () => {
    await audit(page, context, ISSUER, 'forgot', '/account/password/forgot');
    await keyboardSubmit(page, [['#f-email', 'nobody@example.com']], 'main button[type=submit]');
    equal('the same answer for anyone', await page.getByRole('status').count(), 1);
    await audit(page, context, ISSUER, 'reset', '/account/password/reset?token=made-up-token');
  });

  await step('works without JavaScript', async () => {
    const { context: plain, page: bare } = await open({ javaScript: false });
    await bare.goto(`${ISSUER}/account/signup`);
    await bare.locator('#f-email').fill('nojs@example.com');
    await bare.locator('#f-password').fill(PASSWORD);
    await bare.locator('#f-repeat_password').fill(PASSWORD);
    await Promise.all([bare.waitForNavigation(), bare.locator('main button[type=submit]').click()]);
    check('signed up with JavaScript off', (await bare.locator('main').innerText()).includes('nojs@example.com'));
    await plain.close();
  });

  await context.close();

  await step('session expiry warning', async () => {
    const { context: ctx, page: p } = await open();
    await p.goto(`${EXPIRY_ISSUER}/account/sessions?from=expiry`);
    await signIn(p, EXPIRY_EMAIL);
    await p.waitForURL(`${EXPIRY_ISSUER}/account/sessions?from=expiry`);
    const warning = p.locator('.expiry-warning');
    check('no warning at first', !(await warning.isVisible()));
    await warning.waitFor({ state: 'visible', timeout: 25_000 });
    check('the warning counts down', /\d+:\d\d/.test(await p.locator('[data-remaining]').innerText()));
    await p.screenshot({ path: join(SCREENSHOT_DIR, 'expiry-warning-en-1280.png'), fullPage: true });
    const before = await (await ctx.request.get(`${EXPIRY_ISSUER}/account/session`)).json();
    await p.getByRole('button', { name: 'Stay signed in' }).click();
    await warning.waitFor({ state: 'hidden', timeout: 5_000 });
    const after = await (await ctx.request.get(`${EXPIRY_ISSUER}/account/session`)).json();
    check('extending pushed the idle expiry out', after.idleExpiresAt > before.idleExpiresAt, `${before.idleExpiresAt} -> ${after.idleExpiresAt}`);
    const ended = p.locator('.expiry-ended');
    await ended.waitFor({ state: 'visible', timeout: 45_000 });
    await p.screenshot({ path: join(SCREENSHOT_DIR, 'expiry-ended-en-1280.png'), fullPage: true });
    await p.getByRole('link', { name: 'Sign in again' }).click();
    await signIn(p, EXPIRY_EMAIL);
    await p.waitForURL(`${EXPIRY_ISSUER}/account/sessions?from=expiry`);
    equal('back on the page it was on', new URL(p.url()).pathname + new URL(p.url()).search, '/account/sessions?from=expiry');
    await ctx.close();
  });

  const cspErrors = consoleErrors.filter((e) => /Content Security Policy|Refused to/i.test(e.text));
  currentStep = 'console';
  check('no CSP violation in the console', cspErrors.length === 0, JSON.stringify(cspErrors.slice(0, 5)));
} finally {
  clearTimeout(watchdog);
  const version = browser.version();
  await browser.close();
  console.log(
    JSON.stringify({
      ok: failures.length === 0,
      chromium: version,
      elapsed_ms: Date.now() - started,
      checks: checks.length,
      failures,
      weights,
      violations,
      console_errors: consoleErrors,
    }),
  );
  process.exitCode = failures.length === 0 ? 0 : 1;
  process.stdin.destroy();
}
