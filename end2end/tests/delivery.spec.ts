// Nothing is lost: events published while the page was cut off arrive after the reconnect, once
// and in order, and a server restart is told as a restart (not an error) with the lost events
// flagged by a resync.
import path from 'node:path';
import { expect, measured, sleep, test } from './fixtures';

test('events published while the page is cut off are replayed once, in order, after the reconnect', async ({
  dashboard,
  faultProxy,
  server,
}) => {
  await dashboard.goto();
  await dashboard.waitConnected();
  expect(await server.publish('update', { n: 0 })).toBe(202);
  await expect(dashboard.eventItems.and(dashboard.page.locator('[data-event-name="update"]'))).toHaveCount(1);

  faultProxy.cut();
  await dashboard.waitForMachine('reconnecting', 5_000);
  for (let n = 1; n <= 5; n++) expect(await server.publish('update', { n })).toBe(202);
  faultProxy.pass();
  const ms = await dashboard.waitForMachine('connected', 15_000);
  measured('reconnect after the link came back', ms);

  const notice = dashboard.page.getByTestId('replay-notice');
  await expect(notice).toBeVisible();
  await expect(notice).toHaveAttribute('data-replayed', '5');
  await expect(notice).toContainText('5 missed events replayed');

  const updates = (await dashboard.events()).filter((e) => e.name === 'update').reverse(); // oldest first
  const ids = updates.map((e) => e.id ?? '');
  expect(ids, 'the first event and the 5 missed ones, each once').toHaveLength(6);
  expect(new Set(ids).size).toBe(6);
  const seqs = ids.map((id) => Number(id.split('-').pop()));
  expect(seqs, 'in publish order').toEqual([1, 2, 3, 4, 5, 6]);
  await expect(dashboard.page.getByTestId('resync-notice')).toBeHidden();
});

test.describe('a graceful server restart', () => {
  test.use({ useProxy: false, serverOptions: { retryMs: 500, env: { SSE_DRAIN_WINDOW_MS: '1500' } } });

  test('says "server restarting", then "server restarted", and flags the events the old process held', async ({
    dashboard,
    page,
    server,
  }) => {
    await page.addInitScript({ path: path.join(__dirname, 'fixtures', 'state-recorder.js') });
    await dashboard.goto();
    await dashboard.waitConnected();
    const serverBefore = await dashboard.text(dashboard.serverId);

    // A steady publisher, as an application would have; failures while the server is down are expected.
    let publishing = true;
    const publisher = (async () => {
      for (let n = 0; publishing; n++) {
        await server.publish('update', { n }).catch(() => 0);
        await sleep(100);
      }
    })();
    await expect(dashboard.eventItems.and(page.locator('[data-event-name="update"]')).first()).toBeVisible();

    const stopped = Date.now();
    await server.stop(); // SIGTERM: the server drains (every stream gets `draining`) and exits
    await expect(page.getByTestId('banner-title')).toHaveText('Server restarting…', { timeout: 5_000 });
    await expect(dashboard.machine).toHaveAttribute('data-cause', 'server-restarting');
    await server.start(); // the successor, on the same port
    const ms = await dashboard.waitForBanner('connected', 15_000, stopped);
    measured('SIGTERM to connected to the new process', ms);
    publishing = false;
    await publisher;

    expect(await dashboard.text(dashboard.serverId)).not.toBe(serverBefore);
    await expect(page.getByTestId('restart-notice')).toBeVisible();
    await expect(page.getByTestId('resync-notice')).toBeVisible();
    await expect(page.getByTestId('resync-notice')).toContainText('Missed updates');
    await expect(dashboard.eventItems.and(page.locator('[data-event-name="resync"]'))).toHaveCount(1);

    // At no point did the page call a restart an error.
    const states = await page.evaluate(
      () => (window as unknown as { __states: { banner: Array<{ state: string }> } }).__states.banner,
    );
    const shown = [...new Set(states.map((s) => s.state))];
    expect(shown.filter((s) => !['connecting', 'connected', 'reconnecting'].includes(s)), `banner states: ${shown}`).toEqual(
      [],
    );
  });
});
