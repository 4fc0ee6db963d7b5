// axe-core on the dashboard in the states a user is most likely to meet.
import { expectNoViolations } from './fixtures/axe';
import { expect, test } from './fixtures';
import { PageDashboard } from './fixtures/dashboard';

test('no axe violations while connected', async ({ dashboard, page }) => {
  await dashboard.goto();
  await dashboard.waitConnected();
  await expectNoViolations(page, 'connected');
});

test('no axe violations in a leader tab and a follower tab (tab role and shared count)', async ({ context, dashboard, page }) => {
  await dashboard.goto();
  await dashboard.waitConnected();
  const other = new PageDashboard(await context.newPage());
  await other.goto();
  await other.waitConnected();
  await expect(dashboard.tabRole).toHaveAttribute('data-role', 'leader');
  await expect(other.tabRole).toHaveAttribute('data-role', 'follower');
  await expect(other.sharedTabs).toHaveAttribute('data-count', '2');
  await expectNoViolations(page, 'leading');
  await expectNoViolations(other.page, 'following');
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

test('"Retry now" is reachable by keyboard, shows its focus, and works with Enter', async ({
  dashboard,
  faultProxy,
  page,
}) => {

  await dashboard.goto();
  await dashboard.waitConnected();
  faultProxy.status(503);
  await dashboard.waitForBanner('reconnecting', 10_000);
  let focused = false;
  for (let i = 0; i < 10 && !focused; i++) {
    await page.keyboard.press('Tab');
    focused = await dashboard.retryNow.evaluate((el) => el === document.activeElement);
  }
  expect(focused, 'Tab reaches the retry button').toBe(true);
  const outline = await dashboard.retryNow.evaluate((el) => getComputedStyle(el).outlineStyle);
  expect(outline, 'a visible focus ring').not.toBe('none');
  const before = faultProxy.eventsRequests;
  await page.keyboard.press('Enter');
  await expect.poll(() => faultProxy.eventsRequests, { timeout: 2_000 }).toBeGreaterThan(before);
  await expect(dashboard.machine).toHaveAttribute('data-cause', /retry-now|server-error/);
});

test('the banner is a live region from the first byte and is not re-created', async ({ dashboard, page, request }) => {
  const html = await (await request.get('/')).text();
  expect(html).toMatch(/<div[^>]*data-testid="connection-banner"[^>]*role="status"/);
  await dashboard.goto();
  const handle = await dashboard.banner.elementHandle();
  await dashboard.waitConnected();
  expect(await handle?.evaluate((el) => el.isConnected), 'same element after hydrating and connecting').toBe(true);
  // While connected nothing in the region is announced: its visible mark is aria-hidden.
  const spoken = await dashboard.banner.evaluate((el) =>
    Array.from(el.querySelectorAll("*"))
      .filter((n) => !n.closest('[aria-hidden="true"]') && !(n as HTMLElement).hidden && n.children.length === 0)
      .map((n) => n.textContent?.trim())
      .filter(Boolean),
  );
  expect(spoken).toEqual([]);
});
