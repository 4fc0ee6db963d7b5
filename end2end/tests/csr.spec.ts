//! examples/csr: a client-side-rendered app (cargo + the wasm-bindgen CLI, no cargo-leptos) whose
//! few lines of axum serve its static site and the hub at the root. The page mounts from wasm,
//! connects, shows published notes, and tells the truth when its server is killed and restarted.
//! Build it first: `examples/csr/build.sh`.
import fs from 'node:fs';
import path from 'node:path';
import { expect, test, type Page } from '@playwright/test';
import { freePort, REPO_ROOT, ServerProcess } from './fixtures/server';

const CSR_BIN = process.env.CSR_BIN ?? path.join(REPO_ROOT, 'target', 'debug', 'csr');
const CSR_SITE = path.join(REPO_ROOT, 'examples', 'csr', 'site');

let server: ServerProcess;

test.beforeEach(async () => {
  const needed = [CSR_BIN, ...['index.html', 'pkg/csr.js', 'pkg/csr_bg.wasm'].map((f) => path.join(CSR_SITE, f))];
  const missing = needed.filter((f) => !fs.existsSync(f));
  if (missing.length > 0)
    throw new Error(`examples/csr is not built (missing: ${missing.join(', ')}): run examples/csr/build.sh`);
  const port = await freePort();
  server = new ServerProcess(port, { bin: CSR_BIN, env: { CSR_ADDR: `127.0.0.1:${port}` } });
  await server.start();
});

test.afterEach(async ({}, info) => {
  await server.stop();
  if (info.status !== info.expectedStatus) await info.attach('server.log', { body: server.log });
});

/** Console errors and warnings, uncaught page errors and HTTP error answers, in order. */
function watchConsole(page: Page): string[] {
  const problems: string[] = [];
  page.on('response', (r) => {
    if (r.status() >= 400) problems.push(`[http ${r.status()}] ${r.request().method()} ${r.url()}`);
  });
  page.on('console', (m) => {
    if (m.type() === 'error' || m.type() === 'warning') problems.push(`[${m.type()}] ${m.text()}`);
  });
  page.on('pageerror', (e) => problems.push(`[pageerror] ${e.stack ?? e.message}`));
  return problems;
}

test('mounts from wasm, receives published notes, and reports a killed and restarted server', async ({ page }) => {
  const problems = watchConsole(page);
  await page.goto(server.url + '/');
  await expect(page.locator('html')).toHaveAttribute('lang', 'en');
  const banner = page.getByTestId('connection-banner');
  await expect(banner).toHaveAttribute('data-state', 'connected');
  await expect(banner).toContainText('Live'); // English, as <html lang="en"> asks
  const lastNote = page.getByTestId('last-note');
  await expect(lastNote).toHaveText('(none yet)');

  expect(await server.publish('note', { text: 'first note' })).toBe(202);
  await expect(lastNote).toHaveText('first note');
  expect(await server.publish('note', { text: 'second note' })).toBe(202);
  await expect(lastNote).toHaveText('second note');
  await expect(page.getByTestId('note-text')).toHaveText(['second note', 'first note']);
  // Publishing needs the bearer token.
  const refused = await fetch(server.url + '/api/publish', {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: 'Bearer wrong' },
    body: JSON.stringify({ event: 'note', data: { text: 'forged' } }),
  });
  expect(refused.status).toBe(401);
  expect(problems).toEqual([]);

  // A real fault: the process dies without a word (no draining event).
  await server.kill();
  await expect(banner).toHaveAttribute('data-state', 'reconnecting');
  await expect(banner).toContainText('Reconnecting');

  await server.start();
  await expect(banner).toHaveAttribute('data-state', 'connected', { timeout: 20_000 });
  expect(await server.publish('note', { text: 'after the restart' })).toBe(202);
  await expect(lastNote).toHaveText('after the restart');
  await expect(page.getByTestId('note-text').first()).toHaveText('after the restart');

  // The kill itself makes Chromium log network errors (the cut stream:
  // ERR_INCOMPLETE_CHUNKED_ENCODING; refused reconnects): those only — no HTTP error answer and
  // nothing from the page's code.
  const networkError = /^\[error\] Failed to load resource: net::ERR_[A-Z_]+$/;
  expect(problems.filter((p) => !networkError.test(p))).toEqual([]);
});
