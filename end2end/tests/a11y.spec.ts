// axe-core on the dashboard in the states a user is most likely to meet.
import AxeBuilder from '@axe-core/playwright';
import type { Page } from '@playwright/test';
import { expect, test } from './fixtures';

async function expectNoViolations(page: Page, label: string): Promise<void> {
  const { violations } = await new AxeBuilder({ page }).analyze();
  const summary = violations.map(
    (v) =>
      `${v.id} (${v.impact}): ${v.help}\n` +
      v.nodes.map((n) => `    ${n.target.join(' ')}: ${(n.failureSummary ?? '').replace(/\s+/g, ' ')}`).join('\n'),
  );
  expect(summary, `axe violations while ${label}`).toEqual([]);
}

test('no axe violations while connected', async ({ dashboard, page }) => {
  await dashboard.goto();
  await dashboard.waitConnected();
  await expectNoViolations(page, 'connected');
});

test('no axe violations while reconnecting (503)', async ({ dashboard, faultProxy, page }) => {
  await dashboard.goto();
  await dashboard.waitConnected();
  faultProxy.status(503);
  await dashboard.waitForBanner('reconnecting', 10_000);
  await expect(dashboard.retryNow).toBeVisible();
  await expectNoViolations(page, 'reconnecting');
});

test('no axe violations once failed (?max_attempts=2, 503)', async ({ dashboard, faultProxy, page }) => {
  faultProxy.status(503);
  await dashboard.goto('?max_attempts=2');
  await dashboard.waitForBanner('failed', 20_000);
  await expect(dashboard.banner).toHaveAttribute('aria-live', 'assertive');
  await expectNoViolations(page, 'failed');
});
