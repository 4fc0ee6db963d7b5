// The picture in the README: the dashboard, connected, with a few events in its log. Written to
// docs/dashboard.png when UPDATE_SCREENSHOT=1 (so a test run leaves the tree clean), else to the
// test's output folder.
import path from 'node:path';
import { expect, sleep, test } from './fixtures';
import { PageDashboard } from './fixtures/dashboard';
import { REPO_ROOT } from './fixtures/server';

test.use({ useProxy: false, viewport: { width: 1280, height: 860 } });

test('docs/dashboard.png', async ({ dashboard, server, page }, testInfo) => {
  await dashboard.goto();
  await dashboard.waitConnected();
  // Two application events for the picture (publishing itself is tested in foundation.spec.ts).
  const published = await server.publish('deploy', { service: 'api', version: '1.4.2' });
  await sleep(400);
  await server.publish('alert', { level: 'info', message: 'cache warmed' });
  if (published < 300) await expect(page.locator('[data-event-name="alert"]')).toHaveCount(1);
  await expect.poll(async () => (await dashboard.events()).length, { timeout: 10_000 }).toBeGreaterThanOrEqual(5);
  await expect(dashboard.banner).toHaveAttribute('data-state', 'connected');
  const target = process.env.UPDATE_SCREENSHOT
    ? path.join(REPO_ROOT, 'docs', 'dashboard.png')
    : testInfo.outputPath('dashboard.png');
  await page.screenshot({ path: target });
});

// The tab-sharing picture: a follower tab of three, its Connection card (role and count).
test('docs/tabs.png', async ({ context, dashboard }, testInfo) => {
  await dashboard.goto();
  await dashboard.waitConnected();
  const others = [new PageDashboard(await context.newPage()), new PageDashboard(await context.newPage())];
  for (const tab of others) {
    await tab.page.setViewportSize({ width: 1280, height: 860 });
    await tab.goto();
    await tab.waitConnected();
  }
  const follower = others[1];
  await expect(follower.tabRole).toHaveAttribute('data-role', 'follower');
  await expect(follower.sharedTabs).toHaveAttribute('data-count', '3');
  const target = process.env.UPDATE_SCREENSHOT ? path.join(REPO_ROOT, 'docs', 'tabs.png') : testInfo.outputPath('tabs.png');
  await follower.page.locator('article.card').first().screenshot({ path: target });
});
