// Redis that fails over, seen from a real Chromium: the dashboard through nginx
// (deploy/nginx.conf) in front of two sse-status instances that find their Redis through three
// real Sentinels; the primary gets `kill -9` during a steady publish. The page must stay
// `connected` (the store notice may come and go), never be told to resync, and list every
// acknowledged event exactly once, in order.
import path from 'node:path';
import type { Page } from '@playwright/test';
import { expect, test as base, sleep } from './fixtures';
import { type Fleet, useFleet } from './fixtures/fleet';
import { MASTER, RedisHa } from './fixtures/sentinel';

const test = base.extend<{ ha: RedisHa; fleet: Fleet }>({
  ha: async ({}, use, testInfo) => {
    const ha = new RedisHa();
    try {
      await ha.start();
      await use(ha);
    } finally {
      if (testInfo.status !== testInfo.expectedStatus)
        await testInfo.attach('redis.log', { body: ha.logs, contentType: 'text/plain' });
      await ha.stop();
    }
  },
  fleet: async ({ ha }, use, testInfo) => {
    // --redis-min-replicas defaults to 1 with Sentinel: a 202 only once a replica has it.
    await useFleet(use, testInfo, { SSE_REDIS_SENTINEL: ha.sentinelAddrs, SSE_REDIS_MASTER: MASTER });
  },
  baseURL: async ({ fleet }, use) => {
    await use(fleet.url);
  },
});

/** Ids of the `update` events in the page's event log, oldest first. */
async function updateIds(page: Page): Promise<string[]> {
  const ids = await page
    .locator('[data-testid="event-log"] li[data-event-name="update"]')
    .evaluateAll((items) => items.map((li) => li.getAttribute('data-event-id') ?? ''));
  return ids.reverse();
}

test('kill -9 of the Redis primary: the page stays connected, never resyncs, and lists every acknowledged event once', async ({
  dashboard,
  fleet,
  ha,
  page,
}) => {
  test.setTimeout(120_000);
  await page.addInitScript({ path: path.join(__dirname, 'fixtures', 'state-recorder.js') });
  await dashboard.goto();
  await dashboard.waitConnected();
  await expect(page.getByTestId('live-clients')).toHaveAttribute('data-instances', '2', { timeout: 15_000 });

  // A steady publish through nginx, one at a time every 300 ms (the page's event log keeps the
  // last 50 events: the whole run stays below that).
  const acked: string[] = [];
  let refused = 0;
  let stopped = false;
  let killedAt = 0;
  let first202AfterKill = 0;
  const publisher = (async () => {
    for (let i = 0; !stopped; i++) {
      const { status, id } = await fleet.publish('update', { i });
      expect([202, 503], `publish ${i}`).toContain(status);
      if (status === 202) {
        acked.push(id!);
        if (killedAt && !first202AfterKill) first202AfterKill = Date.now() - killedAt;
      } else refused++;
      await sleep(300);
    }
  })();

  await sleep(2000);
  const old = await ha.primary();
  expect(old, 'Sentinel names a primary').toBeGreaterThanOrEqual(0);
  await ha.nodes[old].kill();
  killedAt = Date.now();
  // Until a new primary has taken writes for a while (bounded).
  await expect.poll(() => first202AfterKill, { timeout: 20_000 }).toBeGreaterThan(0);
  await sleep(2000);
  stopped = true;
  await publisher;
  const promoted = await ha.primary();
  expect(promoted, 'Sentinel promoted a replica').not.toBe(old);
  console.log(
    `failover through nginx: ${acked.length} acknowledged, ${refused} refused (503), ` +
      `first 202 ${first202AfterKill} ms after kill -9`,
  );
  expect(acked.length).toBeLessThan(45);

  // Every acknowledged event, once, in order (a refused one may appear too: at least once).
  await expect
    .poll(async () => (await updateIds(page)).filter((id) => acked.includes(id)), { timeout: 20_000 })
    .toEqual(acked);
  const ids = await updateIds(page);
  expect(new Set(ids).size, `no event twice: ${ids}`).toBe(ids.length);

  await expect(page.getByTestId('resync-notice')).toBeHidden();
  await expect(page.locator('[data-testid="event-log"] li[data-event-name="resync"]')).toHaveCount(0);
  await expect(page.getByTestId('store-notice')).toHaveCount(0, { timeout: 15_000 });
  const states = await page.evaluate(
    () => (window as unknown as { __states: { banner: Array<{ state: string }> } }).__states.banner,
  );
  const after = states.slice(states.findIndex((s) => s.state === 'connected'));
  expect([...new Set(after.map((s) => s.state))], 'banner states once connected').toEqual(['connected']);
});
