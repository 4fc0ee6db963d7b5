//! examples/embed: a separate Leptos app that depends on the library (default features off),
//! nests the stream under /live in its own axum router, shows ConnectionBanner in its own header
//! and publishes from a server function. Build it first: `cargo leptos build --project embed`.
import fs from 'node:fs';
import path from 'node:path';
import { expect, test, type Page } from '@playwright/test';
import { freePort, REPO_ROOT, ServerProcess } from './fixtures/server';

const EMBED_BIN = process.env.EMBED_BIN ?? path.join(REPO_ROOT, 'target', 'debug', 'embed');

let server: ServerProcess;

test.beforeEach(async () => {
  if (!fs.existsSync(EMBED_BIN))
    throw new Error(`no example binary at ${EMBED_BIN}: run \`cargo leptos build --project embed\``);
  server = new ServerProcess(await freePort(), {
    bin: EMBED_BIN,
    site: { root: 'target/site-embed', outputName: 'embed' },
    healthPath: '/live/healthz',
  });
  await server.start();
});

test.afterEach(async ({}, info) => {
  await server.stop();
  if (info.status !== info.expectedStatus) await info.attach('server.log', { body: server.log });
});

/** Console errors and hydration warnings of a page. */
function watchConsole(page: Page): string[] {
  const problems: string[] = [];
  page.on('console', (m) => {
    if (m.type() === 'error' || /hydrat/i.test(m.text())) problems.push(m.text());
  });
  page.on('pageerror', (e) => problems.push(String(e)));
  return problems;
}

test('the banner lives in the host app’s header and connects to /live/events', async ({ page }) => {
  const problems = watchConsole(page);
  const streams: string[] = [];
  page.on('request', (r) => {
    if (r.url().includes('/events')) streams.push(new URL(r.url()).pathname);
  });
  await page.goto(server.url + '/');
  const banner = page.locator('header.app-header [data-testid="connection-banner"]');
  await expect(banner).toHaveAttribute('data-state', 'connected');
  expect(streams[0]).toBe('/live/events');
  // The host app owns the root: no stream there.
  expect((await fetch(server.url + '/events')).status).toBe(404);
  expect(problems).toEqual([]);
});

test('a server function publishes; every open page receives the typed event', async ({ page, context }) => {
  const problems = watchConsole(page);
  await page.goto(server.url + '/');
  const other = await context.newPage();
  await other.goto(server.url + '/');
  for (const p of [page, other])
    await expect(p.getByTestId('connection-banner')).toHaveAttribute('data-state', 'connected');
  await expect(other.getByTestId('latest-note')).toHaveText('(none yet)');

  await page.getByTestId('note-input').fill('hello from a server function');
  await page.getByTestId('publish').click();
  await expect(page.getByTestId('publish-answer')).toContainText('published as');
  for (const p of [page, other])
    await expect(p.getByTestId('latest-note')).toHaveText('hello from a server function');
  expect(problems).toEqual([]);
});

test('SIGTERM with open streams: the hub ends them and the host app exits promptly', async ({ page }) => {
  await page.goto(server.url + '/');
  await expect(page.getByTestId('connection-banner')).toHaveAttribute('data-state', 'connected');
  const started = Date.now();
  await server.stop();
  expect(Date.now() - started).toBeLessThan(3000);
  expect(server.log).not.toContain('did not exit');
  await expect(page.getByTestId('connection-banner')).not.toHaveAttribute('data-state', 'connected');
});
