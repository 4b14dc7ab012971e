// The admin console (/console) in a real browser: Debian's headless Chromium driven by
// playwright-core. Run by crates/tessera/tests/it/console.rs against a node it started and
// signed an operator and an auditor in to (the sign-in with a second factor is walked by the
// Rust test; this script gets the app-session cookies). Never downloads a browser.
//
// Environment:
//   ISSUER            the node, http://127.0.0.1:PORT
//   OPERATOR_COOKIE   the operator's tessera_console cookie value
//   AUDITOR_COOKIE    the auditor's tessera_console cookie value
//   USER_PATH         /console/users/{id} of a user the operator disables here
//   PAGES             space-separated console paths to check
//   SCREENSHOT_DIR    where the PNG screenshots go
//   CHROMIUM          (optional) the browser; /usr/bin/chromium by default
//
// For every page, in English and Korean, as the operator: axe-core's WCAG 2.1 A/AA rules
// give no violation; the page (HTML + CSS, all from this origin) weighs under 50 KB
// transferred; at 320 px nothing scrolls sideways; screenshots at 375 and 1280 px. Then,
// with JavaScript off: the operator disables the user with the keyboard only (Tab to the
// button, Enter) and sees the outcome announced; the auditor sees the same pages with no
// form but sign-out, and their direct post is refused (403). Prints one JSON summary line;
// exits 1 when a check failed.

import { mkdirSync, readFileSync } from 'node:fs';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';

function need(name) {
  const value = process.env[name];
  if (!value) {
    console.error(`console_pages.mjs: environment variable ${name} is not set`);
    process.exit(2);
  }
  return value;
}

const ISSUER = need('ISSUER').replace(/\/$/, '');
const OPERATOR_COOKIE = need('OPERATOR_COOKIE');
const AUDITOR_COOKIE = need('AUDITOR_COOKIE');
const USER_PATH = need('USER_PATH');
const PAGES = need('PAGES').split(' ').filter(Boolean);
const SCREENSHOT_DIR = need('SCREENSHOT_DIR');
const CHROMIUM = process.env.CHROMIUM || '/usr/bin/chromium';
const MAX_PAGE_BYTES = 50 * 1024;
const here = dirname(fileURLToPath(import.meta.url));
const AXE = readFileSync(join(here, 'node_modules/axe-core/axe.min.js'), 'utf8');

mkdirSync(SCREENSHOT_DIR, { recursive: true });
const failures = [];
const weights = {};
const fail = (message) => failures.push(message);

const host = new URL(ISSUER).hostname;
const cookiesFor = (value, lang) => [
  { name: 'tessera_console', value, domain: host, path: '/console', httpOnly: true, sameSite: 'Lax' },
  { name: 'tessera_lang', value: lang, domain: host, path: '/', sameSite: 'Lax' },
];
const slug = (path) => path.replace(/^\/console\/?/, '').replace(/[^a-z0-9]+/gi, '-').replace(/^-|-$/g, '') || 'dashboard';

const browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox'] });
try {
  // 1. Every page, both languages: accessibility, weight, layout, screenshots. A context of
  // its own per page: an empty cache, so the stylesheet counts in every page's weight. axe
  // runs as a script of the test, not of the page, so these contexts lift the CSP for its
  // injection (the CSP itself is checked on the response and by the Rust test).
  for (const lang of ['en', 'ko']) {
    for (const path of PAGES) {
      const context = await browser.newContext({ bypassCSP: true, viewport: { width: 1280, height: 900 } });
      await context.addCookies(cookiesFor(OPERATOR_COOKIE, lang));
      const page = await context.newPage();
      let bytes = 0;
      page.on('requestfinished', async (request) => {
        if (!request.url().startsWith(ISSUER)) {
          fail(`a request left the node: ${request.url()}`);
          return;
        }
        const sizes = await request.sizes();
        bytes += sizes.responseBodySize + sizes.responseHeadersSize;
      });
      const response = await page.goto(ISSUER + path, { waitUntil: 'load' });
      if (!response || response.status() !== 200) {
        fail(`${lang} ${path}: status ${response && response.status()}`);
        await context.close();
        continue;
      }
      const htmlLang = await page.getAttribute('html', 'lang');
      if (htmlLang !== lang) fail(`${lang} ${path}: <html lang=${htmlLang}>`);
      if (response.headers()['content-security-policy'] === undefined) fail(`${lang} ${path}: no CSP`);
      await page.waitForLoadState('networkidle');
      weights[`${lang} ${path}`] = bytes;
      if (bytes > MAX_PAGE_BYTES) fail(`${lang} ${path}: ${bytes} bytes transferred (> ${MAX_PAGE_BYTES})`);
      await page.evaluate(AXE);
      const result = await page.evaluate(async () =>
        // eslint-disable-next-line no-undef
        axe.run(document, { runOnly: { type: 'tag', values: ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa'] } }),
      );
      for (const violation of result.violations) {
        fail(`${lang} ${path}: axe ${violation.id} (${violation.impact}): ${violation.nodes.map((n) => n.target.join(' ')).join(', ')}`);
      }
      await page.screenshot({ path: join(SCREENSHOT_DIR, `console-${slug(path)}-${lang}-desktop.png`), fullPage: true });
      await page.setViewportSize({ width: 320, height: 800 });
      const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
      // A wide table scrolls inside its own box; the page itself never does.
      if (overflow > 1) fail(`${lang} ${path}: scrolls sideways by ${overflow}px at 320 px`);
      await page.setViewportSize({ width: 375, height: 812 });
      await page.screenshot({ path: join(SCREENSHOT_DIR, `console-${slug(path)}-${lang}-mobile.png`), fullPage: true });
      await context.close();
    }
  }

  // 2. The operator, keyboard only, JavaScript off: disable the user.
  {
    const context = await browser.newContext({ javaScriptEnabled: false, viewport: { width: 1280, height: 900 } });
    await context.addCookies(cookiesFor(OPERATOR_COOKIE, 'en'));
    const page = await context.newPage();
    await page.goto(ISSUER + USER_PATH);
    const disable = page.getByRole('button', { name: 'Disable' });
    if ((await disable.count()) !== 1) fail('operator: no Disable button');
    let reached = false;
    for (let i = 0; i < 60 && !reached; i += 1) {
      await page.keyboard.press('Tab');
      reached = await disable.evaluate((el) => el === document.activeElement);
    }
    if (!reached) fail('operator: the Disable button cannot be reached with Tab');
    await Promise.all([page.waitForNavigation(), page.keyboard.press('Enter')]);
    const status = page.getByRole('status');
    if (!(await status.isVisible()) || !(await status.innerText()).includes('disabled')) {
      fail(`operator: no announced outcome after Disable: ${await page.content()}`);
    }
    if ((await page.getByRole('button', { name: 'Enable' }).count()) !== 1) fail('operator: the user is not shown disabled');
    await page.screenshot({ path: join(SCREENSHOT_DIR, 'console-user-disabled-en-desktop.png'), fullPage: true });
    // Keyboard search on the user list: type, Enter.
    await page.goto(`${ISSUER}/console/users`);
    await page.getByLabel('E-mail address').focus();
    await page.keyboard.type('nobody-at-all@example.com');
    await Promise.all([page.waitForNavigation(), page.keyboard.press('Enter')]);
    if (!page.url().includes('q=nobody-at-all%40example.com')) fail(`operator: search went to ${page.url()}`);
    await context.close();
  }

  // 3. The auditor: the same pages, read-only; a direct post is refused.
  {
    const context = await browser.newContext({ javaScriptEnabled: false, viewport: { width: 1280, height: 900 } });
    await context.addCookies(cookiesFor(AUDITOR_COOKIE, 'ko'));
    const page = await context.newPage();
    for (const path of PAGES) {
      const response = await page.goto(ISSUER + path);
      if (!response || response.status() !== 200) fail(`auditor ${path}: status ${response && response.status()}`);
      const actions = await page.locator('form[method="post"]').evaluateAll((forms) => forms.map((f) => f.getAttribute('action')));
      const expected = ['/console/sign-out', '/console/session/extend'];
      if (actions.length !== 2 || !expected.every((a) => actions.includes(a))) {
        fail(`auditor ${path}: post forms ${JSON.stringify(actions)} (only sign-out and stay-signed-in expected)`);
      }
    }
    await page.goto(ISSUER + USER_PATH);
    await page.screenshot({ path: join(SCREENSHOT_DIR, 'console-user-auditor-ko-desktop.png'), fullPage: true });
    const csrf = await page.locator('input[name="csrf"]').first().getAttribute('value');
    const refused = await context.request.post(`${ISSUER}${USER_PATH}/enable`, {
      form: { csrf },
      headers: { origin: ISSUER },
    });
    if (refused.status() !== 403) fail(`auditor: a direct post answered ${refused.status()}`);
    await context.close();
  }
} finally {
  await browser.close();
}

console.log(JSON.stringify({ ok: failures.length === 0, failures, weights }));
process.exit(failures.length === 0 ? 0 : 1);
