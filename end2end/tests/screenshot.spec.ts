// The picture in the README: the dashboard, connected, with a few events in its log.
import path from 'node:path';
import { expect, sleep, test } from './fixtures';
import { REPO_ROOT } from './fixtures/server';

test.use({ useProxy: false, viewport: { width: 1280, height: 860 } });

test('docs/dashboard.png', async ({ dashboard, server, page }) => {
  await dashboard.goto();
  await dashboard.waitConnected();
  // Two application events for the picture (publishing itself is tested in foundation.spec.ts).
  const published = await server.publish('deploy', { service: 'api', version: '1.4.2' });
  await sleep(400);
  await server.publish('alert', { level: 'info', message: 'cache warmed' });
  if (published < 300) await expect(page.locator('[data-event-name="alert"]')).toHaveCount(1);
  await expect.poll(async () => (await dashboard.events()).length, { timeout: 10_000 }).toBeGreaterThanOrEqual(5);
  await page.screenshot({ path: path.join(REPO_ROOT, 'docs', 'dashboard.png') });
});
