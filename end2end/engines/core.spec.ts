// The core of the fault suite, written once against the `Driver` interface and run in Chromium
// (Playwright), Firefox (puppeteer-core, WebDriver BiDi) and WebKit (W3C WebDriver): real
// browser, real sse-status process, real TCP faults through the fault proxy. Engine quirks get a
// test where the engine can show them.
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { publish, metric } from '../tests/fixtures/tabs';
import { Dashboard } from '../tests/fixtures/dashboard';
import type { ConsoleEntry, Driver } from './driver';
import { expect, measured, sleep, test } from './fixtures';

const HEARTBEAT_MS = 1000; // the server fixture's default
/** 2 × heartbeat + 1 s, the watchdog's deadline; plus a margin for 2 shared, loaded cores. */
const STALE_BUDGET_MS = 2 * HEARTBEAT_MS + 1000 + 1500;
/**
 * Fault -> banner `reconnecting`: the banner's 500 ms debounce plus detection. Chromium is polled
 * through Playwright (a round trip of a few ms): 0.6 s, and no sooner than the debounce allows;
 * the WebDriver/BiDi engines get 2 s.
 */
const reconnectingBudget = (engine: string) => (engine === 'chromium' ? 600 : 2000);
const DEBOUNCE_FLOOR_MS = 450;

/** Uncaught errors and rejections: none may happen, whatever the fault. */
function pageErrors(entries: ConsoleEntry[]): ConsoleEntry[] {
  return entries.filter((e) => e.type === 'pageerror');
}

/** Opens `n` more tabs of the browser with the dashboard; returns their page objects. */
async function openTabs(driver: Driver, baseURL: string, n: number): Promise<Dashboard[]> {
  const tabs: Dashboard[] = [];
  for (let i = 0; i < n; i++) {
    const tab = new Dashboard(await driver.newTab(), baseURL);
    await tab.goto();
    tabs.push(tab);
  }
  return tabs;
}

/**
 * Waits until one leader has held for `holdMs` (leadership may still move: a hidden leader hands
 * over to a visible tab after a short hysteresis, as Firefox's background tabs are hidden).
 */
async function stableLeader(tabs: Dashboard[], holdMs = 2000, timeoutMs = 20_000): Promise<Dashboard> {
  const deadline = Date.now() + timeoutMs;
  let current = await singleLeader(tabs, timeoutMs);
  let since = Date.now();
  while (Date.now() - since < holdMs) {
    if (Date.now() > deadline) throw new Error('leadership did not settle');
    await sleep(100);
    const now = await singleLeader(tabs, Math.max(1, deadline - Date.now()));
    if (now !== current) {
      current = now;
      since = Date.now();
    }
  }
  return current;
}

/** Every tab's facts and console, for a failure message (what the page showed, and why). */
async function describeTabs(tabs: Dashboard[]): Promise<string> {
  const lines: string[] = [];
  for (const [i, t] of tabs.entries()) {
    const facts = await t.facts().catch((e) => `facts unreadable: ${e}`);
    const logged = await t.tab.console().catch((e) => `console unreadable: ${e}`);
    lines.push(`tab ${i + 1}: ${JSON.stringify(facts)}; console: ${JSON.stringify(logged)}`);
  }
  return lines.join('\n');
}

/** Waits until exactly one of `tabs` leads and the others follow; returns the leader. */
async function singleLeader(tabs: Dashboard[], timeoutMs = 15_000): Promise<Dashboard> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const roles = await Promise.all(tabs.map((t) => t.role()));
    if (roles.filter((r) => r === 'leader').length === 1 && roles.every((r) => r === 'leader' || r === 'follower'))
      return tabs[roles.indexOf('leader')];
    if (Date.now() > deadline) throw new Error(`no single leader: roles ${roles.join(', ')}\n${await describeTabs(tabs)}`);
    await sleep(50);
  }
}

test('load: connected, the stream opens at once (first body byte), no console errors or warnings', async ({ dash, driver }) => {
  const started = Date.now();
  await dash.goto();
  const hydrated = Date.now() - started;
  await dash.waitConnected();
  measured('goto -> hydrated', hydrated);
  measured('goto -> banner connected (time-to-connected)', Date.now() - started);

  // Safari is known to fire `open` only when the first body byte arrives, and Firefox does here
  // (see the quirk test below): the server must write its `connected` event at once, or the
  // page sits in `connecting` in those engines.
  const raw = await dash.tab.eval(
    () =>
      new Promise<{ open: number; connected: number; readyState: number }>((resolve, reject) => {
        const t0 = performance.now();
        let open = -1;
        const es = new EventSource('/events');
        es.onopen = () => (open = performance.now() - t0);
        es.addEventListener('connected', () => {
          const connected = performance.now() - t0;
          es.close();
          resolve({ open, connected, readyState: es.readyState });
        });
        setTimeout(() => {
          es.close();
          reject(new Error(`no connected event within 5 s (open after ${open} ms)`));
        }, 5000);
      }),
  );
  measured('raw EventSource: new -> open', raw.open, 1000);
  measured('raw EventSource: new -> first event (connected)', raw.connected, 1000);
  expect(raw.open).toBeGreaterThanOrEqual(0);
  expect(raw.open).toBeLessThanOrEqual(1000);
  expect(raw.connected).toBeLessThanOrEqual(1000);

  // Three more heartbeats received (late warnings, hydration included, have had their chance):
  // still connected, nothing on the console.
  await dash.waitForArrivals(3, 10 * HEARTBEAT_MS);
  expect(await dash.bannerState()).toBe('connected');
  expect(await driver.first.console()).toEqual([]);

  // The recorder sees what page code logs and throws (so the empty list above means something).
  // A page script (an inline <script>): WebKit hides the details of errors thrown by scripts
  // the driver injects ("Script error."), not of the page's own.
  await dash.tab.eval(() => {
    const script = document.createElement('script');
    script.textContent = "console.error('e2e-probe-logged'); setTimeout(() => { throw new Error('e2e-probe-thrown'); });";
    document.head.append(script);
  });
  await expect
    .poll(async () => (await driver.first.console()).map((e) => `${e.type}:${/e2e-probe-\w+/.exec(e.text)?.[0]}`))
    .toEqual(['error:e2e-probe-logged', 'pageerror:e2e-probe-thrown']);
});

test('half-open link (proxy freeze): stale within 2 × heartbeat + 1 s, connected after the thaw', async ({ dash, faultProxy, driver }) => {
  await dash.goto();
  await dash.waitConnected();
  const frozenAt = Date.now();
  faultProxy.freeze();
  const detect = await dash.waitForBanner('stale', 15_000, frozenAt);
  measured('freeze -> banner stale', detect, STALE_BUDGET_MS);
  expect(detect).toBeLessThanOrEqual(STALE_BUDGET_MS);
  expect((await dash.facts()).cause).toBe('heartbeat-missed');
  // The one immediate reopen is held by the frozen link: still stale, not yet reconnecting, after
  // the page's own clock ran 2 s more without an event (its tick drives the retries too).
  await dash.waitForSilence((await dash.heartbeatAgeMs()) + 2000);
  expect(await dash.machineState()).toBe('stale');

  const passAt = Date.now();
  faultProxy.pass();
  measured('thaw -> banner connected', await dash.waitForBanner('connected', 20_000, passAt));
  expect(pageErrors(await driver.first.console())).toEqual([]);
});

test('cut (RST): reconnecting within 2 s, connected again when the link returns', async ({ dash, faultProxy, driver }) => {
  await dash.goto();
  const before = await dash.waitConnected();
  const cutAt = Date.now();
  faultProxy.cut();
  const detect = await dash.waitForBanner('reconnecting', 10_000, cutAt);
  measured('cut -> banner reconnecting', detect, reconnectingBudget(driver.engine));
  expect(detect, 'the banner waits out its 500 ms debounce').toBeGreaterThanOrEqual(DEBOUNCE_FLOOR_MS);
  expect(detect).toBeLessThanOrEqual(reconnectingBudget(driver.engine));
  expect((await dash.facts()).cause).toBe('unreachable');

  const passAt = Date.now();
  faultProxy.pass();
  measured('link back -> banner connected', await dash.waitForBanner('connected', 30_000, passAt));
  expect(await dash.waitConnected()).not.toBe(before);
  expect(pageErrors(await driver.first.console())).toEqual([]);
});

test('server SIGKILL and restart: reconnecting, then connected to the new process', async ({ dash, server, driver }) => {
  await dash.goto();
  const connectionBefore = await dash.waitConnected();
  const before = (await dash.facts()).serverId;
  const killedAt = Date.now();
  await server.kill();
  const detect = await dash.waitForBanner('reconnecting', 10_000, killedAt);
  measured('SIGKILL -> banner reconnecting', detect, 2000);
  expect(detect).toBeLessThanOrEqual(2000);

  await server.start();
  const upAt = Date.now();
  measured('server up again -> banner connected', await dash.waitForBanner('connected', 30_000, upAt));
  expect(await dash.waitConnected()).not.toBe(connectionBefore);
  const after = (await dash.facts()).serverId;
  expect(after).toMatch(/\w/);
  expect(after).not.toBe(before);
  expect(pageErrors(await driver.first.console())).toEqual([]);
});

test('offline (where the engine emulates it): banner offline, connected again when online', async ({ dash, driver }) => {
  test.skip(!driver.setOffline, `${driver.engine}: no network emulation through this driver`);
  await dash.goto();
  const before = await dash.waitConnected();
  const offAt = Date.now();
  await driver.setOffline!(true);
  const budget = driver.engine === 'chromium' ? 1000 : 1500;
  const detect = await dash.waitForBanner('offline', 10_000, offAt);
  measured('offline -> banner offline', detect, budget);
  expect(detect).toBeLessThanOrEqual(budget);
  // Still offline after the page's own clock ran 1.5 s more (its tick drives retries too).
  await dash.waitForSilence((await dash.heartbeatAgeMs()) + 1500);
  expect(await dash.bannerState()).toBe('offline');

  const onAt = Date.now();
  await driver.setOffline!(false);
  measured('online -> banner connected', await dash.waitForBanner('connected', 15_000, onAt));
  expect(await dash.waitConnected()).not.toBe(before);
  expect(pageErrors(await driver.first.console())).toEqual([]);
});

// Safari's delayed `onopen`: when does `open` fire, on the response head or with the first body
// byte? A tiny stream server (CORS, another port) sends its head at once and its first byte only
// after 1.5 s. Recorded per engine; where `open` waits for the body, a server that sent only
// headers (or a comment after a delay) would leave the page `connecting` — which is why
// sse-status writes the `connected` event at once (the load test measures that).
test('engine quirk: EventSource `open` on the response head or on the first body byte', async ({ dash, driver }) => {
  const BODY_DELAY_MS = 1500;
  const slow = http.createServer((req, res) => {
    res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache', 'access-control-allow-origin': '*' });
    res.flushHeaders();
    const timer = setTimeout(() => res.write('event: hello\ndata: 1\n\n'), BODY_DELAY_MS);
    req.on('close', () => clearTimeout(timer));
  });
  await new Promise<void>((r) => slow.listen(0, '127.0.0.1', () => r()));
  try {
    const url = `http://127.0.0.1:${(slow.address() as AddressInfo).port}/`;
    await dash.goto();
    const t = await dash.tab.eval(
      (u) =>
        new Promise<{ open: number; message: number }>((resolve, reject) => {
          const t0 = performance.now();
          let open = -1;
          const es = new EventSource(u);
          es.onopen = () => (open = performance.now() - t0);
          es.addEventListener('hello', () => {
            const message = performance.now() - t0;
            es.close();
            resolve({ open, message });
          });
          setTimeout(() => {
            es.close();
            reject(new Error(`no event within 6 s (open after ${open} ms)`));
          }, 6000);
        }),
      url,
    );
    measured('head at once, body after 1.5 s: new -> open', t.open);
    measured('head at once, body after 1.5 s: new -> first event', t.message);
    const onBody = t.open >= BODY_DELAY_MS - 100;
    const line = `${driver.engine}: open fires on the ${onBody ? 'first body byte' : 'response head'}`;
    console.log(`  [quirk] ${line}`);
    test.info().annotations.push({ type: 'quirk', description: line });
    expect(t.open).toBeGreaterThanOrEqual(0);
    expect(t.message).toBeGreaterThanOrEqual(BODY_DELAY_MS - 100);
    // As measured here (Chromium 14x, Firefox ESR 153, WebKitGTK 2.50): fails the day it changes.
    expect(onBody, line).toBe(driver.engine === 'firefox');
  } finally {
    slow.closeAllConnections();
    await new Promise((r) => slow.close(r));
  }
});

// Firefox's (and the spec's) EventSource closes for good on a 5xx: no native retry. The page's
// own loop must not care: it keeps trying (cause server-error, a rising attempt, a ticking
// countdown, "Retry now") and connects by itself once the upstream is back.
test('503 on /events: the native EventSource closes for good; the page reconnects with cause server-error, a rising attempt and a ticking countdown, and recovers on its own', async ({
  dash,
  faultProxy,
}) => {
  await dash.goto();
  await dash.waitConnected();
  faultProxy.status(503);
  const requestsAtFault = faultProxy.eventsRequests;

  // A native EventSource next to the page's: it errors once and closes.
  await dash.tab.eval(() => {
    const probe = { errors: 0, after: -1, es: new EventSource('/events?probe=native') };
    (window as unknown as { __e2eNative: typeof probe }).__e2eNative = probe;
    probe.es.onerror = () => {
      probe.errors += 1;
      if (probe.after < 0) probe.after = probe.es.readyState;
    };
  });

  await dash.waitForBanner('reconnecting', 10_000);
  await expect.poll(() => dash.machineCause(), { timeout: 10_000 }).toBe('server-error');
  const shown = await dash.facts();
  expect(shown.bannerCauseText, 'the banner says why').not.toBe('');
  expect(shown.retryNow, '"Retry now" shown').toBe(true);
  expect(shown.ariaLive).toBe('polite');

  // Sample attempt and countdown until the attempt reached 3 and the countdown was seen ticking.
  const samples: Array<{ attempt: number; countdown: number; banner: string | null }> = [];
  let ticked = false;
  const deadline = Date.now() + 25_000;
  while (Date.now() < deadline) {
    const f = await dash.facts();
    const s = { attempt: f.attempt, countdown: f.countdown, banner: f.banner };
    const prev = samples.at(-1);
    if (prev && prev.attempt === s.attempt && s.countdown < prev.countdown) ticked = true;
    samples.push(s);
    if (s.attempt >= 3 && ticked) break;
    await sleep(200);
  }
  const summary = samples.map((s) => `${s.banner}:${s.attempt}:${s.countdown}`).join(' ');
  expect(samples.every((s) => Number.isInteger(s.countdown) && s.countdown >= 0), `banner:attempt:countdown ${summary}`).toBe(true);
  expect(samples[0].attempt, summary).toBeGreaterThanOrEqual(1);
  expect(Math.max(...samples.map((s) => s.attempt)), summary).toBeGreaterThanOrEqual(3);
  expect(ticked, `countdown seen counting down: ${summary}`).toBe(true);
  // Every sample reconnecting: the page's attempts met the 503 (the proxy answered them) and it
  // never gave up or claimed to be connected.
  expect(samples.every((s) => s.banner === 'reconnecting'), summary).toBe(true);
  // (The native probe's one request, and at least two of the page's.)
  expect(faultProxy.eventsRequests - requestsAtFault, '/events requests the proxy answered 503').toBeGreaterThanOrEqual(3);

  // By now the page's own loop retried at least twice at the server's `retry:` (1 s), so a native
  // retry would have happened too: the native EventSource is still CLOSED after its one error.
  const native = await dash.tab.eval(() => {
    const probe = (window as unknown as { __e2eNative: { errors: number; after: number; es: EventSource } }).__e2eNative;
    const later = probe.es.readyState;
    probe.es.close();
    return { readyStateAfterError: probe.after, readyStateLater: later, errors: probe.errors };
  });
  expect(native, 'native EventSource after a 503: CLOSED (2), one error, no retry').toEqual({
    readyStateAfterError: 2,
    readyStateLater: 2,
    errors: 1,
  });

  const passAt = Date.now();
  faultProxy.pass();
  measured('503 lifted -> banner connected', await dash.waitForBanner('connected', 40_000, passAt));
  await expect.poll(() => dash.machineCause()).toBe('none');
  expect(pageErrors(await dash.tab.console())).toEqual([]);
});

test('3 tabs: one stream for all (server and proxy count 1), one leader, two followers', async ({ dash, driver, server, faultProxy }) => {
  await dash.goto();
  const tabs = [dash, ...(await openTabs(driver, faultProxy.url, 2))];
  for (const t of tabs) await t.waitForBanner('connected', 20_000);
  await stableLeader(tabs);
  for (const t of tabs) await expect.poll(async () => (await t.facts()).shared, { timeout: 10_000 }).toBe(3);
  await expect.poll(() => metric(server, 'sse_connections_open'), { timeout: 10_000 }).toBe(1);
  // Still one after every tab received 3 more heartbeats through it (longer than a follower's
  // watchdog over a silent leader, 2 × heartbeat + 1 s: nobody took over from a healthy leader).
  await Promise.all(tabs.map((t) => t.waitForArrivals(3, 10 * HEARTBEAT_MS)));
  expect(await metric(server, 'sse_connections_open')).toBe(1);
  expect(faultProxy.openEventStreams).toBe(1);
  for (const t of tabs) expect(await t.bannerState()).toBe('connected');
  for (const t of tabs) expect(await t.tab.console()).toEqual([]);
});

test('leader tab closed mid-publish: every event once, in order, in every remaining tab', async ({ dash, driver, server, faultProxy }) => {
  await dash.goto();
  const tabs = [dash, ...(await openTabs(driver, faultProxy.url, 2))];
  for (const t of tabs) await t.waitForBanner('connected', 20_000);
  const leader = await stableLeader(tabs);
  const rest = tabs.filter((t) => t !== leader);
  for (const t of rest) await t.recordRoles();

  const ids: string[] = [];
  let closedAt = 0;
  for (let i = 0; i < 20; i++) {
    const t0 = Date.now();
    ids.push(await publish(server, 'demo', { n: i }));
    if (i === 5) {
      // The tab closed is the leader at that moment (not one that just handed over).
      expect(await leader.role()).toBe('leader');
      closedAt = Date.now();
      await leader.tab.close();
    }
    await sleep(Math.max(0, 100 - (Date.now() - t0)));
  }
  const next = await singleLeader(rest);
  const ledAt = (await next.roleChanges()).find((c) => c.role === 'leader' && c.at >= closedAt)?.at;
  expect(ledAt, 'the new leader recorded when it took over').toBeDefined();
  // Bounded by the followers' watchdog over a silent leader (2 × heartbeat + 1 s, plus the margin);
  // closing a tab normally hands over much faster (its lock is released at once).
  measured('leader closed -> a follower leads (page clock)', ledAt! - closedAt, STALE_BUDGET_MS);
  expect(ledAt! - closedAt).toBeLessThanOrEqual(STALE_BUDGET_MS);
  await next.waitForMachine('connected', 15_000);
  for (const [i, t] of rest.entries())
    await expect.poll(() => t.appEventIds('demo'), { message: `tab ${i + 1} (${await t.role()})`, timeout: 15_000 }).toEqual(ids);
  for (const t of rest) expect(await t.bannerState()).toBe('connected');
  await expect.poll(() => metric(server, 'sse_connections_open'), { timeout: 10_000 }).toBe(1);
  for (const t of rest) expect(pageErrors(await t.tab.console())).toEqual([]);
});

test('zh-CN: server render and hydration in Chinese, no console errors or warnings', async ({ dash, driver, faultProxy }) => {
  // The language cookie the switch sets (driver-neutral, unlike Accept-Language), set in the first
  // tab on a page without a stream (Firefox reports a stream cut by navigation as an error; the
  // browser's favicon request to /healthz logs a 404); the page is checked in a new tab.
  await dash.tab.goto(`${dash.baseURL}/healthz`);
  await dash.tab.eval(() => {
    document.cookie = 'lang=zh-CN; path=/; SameSite=Lax';
  });
  const [zh] = await openTabs(driver, faultProxy.url, 1);
  await zh.waitConnected();
  const page = await zh.tab.eval(() => ({
    lang: document.documentElement.lang,
    tagline: document.querySelector('.tagline')?.textContent?.trim(),
    live: document.querySelector('.banner__live')?.textContent?.trim(),
    switch: (document.querySelector('[data-testid="language-switch"]') as HTMLSelectElement | null)?.value,
  }));
  expect(page).toEqual({ lang: 'zh-CN', tagline: '这个页面在线吗？如实、迅速地告诉你。', live: '在线', switch: 'zh-CN' });
  expect(await zh.tab.console()).toEqual([]);
});

// For the hidden-tab leadership work: what `bringToFront` does to `document.visibilityState`.
// Firefox (tabs of one window) really hides the other tabs; the others are recorded as they are.
test('tab visibility: bringToFront and document.visibilityState', async ({ dash, driver, faultProxy }) => {
  await dash.goto();
  const [second] = await openTabs(driver, faultProxy.url, 1);
  await dash.tab.bringToFront();
  const firstFront = [await dash.visibility(), await second.visibility()];
  await second.tab.bringToFront();
  const secondFront = [await dash.visibility(), await second.visibility()];
  const line = `${driver.engine}: first in front ${firstFront.join('/')}, second in front ${secondFront.join('/')}`;
  console.log(`  [visibility] ${line}`);
  test.info().annotations.push({ type: 'visibility', description: line });
  if (driver.engine === 'firefox') {
    expect(firstFront).toEqual(['visible', 'hidden']);
    expect(secondFront).toEqual(['hidden', 'visible']);
  }
});

/** Starts recording this tab's `visibilitychange`s with the page's wall clock (`Date.now()`). */
function recordVisibility(dash: Dashboard): Promise<void> {
  return dash.tab.eval(() => {
    const w = window as unknown as { __e2eVisibility?: Array<{ state: string; at: number }> };
    if (w.__e2eVisibility) return;
    const log = [{ state: document.visibilityState as string, at: Date.now() }];
    w.__e2eVisibility = log;
    document.addEventListener('visibilitychange', () => log.push({ state: document.visibilityState, at: Date.now() }));
  });
}

/** The visibility changes recorded since `recordVisibility()`, oldest first. */
function visibilityChanges(dash: Dashboard): Promise<Array<{ state: string; at: number }>> {
  return dash.tab.eval(() => (window as unknown as { __e2eVisibility?: Array<{ state: string; at: number }> }).__e2eVisibility ?? []);
}

// The leader is a visible tab whenever one exists (docs/client.md, "Sharing one stream"): a visible
// follower takes over from a leader hidden for `share_visible_ms` (500 ms), once it has itself been
// visible that long. Here with really hidden tabs: only Firefox hides a tab through this suite's
// drivers (the visibility test above). Chromium's emulated version: tests/tabs.spec.ts.
test.describe('real hidden tabs', () => {
  test.skip(
    ({ engine }) => engine !== 'firefox',
    "the engine cannot hide a tab through its driver: Playwright's Chromium pages are always visible " +
      "(bringToFront changes nothing), WebKit's WebDriver tabs are separate windows that all stay visible; " +
      "Chromium's emulated hidden-leader test is in tests/tabs.spec.ts",
  );

  test('hidden leader, visible follower: the visible tab leads within 1 s, every event once, one stream; a quick switch moves nothing', async ({
    dash,
    driver,
    server,
    faultProxy,
  }) => {
    test.setTimeout(120_000);
    const SHARE_VISIBLE_MS = 500; // the client's default hysteresis
    const HANDOVER_BUDGET_MS = 1000;
    await dash.goto();
    const [b] = await openTabs(driver, faultProxy.url, 1);
    const a = dash;
    // A new tab is the selected one (so B may have taken over already): A in front, A leads.
    await a.tab.bringToFront();
    expect([await a.visibility(), await b.visibility()], 'A in front').toEqual(['visible', 'hidden']);
    for (const t of [a, b]) await t.waitForBanner('connected', 20_000);
    expect(await stableLeader([a, b]), 'the visible tab leads').toBe(a);
    await a.waitConnected();
    await expect.poll(() => metric(server, 'sse_connections_open'), { timeout: 10_000 }).toBe(1);
    for (const t of [a, b]) {
      await t.recordRoles();
      await recordVisibility(t);
    }

    // A quick switch (B in front for ~200 ms, shorter than the hysteresis) moves nothing. The
    // time A was really hidden is read from A's own visibilitychange record (page clock).
    await b.tab.bringToFront();
    await sleep(200);
    await a.tab.bringToFront();
    // Both tabs received 2 more heartbeats after A came back (> SHARE_VISIBLE_MS + 1 s on the
    // server's clock, each processed after any hand-over timer of the page would have fired).
    await Promise.all([a, b].map((t) => t.waitForArrivals(2, 10_000)));
    const flick = (await visibilityChanges(a)).slice(1);
    expect(flick.map((c) => c.state), 'A hidden once, then visible again').toEqual(['hidden', 'visible']);
    const hiddenFor = flick[1].at - flick[0].at;
    measured('quick switch: A really hidden for (page clock)', hiddenFor, SHARE_VISIBLE_MS);
    expect(hiddenFor, 'the quick switch must be shorter than the hysteresis to mean anything').toBeLessThan(SHARE_VISIBLE_MS);
    expect((await a.roleChanges()).map((c) => c.role), 'A kept the lead').toEqual(['leader']);
    expect((await b.roleChanges()).map((c) => c.role), 'B stayed a follower').toEqual(['follower']);
    expect(await metric(server, 'sse_connections_open')).toBe(1);

    // The hand-over, during a burst of events at 50 ms intervals: B to the front after the 6th;
    // at least 20 events, and the burst goes on until 3 more were published after B leads (so
    // the hand-over falls inside it whatever the driver's round trips cost).
    const marks = (await visibilityChanges(a)).length;
    const ids: string[] = [];
    const publishedAt: number[] = [];
    let switched: Promise<void> | undefined;
    let afterLead = -1;
    for (let i = 0; i < 20 || (afterLead < 3 && i < 100); i++) {
      const t0 = Date.now();
      ids.push(await publish(server, 'demo', { n: i }));
      publishedAt.push(Date.now());
      if (i === 5) switched = b.tab.bringToFront(); // not awaited here: the burst goes on meanwhile
      if (afterLead >= 0) afterLead += 1;
      else if (i > 5 && (await b.role()) === 'leader') afterLead = 0;
      await sleep(Math.max(0, 50 - (Date.now() - t0)));
    }
    await switched;
    expect(afterLead, 'B led before the burst ended').toBeGreaterThanOrEqual(3);
    expect([await a.visibility(), await b.visibility()], 'B in front: A really hidden').toEqual(['hidden', 'visible']);
    const hiddenAt = (await visibilityChanges(a)).slice(marks).find((c) => c.state === 'hidden')?.at;
    expect(hiddenAt, 'A recorded when it was hidden').toBeDefined();
    await b.waitForRole('leader', 10_000);
    const ledAt = (await b.roleChanges()).find((c) => c.role === 'leader' && c.at >= hiddenAt!)?.at;
    expect(ledAt, 'B recorded when it took over').toBeDefined();
    measured('leader really hidden -> the visible follower leads (page clock)', ledAt! - hiddenAt!, HANDOVER_BUDGET_MS);
    expect(ledAt! - hiddenAt!).toBeLessThanOrEqual(HANDOVER_BUDGET_MS);
    const during = `${publishedAt.filter((t) => t < hiddenAt!).length} events before A was hidden, ` +
      `${publishedAt.filter((t) => t >= hiddenAt! && t <= ledAt!).length} while it handed over, ${publishedAt.filter((t) => t > ledAt!).length} after B led`;
    console.log(`  [burst] firefox: ${during}`);
    test.info().annotations.push({ type: 'burst', description: during });
    await b.waitForMachine('connected', 15_000);
    await a.waitForRole('follower', 10_000);
    expect(await singleLeader([a, b])).toBe(b);

    for (const [name, t] of [['A (hidden)', a], ['B (visible)', b]] as const)
      await expect.poll(() => t.appEventIds('demo'), { message: `tab ${name} (${await t.role()}) event log`, timeout: 15_000 }).toEqual(ids);
    for (const t of [a, b]) expect(await t.bannerState()).toBe('connected');
    await expect.poll(() => metric(server, 'sse_connections_open'), { timeout: 10_000 }).toBe(1);
    await expect.poll(() => faultProxy.openEventStreams, { timeout: 10_000 }).toBe(1);
    for (const t of [a, b]) expect(pageErrors(await t.tab.console())).toEqual([]);
  });
});
