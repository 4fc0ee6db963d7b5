// The picture in the README: the dashboard, connected, with a few events in its log.
import path from 'node:path';
import { expect, sleep, test } from './fixtures';
import { REPO_ROOT } from './fixtures/server';

test.use({ useProxy: false, viewport: { width: 1280, height: 860 } });

test('docs/dashboard.png', async ({ dashboard, server, page }) => {
  await dashboard.goto();
  await dashboard.waitConnected();
  await server.publish('deploy', { service: 'api', version: '1.4.2' });
  await sleep(400);
  await server.publish('alert', { level: 'info', message: 'cache warmed' });
  await expect.poll(async () => (await dashboard.events()).length, { timeout: 10_000 }).toBeGreaterThanOrEqual(5);
  await page.screenshot({ path: path.join(REPO_ROOT, 'docs', 'dashboard.png') });
});
