//! Private streams in a real browser against a real server (`--auth-secret`, `--demo-users`):
//! a reader sees only their own topics, an access token that expires mid-stream is renewed
//! without the banner ever leaving `connected` and without losing an event, a renewal that is
//! refused says `signed_out`, and a revoked subject's tabs all say `revoked`.
import type { BrowserContext, Page } from '@playwright/test';
import { expect, measured, sleep, test } from './fixtures';
import { Dashboard } from './fixtures/dashboard';
import type { ServerProcess } from './fixtures/server';

const SECRET = 'e2e-auth-secret-0123456789abcdef';

test.use({
  useProxy: false,
  serverOptions: {
    env: {
      SSE_AUTH_SECRET: SECRET,
      SSE_DEMO_USERS: 'alice,bob',
      // Long enough for a test's setup, short enough to expire several times within one.
      SSE_DEMO_TOKEN_TTL_MS: '3000',
    },
  },
});

/** Publish `data` as a `demo` event to `topics` (none: a broadcast); its id. */
async function publishTo(server: ServerProcess, topics: string[], data: unknown): Promise<string> {
  const res = await fetch(`${server.url}/api/publish`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${server.publishToken}` },
    body: JSON.stringify(topics.length ? { event: 'demo', data, topics } : { event: 'demo', data }),
  });
  const body = (await res.json()) as { id?: string };
  if (res.status !== 202 || !body.id) throw new Error(`publish: ${res.status} ${JSON.stringify(body)}`);
  return body.id;
}

/** Open the dashboard in `page` and sign in as `user` with the demo's button (the page reloads). */
async function signIn(page: Page, user: string): Promise<Dashboard> {
  const dash = new Dashboard(page);
  await dash.goto();
  await page.getByTestId(`sign-in-${user}`).click();
  await expect(page.getByTestId('subject')).toHaveText(user, { timeout: 10_000 });
  await dash.goto();
  await dash.waitConnected();
  return dash;
}

/** The data texts of the page's `demo` events. */
async function demoTexts(page: Page): Promise<string[]> {
  return page
    .getByTestId('event-log')
    .locator('li[data-event-name="demo"]')
    .evaluateAll((items) => items.map((li) => li.textContent ?? ''));
}

test('a reader sees their own topic, public and broadcasts, never another reader’s', async ({ page, browser, server, baseURL }) => {
  const alice = await signIn(page, 'alice');
  await expect(page.getByTestId('topics').locator('[data-topic]')).toHaveCount(2);
  await expect(page.getByTestId('topics').locator('[data-topic="users/alice"]')).toHaveCount(1);
  const bobContext: BrowserContext = await browser.newContext({ baseURL });
  const bobPage = await bobContext.newPage();
  await signIn(bobPage, 'bob');

  await publishTo(server, ['users/alice'], { text: 'for-alice' });
  await publishTo(server, ['users/bob'], { text: 'for-bob' });
  await publishTo(server, ['public'], { text: 'for-everyone' });
  await publishTo(server, [], { text: 'broadcast' });
  await expect.poll(() => demoTexts(page), { timeout: 5_000 }).toHaveLength(3);
  await expect.poll(() => demoTexts(bobPage), { timeout: 5_000 }).toHaveLength(3);
  const seenByAlice = (await demoTexts(page)).join('|');
  const seenByBob = (await demoTexts(bobPage)).join('|');
  expect(seenByAlice).toContain('for-alice');
  expect(seenByAlice).not.toContain('for-bob');
  expect(seenByBob).toContain('for-bob');
  expect(seenByBob).not.toContain('for-alice');
  for (const seen of [seenByAlice, seenByBob]) {
    expect(seen).toContain('for-everyone');
    expect(seen).toContain('broadcast');
  }
  expect(await alice.bannerState()).toBe('connected');
  await bobContext.close();
});

test('an access token that expires three times mid-stream: every event once, in order, the banner always connected', async ({ page, server }) => {
  await page.addInitScript({ path: require.resolve('./fixtures/state-recorder.js') });
  const dash = await signIn(page, 'alice');
  await page.evaluate(() => {
    const w = window as unknown as { __states: { banner: unknown[]; machine: unknown[] } };
    w.__states.banner.length = 0;
    w.__states.machine.length = 0;
  });
  const ids: string[] = [];
  const started = Date.now();
  // 3 s tokens: about 10 s of steady publishing crosses at least three expiries.
  while (Date.now() - started < 10_500) {
    ids.push(await publishTo(server, ['users/alice'], { text: `n${ids.length}` }));
    await sleep(300);
  }
  await expect
    .poll(async () => (await dash.events()).filter((e) => e.name === 'demo').length, { timeout: 10_000 })
    .toBe(ids.length);
  const got = (await dash.events())
    .filter((e) => e.name === 'demo')
    .map((e) => e.id)
    .reverse();
  expect(got).toEqual(ids);
  const states = await page.evaluate(() => {
    const w = window as unknown as { __states: { banner: { state: string }[]; machine: { state: string }[] } };
    return { banner: w.__states.banner.map((s) => s.state), machine: w.__states.machine.map((s) => s.state) };
  });
  const renewals = states.machine.filter((s) => s === 'reconnecting').length;
  measured('access renewals during the run', renewals, undefined, '');
  expect(renewals, `machine states: ${states.machine.join(' ')}`).toBeGreaterThanOrEqual(3);
  expect(new Set(states.banner), `banner states: ${states.banner.join(' ')}`).toEqual(new Set(['connected']));
});

test('a refused renewal says signed out, for good', async ({ page, context }) => {
  const dash = await signIn(page, 'alice');
  // The session the renewal needs is gone (signed out elsewhere).
  await context.clearCookies({ name: 'sse_demo_session' });
  const since = Date.now();
  await dash.waitForBanner('rejected', 10_000);
  measured('token expiry -> banner rejected (refresh refused)', Date.now() - since);
  await expect(dash.banner).toHaveAttribute('data-cause', 'signed_out');
  // No retry loop: it stays so.
  await sleep(3_000);
  expect(await dash.bannerState()).toBe('rejected');
  await expect(dash.banner).toHaveAttribute('data-cause', 'signed_out');
});

test('revocation: every tab of the subject says revoked within 1 s, and the server holds none of their streams', async ({ page, context, server }) => {
  await signIn(page, 'alice');
  const second = await context.newPage();
  const other = new Dashboard(second);
  await other.goto();
  await other.waitConnected();
  const tabs = [new Dashboard(page), other];
  const since = Date.now();
  const res = await fetch(`${server.url}/api/revoke`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${server.publishToken}` },
    body: JSON.stringify({ subject: 'alice' }),
  });
  expect(res.status).toBeLessThan(300);
  for (const tab of tabs) {
    await tab.waitForBanner('rejected', 1_000 + 500, since);
    await expect(tab.banner).toHaveAttribute('data-cause', 'revoked');
  }
  measured('revoke -> every tab shows revoked', Date.now() - since, 1000);
  const metrics = await (await fetch(`${server.url}/metrics`)).text();
  expect(metrics).toMatch(/^sse_connections_open 0$/m);
  // They stay revoked: no reconnect on their own.
  await sleep(2_000);
  for (const tab of tabs) expect(await tab.bannerState()).toBe('rejected');
});
