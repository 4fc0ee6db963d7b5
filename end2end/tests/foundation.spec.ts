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

// SIGKILL and restart, no console errors or warnings on load, 503 on /events: engines/core.spec.ts
// (in every engine).
