//! The dashboard page object for any engine: the contract's test ids read through `Tab.eval`.
//! Waits poll from here every 25 ms (one short script per poll, which every driver can run,
//! also WebDriver with several tabs) and return the measured time.
import type { Tab } from './driver';
import { sleep } from '../tests/fixtures/time';

export interface PageFacts {
  banner: string | null;
  cause: string | null;
  machine: string | null;
  role: string | null;
  shared: number;
  connectionId: string;
  serverId: string;
  hydrated: boolean;
}

export class EngineDashboard {
  constructor(
    readonly tab: Tab,
    readonly baseURL: string,
  ) {}

  /** Opens the dashboard (`query` like `?share=0`) and waits until it has hydrated. */
  async goto(query = '', timeoutMs = 30_000): Promise<void> {
    await this.tab.goto(`${this.baseURL}/${query}`);
    await this.waitFor(() => document.querySelector('main[data-hydrated="true"]') !== null, undefined, timeoutMs, 'hydrated');
  }

  /** Everything the tests read about the page, in one script. */
  facts(): Promise<PageFacts> {
    return this.tab.eval(() => {
      const q = (id: string) => document.querySelector(`[data-testid="${id}"]`);
      return {
        banner: q('connection-banner')?.getAttribute('data-state') ?? null,
        cause: q('machine-state')?.getAttribute('data-cause') ?? null,
        machine: q('machine-state')?.getAttribute('data-state') ?? null,
        role: q('tab-role')?.getAttribute('data-role') ?? null,
        shared: Number(q('shared-tabs')?.getAttribute('data-count')),
        connectionId: (q('connection-id')?.textContent ?? '').trim(),
        serverId: (q('server-id')?.textContent ?? '').trim(),
        hydrated: document.querySelector('main[data-hydrated="true"]') !== null,
      };
    });
  }

  async bannerState(): Promise<string | null> {
    return (await this.facts()).banner;
  }

  async role(): Promise<string | null> {
    return (await this.facts()).role;
  }

  /**
   * Polls `cond(arg)` in the page every 25 ms until it is true; returns the ms from `since`.
   * `what` names the wait in the timeout error, with the page's last facts.
   */
  async waitFor<A>(cond: (arg: A) => boolean, arg: A, timeoutMs: number, what: string, since = Date.now()): Promise<number> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      if (await this.tab.eval(cond, arg)) return Date.now() - since;
      if (Date.now() > deadline) {
        const facts = await this.facts().catch((e) => String(e));
        throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}; page: ${JSON.stringify(facts)}`);
      }
      await sleep(25);
    }
  }

  /** Waits for the (debounced) banner state; returns the ms from `since`. */
  waitForBanner(state: string, timeoutMs = 10_000, since = Date.now()): Promise<number> {
    return this.waitFor(
      (s) => document.querySelector('[data-testid="connection-banner"]')?.getAttribute('data-state') === s,
      state,
      timeoutMs,
      `banner ${state}`,
      since,
    );
  }

  /** Waits for the undebounced machine state; returns the ms from `since`. */
  waitForMachine(state: string, timeoutMs = 10_000, since = Date.now()): Promise<number> {
    return this.waitFor(
      (s) => document.querySelector('[data-testid="machine-state"]')?.getAttribute('data-state') === s,
      state,
      timeoutMs,
      `machine ${state}`,
      since,
    );
  }

  /** Waits for `data-role` = `role`; returns the ms from `since`. */
  waitForRole(role: string, timeoutMs = 10_000, since = Date.now()): Promise<number> {
    return this.waitFor(
      (r) => document.querySelector('[data-testid="tab-role"]')?.getAttribute('data-role') === r,
      role,
      timeoutMs,
      `role ${role}`,
      since,
    );
  }

  /** Waits for `connected` with a connection id on the page; returns the id. */
  async waitConnected(timeoutMs = 20_000): Promise<string> {
    await this.waitForBanner('connected', timeoutMs);
    await this.waitFor(
      () => /\w/.test(document.querySelector('[data-testid="connection-id"]')?.textContent?.replace(/[—-]/g, '') ?? ''),
      undefined,
      timeoutMs,
      'a connection id',
    );
    return (await this.facts()).connectionId;
  }

  /** Ids of the application events named `name` in the log, oldest first (the log shows newest first). */
  appEventIds(name: string): Promise<string[]> {
    return this.tab.eval(
      (n) =>
        Array.from(document.querySelectorAll('[data-testid="event-log"] li'))
          .filter((li) => li.getAttribute('data-event-name') === n)
          .map((li) => li.getAttribute('data-event-id') ?? '')
          .reverse(),
      name,
    );
  }

  /**
   * Starts recording this tab's role changes with the page's wall clock (`Date.now()`, the same
   * clock as the test's): a driver's round trip (WebDriver switching windows under load: up to
   * ~1.5 s) must not end up in a measured hand-over time.
   */
  recordRoles(): Promise<void> {
    return this.tab.eval(() => {
      const w = window as unknown as { __e2eRoles?: Array<{ role: string | null; at: number }> };
      if (w.__e2eRoles) return;
      const log: Array<{ role: string | null; at: number }> = [];
      w.__e2eRoles = log;
      const el = document.querySelector('[data-testid="tab-role"]');
      if (!el) throw new Error('no tab-role element');
      log.push({ role: el.getAttribute('data-role'), at: Date.now() });
      new MutationObserver(() => {
        const role = el.getAttribute('data-role');
        if (log[log.length - 1].role !== role) log.push({ role, at: Date.now() });
      }).observe(el, { attributes: true, attributeFilter: ['data-role'] });
    });
  }

  /** The role changes recorded since `recordRoles()`, oldest first. */
  roleChanges(): Promise<Array<{ role: string | null; at: number }>> {
    return this.tab.eval(() => (window as unknown as { __e2eRoles?: Array<{ role: string | null; at: number }> }).__e2eRoles ?? []);
  }

  visibility(): Promise<string> {
    return this.tab.eval(() => document.visibilityState);
  }
}
