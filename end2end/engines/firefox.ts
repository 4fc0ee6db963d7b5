//! Firefox (Debian's firefox-esr) through puppeteer-core over WebDriver BiDi. No browser download:
//! puppeteer-core never fetches one, and setup installs it with PUPPETEER_SKIP_DOWNLOAD anyway.
//! Pages are tabs of one window: `bringToFront()` really makes the other tabs `hidden`.
import puppeteer, { type Browser, type Page } from 'puppeteer-core';
import type { Driver } from './driver';
import { PageTab } from './page-tab';

export const FIREFOX_BIN = process.env.FIREFOX_BIN ?? '/usr/bin/firefox-esr';

const FIREFOX_NETWORK_MESSAGE = /^(Error: )?(Firefox can’t establish a connection to the server at |The connection to \S+ was interrupted while the page was loading)/;

class FirefoxTab extends PageTab<Page> {
  constructor(page: Page) {
    super(page);
    page.on('console', (m) => {
      const type = m.type();
      if (type === 'error' || type === 'warn') this.entries.push({ type: type === 'warn' ? 'warning' : 'error', text: m.text() });
    });
    page.on('pageerror', (e) => {
      const text = e instanceof Error ? (e.stack ?? e.message) : String(e);
      // Over BiDi, Firefox's own network messages arrive as JavaScript errors: not the page's.
      this.entries.push({ type: FIREFOX_NETWORK_MESSAGE.test(text) ? 'network' : 'pageerror', text });
    });
  }

  async goto(url: string): Promise<void> {
    await this.page.goto(url, { waitUntil: 'load', timeout: 30_000 });
  }
}

export async function launchFirefox(): Promise<Driver> {
  const browser: Browser = await puppeteer.launch({
    browser: 'firefox',
    executablePath: FIREFOX_BIN,
    headless: true,
    // Nothing outside 127.0.0.0/8 is reachable here: keep Firefox from trying.
    extraPrefsFirefox: {
      'network.captive-portal-service.enabled': false,
      'network.connectivity-service.enabled': false,
      'browser.safebrowsing.malware.enabled': false,
      'browser.safebrowsing.phishing.enabled': false,
      'app.update.enabled': false,
      'datareporting.policy.dataSubmissionEnabled': false,
    },
  });
  const pages = await browser.pages();
  const first = new FirefoxTab(pages[0] ?? (await browser.newPage()));
  const tabs: FirefoxTab[] = [first];
  return {
    engine: 'firefox',
    version: await browser.version(),
    first,
    newTab: async () => {
      const tab = new FirefoxTab(await browser.newPage());
      tabs.push(tab);
      return tab;
    },
    // Per page over BiDi: applied to every open tab (the whole browser goes offline).
    setOffline: async (offline) => {
      for (const t of tabs) if (!t.closed) await t.page.setOfflineMode(offline);
    },
    close: async () => {
      const pid = browser.process()?.pid;
      await browser.close().catch(() => {});
      if (pid) try { process.kill(pid, 'SIGKILL'); } catch { /* gone */ }
    },
  };
}
