// The hosted login and consent pages in a real browser: Debian's headless Chromium
// (/usr/bin/chromium), driven by playwright-core. Run by crates/tessera/tests/it/pages.rs
// against a node it started; never downloads a browser (no `npx playwright install`).
//
// Environment:
//   ISSUER                 the node, http://127.0.0.1:PORT
//   AUTHORIZE_URL_EN       authorization URL of a first-party client, ui_locales=en
//   AUTHORIZE_URL_KO       the same client, ui_locales=ko
//   AUTHORIZE_URL_CONSENT  authorization URL of a third-party client (asks for consent), en
//   USERNAME, PASSWORD     a verified user
//   REDIRECT_PREFIX        the clients' redirect URI (not a real host: answered here)
//   SCREENSHOT_DIR         where the PNG screenshots go
//   CHROMIUM               (optional) the browser; /usr/bin/chromium by default
//   DEVICE_USER_CODE_KO, DEVICE_USER_CODE_EN
//                          (optional) user codes of two pending device grants: the /device
//                          page in Korean (approved) and English (denied)
//
// Checks, with JavaScript off unless said otherwise: <html lang>; labelled inputs; a wrong
// password announced in role=alert with the page still usable; login redirects with code,
// state and iss; consent lists the scopes, Deny gives access_denied and Allow a code; on a
// 375x812 phone the submit button is in view and (JavaScript on, for measuring only) nothing
// scrolls sideways; every page has the CSP header and no request leaves the node.
// Prints one JSON summary line on stdout; exits 1 when a check failed.

import { mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { chromium } from 'playwright-core';

const started = Date.now();

function need(name) {
  const value = process.env[name];
  if (!value) {
    console.error(`pages.mjs: environment variable ${name} is not set`);
    process.exit(2);
  }
  return value;
}

const ISSUER = need('ISSUER').replace(/\/$/, '');
const AUTHORIZE_URL_EN = need('AUTHORIZE_URL_EN');
const AUTHORIZE_URL_KO = need('AUTHORIZE_URL_KO');
const AUTHORIZE_URL_CONSENT = need('AUTHORIZE_URL_CONSENT');
const USERNAME = need('USERNAME');
const PASSWORD = need('PASSWORD');
const REDIRECT_PREFIX = need('REDIRECT_PREFIX');
const SCREENSHOT_DIR = need('SCREENSHOT_DIR');
const CHROMIUM = process.env.CHROMIUM || '/usr/bin/chromium';
// Two pending device grants (RFC 8628) of a device client: approved in Korean, denied in
// English on /device. Optional, so the script still runs without them.
const DEVICE_USER_CODE_KO = process.env.DEVICE_USER_CODE_KO;
const DEVICE_USER_CODE_EN = process.env.DEVICE_USER_CODE_EN;

// What the pages say (crates/tessera-idp/src/pages/text.rs).
const TEXT = {
  en: {
    deviceTitle: 'Connect a device',
    code: 'Code',
    continue: 'Continue',
    deviceDone: 'Request denied',
    title: 'Sign in',
    email: 'E-mail address',
    password: 'Password',
    signIn: 'Sign in',
    invalid: 'The e-mail address or the password is incorrect.',
    errorPrefix: 'Error: ',
    allow: 'Allow',
    deny: 'Deny',
  },
  ko: {
    deviceTitle: '기기 연결',
    code: '코드',
    continue: '계속',
    deviceDone: '기기가 연결되었습니다',
    title: '로그인',
    email: '이메일 주소',
    password: '비밀번호',
    signIn: '로그인',
    invalid: '이메일 주소 또는 비밀번호가 올바르지 않습니다.',
    errorPrefix: '오류: ',
    allow: '허용',
    deny: '거부',
  },
};
const HANGUL = /[\uac00-\ud7a3]/;
const DESKTOP = { width: 1280, height: 800 };
const PHONE = { width: 375, height: 812 };

// ---------------------------------------------------------------------------------------
// Bookkeeping
// ---------------------------------------------------------------------------------------

const checks = [];
const failures = [];
const screenshots = [];
const redirects = {};
const observations = {};
const requests = [];
const documents = [];
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

/** Runs one scenario; an exception (a timeout, a missing element) fails it, not the run. */
async function step(name, body) {
  currentStep = name;
  try {
    await body();
  } catch (err) {
    const text = String(err && err.stack ? err.stack : err).replace(/\u001b\[[0-9;]*m/g, '');
    check('ran to the end', false, text.split('\n').slice(0, 6).join(' | '));
  }
}

function isOurs(url) {
  return url === ISSUER || url.startsWith(`${ISSUER}/`) || url.startsWith(REDIRECT_PREFIX);
}

const CLIENT_ORIGIN = new URL(REDIRECT_PREFIX).origin;
const CLIENT_PAGE = '<!DOCTYPE html><html lang="en"><title>client</title><p>back at the client</p></html>';

/**
 * A fresh context (its own cookies: no SSO session) with one page, recording every request.
 *
 * The clients' redirect URI is not a real host: the page answers it itself with a tiny
 * page, through the DevTools Fetch domain. (Playwright's `page.route` is not called for the
 * request a redirect leads to — microsoft/playwright#33882, #39480 — and every way back to
 * the client is a redirect.) Nothing else outside the node can be reached: the browser
 * resolves no host name (`--host-resolver-rules` below), and every request is recorded.
 */
async function open(browser, { javaScript = false, phone = false, locale = 'en-US' } = {}) {
  const context = await browser.newContext({
    javaScriptEnabled: javaScript,
    viewport: phone ? PHONE : DESKTOP,
    deviceScaleFactor: phone ? 2 : 1,
    isMobile: phone,
    hasTouch: phone,
    locale,
  });
  context.setDefaultTimeout(20_000);
  context.setDefaultNavigationTimeout(30_000);
  const step = currentStep;
  context.on('request', (request) => requests.push({ step, url: request.url() }));
  context.on('response', (response) => {
    const redirect = response.status() >= 300 && response.status() < 400;
    if (response.request().resourceType() === 'document' && response.url().startsWith(ISSUER) && !redirect) {
      documents.push({ step, url: response.url(), status: response.status(), headers: response.headers() });
    }
  });
  const page = await context.newPage();
  page.on('console', (message) => {
    if (message.type() === 'error') consoleErrors.push({ step, text: message.text(), url: message.location().url });
  });
  const devtools = await context.newCDPSession(page);
  // The whole client origin: the browser asks it for a favicon too.
  devtools.on('Fetch.requestPaused', (event) => {
    const atRedirect = event.request.url.startsWith(REDIRECT_PREFIX);
    devtools
      .send('Fetch.fulfillRequest', {
        requestId: event.requestId,
        responseCode: atRedirect ? 200 : 404,
        responseHeaders: [{ name: 'Content-Type', value: 'text/html; charset=utf-8' }],
        body: Buffer.from(atRedirect ? CLIENT_PAGE : '').toString('base64'),
      })
      .catch(() => {});
  });
  await devtools.send('Fetch.enable', {
    patterns: [{ urlPattern: `${CLIENT_ORIGIN.replace(/[\\*?]/g, '\\$&')}/*`, requestStage: 'Request' }],
  });
  return { context, page };
}

async function shoot(page, name, { fullPage = true } = {}) {
  const path = join(SCREENSHOT_DIR, name);
  await page.screenshot({ path, fullPage });
  screenshots.push(name);
}

/**
 * Runs `action` (a click, a key press, a navigation), which must make the node redirect the
 * browser to the client; waits until the browser is there and returns the query parameters
 * it arrived with. Anything else fails at once, saying what the node answered instead.
 */
async function toClient(page, action) {
  const [response] = await Promise.all([
    page.waitForResponse((r) => r.request().isNavigationRequest() && r.url().startsWith(ISSUER)),
    action(),
  ]);
  const location = response.headers().location || '';
  if (!(response.status() >= 300 && response.status() < 400 && location.startsWith(REDIRECT_PREFIX))) {
    await page.waitForLoadState('load');
    const alert = (await page.getByRole('alert').allInnerTexts()).join(' ');
    throw new Error(
      `expected a redirect to ${REDIRECT_PREFIX}, the node answered ${response.status()} ` +
        `${new URL(response.url()).pathname} titled "${await page.title()}"${alert ? ` with the alert "${alert}"` : ''}`,
    );
  }
  await page.waitForURL((url) => url.href.startsWith(REDIRECT_PREFIX));
  equal('the browser arrived where the node sent it', page.url(), location);
  return Object.fromEntries(new URL(page.url()).searchParams);
}

/** Runs `action` (a form submission) and waits for the node's answer page. */
async function formPost(page, path, action) {
  const [response] = await Promise.all([
    page.waitForResponse((r) => r.request().method() === 'POST' && new URL(r.url()).pathname === path),
    action(),
  ]);
  await page.waitForLoadState('load');
  return response;
}

function stateOf(authorizeUrl) {
  return new URL(authorizeUrl).searchParams.get('state');
}

function withLocale(authorizeUrl, locale) {
  const url = new URL(authorizeUrl);
  url.searchParams.set('ui_locales', locale);
  return url.href;
}

// ---------------------------------------------------------------------------------------
// Page checks
// ---------------------------------------------------------------------------------------

/** The login page in `lang`, as loaded by `response`. */
async function checkLoginPage(page, response, lang) {
  const t = TEXT[lang];
  equal('login page status', response.status(), 200);
  equal('<html lang>', await page.locator('html').getAttribute('lang'), lang);
  equal('no <script> elements', await page.locator('script').count(), 0);
  equal('h1', (await page.getByRole('heading', { level: 1 }).innerText()).trim(), t.title);
  const email = page.getByLabel(t.email, { exact: true });
  const password = page.getByLabel(t.password, { exact: true });
  equal(`one input labelled "${t.email}"`, await email.count(), 1);
  equal(`one input labelled "${t.password}"`, await password.count(), 1);
  equal('the e-mail label names #username', await email.getAttribute('id'), 'username');
  equal('the e-mail field autocompletes the username', await email.getAttribute('autocomplete'), 'username');
  equal('the password label names #password', await password.getAttribute('id'), 'password');
  equal('the password field is a password field', await password.getAttribute('type'), 'password');
  const button = page.getByRole('button', { name: t.signIn, exact: true });
  equal(`one "${t.signIn}" button`, await button.count(), 1);
  check('the submit button is visible', await button.isVisible());
  equal('no alert before a failed attempt', await page.getByRole('alert').count(), 0);
  return { email, password, button };
}

/** After a wrong password: the error is an alert, tied to the fields, and the form works. */
async function checkLoginError(page, response, lang) {
  const t = TEXT[lang];
  equal('wrong password status', response.status(), 401);
  equal('<html lang> after the error', await page.locator('html').getAttribute('lang'), lang);
  const alert = page.getByRole('alert');
  equal('one role=alert', await alert.count(), 1);
  check('the alert is visible', await alert.isVisible());
  equal('the alert says why', (await alert.innerText()).trim(), t.invalid);
  check('the title says error', (await page.title()).startsWith(t.errorPrefix), await page.title());
  const alertId = await alert.getAttribute('id');
  const email = page.getByLabel(t.email, { exact: true });
  const password = page.getByLabel(t.password, { exact: true });
  for (const [name, field] of [['e-mail', email], ['password', password]]) {
    equal(`the ${name} field is still there`, await field.count(), 1);
    check(`the ${name} field is editable`, await field.isEditable());
    equal(`the ${name} field is described by the alert`, await field.getAttribute('aria-describedby'), alertId);
    equal(`the ${name} field is marked invalid`, await field.getAttribute('aria-invalid'), 'true');
  }
  equal('the password is not echoed back', await password.inputValue(), '');
  check('the typed e-mail address is kept after an error', (await email.inputValue()) !== '', await email.inputValue());
  const button = page.getByRole('button', { name: t.signIn, exact: true });
  check('the submit button is still visible', await button.isVisible());
  return { email, password, button };
}

function checkCodeRedirect(name, params, authorizeUrl) {
  redirects[name] = params;
  check(`${name}: redirect has a code`, typeof params.code === 'string' && params.code.length > 10, JSON.stringify(params));
  equal(`${name}: redirect state`, params.state, stateOf(authorizeUrl));
  equal(`${name}: redirect iss`, params.iss, ISSUER);
  equal(`${name}: no error`, params.error, undefined);
}

/** The consent page in `lang` for the third-party client. */
async function checkConsentPage(page, lang) {
  const t = TEXT[lang];
  equal('consent <html lang>', await page.locator('html').getAttribute('lang'), lang);
  equal('consent: no <script> elements', await page.locator('script').count(), 0);
  const heading = (await page.getByRole('heading', { level: 1 }).innerText()).trim();
  check('the heading names the application', heading.includes('pages-third app'), heading);
  const scopes = new URL(AUTHORIZE_URL_CONSENT).searchParams.get('scope').split(' ');
  const list = page.locator('ul.scopes');
  if ((await list.count()) === 0) {
    throw new Error(`expected the consent page, got "${await page.title()}" (h1 "${heading}")`);
  }
  equal('one scope list', await list.count(), 1);
  const items = (await list.getByRole('listitem').allInnerTexts()).map((s) => s.trim());
  equal('one item per requested scope', items.length, scopes.length);
  check('every scope has a description', items.every((s) => s.length > 0 && !scopes.includes(s)), JSON.stringify(items));
  check('the descriptions differ', new Set(items).size === items.length, JSON.stringify(items));
  check('the e-mail scope is there', items.some((s) => s.includes(lang === 'ko' ? '이메일' : 'e-mail')), JSON.stringify(items));
  if (lang === 'ko') check('the scopes are in Korean', items.every((s) => HANGUL.test(s)), JSON.stringify(items));
  const allow = page.getByRole('button', { name: t.allow, exact: true });
  const deny = page.getByRole('button', { name: t.deny, exact: true });
  equal(`one "${t.allow}" button`, await allow.count(), 1);
  equal(`one "${t.deny}" button`, await deny.count(), 1);
  check('both buttons are visible', (await allow.isVisible()) && (await deny.isVisible()));
  return { allow, deny, scopes: items };
}

async function logIn(page, lang) {
  const t = TEXT[lang];
  await page.getByLabel(t.email, { exact: true }).fill(USERNAME);
  await page.getByLabel(t.password, { exact: true }).fill(PASSWORD);
}

/** JavaScript on: what a phone user would have to scroll. */
async function checkPhoneLayout(page, what) {
  const m = await page.evaluate(() => ({
    scrollWidth: document.documentElement.scrollWidth,
    innerWidth: window.innerWidth,
    scrollY: window.scrollY,
    bodyWidth: document.body.getBoundingClientRect().width,
  }));
  check(`${what}: no horizontal overflow`, m.scrollWidth <= m.innerWidth, JSON.stringify(m));
  equal(`${what}: laid out at the phone's width`, m.innerWidth, PHONE.width);
  return m;
}

/** The submit button is within the first screen (no scrolling), measured by the browser. */
async function buttonInView(button, viewport) {
  const box = await button.boundingBox();
  return {
    box,
    ok:
      box !== null &&
      box.x >= 0 &&
      box.y >= 0 &&
      box.x + box.width <= viewport.width &&
      box.y + box.height <= viewport.height,
  };
}

// ---------------------------------------------------------------------------------------
// Scenarios
// ---------------------------------------------------------------------------------------

mkdirSync(SCREENSHOT_DIR, { recursive: true });
const browser = await chromium.launch({
  executablePath: CHROMIUM,
  headless: true,
  // Playwright adds --headless and a fresh --user-data-dir of its own.
  args: [
    '--no-sandbox',
    '--disable-gpu',
    '--disable-quic',
    '--no-first-run',
    '--disable-background-networking',
    '--disable-component-update',
    '--disable-sync',
    // No name resolves: a request meant for anywhere but the node fails at once, here.
    `--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE ${new URL(ISSUER).hostname}`,
  ],
});
const watchdog = setTimeout(() => {
  console.error('pages.mjs: gave up after 150 s');
  process.exit(1);
}, 150_000);

try {
  // (a) + (b), English: the page, a wrong password, then the right one.
  await step('login en (desktop, JavaScript off)', async () => {
    const { context, page } = await open(browser);
    const loaded = await page.goto(AUTHORIZE_URL_EN);
    const form = await checkLoginPage(page, loaded, 'en');
    await shoot(page, 'login-en-desktop.png');
    await form.email.fill(USERNAME);
    await form.password.fill(`${PASSWORD} wrong`);
    const failed = await formPost(page, '/oauth2/authorize/login', () => form.button.click());
    const again = await checkLoginError(page, failed, 'en');
    await shoot(page, 'login-error-en-desktop.png');
    await again.email.fill(USERNAME);
    await again.password.fill(PASSWORD);
    checkCodeRedirect('login_en', await toClient(page, () => again.button.click()), AUTHORIZE_URL_EN);
    await context.close();
  });

  // (a), Korean: the page, and a login submitted with Enter.
  await step('login ko (desktop, JavaScript off)', async () => {
    const { context, page } = await open(browser, { locale: 'ko-KR' });
    const loaded = await page.goto(AUTHORIZE_URL_KO);
    const form = await checkLoginPage(page, loaded, 'ko');
    await shoot(page, 'login-ko-desktop.png');
    await form.email.fill(USERNAME);
    await form.password.fill(PASSWORD);
    checkCodeRedirect('login_ko', await toClient(page, () => form.password.press('Enter')), AUTHORIZE_URL_KO);
    await context.close();
  });

  // (d) The phone, as a user sees it: the submit button on the first screen.
  await step('login on a phone (375x812, JavaScript off)', async () => {
    const { context, page } = await open(browser, { phone: true });
    for (const [lang, url] of [
      ['en', AUTHORIZE_URL_EN],
      ['ko', AUTHORIZE_URL_KO],
    ]) {
      const loaded = await page.goto(url);
      const form = await checkLoginPage(page, loaded, lang);
      const inView = await buttonInView(form.button, PHONE);
      check(`${lang}: the submit button is on the first screen`, inView.ok, JSON.stringify(inView.box));
      await shoot(page, `login-${lang}-mobile.png`, { fullPage: false });
    }
    await context.close();
  });

  // (d) The phone, measured: JavaScript on in this context only, to read scrollWidth.
  // Views the consent page without deciding (the next step decides).
  await step('phone layout (375x812, JavaScript on for measuring)', async () => {
    const { context, page } = await open(browser, { phone: true, javaScript: true });
    const layout = {};
    await page.goto(AUTHORIZE_URL_EN);
    layout.login_en = await checkPhoneLayout(page, 'login en');
    const button = page.getByRole('button', { name: TEXT.en.signIn, exact: true });
    const rect = await button.evaluate((b) => b.getBoundingClientRect().toJSON());
    check('login en: the submit button ends above the fold', rect.bottom <= PHONE.height, JSON.stringify(rect));

    await page.goto(withLocale(AUTHORIZE_URL_CONSENT, 'ko'));
    layout.login_ko = await checkPhoneLayout(page, 'login ko');
    const t = TEXT.ko;
    await page.getByLabel(t.email, { exact: true }).fill(USERNAME);
    await page.getByLabel(t.password, { exact: true }).fill(`${PASSWORD} wrong`);
    const failed = await formPost(page, '/oauth2/authorize/login', () =>
      page.getByRole('button', { name: t.signIn, exact: true }).click(),
    );
    const again = await checkLoginError(page, failed, 'ko');
    layout.login_error_ko = await checkPhoneLayout(page, 'login error ko');
    // Reported, not required: with the alert above it, the button may need a scroll.
    observations.phone_button_in_view_with_error_ko = (await buttonInView(again.button, PHONE)).ok;
    await shoot(page, 'login-error-ko-mobile.png', { fullPage: false });

    await logIn(page, 'ko');
    const consent = await formPost(page, '/oauth2/authorize/login', () => again.button.click());
    equal('consent page status', consent.status(), 200);
    await checkConsentPage(page, 'ko');
    layout.consent_ko = await checkPhoneLayout(page, 'consent ko');
    await shoot(page, 'consent-ko-mobile.png');

    await page.goto(AUTHORIZE_URL_CONSENT);
    await checkConsentPage(page, 'en');
    layout.consent_en = await checkPhoneLayout(page, 'consent en');
    await shoot(page, 'consent-en-mobile.png');

    const bad = new URL(AUTHORIZE_URL_EN);
    bad.searchParams.set('client_id', 'no-such-application');
    bad.searchParams.set('ui_locales', 'ko');
    await page.goto(bad.href);
    layout.error_page_ko = await checkPhoneLayout(page, 'error page ko');
    await shoot(page, 'error-page-ko-mobile.png');
    observations.phone_layout = layout;
    await context.close();
  });

  // (c) Consent for a third-party client: Deny, then Allow, then remembered.
  await step('consent (desktop, JavaScript off)', async () => {
    const { context, page } = await open(browser);
    const loaded = await page.goto(AUTHORIZE_URL_CONSENT);
    const form = await checkLoginPage(page, loaded, 'en');
    await logIn(page, 'en');
    const consent = await formPost(page, '/oauth2/authorize/login', () => form.button.click());
    equal('consent page status', consent.status(), 200);
    const en = await checkConsentPage(page, 'en');
    observations.consent_scopes_en = en.scopes;
    await shoot(page, 'consent-en-desktop.png');
    const denied = await toClient(page, () => en.deny.click());
    redirects.consent_deny = denied;
    equal('deny: error', denied.error, 'access_denied');
    equal('deny: state', denied.state, stateOf(AUTHORIZE_URL_CONSENT));
    equal('deny: iss', denied.iss, ISSUER);
    equal('deny: no code', denied.code, undefined);

    // Asked again (the session is still there), in Korean this time; Allow.
    const urlKo = withLocale(AUTHORIZE_URL_CONSENT, 'ko');
    const shown = await page.goto(urlKo);
    equal('consent asked again after a deny', shown.status(), 200);
    const ko = await checkConsentPage(page, 'ko');
    observations.consent_scopes_ko = ko.scopes;
    await shoot(page, 'consent-ko-desktop.png');
    checkCodeRedirect('consent_allow', await toClient(page, () => ko.allow.click()), urlKo);

    // Allowed once is allowed: straight back to the client with a code.
    checkCodeRedirect(
      'consent_remembered',
      await toClient(page, () => page.goto(AUTHORIZE_URL_CONSENT)),
      AUTHORIZE_URL_CONSENT,
    );
    await context.close();
  });

  // An error page (never redirected: the client is unknown).
  await step('error page (desktop, JavaScript off)', async () => {
    const { context, page } = await open(browser);
    const bad = new URL(AUTHORIZE_URL_EN);
    bad.searchParams.set('client_id', 'no-such-application');
    const loaded = await page.goto(bad.href);
    equal('error page status', loaded.status(), 400);
    equal('error page <html lang>', await page.locator('html').getAttribute('lang'), 'en');
    check('the title says error', (await page.title()).startsWith(TEXT.en.errorPrefix), await page.title());
    equal('error page h1', await page.getByRole('heading', { level: 1 }).count(), 1);
    await shoot(page, 'error-page-en-desktop.png');
    await context.close();
  });

  // The device verification page: the code typed in lower case without its dash, the
  // hosted login, the confirmation naming the scopes, the answer.
  for (const [lang, code, decision] of [
    ['ko', DEVICE_USER_CODE_KO, 'allow'],
    ['en', DEVICE_USER_CODE_EN, 'deny'],
  ]) {
    if (!code) continue;
    await step(`device page ${lang} (desktop, JavaScript off)`, async () => {
      const { context, page } = await open(browser, { locale: lang === 'ko' ? 'ko-KR' : 'en-US' });
      const text = TEXT[lang];
      const shown = await page.goto(`${ISSUER}/device`);
      equal('device page status', shown.status(), 200);
      equal('device page <html lang>', await page.locator('html').getAttribute('lang'), lang);
      equal('device page h1', (await page.getByRole('heading', { level: 1 }).innerText()).trim(), text.deviceTitle);
      await shoot(page, `device-${lang}-desktop.png`);
      await page.getByLabel(text.code, { exact: true }).fill(code.replace('-', '').toLowerCase());
      await Promise.all([page.waitForLoadState('load'), page.getByRole('button', { name: text.continue }).click()]);
      await page.getByLabel(text.email, { exact: true }).fill(USERNAME);
      await page.getByLabel(text.password, { exact: true }).fill(PASSWORD);
      await Promise.all([
        page.waitForURL((url) => url.pathname === '/device' && url.searchParams.has('user_code')),
        page.getByRole('button', { name: text.signIn, exact: true }).click(),
      ]);
      equal('confirmation <html lang>', await page.locator('html').getAttribute('lang'), lang);
      check('the confirmation shows the code', (await page.locator('code.key').innerText()).trim() === code);
      const scopes = await page.getByRole('list').locator('li').allInnerTexts();
      check('the confirmation lists the scopes', scopes.length >= 1, JSON.stringify(scopes));
      if (lang === 'ko') check('the scopes are in Korean', scopes.every((s) => HANGUL.test(s)), JSON.stringify(scopes));
      await shoot(page, `device-confirm-${lang}-desktop.png`);
      const button = text[decision];
      await Promise.all([page.waitForLoadState('load'), page.getByRole('button', { name: button, exact: true }).click()]);
      const heading = (await page.getByRole('heading', { level: 1 }).innerText()).trim();
      equal('the answer page', heading, decision === 'allow' ? TEXT.ko.deviceDone : TEXT.en.deviceDone);
      await shoot(page, `device-done-${lang}-desktop.png`);
      await context.close();
    });
  }

  // (e) Every page had the CSP header, and nothing left the node.
  currentStep = 'headers and requests';
  check('some hosted pages were loaded', documents.length >= 10, String(documents.length));
  for (const doc of documents) {
    const csp = doc.headers['content-security-policy'] || '';
    const where = `${doc.status} ${new URL(doc.url).pathname}`;
    check(`CSP on ${where}`, csp.includes("default-src 'none'") && csp.includes("frame-ancestors 'none'"), csp || 'missing');
    check(`no unsafe CSP on ${where}`, !/unsafe-(inline|eval)/.test(csp), csp);
    check(`scripts only from the node on ${where}`, /script-src 'self';/.test(csp), csp);
    equal(`X-Frame-Options on ${where}`, doc.headers['x-frame-options'], 'DENY');
    equal(`Cache-Control on ${where}`, doc.headers['cache-control'], 'no-store');
  }
  const external = requests.filter((r) => !isOurs(r.url));
  check('no request left the node', external.length === 0, JSON.stringify(external.slice(0, 5)));
  const steps = [...new Set(documents.map((d) => d.step))];
  for (const s of steps) {
    check(
      `${s}: the stylesheet was fetched from the node`,
      requests.some((r) => r.step === s && new URL(r.url).pathname === '/assets/tessera.css'),
    );
  }
  const cspErrors = consoleErrors.filter((e) => /Content Security Policy|Refused to/i.test(e.text));
  check('no CSP violation in the console', cspErrors.length === 0, JSON.stringify(cspErrors.slice(0, 5)));
  // With no name resolving, anything that tried to reach another host failed loudly.
  const unresolved = consoleErrors.filter((e) => /ERR_NAME_NOT_RESOLVED/.test(e.text));
  check('no attempt to reach another host', unresolved.length === 0, JSON.stringify(unresolved.slice(0, 5)));
} finally {
  clearTimeout(watchdog);
  const browserVersion = browser.version();
  await browser.close();
  const playwright = JSON.parse(
    readFileSync(new URL('./node_modules/playwright-core/package.json', import.meta.url), 'utf8'),
  ).version;
  const summary = {
    ok: failures.length === 0,
    chromium: browserVersion,
    playwright_core: playwright,
    elapsed_ms: Date.now() - started,
    checks: checks.length,
    failures,
    redirects,
    screenshots,
    requests: { total: requests.length, external: requests.filter((r) => !isOurs(r.url)).map((r) => r.url) },
    console_errors: consoleErrors,
    observations,
  };
  console.log(JSON.stringify(summary));
  process.exitCode = failures.length === 0 ? 0 : 1;
}
