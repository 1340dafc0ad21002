// Logs a user in through the plugin's login page in headless Chromium
// (Debian's, through playwright-core: no browser download), the way a
// single-page or native app's user would: open the authorization URL,
// fill the form, press the button, and follow the 303 to the app's
// redirect URI (the test's own server on a loopback port, as a native
// app listens, RFC 8252 §7.3).
//
//   node login.mjs <authorization URL> <redirect URI prefix> <username> <password> <screenshot.png>
//
// Prints {"callback": "<the URL the browser was sent to>", "title": …}.
import { chromium } from 'playwright-core';

const [authURL, redirectPrefix, username, password, screenshot] = process.argv.slice(2);
const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
  args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
    '--disable-background-networking', '--disable-component-update', '--disable-sync'],
});
try {
  // Caddy's local CA is not in this browser's trust store.
  const context = await browser.newContext({ ignoreHTTPSErrors: true });
  const page = await context.newPage();
  await page.goto(authURL);
  const title = await page.title();
  if (screenshot) await page.screenshot({ path: screenshot });
  await page.getByLabel('Username').fill(username);
  await page.getByLabel('Password').fill(password);
  await Promise.all([
    page.waitForURL((u) => u.href.startsWith(redirectPrefix), { timeout: 15000 }),
    page.getByRole('button', { name: /Sign in/ }).click(),
  ]);
  console.log(JSON.stringify({ callback: page.url(), title, body: await page.textContent('body') }));
} finally {
  await browser.close();
}
