// Federated sign-in in headless Chromium (playwright-core), JavaScript off, in Korean: the
// node's login page shows the provider's button (a labelled link), the browser follows it
// to the upstream (oidc-provider, which signs its account in without typing) and back, and
// arrives at the client's redirect URI with a code. The client's host is not real: the page
// answers it itself through the DevTools Fetch domain, as pages.mjs does.
//
// Environment: AUTHORIZE_URL, BUTTON (the button's accessible name), REDIRECT_PREFIX,
// SCREENSHOT_DIR, CHROMIUM (default /usr/bin/chromium).
// Prints {"ok": true, "params": {...}} (the query the client got) on its last line.

import { join } from 'node:path';
import { chromium } from 'playwright-core';

const need = (name) => {
  const value = process.env[name];
  if (!value) {
    console.error(`federation_browser.mjs: ${name} is not set`);
    process.exit(2);
  }
  return value;
};
const AUTHORIZE_URL = need('AUTHORIZE_URL');
const BUTTON = need('BUTTON');
const REDIRECT_PREFIX = need('REDIRECT_PREFIX');
const SCREENSHOT_DIR = need('SCREENSHOT_DIR');
const CHROMIUM = process.env.CHROMIUM || '/usr/bin/chromium';

const browser = await chromium.launch({
  executablePath: CHROMIUM,
  headless: true,
  args: ['--no-sandbox', '--disable-gpu', '--no-first-run', '--disable-background-networking'],
});
const watchdog = setTimeout(() => {
  console.error('federation_browser.mjs: gave up after 60 s');
  process.exit(1);
}, 60_000);
try {
  const context = await browser.newContext({ javaScriptEnabled: false, locale: 'ko-KR' });
  context.setDefaultTimeout(20_000);
  const page = await context.newPage();
  const devtools = await context.newCDPSession(page);
  devtools.on('Fetch.requestPaused', (event) => {
    const atRedirect = event.request.url.startsWith(REDIRECT_PREFIX);
    devtools
      .send('Fetch.fulfillRequest', {
        requestId: event.requestId,
        responseCode: atRedirect ? 200 : 404,
        responseHeaders: [{ name: 'Content-Type', value: 'text/html; charset=utf-8' }],
        body: Buffer.from(atRedirect ? '<!DOCTYPE html><title>client</title>' : '').toString('base64'),
      })
      .catch(() => {});
  });
  const origin = new URL(REDIRECT_PREFIX).origin;
  await devtools.send('Fetch.enable', {
    patterns: [{ urlPattern: `${origin.replace(/[\\*?]/g, '\\$&')}/*`, requestStage: 'Request' }],
  });

  const response = await page.goto(AUTHORIZE_URL);
  if (response.status() !== 200) throw new Error(`the login page answered ${response.status()}`);
  const lang = await page.getAttribute('html', 'lang');
  if (lang !== 'ko') throw new Error(`the login page is in ${lang}, not ko`);
  const button = page.getByRole('link', { name: BUTTON });
  if ((await button.count()) !== 1) throw new Error(`no single link named "${BUTTON}" on the login page`);
  await page.screenshot({ path: join(SCREENSHOT_DIR, 'federation-login-ko.png'), fullPage: true });
  await Promise.all([page.waitForURL((url) => url.href.startsWith(REDIRECT_PREFIX)), button.click()]);
  const params = Object.fromEntries(new URL(page.url()).searchParams);
  console.log(JSON.stringify({ ok: true, params }));
} catch (err) {
  console.log(JSON.stringify({ ok: false, error: String(err) }));
  process.exitCode = 1;
} finally {
  clearTimeout(watchdog);
  await browser.close();
}
