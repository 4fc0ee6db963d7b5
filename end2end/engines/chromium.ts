//! Chromium through Playwright, with the launch options of the main suite (playwright.config.ts).
import { chromium, type BrowserContext, type Page } from '@playwright/test';
import config from '../playwright.config';
import type { Driver } from './driver';
import { PageTab } from './page-tab';

/** A Playwright page as a `Tab` (also what `PageDashboard` of the Chromium suite reads through). */
export class ChromiumTab extends PageTab<Page> {
  constructor(page: Page) {
    super(page);
    page.on('console', (m) => {
      if (m.type() === 'error' || m.type() === 'warning') this.entries.push({ type: m.type() as 'error' | 'warning', text: m.text() });
    });
    page.on('pageerror', (e) => this.entries.push({ type: 'pageerror', text: e.stack ?? e.message }));
  }

  async goto(url: string): Promise<void> {
    await this.page.goto(url);
  }
}

export async function launchChromium(): Promise<Driver> {
  const browser = await chromium.launch(config.use?.launchOptions);
  let context: BrowserContext;
  try {
    context = await browser.newContext();
  } catch (e) {
    await browser.close();
    throw e;
  }
  const first = new ChromiumTab(await context.newPage());
  return {
    engine: 'chromium',
    version: `chromium/${browser.version()}`,
    first,
    newTab: async () => new ChromiumTab(await context.newPage()),
    setOffline: (offline) => context.setOffline(offline),
    close: () => browser.close(),
  };
}
