//! What the Chromium (Playwright) and Firefox (puppeteer-core) tabs have in common: both wrap a
//! page object with the same few calls; each engine adds its own navigation and console capture.
import type { ConsoleEntry, Tab } from './driver';

/** The part of a Playwright or puppeteer `Page` that `PageTab` uses. */
interface PageLike {
  isClosed(): boolean;
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  evaluate(fn: any, arg?: any): Promise<unknown>;
  bringToFront(): Promise<void>;
  close(): Promise<void>;
}

export abstract class PageTab<P extends PageLike> implements Tab {
  /** Console errors and warnings and uncaught errors, as the subclass records them. */
  protected readonly entries: ConsoleEntry[] = [];

  constructor(readonly page: P) {}

  abstract goto(url: string): Promise<void>;

  get closed(): boolean {
    return this.page.isClosed();
  }

  eval<R, A = undefined>(fn: (arg: A) => R | Promise<R>, arg?: A): Promise<R> {
    return this.page.evaluate(fn, arg) as Promise<R>;
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
