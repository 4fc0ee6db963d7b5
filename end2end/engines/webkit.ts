//! WebKit (WebKitGTK's MiniBrowser, Debian's webkit2gtk-driver) over plain W3C WebDriver: a few
//! HTTP calls with Node's fetch() to /usr/bin/WebKitWebDriver, which starts MiniBrowser with
//! `--automation`. It needs an X display (`xvfb-run -a`). No client library: the handful of
//! endpoints used here (session, url, execute/sync, window/new, window switch/close) is smaller
//! than any library's setup, and selenium-webdriver and webdriverio both come with driver download
//! machinery this offline machine cannot use.
//!
//! WebDriver talks to one window at a time, so every command first switches to its tab's window
//! and the commands of one session run one after the other.
import { spawn, type ChildProcess } from 'node:child_process';
import { freePort } from '../tests/fixtures/server';
import type { ConsoleEntry, Driver, Tab } from './driver';
import { sleep } from '../tests/fixtures/time';

export const WEBKIT_DRIVER = process.env.WEBKIT_DRIVER ?? '/usr/bin/WebKitWebDriver';
export const MINIBROWSER = process.env.MINIBROWSER ?? '/usr/lib/x86_64-linux-gnu/webkit2gtk-4.1/MiniBrowser';

class WebDriverError extends Error {}

/** Installed after every navigation: keeps console errors/warnings and uncaught errors in the page. */
function installRecorder(): void {
  const w = window as unknown as { __e2eConsole?: Array<{ type: string; text: string }> };
  if (w.__e2eConsole) return;
  const log: Array<{ type: string; text: string }> = [];
  w.__e2eConsole = log;
  // JavaScriptCore's `stack` has no message line: keep both.
  const describe = (a: unknown) => (a instanceof Error ? `${a}\n${a.stack ?? ''}` : String(a));
  const text = (args: unknown[]) => args.map(describe).join(' ');
  const origError = console.error.bind(console);
  const origWarn = console.warn.bind(console);
  console.error = (...args: unknown[]) => {
    log.push({ type: 'error', text: text(args) });
    origError(...args);
  };
  console.warn = (...args: unknown[]) => {
    log.push({ type: 'warning', text: text(args) });
    origWarn(...args);
  };
  window.addEventListener('error', (e) => log.push({ type: 'pageerror', text: e.error ? describe(e.error) : e.message }));
  window.addEventListener('unhandledrejection', (e) => log.push({ type: 'pageerror', text: describe(e.reason) }));
}

class Session {
  private queue: Promise<unknown> = Promise.resolve();
  current = '';

  constructor(
    readonly base: string,
    readonly id: string,
  ) {}

  /** One WebDriver call (not queued). */
  async raw<T>(method: string, path: string, body?: unknown): Promise<T> {
    const res = await fetch(`${this.base}/session/${this.id}${path}`, {
      method,
      headers: { 'content-type': 'application/json' },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const json = (await res.json()) as { value: T & { error?: string; message?: string } };
    if (res.status !== 200) throw new WebDriverError(`WebDriver ${method} ${path}: ${json.value?.error}: ${json.value?.message}`);
    return json.value;
  }

  /** Runs `f` after every earlier command of this session, in the window `handle`. */
  run<T>(handle: string, f: () => Promise<T>): Promise<T> {
    const next = this.queue.then(async () => {
      if (this.current !== handle) {
        await this.raw('POST', '/window', { handle });
        this.current = handle;
      }
      return f();
    });
    this.queue = next.catch(() => {});
    return next;
  }
}

class WebKitTab implements Tab {
  closed = false;

  constructor(
    private readonly session: Session,
    readonly handle: string,
  ) {}

  goto(url: string): Promise<void> {
    return this.session.run(this.handle, async () => {
      await this.session.raw('POST', '/url', { url });
      await this.session.raw('POST', '/execute/sync', { script: `(${installRecorder.toString()})()`, args: [] });
    });
  }

  eval<R, A = undefined>(fn: (arg: A) => R | Promise<R>, arg?: A): Promise<R> {
    // execute/sync awaits a returned promise (W3C WebDriver), so async functions work too.
    const script = `return (${fn.toString()}).apply(null, arguments)`;
    return this.session.run(this.handle, () => this.session.raw<R>('POST', '/execute/sync', { script, args: arg === undefined ? [] : [arg] }));
  }

  bringToFront(): Promise<void> {
    // Switching windows is all classic WebDriver offers; MiniBrowser does not change visibility with it.
    return this.session.run(this.handle, async () => {});
  }

  close(): Promise<void> {
    return this.session.run(this.handle, async () => {
      await this.session.raw('DELETE', '/window');
      this.session.current = '';
      this.closed = true;
    });
  }

  async console(): Promise<ConsoleEntry[]> {
    if (this.closed) return [];
    return ((await this.eval(() => (window as unknown as { __e2eConsole?: ConsoleEntry[] }).__e2eConsole ?? [])) ?? []) as ConsoleEntry[];
  }
}

/**
 * WebKitWebDriver runs in a process group of its own (`detached`), with the MiniBrowser and
 * WebKit processes it starts: stopping it signals that group (by its id, the driver's PID), so
 * no browser outlives a driver that is stopped mid-launch.
 */
const live = new Set<ChildProcess>();
// If the worker dies (a test timeout during launch included), leave no browser behind.
process.on('exit', () => {
  for (const child of live) if (child.pid) try { process.kill(-child.pid, 'SIGKILL'); } catch { /* gone */ }
});

async function stopProcess(child: ChildProcess): Promise<void> {
  live.delete(child);
  if (!child.pid) return;
  const group = -child.pid;
  const running = child.exitCode === null && child.signalCode === null;
  const exited = running ? new Promise<void>((r) => child.once('exit', () => r())) : Promise.resolve();
  try { process.kill(group, 'SIGTERM'); } catch { return; }
  if (await Promise.race([exited.then(() => true), sleep(3000).then(() => false)])) {
    await sleep(200);
  }
  try { process.kill(group, 'SIGKILL'); } catch { /* the group is gone */ }
  await exited;
}

/**
 * Starts WebKitWebDriver and a MiniBrowser session. Once in ~20 launches on a loaded machine the
 * new session never answered: each attempt is bounded, and a second one follows a failed one.
 */
export async function launchWebKit(): Promise<Driver> {
  if (!process.env.DISPLAY) throw new Error('WebKit (MiniBrowser) needs an X display: run under `xvfb-run -a`');
  try {
    return await launchOnce();
  } catch (e) {
    console.log(`  [webkit] launch failed, trying once more: ${String(e).split('\n')[0]}`);
    return launchOnce();
  }
}

async function launchOnce(): Promise<Driver> {
  const port = await freePort();
  const driver = spawn(WEBKIT_DRIVER, [`--port=${port}`, '--host=127.0.0.1'], { stdio: ['ignore', 'pipe', 'pipe'], detached: true });
  live.add(driver);
  let driverLog = '';
  driver.stdout!.on('data', (d) => (driverLog += d));
  driver.stderr!.on('data', (d) => (driverLog += d));
  const base = `http://127.0.0.1:${port}`;
  try {
    const deadline = Date.now() + 15_000;
    for (;;) {
      try {
        if ((await fetch(`${base}/status`)).ok) break;
      } catch { /* not listening yet */ }
      if (Date.now() > deadline || driver.exitCode !== null) throw new Error(`WebKitWebDriver did not start:\n${driverLog}`);
      await sleep(50);
    }
    const res = await fetch(`${base}/session`, {
      signal: AbortSignal.timeout(25_000),
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({
        capabilities: {
          alwaysMatch: {
            browserName: 'MiniBrowser',
            'webkitgtk:browserOptions': { binary: MINIBROWSER, args: ['--automation'] },
            timeouts: { script: 60_000, pageLoad: 30_000 },
          },
        },
      }),
    });
    const created = (await res.json().catch((e) => {
      throw new Error(`WebDriver new session: ${e}\n${driverLog}`);
    })) as { value: { sessionId: string; capabilities: { browserVersion: string }; message?: string } };
    if (res.status !== 200) throw new Error(`WebDriver new session: ${res.status} ${created.value?.message}\n${driverLog}`);
    const session = new Session(base, created.value.sessionId);
    const firstHandle = await session.raw<string>('GET', '/window');
    session.current = firstHandle;
    return {
      engine: 'webkit',
      version: `MiniBrowser (WebKitGTK)/${created.value.capabilities.browserVersion}`,
      first: new WebKitTab(session, firstHandle),
      // A new *window* of the same browser: MiniBrowser's new tabs stay `hidden` (switching to one
      // does not select it), and a hidden tab is a different test. Windows share the connection
      // pool, BroadcastChannel and Web Locks like tabs do.
      newTab: async () => {
        const w = await session.run(session.current || firstHandle, () => session.raw<{ handle: string }>('POST', '/window/new', { type: 'window' }));
        return new WebKitTab(session, w.handle);
      },
      close: async () => {
        await fetch(`${base}/session/${session.id}`, { method: 'DELETE' }).catch(() => {});
        await stopProcess(driver);
      },
    };
  } catch (e) {
    await stopProcess(driver);
    throw new Error(`${e instanceof Error ? e.message : String(e)}\n${driverLog}`);
  }
}
