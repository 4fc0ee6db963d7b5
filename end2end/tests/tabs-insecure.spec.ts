// Tabs sharing one stream at an insecure origin: a plain-HTTP host name (app.test, mapped to
// 127.0.0.1 by Chromium's resolver) is not a secure context, so the page has no Web Locks and the
// tabs elect their leader over the BroadcastChannel alone. Real Chromium, one browser context,
// real server processes.
import { test as base, expect, measured, sleep } from './fixtures';
import { allConnected, expectEveryIdOnce, leaderBlocked, leaderClosedDuringBurst, leaderHides, metric, openLed, publishSeries, Tabs } from './fixtures/tabs';
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
  const { followers } = await leaderClosedDuringBurst(context, server, {
    tabs: 8,
    events: 30,
    everyMs: 50,
    closeAt: 10,
    labels: { handover: 'insecure origin: leader tab closed -> a follower leads', connected: 'insecure origin hand-over: new leader connecting -> connected' },
  });
  await expect.poll(() => metric(server, 'sse_connections_open')).toBe(1);
  for (const t of followers) await expect.poll(() => t.sharedCount()).toBe(7);
});

test('insecure origin, leader main thread blocked: a follower takes the lapsed lease over, the old leader steps down when it wakes, nothing lost', async ({
  context,
  server,
}) => {
  test.setTimeout(120_000);
  // The lease: 2 × heartbeat (1 s) + 1 s, shortened by up to a quarter per tab.
  const { tabs, leader, followers, before, during, busy } = await leaderBlocked(context, server, {
    budget: 3500,
    label: 'insecure origin: leader blocked -> a follower leads',
  });
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
  // Only the leader and one follower stay visible; a quick switch away and back (shorter than
  // the hysteresis) keeps the lead.
  const { leader, b } = await leaderHides(context, server, 'insecure origin: leader hidden -> the visible follower leads');
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
  const { tabs, leader, followers: others } = await openLed(context, 3);
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
