// The basics a user relies on: the page hydrates and connects, the heartbeat keeps it fresh, a
// crashed server is noticed and a restarted one is picked up, a failing stream recovers by itself.
import { expect, measured, sleep, test } from './fixtures';

test.describe('direct to the server', () => {
  test.use({ useProxy: false });

  test('server render says connecting; the page hydrates, connects and the heartbeat age keeps resetting', async ({
    dashboard,
    request,
  }) => {
    const html = await (await request.get('/')).text();
    const bannerTag = html.match(/<[^>]*data-testid="connection-banner"[^>]*>/)?.[0];
    expect(bannerTag, 'the banner is in the server render').toBeDefined();
    expect(bannerTag).toContain('data-state="connecting"');

    await dashboard.goto();
    await dashboard.waitConnected();
    await expect(dashboard.serverId).not.toHaveText('');

    // Sample the age for ~5 heartbeats: it must never exceed ~2 heartbeats and must reset.
    const ages: number[] = [];
    for (let i = 0; i < 24; i++) {
      ages.push(await dashboard.heartbeatAgeMs());
      await sleep(250);
    }
    const resets = ages.filter((a, i) => i > 0 && a < ages[i - 1]).length;
    measured('max last-heartbeat age over 6 s', Math.max(...ages), 2000);
    expect(ages.every(Number.isFinite), `ages: ${ages}`).toBe(true);
    expect(Math.max(...ages), `ages: ${ages}`).toBeLessThan(2000);
    expect(resets, `ages: ${ages}`).toBeGreaterThanOrEqual(3);
    expect(await dashboard.bannerState()).toBe('connected');
  });

  test('SIGKILL of the server shows reconnecting within 2 s; a restart on the same port reconnects to the new process', async ({
    dashboard,
    server,
  }) => {
    await dashboard.goto();
    const connectionBefore = await dashboard.waitConnected();
    const serverBefore = await dashboard.text(dashboard.serverId);

    const killedAt = Date.now();
    await server.kill();
    const detect = await dashboard.waitForBanner('reconnecting', 10_000, killedAt);
    measured('SIGKILL -> banner reconnecting', detect, 2000);
    expect(detect).toBeLessThanOrEqual(2000);

    const restartedAt = Date.now();
    await server.start();
    const back = await dashboard.waitForBanner('connected', 40_000, restartedAt);
    measured('restart (healthz up) -> banner connected', back);
    await expect(dashboard.serverId).not.toHaveText(serverBefore);
    await expect(dashboard.serverId).not.toHaveText('');
    await expect(dashboard.connectionId).not.toHaveText(connectionBefore);
  });

  test('no console errors or warnings (hydration included) on load', async ({ dashboard, consoleLog, pageErrors }) => {
    await dashboard.goto();
    await dashboard.waitConnected();
    await sleep(3000); // a few pings, and any late warning
    const bad = consoleLog
      .filter((m) => m.type() === 'error' || m.type() === 'warning')
      .map((m) => `[${m.type()}] ${m.text()} (${m.location().url}:${m.location().lineNumber})`);
    expect(bad).toEqual([]);
    expect(pageErrors.map((e) => e.message)).toEqual([]);
  });

  test('a published event shows in the event log with its id and name', async ({ dashboard, server }) => {
    await dashboard.goto();
    await dashboard.waitConnected();
    expect(await server.publish('deploy', { version: 'e2e-1' })).toBeLessThan(300);
    const item = dashboard.eventItems.and(dashboard.page.locator('[data-event-name="deploy"]'));
    await expect(item).toHaveCount(1, { timeout: 5000 });
    await expect(item).toHaveAttribute('data-event-id', /\S/);
    // Newest first: nothing but pings can have come after it.
    const names = (await dashboard.events()).map((e) => e.name);
    expect(names.slice(0, names.indexOf('deploy')).every((n) => n === 'ping'), `${names}`).toBe(true);
  });
});

test('503 on /events: reconnecting with cause server-error and a rising attempt counter; recovers by itself', async ({
  dashboard,
  faultProxy,
}) => {
  await dashboard.goto();
  await dashboard.waitConnected();

  faultProxy.status(503);
  await dashboard.waitForBanner('reconnecting', 10_000);
  await expect.poll(() => dashboard.machineCause(), { timeout: 10_000 }).toBe('server-error');
  await expect(dashboard.bannerCause).not.toHaveText('');
  const first = await dashboard.number(dashboard.reconnectAttempt);
  expect(first).toBeGreaterThanOrEqual(1);
  await expect.poll(() => dashboard.number(dashboard.reconnectAttempt), { timeout: 15_000 }).toBeGreaterThan(first);

  const passAt = Date.now();
  faultProxy.pass();
  const back = await dashboard.waitForBanner('connected', 40_000, passAt);
  measured('503 lifted -> banner connected', back);
  await expect.poll(() => dashboard.machineCause()).toBe('none');
});
