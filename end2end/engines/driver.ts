//! One small interface over three ways of driving a browser, so the core scenarios
//! (`core.spec.ts`) are written once and run in every engine:
//! - Chromium: Playwright (`chromium.ts`), Debian's /usr/bin/chromium;
//! - Firefox: puppeteer-core over WebDriver BiDi (`firefox.ts`), Debian's /usr/bin/firefox-esr;
//! - WebKit: plain W3C WebDriver over HTTP (`webkit.ts`) to Debian's /usr/bin/WebKitWebDriver,
//!   which drives WebKitGTK's MiniBrowser (needs an X display: run under `xvfb-run -a`).
//! Types only: `launch.ts` picks the adapter, so the adapters import this file and nothing
//! imports back.

export type Engine = 'chromium' | 'firefox' | 'webkit';

/**
 * Something a page said on its console, an uncaught error/rejection (`pageerror`), or a
 * network failure the browser itself reports to the console (`network`: Firefox's "can’t
 * establish a connection to the server at .../events" when a stream gets a 5xx, "The connection
 * to ... was interrupted while the page was loading" when a navigation cuts one).
 */
export interface ConsoleEntry {
  type: 'error' | 'warning' | 'pageerror' | 'network';
  text: string;
}

/** One tab (or window) of the browser. */
export interface Tab {
  /** Navigates and resolves once the document has loaded. */
  goto(url: string): Promise<void>;
  /**
   * Runs `fn(arg)` in the page and returns its (JSON-serializable) result; `fn` may return a
   * promise. `fn` is sent as source text: it must not use anything from the test's scope.
   */
  eval<R, A = undefined>(fn: (arg: A) => R | Promise<R>, arg?: A): Promise<R>;
  /** Makes this tab the selected one of its window (the others become `hidden` where the engine does that). */
  bringToFront(): Promise<void>;
  close(): Promise<void>;
  readonly closed: boolean;
  /**
   * Console errors and warnings and uncaught errors seen so far. Chromium and Firefox report
   * everything from the first byte on; the WebDriver adapter installs a recorder right after
   * each navigation (classic WebDriver has no init scripts), so it misses what happens before.
   */
  console(): Promise<ConsoleEntry[]>;
}

export interface Driver {
  readonly engine: Engine;
  /** Browser name and version as the browser reports it, e.g. `firefox/140.10.2`. */
  readonly version: string;
  /** The tab the browser started with. */
  readonly first: Tab;
  /**
   * Opens another tab of the same browser window/profile (shared connection pool, cookies,
   * BroadcastChannel and Web Locks scope).
   */
  newTab(): Promise<Tab>;
  /** Network offline emulation, where the engine has it (WebKit over WebDriver does not). */
  setOffline?(offline: boolean): Promise<void>;
  /** Closes the browser and stops the processes the adapter started (by PID). */
  close(): Promise<void>;
}
