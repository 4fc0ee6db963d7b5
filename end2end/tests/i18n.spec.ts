// Languages: the server picks zh-CN or en (cookie, else Accept-Language), writes it into
// <html lang>, and the browser hydrates the same texts; the switch changes it and a reload keeps it.
import type { ConsoleMessage, Page } from '@playwright/test';
import { expectNoViolations } from './fixtures/axe';
import { expect, test } from './fixtures';

const TEXTS = {
  en: {
    tagline: 'Is this page live? The truth, fast.',
    live: 'Live',
    reconnecting: 'Reconnecting…',
    offline: 'You are offline',
    rejected: 'Access refused',
    failed: 'Connection failed',
    retryNow: 'Retry now',
    heading404: 'Page not found',
    liveClients: /^1 live client on 1 instance$/,
  },
  'zh-CN': {
    tagline: '这个页面在线吗？如实、迅速地告诉你。',
    live: '在线',
    reconnecting: '正在重新连接…',
    offline: '您已离线',
    rejected: '访问被拒绝',
    failed: '连接失败',
    retryNow: '立即重试',
    heading404: '页面不存在',
    liveClients: /^1 个在线客户端，分布在 1 个实例上$/,
  },
} as const;

type Lang = keyof typeof TEXTS;

/** Console warnings and errors, page errors: hydration mismatches show up here. */
function problems(consoleLog: ConsoleMessage[], pageErrors: Error[]): string[] {
  return [
    ...consoleLog.filter((m) => m.type() === 'warning' || m.type() === 'error').map((m) => `[${m.type()}] ${m.text()}`),
    ...pageErrors.map((e) => `[pageerror] ${e.message}`),
  ];
}

async function expectLanguage(page: Page, lang: Lang): Promise<void> {
  await expect(page.locator('html')).toHaveAttribute('lang', lang);
  await expect(page.locator('.tagline')).toHaveText(TEXTS[lang].tagline);
  await expect(page.getByTestId('language-switch')).toHaveValue(lang);
}

for (const lang of ['en', 'zh-CN'] as const) {
  test.describe(`Accept-Language ${lang}`, () => {
    test.use({ locale: lang });

    test(`first render and hydration in ${lang}, no console warnings`, async ({
      dashboard,
      page,
      request,
      consoleLog,
      pageErrors,
    }) => {
      const html = await (await request.get('/', { headers: { 'Accept-Language': lang } })).text();
      expect(html).toContain(`<html lang="${lang}"`);
      expect(html).toContain(TEXTS[lang].tagline);
      await dashboard.goto();
      await dashboard.waitConnected();
      await expectLanguage(page, lang);
      await expect(page.locator('.banner__live')).toHaveText(TEXTS[lang].live);
      await expect(page.getByTestId('live-clients')).toHaveText(TEXTS[lang].liveClients);
      expect(problems(consoleLog, pageErrors)).toEqual([]);

      const notFound = await page.goto('/no/such/page');
      expect(notFound?.status()).toBe(404);
      await expect(page.locator('html')).toHaveAttribute('lang', lang);
      await expect(page.locator('h1')).toHaveText(TEXTS[lang].heading404);
    });

    test(`main states in ${lang}, each without axe violations`, async ({ dashboard, faultProxy, page, context }) => {
      const t = TEXTS[lang];
      await dashboard.goto('?max_attempts=3');
      await dashboard.waitConnected();
      await expectNoViolations(page, `connected (${lang})`);

      faultProxy.status(503);
      await dashboard.waitForBanner('reconnecting', 10_000);
      await expect(page.getByTestId('banner-title')).toHaveText(t.reconnecting);
      await expect(dashboard.retryNow).toHaveText(t.retryNow);
      await expectNoViolations(page, `reconnecting (${lang})`);

      await dashboard.waitForBanner('failed', 30_000);
      await expect(page.getByTestId('banner-title')).toHaveText(t.failed);
      await expectNoViolations(page, `failed (${lang})`);

      faultProxy.pass();
      await dashboard.retryNow.click();
      await dashboard.waitForBanner('connected', 15_000);
      await context.setOffline(true);
      await dashboard.waitForBanner('offline', 10_000);
      await expect(page.getByTestId('banner-title')).toHaveText(t.offline);
      await expectNoViolations(page, `offline (${lang})`);
      await context.setOffline(false);
      await dashboard.waitForBanner('connected', 15_000);

      faultProxy.status(401);
      await dashboard.waitForBanner('rejected', 15_000);
      await expect(page.getByTestId('banner-title')).toHaveText(t.rejected);
      await expectNoViolations(page, `rejected (${lang})`);
    });
  });
}

test('the language switch renders the page in the other language, and a reload keeps the choice', async ({
  dashboard,
  page,
  consoleLog,
  pageErrors,
}) => {
  await dashboard.goto();
  await dashboard.waitConnected();
  await expectLanguage(page, 'en');

  // The switch sets the cookie and reloads: the server renders the page in the new language.
  await Promise.all([page.waitForEvent('load'), page.getByTestId('language-switch').selectOption('zh-CN')]);
  await page.locator('main[data-hydrated="true"]').waitFor();
  await expectLanguage(page, 'zh-CN');
  await dashboard.waitConnected();
  await expect(page.locator('.banner__live')).toHaveText(TEXTS['zh-CN'].live);
  expect(await page.title()).toContain('这个页面在线吗');
  const cookies = await page.context().cookies();
  expect(cookies.find((c) => c.name === 'lang')?.value).toBe('zh-CN');

  await page.reload();
  await page.locator('main[data-hydrated="true"]').waitFor();
  await expectLanguage(page, 'zh-CN');
  await dashboard.waitConnected();

  await Promise.all([page.waitForEvent('load'), page.getByTestId('language-switch').selectOption('en')]);
  await page.locator('main[data-hydrated="true"]').waitFor();
  await expectLanguage(page, 'en');
  await page.reload();
  await page.locator('main[data-hydrated="true"]').waitFor();
  await expectLanguage(page, 'en');
  expect(problems(consoleLog, pageErrors)).toEqual([]);
});
