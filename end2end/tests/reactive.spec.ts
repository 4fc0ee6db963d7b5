//! The hook's reactive options in a real browser against a real server: a page that changes its
//! topics (the dashboard's checkbox per granted topic) switches its stream without a reload —
//! resuming after the last event, getting the new topic and no longer the old one, the banner
//! never showing trouble — and tabs regroup by topic set; a page with `immediate: false`
//! (`?immediate=0`) requests nothing until it opens its stream.
import type { Locator, Page } from '@playwright/test';
import { expect, measured, test } from './fixtures';
import { demoIds, publishBurst, publishTo, reaching, signIn } from './fixtures/access';
import { PageDashboard } from './fixtures/dashboard';
import { allConnected, metric, publish, Tabs } from './fixtures/tabs';
import type { ServerProcess } from './fixtures/server';

const SECRET = 'e2e-auth-secret-0123456789abcdef';

test.use({
  useProxy: false,
  serverOptions: {
    // Access tokens that outlive the test: renewals are private.spec.ts's subject.
    env: { SSE_AUTH_SECRET: SECRET, SSE_DEMO_USERS: 'alice,bob', SSE_DEMO_TOKEN_TTL_MS: '600000' },
  },
});

/** The access card's checkbox for `topic` (ticked: the page streams it). */
function follow(page: Page, topic: string): Locator {
  return page.getByTestId('topics').locator(`[data-topic="${topic}"] [data-testid="follow-topic"]`);
}

/** Streams the server holds for `topic` (`GET /api/presence`). */
async function subscribers(server: ServerProcess, topic: string): Promise<number> {
  const res = await fetch(`${server.url}/api/presence?topic=${encodeURIComponent(topic)}`, {
    headers: { authorization: `Bearer ${server.publishToken}` },
  });
  return ((await res.json()) as { subscribers: number }).subscribers;
}

/** The banner's and the machine's `data-state` changes since the recorder was last cleared. */
async function recorded(page: Page): Promise<{ banner: string[]; machine: string[] }> {
  return page.evaluate(() => {
    const w = window as unknown as { __states: { banner: { state: string }[]; machine: { state: string }[] } };
    return { banner: w.__states.banner.map((s) => s.state), machine: w.__states.machine.map((s) => s.state) };
  });
}

async function clearRecorded(page: Page): Promise<void> {
  await page.evaluate(() => {
    const w = window as unknown as { __states: { banner: unknown[]; machine: unknown[] } };
    w.__states.banner.length = 0;
    w.__states.machine.length = 0;
  });
}

test('switching topics: no reload, resumes after the last event, the new topic arrives, the old no longer, the banner never shows trouble', async ({
  page,
  server,
}) => {
  test.setTimeout(90_000);
  await page.addInitScript({ path: require.resolve('./fixtures/state-recorder.js') });
  await signIn(page, 'alice');
  const dash = new PageDashboard(page);
  await dash.goto('?topics=users/alice');
  await dash.waitConnected();
  await expect(follow(page, 'users/alice')).toBeChecked();
  await expect(follow(page, 'public')).not.toBeChecked();
  expect(await subscribers(server, 'public')).toBe(0);
  // From here on, one document: a reload would lose this mark.
  await page.evaluate(() => ((window as unknown as { __sameDocument: boolean }).__sameDocument = true));
  await clearRecorded(page);
  const firstStream = await dash.text(dash.connectionId);

  // 1. Add `public` in the middle of a burst to users/alice, a topic of both sets: the new stream
  //    resumes after the last event seen, so every one arrives once, in order.
  const sent = await publishBurst(server, Array(16).fill(['users/alice']), 'across', 60, async (i) => {
    if (i === 5) await follow(page, 'public').check();
  });
  await expect.poll(() => demoIds(dash), { timeout: 10_000 }).toEqual(reaching(sent, ['users/alice']));
  await expect.poll(() => subscribers(server, 'public'), { message: 'the new stream subscribes public' }).toBe(1);
  await expect(dash.connectionId, 'a new stream').not.toHaveText(firstStream);
  const viaPublic = await publishTo(server, ['public'], { text: 'to-public' });
  await expect.poll(() => demoIds(dash)).toContain(viaPublic);

  // 2. Drop users/alice: an event to it published before one to public never arrives (the
  //    stream delivers in publish order, so once the later one is here, the earlier is not coming).
  await follow(page, 'users/alice').uncheck();
  await expect.poll(() => subscribers(server, 'users/alice'), { message: 'the old topic is let go' }).toBe(0);
  await expect.poll(() => subscribers(server, 'public')).toBe(1);
  const toOld = await publishTo(server, ['users/alice'], { text: 'to-the-old-topic' });
  const toNew = await publishTo(server, ['public'], { text: 'to-the-new-topic' });
  await expect.poll(() => demoIds(dash)).toContain(toNew);
  expect(await demoIds(dash)).not.toContain(toOld);

  // No reload, no reconnect counted, no trouble shown: the switches said `connecting` (cause
  // `switch`) at most, and the banner's debounce hid that.
  expect(await page.evaluate(() => (window as unknown as { __sameDocument?: boolean }).__sameDocument)).toBe(true);
  await expect(dash.banner).toHaveAttribute('data-state', 'connected');
  await expect(page.getByTestId('reconnect-count')).toHaveText('0');
  const states = await recorded(page);
  measured('banner states during two switches', states.banner.length, undefined, '');
  expect(states.machine.filter((s) => s !== 'connected' && s !== 'connecting'), `machine: ${states.machine.join(' ')}`).toEqual([]);
  expect(states.banner.filter((s) => s !== 'connected' && s !== 'connecting'), `banner: ${states.banner.join(' ')}`).toEqual([]);
  const switches = (await dash.timeline()).filter((e) => e.state === 'connecting' && e.cause === 'switch');
  expect(switches.length, 'the timeline names each switch').toBeGreaterThanOrEqual(1);
});

test('tabs regroup by topic set: the switching leader hands its old group over and leads the new one, and joins back as a follower', async ({
  page,
  context,
  server,
}) => {
  test.setTimeout(120_000);
  await signIn(page, 'alice');
  const tabs = new Tabs(context);
  const first = new PageDashboard(page);
  await first.goto('?topics=users/alice');
  tabs.all.push(first);
  await tabs.open(2, '?topics=users/alice');
  await allConnected(tabs.all);
  const leader = await tabs.leader();
  const others = tabs.all.filter((t) => t !== leader);
  expect(await metric(server, 'sse_connections_open')).toBe(1);

  // The leader ticks `public`: its old group elects another leader, and it leads the new set.
  const since = Date.now();
  await follow(leader.page, 'public').check();
  const [next, took] = await tabs.firstToLead(others, 10_000, since);
  measured('leader switched topics -> a tab of the old set leads', took);
  await leader.waitForRole('leader', 10_000);
  await allConnected(tabs.all);
  await expect.poll(() => metric(server, 'sse_connections_open'), { message: 'one stream per topic set' }).toBe(2);
  await expect.poll(() => leader.sharedCount()).toBe(1);
  for (const t of others) await expect.poll(() => t.sharedCount()).toBe(2);
  await expect.poll(() => subscribers(server, 'public')).toBe(1);
  await expect.poll(() => subscribers(server, 'users/alice')).toBe(2);
  // Each set gets its own: public reaches the switched tab only; users/alice every tab.
  const sent = await publishBurst(server, [['public'], ['users/alice'], ['public'], ['users/alice']], 'sets');
  await expect.poll(() => demoIds(leader)).toEqual(expect.arrayContaining(reaching(sent, ['users/alice', 'public'])));
  for (const t of others) {
    await expect.poll(() => demoIds(t)).toEqual(expect.arrayContaining(reaching(sent, ['users/alice'])));
    for (const s of sent.filter((s) => s.topics.includes('public'))) expect(await demoIds(t)).not.toContain(s.id);
  }

  // It unticks `public` again: back in the first group, following the tab that leads it.
  await follow(leader.page, 'public').uncheck();
  await leader.waitForRole('follower', 10_000);
  await expect.poll(() => metric(server, 'sse_connections_open'), { message: 'one stream again' }).toBe(1);
  for (const t of tabs.all) await expect.poll(() => t.sharedCount()).toBe(3);
  expect(await next.role()).toBe('leader');
  for (const t of tabs.all) await expect(t.banner).toHaveAttribute('data-state', 'connected');
});

test('?immediate=0: the page says "not connected" and requests no stream until it opens one; open, close and open again resume', async ({
  page,
  server,
}) => {
  test.setTimeout(60_000);
  const streams: string[] = [];
  page.on('request', (r) => {
    if (new URL(r.url()).pathname === '/events') streams.push(r.url());
  });
  // The server render says so already (and hydration keeps it).
  const html = await (await page.request.get('/?immediate=0')).text();
  expect(html).toMatch(/data-testid="connection-banner"[^>]*data-state="closed"[^>]*data-cause="not-opened"/);
  const dash = new PageDashboard(page);
  await dash.goto('?immediate=0');
  await expect(dash.banner).toHaveAttribute('data-state', 'closed');
  await expect(dash.banner).toHaveAttribute('data-cause', 'not-opened');
  await expect(page.getByTestId('banner-title')).toHaveText('Not connected');
  await expect(dash.retryNow, 'the page opens it, not Retry now').toHaveCount(0);
  const toggle = page.getByTestId('stream-toggle');
  await expect(toggle).toHaveAttribute('data-action', 'open');
  // Hydrated, the hook has run (an eager one would have requested its stream by now); a request
  // the page makes after that comes back before we look, so one for /events would be seen.
  await page.evaluate(() => fetch('/healthz').then((r) => r.status));
  expect(streams, 'no request to /events before open()').toEqual([]);
  expect(await metric(server, 'sse_connections_open')).toBe(0);

  // Open: it connects.
  await toggle.click();
  await dash.waitConnected();
  expect(streams).toHaveLength(1);
  await expect(toggle).toHaveAttribute('data-action', 'close');
  const before = await publish(server, 'demo', { text: 'while open' });
  await expect.poll(() => Tabs.appEventIds(dash, 'demo')).toEqual([before]);

  // Close: closed by the page, no retries; what is published meanwhile comes on the next open.
  await toggle.click();
  await expect(dash.banner).toHaveAttribute('data-state', 'closed');
  await expect(dash.banner).toHaveAttribute('data-cause', 'closed-by-page');
  await expect(dash.retryNow).toHaveCount(0);
  await expect.poll(() => metric(server, 'sse_connections_open')).toBe(0);
  const missed = await publish(server, 'demo', { text: 'while closed' });
  await toggle.click();
  await dash.waitConnected();
  expect(streams).toHaveLength(2);
  expect(new URL(streams[1]).searchParams.get('last_event_id'), 'the reopen resumes after the last event').toBe(before);
  await expect.poll(() => Tabs.appEventIds(dash, 'demo')).toEqual([before, missed]);
});
