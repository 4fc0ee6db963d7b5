//! Chromium through Playwright, with the launch options of the main suite (playwright.config.ts).
import { chromium, type BrowserContext, type Page } from '@playwright/test';
import config from '../playwright.config';
import type { ConsoleEntry, Driver, Tab } from './driver';

class ChromiumTab implements Tab {
  private readonly entries: ConsoleEntry[] = [];

  constructor(readonly page: Page) {
    page.on('console', (m) => {
      if (m.type() === 'error' || m.type() === 'warning') this.entries.push({ type: m.type() as 'error' | 'warning', text: m.text() });
    });
    page.on('pageerror', (e) => this.entries.push({ type: 'pageerror', text: e.stack ?? e.message }));
  }

  get closed(): boolean {
    return this.page.isClosed();
  }

  async goto(url: string): Promise<void> {
    await this.page.goto(url);
  }

  eval<R, A = undefined>(fn: (arg: A) => R | Promise<R>, arg?: A): Promise<R> {
    // eslint-disable-next-line @typescript-eslint/no-explicit-any
    return this.page.evaluate(fn as any, arg) as Promise<R>;
  }

  async bringToFront(): Promise<void> {
    await this.page.bringToFront();
  }

  async close(): Promise<void> {
    await this.page.close();
  }

  async console(): Promise<ConsoleEntry[]> {
    return [...this.entries];
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
