// Tabs sharing one stream at an insecure origin: a plain-HTTP host name (app.test, mapped to
// 127.0.0.1 by Chromium's resolver) is not a secure context, so the page has no Web Locks and the
// tabs elect their leader over the BroadcastChannel alone. Real Chromium, one browser context,
// real server processes.
import { test as base, expect, measured, sleep } from './fixtures';
import type { Dashboard } from './fixtures/dashboard';
import { metric, publish, Tabs } from './fixtures/tabs';
import config from '../playwright.config';

const HOST = 'app.test';

const test = base.extend({
  baseURL: async ({ server }, use) => {
    await use(`http://${HOST}:${server.port}`);
  },
});

test.use({
  useProxy: false,
  launchOptions: {
    ...config.use?.launchOptions,
    args: [...(config.use?.launchOptions?.args ?? []), `--host-resolver-rules=MAP ${HOST} 127.0.0.1`],
  },
});

async function allConnected(tabs: Dashboard[], timeoutMs = 20_000): Promise<number[]> {
  const since = Date.now();
  return Promise.all(tabs.map((t) => t.waitForBanner('connected', timeoutMs, since)));
}

/** Publishes `n` `demo` events, one every `everyMs`; resolves with their ids in order. */
async function publishSeries(server: Parameters<typeof publish>[0], n: number, everyMs: number, onEach?: (i: number) => Promise<void> | void): Promise<string[]> {
  const ids: string[] = [];
  for (let i = 0; i < n; i++) {
    const started = Date.now();
    ids.push(await publish(server, 'demo', { n: i }));
    await onEach?.(i);
    await sleep(Math.max(0, everyMs - (Date.now() - started)));
  }
  return ids;
}

/** Every tab's log holds exactly `ids`, once each, in order. */
async function expectEveryIdOnce(tabs: Dashboard[], ids: string[]): Promise<void> {
  for (const [i, tab] of tabs.entries()) {
    await expect
      .poll(() => Tabs.appEventIds(tab, 'demo'), { message: `tab ${i + 1} (${await tab.role()}) event log`, timeout: 10_000 })
      .toEqual(ids);
  }
}

test('the origin is insecure: no Web Locks, BroadcastChannel present', async ({ page, baseURL }) => {
  expect(baseURL).toContain(`http://${HOST}:`);
  await page.goto('/');
  const facts = await page.evaluate(() => ({
    secure: window.isSecureContext,
    locks: typeof (navigator as unknown as { locks?: unknown }).locks,
    channel: typeof BroadcastChannel,
  }));
  expect(facts).toEqual({ secure: false, locks: 'undefined', channel: 'function' });
});

test('8 tabs at an insecure origin: all load and connect over exactly 1 stream, one leader', async ({ context, server }) => {
  test.setTimeout(180_000);
  const tabs = new Tabs(context);
  const openedAt = Date.now();
  // One after the other, as a user opens them: each from navigation to its banner `connected`.
  const each: number[] = [];
  for (let i = 0; i < 8; i++) {
    const [tab] = await tabs.open(1);
    each.push(await tab.waitForBanner('connected', 20_000, Date.now() - (await tab.page.evaluate(() => performance.now()))));
  }
  measured('insecure origin: tab 1 (leads after the join wait) navigation -> connected', each[0]);
  measured('insecure origin: tabs 2-8 navigation -> connected, slowest', Math.max(...each.slice(1)));
  measured('insecure origin: first tab opened -> all 8 connected', Date.now() - openedAt);
  for (const t of tabs.all) {
    const facts = await t.page.evaluate(() => ({ secure: window.isSecureContext, locks: 'locks' in navigator }));
    expect(facts).toEqual({ secure: false, locks: false });
  }
  await tabs.leader();
  expect((await tabs.roles()).sort()).toEqual(['leader', ...Array(7).fill('follower')].sort());
  for (const tab of tabs.all) await expect.poll(() => tab.sharedCount()).toBe(8);
  expect(await metric(server, 'sse_connections_open')).toBe(1);
  // Still one stream a few beacons later: no follower took a healthy leader's stream over.
  await sleep(4000);
  expect(await metric(server, 'sse_connections_open')).toBe(1);
  expect(await metric(server, 'sse_connections_total')).toBe(1);
  expect((await tabs.roles()).filter((r) => r === 'leader')).toHaveLength(1);
});

test('insecure origin, leader closed during a publish burst: its heir leads at once, every tab lists every event exactly once', async ({
  context,
  server,
}) => {
  test.setTimeout(180_000);
  const tabs = new Tabs(context);
  await tabs.open(8);
  await allConnected(tabs.all);
  const leader = await tabs.leader();
  const followers = tabs.all.filter((t) => t !== leader);

  let handover: Promise<[Dashboard, number]> | undefined;
  const ids = await publishSeries(server, 30, 50, async (i) => {
    if (i === 10) {
      const closedAt = Date.now();
      handover = tabs.firstToLead(followers, 10_000, closedAt);
      await leader.page.close();
    }
  });
  const [next, took] = await handover!;
  measured('insecure origin: leader tab closed -> a follower leads', took, 1000);
  expect(took).toBeLessThanOrEqual(1000);
  await next.waitForMachine('connected', 10_000);
  const connectedIn = await next.page.evaluate(() => {
    const item = document.querySelector('[data-testid="state-timeline"] li[data-state="connecting"][data-cause="handover"]');
    return Number(item?.getAttribute('data-duration-ms') ?? NaN);
  });
  measured('insecure origin hand-over: new leader connecting -> connected', connectedIn);
  await expectEveryIdOnce(followers, ids);
  await tabs.leader();
  for (const t of followers) expect(await t.bannerState()).toBe('connected');
  await expect.poll(() => metric(server, 'sse_connections_open')).toBe(1);
  for (const t of followers) await expect.poll(() => t.sharedCount()).toBe(7);
});

test('insecure origin, leader main thread blocked: a follower takes the lapsed lease over, the old leader steps down when it wakes, nothing lost', async ({
  context,
  server,
}) => {
  test.setTimeout(120_000);
  const tabs = new Tabs(context);
  await tabs.open(3);
  await allConnected(tabs.all);
  const leader = await tabs.leader();
  const followers = tabs.all.filter((t) => t !== leader);

  const before = await publishSeries(server, 3, 100);
  const blockedAt = Date.now();
  const busy = leader.page.evaluate(() => {
    const end = Date.now() + 6000;
    while (Date.now() < end) {
      /* hung main thread */
    }
  });
  const handover = tabs.firstToLead(followers, 15_000, blockedAt);
  const during = await publishSeries(server, 10, 100);
  const [next, took] = await handover;
  // The lease: 2 × heartbeat (1 s) + 1 s, shortened by up to a quarter per tab.
  measured('insecure origin: leader blocked -> a follower leads', took, 3500);
  expect(took).toBeLessThanOrEqual(3500);
  await next.waitForMachine('connected', 10_000);
  await busy;
  const wokeAt = Date.now();
  await leader.waitForRole('follower', 10_000);
  measured('insecure origin: old leader awake -> follower', Date.now() - wokeAt);
  const after = await publishSeries(server, 3, 100);
  await expectEveryIdOnce(followers, [...before, ...during, ...after]);
  await expect.poll(() => metric(server, 'sse_connections_open')).toBe(1);
  await expectEveryIdOnce([leader], [...before, ...during, ...after]);
  expect((await tabs.roles()).filter((r) => r === 'leader')).toHaveLength(1);
});

// Playwright's Chromium pages are always visible; the page object tells the page otherwise
// (document.hidden + visibilitychange), which is what the client acts on. Real hidden tabs:
// the Firefox suite.
test('insecure origin, the leader hides: a visible follower leads within 1 s, nothing lost; a quick switch moves nothing', async ({
  context,
  server,
}) => {
  test.setTimeout(120_000);
  const tabs = new Tabs(context);
  await tabs.open(3);
  await allConnected(tabs.all);
  const leader = await tabs.leader();
  const [a, b] = tabs.all.filter((t) => t !== leader);
  // Only `a` stays visible.
  await b.setVisibility(false);

  // A quick switch away and back (shorter than the hysteresis): leadership stays.
  await leader.setVisibility(false);
  await sleep(200);
  await leader.setVisibility(true);
  await sleep(1200);
  expect(await leader.role()).toBe('leader');

  let handover: Promise<number> | undefined;
  const ids = await publishSeries(server, 20, 100, async (i) => {
    if (i === 5) {
      const hiddenAt = Date.now();
      handover = a.waitForRole('leader', 10_000, hiddenAt);
      await leader.setVisibility(false);
    }
  });
  const took = await handover!;
  measured('insecure origin: leader hidden -> the visible follower leads', took, 1000);
  expect(took).toBeLessThanOrEqual(1000);
  await a.waitForMachine('connected', 10_000);
  await expectEveryIdOnce(tabs.all, ids);
  expect(await leader.role()).toBe('follower');
  expect(await b.role()).toBe('follower');
  await expect.poll(() => metric(server, 'sse_connections_open')).toBe(1);
});

// Playwright's Chromium keeps no back/forward cache; the page gets the events a browser sends
// when it puts the page into the cache and restores it (`persisted: true`).
test('insecure origin, pagehide into the bfcache: the leader gives the stream up at once to its heir; pageshow brings it back as a follower', async ({
  context,
  server,
}) => {
  test.setTimeout(120_000);
  const tabs = new Tabs(context);
  await tabs.open(3);
  await allConnected(tabs.all);
  const leader = await tabs.leader();
  const others = tabs.all.filter((t) => t !== leader);
  const before = await publishSeries(server, 3, 100);

  const hiddenAt = Date.now();
  const handover = tabs.firstToLead(others, 10_000, hiddenAt);
  await leader.page.evaluate(() => window.dispatchEvent(new PageTransitionEvent('pagehide', { persisted: true })));
  const [heir, took] = await handover;
  measured('insecure origin: pagehide of the leader -> its heir leads', took, 500);
  expect(took).toBeLessThanOrEqual(500);
  await heir.waitForMachine('connected', 10_000);
  await expect.poll(() => metric(server, 'sse_connections_open')).toBe(1);
  const during = await publishSeries(server, 3, 100);
  await expectEveryIdOnce(others, [...before, ...during]);

  await leader.page.evaluate(() => window.dispatchEvent(new PageTransitionEvent('pageshow', { persisted: true })));
  await leader.waitForRole('follower', 5000);
  for (const t of tabs.all) await expect.poll(() => t.sharedCount()).toBe(3);
  const after = await publishSeries(server, 3, 100);
  await expectEveryIdOnce(others, [...before, ...during, ...after]);
  // The restored tab missed what was published while it was "in the cache" (as a cached page
  // does), and gets everything from its return on.
  await expect.poll(async () => (await Tabs.appEventIds(leader, 'demo')).slice(-3)).toEqual(after);
  expect((await tabs.roles()).filter((r) => r === 'leader')).toHaveLength(1);
  expect(await metric(server, 'sse_connections_open')).toBe(1);
});

test('insecure origin, ?share=0: every tab is solo with its own stream', async ({ context, server }) => {
  const tabs = new Tabs(context);
  await tabs.open(2, '?share=0');
  await allConnected(tabs.all);
  for (const t of tabs.all) expect(await t.role()).toBe('solo');
  expect(await metric(server, 'sse_connections_open')).toBe(2);
});
