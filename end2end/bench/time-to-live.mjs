// Time to live: from navigation start to the banner's `connected`, in Chromium (Debian's
// /usr/bin/chromium through Playwright), against a server that is already running.
// Usage: node bench/time-to-live.mjs URL [LOADS] — prints one JSON line per load and a summary.
// Each load is a fresh browser context (a cold HTTP cache and a fresh connection, as a first
// visit); `--warm` reuses one context (a returning visitor: cached wasm, new page).
import { chromium } from '@playwright/test';

const url = process.argv[2];
const loads = Number(process.argv[3] ?? 20);
const warm = process.argv.includes('--warm');
if (!url) {
  console.error('usage: node bench/time-to-live.mjs URL [LOADS] [--warm]');
  process.exit(2);
}

// Runs in the page before any of its scripts: note the moment the banner first says connected,
// and when hydration's first paint and the stream's first message happen.
const probe = () => {
  const mark = () => {
    const banner = document.querySelector('[data-testid="connection-banner"]');
    if (banner && banner.getAttribute('data-state') === 'connected' && !window.__ttl) {
      window.__ttl = performance.now();
    }
  };
  new MutationObserver(mark).observe(document, {
    subtree: true,
    attributes: true,
    childList: true,
    attributeFilter: ['data-state'],
  });
};

const browser = await chromium.launch({ executablePath: '/usr/bin/chromium' });
const results = [];
let context = warm ? await browser.newContext() : null;
if (warm) {
  // One load to fill the cache.
  const page = await context.newPage();
  await page.goto(url);
  await page.waitForSelector('[data-testid="connection-banner"][data-state="connected"]');
  await page.close();
}
for (let i = 0; i < loads; i++) {
  const ctx = warm ? context : await browser.newContext();
  await ctx.addInitScript(probe);
  const page = await ctx.newPage();
  await page.goto(url);
  await page.waitForFunction(() => window.__ttl !== undefined, null, { timeout: 15000 });
  const row = await page.evaluate(() => {
    const nav = performance.getEntriesByType('navigation')[0];
    const wasm = performance
      .getEntriesByType('resource')
      .find((r) => r.name.endsWith('.wasm'));
    return {
      connected_ms: Math.round(window.__ttl),
      response_end_ms: Math.round(nav.responseEnd),
      dom_content_loaded_ms: Math.round(nav.domContentLoadedEventEnd),
      wasm_end_ms: wasm ? Math.round(wasm.responseEnd) : null,
      wasm_transfer_bytes: wasm ? wasm.transferSize : null,
    };
  });
  results.push(row);
  console.log(JSON.stringify({ load: i + 1, ...row }));
  await page.close();
  if (!warm) await ctx.close();
}
await browser.close();

const pct = (xs, p) => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.ceil((p / 100) * s.length) - 1)];
};
const ttl = results.map((r) => r.connected_ms);
console.log(
  JSON.stringify({
    summary: 'navigation start -> banner connected (ms)',
    cache: warm ? 'warm' : 'cold',
    loads,
    p50: pct(ttl, 50),
    p95: pct(ttl, 95),
    min: Math.min(...ttl),
    max: Math.max(...ttl),
    wasm_end_p50: pct(results.map((r) => r.wasm_end_ms ?? 0), 50),
  }),
);
