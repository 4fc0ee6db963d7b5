// A fleet in a real Chromium: the dashboard through nginx (deploy/nginx.conf) in front of two
// sse-status instances that share one Redis stream. An instance dies, a deploy rolls, Redis goes
// away — and the page neither lies nor loses an event.
import path from 'node:path';
import { expect, test as base, sleep } from './fixtures';
import { type Fleet, useFleet } from './fixtures/fleet';

const test = base.extend<{ fleet: Fleet }>({
  fleet: async ({}, use, testInfo) => {
    await useFleet(use, testInfo);
  },
  baseURL: async ({ fleet }, use) => {
    await use(fleet.url);
  },
});

/** Ids of the `update` events in the page's event log, oldest first. */
async function updateIds(page: import('@playwright/test').Page): Promise<string[]> {
  const ids = await page
    .locator('[data-testid="event-log"] li[data-event-name="update"]')
    .evaluateAll((items) => items.map((li) => li.getAttribute('data-event-id') ?? ''));
  return ids.reverse();
}

async function publishAll(fleet: Fleet, n: number, tag: string): Promise<string[]> {
  const ids: string[] = [];
  for (let i = 0; i < n; i++) {
    const { status, id } = await fleet.publish('update', { tag, i });
    expect(status, `publish ${tag} ${i}`).toBe(202);
    ids.push(id!);
  }
  return ids;
}

test('SIGKILL of the instance serving the page: back through nginx on the other, with exactly the missed events', async ({
  dashboard,
  fleet,
  page,
}) => {
  await dashboard.goto();
  await dashboard.waitConnected();
  await expect(page.getByTestId('live-clients')).toHaveAttribute('data-instances', '2', { timeout: 15_000 });
  await expect(page.getByTestId('live-clients')).toHaveText('1 live client on 2 instances');
  const before = await publishAll(fleet, 3, 'before');
  await expect.poll(() => updateIds(page)).toEqual(before);

  const killedId = await dashboard.text(dashboard.serverId);
  const serving = await fleet.byServerId(killedId);
  await serving.kill();
  // Published while the page has no stream (its retry floor is 2 s).
  const missed = await publishAll(fleet, 4, 'missed');
  await dashboard.waitForBanner('connected', 20_000);
  await expect(page.getByTestId('replay-notice')).toHaveText('Reconnected, 4 missed events replayed.');
  await expect(page.getByTestId('replay-notice')).toHaveAttribute('data-replayed', '4');
  await expect(page.getByTestId('resync-notice')).toBeHidden();
  expect(await updateIds(page)).toEqual([...before, ...missed]);
  expect(await dashboard.text(dashboard.serverId), 'now served by the other instance').not.toBe(killedId);
  const after = await publishAll(fleet, 1, 'after');
  await expect.poll(() => updateIds(page)).toEqual([...before, ...missed, ...after]);
});

test('rolling restart (SIGTERM one instance, then the other): never failed, no missed updates, nothing lost', async ({
  dashboard,
  fleet,
  page,
}) => {
  await page.addInitScript({ path: path.join(__dirname, 'fixtures', 'state-recorder.js') });
  await dashboard.goto();
  await dashboard.waitConnected();
  const firstServer = await dashboard.text(dashboard.serverId);

  const accepted: string[] = [];
  let publishing = true;
  const publisher = (async () => {
    for (let n = 0; publishing; n++) {
      const { status, id } = await fleet.publish('update', { n }).catch(() => ({ status: 0, id: null }));
      if (id) accepted.push(id);
      else expect([0, 502, 503]).toContain(status);
      await sleep(400);
    }
  })();

  for (const instance of fleet.instances) {
    await sleep(1500);
    await instance.stop(); // SIGTERM: drain, every stream told to reconnect elsewhere
    await instance.start(); // the new version
    await fleet.waitReady();
  }
  await sleep(1500);
  publishing = false;
  await publisher;

  await dashboard.waitForBanner('connected', 15_000);
  await expect.poll(() => updateIds(page), { timeout: 15_000 }).toEqual(accepted);
  expect(accepted.length).toBeGreaterThan(10);
  await expect(page.getByTestId('resync-notice')).toBeHidden();
  expect(await dashboard.text(dashboard.serverId), 'moved to a restarted instance').not.toBe(firstServer);
  const states = await page.evaluate(
    () => (window as unknown as { __states: { banner: Array<{ state: string }> } }).__states.banner,
  );
  const shown = [...new Set(states.map((s) => s.state))];
  expect(shown, `banner states: ${shown}`).not.toContain('failed');
  expect(shown.filter((s) => !['connecting', 'connected', 'reconnecting'].includes(s)), `banner states: ${shown}`).toEqual(
    [],
  );
});

test('Redis down: the store notice appears while the page stays connected, goes when Redis is back, and later events arrive', async ({
  dashboard,
  fleet,
  page,
}) => {
  await dashboard.goto();
  await dashboard.waitConnected();
  const notice = page.getByTestId('store-notice');
  await expect(notice).toHaveCount(0);
  const before = await publishAll(fleet, 2, 'before');
  await expect.poll(() => updateIds(page)).toEqual(before);

  await fleet.redis.stop();
  await expect(notice).toBeVisible({ timeout: 5_000 });
  await expect(notice).toContainText('Updates delayed: the event log is unreachable');
  expect(await dashboard.bannerState()).toBe('connected');
  const refused = await fleet.publish('update', { refused: true });
  expect(refused.status).toBe(503);

  await fleet.redis.start();
  await expect(notice).toHaveCount(0, { timeout: 10_000 });
  expect(await dashboard.bannerState()).toBe('connected');
  await fleet.waitReady();
  const after = await publishAll(fleet, 3, 'after');
  await expect.poll(() => updateIds(page)).toEqual([...before, ...after]);
  await expect(page.getByTestId('resync-notice')).toBeHidden();
});
