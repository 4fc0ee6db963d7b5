// The release build in a real Chromium: the release wasm keeps its views' concrete types (no
// `erase_components`, unlike the debug builds every other suite runs), so this checks that it
// hydrates and works — per language: the banner reaches `connected`, a published event shows in
// the log, and the page logs no error. Usage: node release/smoke.mjs URL PUBLISH_TOKEN
import { chromium } from '@playwright/test';

const [url, token] = process.argv.slice(2);
if (!url || !token) {
  console.error('usage: node release/smoke.mjs URL PUBLISH_TOKEN');
  process.exit(2);
}
const fail = (msg) => {
  console.error(`release smoke: FAILED: ${msg}`);
  process.exitCode = 1;
};

const browser = await chromium.launch({ executablePath: '/usr/bin/chromium' });
try {
  for (const [locale, lang] of [
    ['en-US', 'en'],
    ['zh-CN', 'zh-CN'],
  ]) {
    const context = await browser.newContext({ locale });
    const page = await context.newPage();
    const errors = [];
    page.on('pageerror', (e) => errors.push(`pageerror: ${e.message}`));
    page.on('console', (m) => {
      if (m.type() === 'error') errors.push(`console: ${m.text()}`);
    });
    await page.goto(url);
    const htmlLang = await page.getAttribute('html', 'lang');
    if (htmlLang !== lang) fail(`${locale}: <html lang> is ${htmlLang}, want ${lang}`);
    await page
      .locator('[data-testid="connection-banner"][data-state="connected"]')
      .waitFor({ timeout: 15_000 });
    const marker = `release-smoke-${lang}-${Date.now()}`;
    const res = await fetch(new URL('/api/publish', url), {
      method: 'POST',
      headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
      body: JSON.stringify({ event: 'update', data: { marker } }),
    });
    if (res.status !== 202) fail(`${locale}: publish answered ${res.status}`);
    const item = page.locator('[data-testid="event-log"] [data-event-name="update"]');
    await item.first().waitFor({ timeout: 10_000 });
    const text = await item.first().textContent();
    if (!text.includes(marker)) fail(`${locale}: the event log shows ${JSON.stringify(text)}`);
    const state = await page.getAttribute('[data-testid="connection-banner"]', 'data-state');
    if (state !== 'connected') fail(`${locale}: the banner says ${state} after the event`);
    if (errors.length) fail(`${locale}: the page logged errors:\n  ${errors.join('\n  ')}`);
    console.log(`release smoke: ${locale}: connected, event shown, no errors`);
    await context.close();
  }
} catch (e) {
  fail(e.stack ?? String(e));
} finally {
  await browser.close();
}
