//! Private streams in a real browser against a real server (`--auth-secret`, `--demo-users`):
//! a reader sees only their own topics, an access token that expires mid-stream is renewed
//! without the banner ever leaving `connected` and without losing an event, a renewal that is
//! refused says `signed_out`, and a revoked subject's tabs all say `revoked`. A reader never
//! sees another's events after a cut link resumes with `Last-Event-ID`, nor after a leader tab
//! hand-over; tabs that ask for different topic sets share one stream per set.
import { createHmac } from 'node:crypto';
import type { BrowserContext } from '@playwright/test';
import { expect, measured, sleep, test } from './fixtures';
import { cycle, demoIds, demoTexts, publishBurst, publishTo, reaching, signIn } from './fixtures/access';
import { PageDashboard } from './fixtures/dashboard';
import { metric, Tabs } from './fixtures/tabs';

const SECRET = 'e2e-auth-secret-0123456789abcdef';

test.use({
  useProxy: false,
  serverOptions: {
    env: {
      SSE_AUTH_SECRET: SECRET,
      SSE_DEMO_USERS: 'alice,bob',
      // Long enough for a test's setup, short enough to expire several times within one.
      SSE_DEMO_TOKEN_TTL_MS: '3000',
    },
  },
});

test('a reader sees their own topic, public and broadcasts, never another reader’s', async ({ page, browser, server, baseURL }) => {
  const alice = await signIn(page, 'alice');
  await expect(page.getByTestId('topics').locator('[data-topic]')).toHaveCount(2);
  await expect(page.getByTestId('topics').locator('[data-topic="users/alice"]')).toHaveCount(1);
  const bobContext: BrowserContext = await browser.newContext({ baseURL });
  const bobPage = await bobContext.newPage();
  await signIn(bobPage, 'bob');

  await publishTo(server, ['users/alice'], { text: 'for-alice' });
  await publishTo(server, ['users/bob'], { text: 'for-bob' });
  await publishTo(server, ['public'], { text: 'for-everyone' });
  await publishTo(server, [], { text: 'broadcast' });
  await expect.poll(() => demoTexts(page), { timeout: 5_000 }).toHaveLength(3);
  await expect.poll(() => demoTexts(bobPage), { timeout: 5_000 }).toHaveLength(3);
  const seenByAlice = (await demoTexts(page)).join('|');
  const seenByBob = (await demoTexts(bobPage)).join('|');
  expect(seenByAlice).toContain('for-alice');
  expect(seenByAlice).not.toContain('for-bob');
  expect(seenByBob).toContain('for-bob');
  expect(seenByBob).not.toContain('for-alice');
  for (const seen of [seenByAlice, seenByBob]) {
    expect(seen).toContain('for-everyone');
    expect(seen).toContain('broadcast');
  }
  expect(await alice.bannerState()).toBe('connected');
  await bobContext.close();
});

test('an access token that expires three times mid-stream: every event once, in order, the banner always connected', async ({ page, server }) => {
  await page.addInitScript({ path: require.resolve('./fixtures/state-recorder.js') });
  const dash = await signIn(page, 'alice');
  await page.evaluate(() => {
    const w = window as unknown as { __states: { banner: unknown[]; machine: unknown[] } };
    w.__states.banner.length = 0;
    w.__states.machine.length = 0;
  });
  const ids: string[] = [];
  const started = Date.now();
  // 3 s tokens: about 10 s of steady publishing crosses at least three expiries.
  while (Date.now() - started < 10_500) {
    ids.push(await publishTo(server, ['users/alice'], { text: `n${ids.length}` }));
    await sleep(300);
  }
  await expect
    .poll(async () => (await dash.events()).filter((e) => e.name === 'demo').length, { timeout: 10_000 })
    .toBe(ids.length);
  const got = (await dash.events())
    .filter((e) => e.name === 'demo')
    .map((e) => e.id)
    .reverse();
  expect(got).toEqual(ids);
  const states = await page.evaluate(() => {
    const w = window as unknown as { __states: { banner: { state: string }[]; machine: { state: string }[] } };
    return { banner: w.__states.banner.map((s) => s.state), machine: w.__states.machine.map((s) => s.state) };
  });
  const renewals = states.machine.filter((s) => s === 'reconnecting').length;
  measured('access renewals during the run', renewals, undefined, '');
  expect(renewals, `machine states: ${states.machine.join(' ')}`).toBeGreaterThanOrEqual(3);
  expect(new Set(states.banner), `banner states: ${states.banner.join(' ')}`).toEqual(new Set(['connected']));
});

test('a refused renewal says signed out, for good', async ({ page, context }) => {
  const dash = await signIn(page, 'alice');
  // The session the renewal needs is gone (signed out elsewhere).
  await context.clearCookies({ name: 'sse_demo_session' });
  const since = Date.now();
  await dash.waitForBanner('rejected', 10_000);
  measured('token expiry -> banner rejected (refresh refused)', Date.now() - since);
  await expect(dash.banner).toHaveAttribute('data-cause', 'signed_out');
  // No retry loop: it stays so.
  await sleep(3_000);
  expect(await dash.bannerState()).toBe('rejected');
  await expect(dash.banner).toHaveAttribute('data-cause', 'signed_out');
});

test('revocation: every tab of the subject says revoked within 1 s, and the server holds none of their streams', async ({ page, context, server }) => {
  await signIn(page, 'alice');
  const second = await context.newPage();
  const other = new PageDashboard(second);
  await other.goto();
  await other.waitConnected();
  const tabs = [new PageDashboard(page), other];
  const since = Date.now();
  const res = await fetch(`${server.url}/api/revoke`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${server.publishToken}` },
    body: JSON.stringify({ subject: 'alice' }),
  });
  expect(res.status).toBeLessThan(300);
  for (const tab of tabs) {
    await tab.waitForBanner('rejected', 1_000 + 500, since);
    await expect(tab.banner).toHaveAttribute('data-cause', 'revoked');
  }
  measured('revoke -> every tab shows revoked', Date.now() - since, 1000);
  const metrics = await (await fetch(`${server.url}/metrics`)).text();
  expect(metrics).toMatch(/^sse_connections_open 0$/m);
  // They stay revoked: no reconnect on their own.
  await sleep(2_000);
  for (const tab of tabs) expect(await tab.bannerState()).toBe('rejected');
});

const ALICE = ['users/alice', 'public'];
const BOB = ['users/bob', 'public'];
/** Access tokens that outlive the test: these tests are about other faults than expiry. */
const LONG_TOKENS = {
  env: { SSE_AUTH_SECRET: SECRET, SSE_DEMO_USERS: 'alice,bob', SSE_DEMO_TOKEN_TTL_MS: '600000' },
};

test.describe('through the fault proxy', () => {
  test.use({ useProxy: true, serverOptions: LONG_TOKENS });

  test('a cut link resumes with Last-Event-ID: each reader gets exactly their missed events, once, in order, never the other’s', async ({
    page,
    browser,
    server,
    faultProxy,
    baseURL,
  }) => {
    const alice = await signIn(page, 'alice');
    const bobContext = await browser.newContext({ baseURL });
    const bob = await signIn(await bobContext.newPage(), 'bob');
    const targets = [['users/alice'], ['users/bob'], ['public'], []];
    const before = await publishBurst(server, targets, 'before');
    await expect.poll(() => demoIds(alice)).toEqual(reaching(before, ALICE));
    await expect.poll(() => demoIds(bob)).toEqual(reaching(before, BOB));

    // Both links are reset, and every new connection too, until pass().
    faultProxy.cut();
    await alice.waitForMachine('reconnecting', 10_000);
    await bob.waitForMachine('reconnecting', 10_000);
    const missed = await publishBurst(
      server,
      [['users/bob'], ['users/alice'], ['users/bob'], ['public'], ['users/alice'], [], ['users/bob'], ['users/alice']],
      'missed',
    );
    // Published while cut: neither page has a stream (nor got any of them).
    expect(await alice.machineState()).not.toBe('connected');
    expect(await bob.machineState()).not.toBe('connected');
    expect(await demoIds(alice)).toEqual(reaching(before, ALICE));

    faultProxy.pass();
    await alice.waitForMachine('connected', 20_000);
    await bob.waitForMachine('connected', 20_000);
    const aliceMissed = reaching(missed, ALICE);
    const bobMissed = reaching(missed, BOB);
    await expect(page.getByTestId('replay-notice')).toHaveAttribute('data-replayed', String(aliceMissed.length));
    await expect(bob.page.getByTestId('replay-notice')).toHaveAttribute('data-replayed', String(bobMissed.length));
    await expect(page.getByTestId('resync-notice')).toBeHidden();
    await expect.poll(() => demoIds(alice)).toEqual([...reaching(before, ALICE), ...aliceMissed]);
    await expect.poll(() => demoIds(bob)).toEqual([...reaching(before, BOB), ...bobMissed]);
    // What each person reads: never a word meant for the other.
    expect((await demoTexts(page)).join('|')).not.toContain('users/bob');
    expect((await demoTexts(bob.page)).join('|')).not.toContain('users/alice');

    // And live again afterwards.
    const after = await publishBurst(server, targets, 'after');
    await expect.poll(() => demoIds(alice)).toEqual([...reaching(before, ALICE), ...aliceMissed, ...reaching(after, ALICE)]);
    await expect.poll(() => demoIds(bob)).toEqual([...reaching(before, BOB), ...bobMissed, ...reaching(after, BOB)]);
    await bobContext.close();
  });
});

test.describe('tabs', () => {
  test.use({ serverOptions: LONG_TOKENS });

  test('the leader tab closes during a burst to alice, bob and public: every other alice tab lists each of her events once, in order, and none of bob’s', async ({
    page,
    context,
    browser,
    server,
    baseURL,
  }) => {
    test.setTimeout(120_000);
    const tabs = new Tabs(context);
    tabs.all.push(await signIn(page, 'alice'));
    await tabs.open(2);
    await Promise.all(tabs.all.map((t) => t.waitForBanner('connected', 20_000)));
    const bobContext = await browser.newContext({ baseURL });
    const bob = await signIn(await bobContext.newPage(), 'bob');
    const leader = await tabs.leader();
    const followers = tabs.all.filter((t) => t !== leader);
    expect(await metric(server, 'sse_connections_open'), 'one stream for alice’s 3 tabs, one for bob').toBe(2);

    const targets = cycle([['users/alice'], ['users/bob'], ['public'], []], 24);
    let handover: Promise<[PageDashboard, number]> | undefined;
    const sent = await publishBurst(server, targets, 'burst', 100, async (i) => {
      if (i === 6) {
        handover = tabs.firstToLead(followers, 10_000, Date.now());
        await leader.page.close();
      }
    });
    const [next, took] = await handover!;
    measured('leader tab closed mid-burst -> a follower leads', took);
    await next.waitForMachine('connected', 10_000);
    for (const [i, tab] of followers.entries()) {
      await expect
        .poll(() => demoIds(tab), { message: `alice tab ${i + 1} (${await tab.role()})`, timeout: 10_000 })
        .toEqual(reaching(sent, ALICE));
      expect((await demoTexts(tab.page)).join('|')).not.toContain('users/bob');
    }
    await expect.poll(() => demoIds(bob)).toEqual(reaching(sent, BOB));
    await tabs.leader();
    expect(await metric(server, 'sse_connections_open')).toBe(2);
    await bobContext.close();
  });

  test('8 tabs over 2 topic sets (?topics=) hold 2 streams, and each tab sees exactly its topics', async ({ page, context, server }) => {
    test.setTimeout(180_000);
    await signIn(page, 'alice');
    const A = ['users/alice'];
    const B = ['public'];
    const tabs = new Tabs(context);
    const first = new PageDashboard(page);
    await first.goto(`?topics=${A.join(',')}`);
    tabs.all.push(first);
    const setA = [first, ...(await tabs.open(3, `?topics=${A.join(',')}`))];
    const setB = await tabs.open(4, `?topics=${B.join(',')}`);
    await Promise.all(tabs.all.map((t) => t.waitForBanner('connected', 30_000)));
    for (const set of [setA, setB]) {
      await expect
        .poll(async () => (await Promise.all(set.map((t) => t.role()))).sort().join(','))
        .toBe('follower,follower,follower,leader');
      for (const t of set) await expect.poll(() => t.sharedCount()).toBe(4);
    }
    expect(await metric(server, 'sse_connections_open')).toBe(2);
    // The server's view: one stream reaches each topic.
    for (const topic of ['users/alice', 'public', 'users/bob']) {
      const res = await fetch(`${server.url}/api/presence?topic=${topic}`, {
        headers: { authorization: `Bearer ${server.publishToken}` },
      });
      expect(((await res.json()) as { subscribers: number }).subscribers, topic).toBe(topic === 'users/bob' ? 0 : 1);
    }

    const targets = cycle([['users/alice'], ['users/bob'], ['public'], []], 12);
    const sent = await publishBurst(server, targets, 'sets', 50);
    for (const [set, topics, name] of [[setA, A, 'A'], [setB, B, 'B']] as const) {
      for (const [i, tab] of set.entries()) {
        await expect
          .poll(() => demoIds(tab), { message: `set ${name} tab ${i + 1} (${await tab.role()})`, timeout: 10_000 })
          .toEqual(reaching(sent, topics));
      }
    }
    // A few heartbeats later: still 2 streams.
    await sleep(3_000);
    expect(await metric(server, 'sse_connections_open')).toBe(2);
  });
});

/** A JWT with `header` and `claims`, signed HS256 with `secret` (`null`: no signature, as `alg: none`). */
function jwt(header: object, claims: object, secret: string | null): string {
  const b64 = (v: object) => Buffer.from(JSON.stringify(v)).toString('base64url');
  const message = `${b64(header)}.${b64(claims)}`;
  return `${message}.${secret === null ? '' : createHmac('sha256', secret).update(message).digest('base64url')}`;
}

test('forged, expired, wrong-secret, alg none and missing tokens: the page says rejected and shows not a single event', async ({ browser, server, baseURL }) => {
  test.setTimeout(120_000);
  const now = Math.floor(Date.now() / 1000);
  const claims = { sub: 'alice', exp: now + 600, topics: ['users/alice', 'public'] };
  const good = jwt({ alg: 'HS256', typ: 'JWT' }, claims, SECRET);
  const forged = good.slice(0, -6) + (good.slice(-6, -5) === 'A' ? 'B' : 'A') + good.slice(-5);
  const cases: [string, string | null, string][] = [
    ['forged', forged, ''],
    ['expired', jwt({ alg: 'HS256', typ: 'JWT' }, { ...claims, exp: now - 60 }, SECRET), ''],
    ['wrong secret', jwt({ alg: 'HS256', typ: 'JWT' }, claims, 'not-the-secret-at-all-0123456789'), ''],
    ['alg none', jwt({ alg: 'none', typ: 'JWT' }, claims, null), ''],
    // No token at all, asking for a topic (the dashboard's ?topics= narrows to it).
    ['missing, asking for users/alice', null, '?topics=users/alice'],
  ];
  const pages: [string, PageDashboard][] = [];
  const contexts: BrowserContext[] = [];
  for (const [what, token, query] of cases) {
    const context = await browser.newContext({ baseURL });
    contexts.push(context);
    if (token) await context.addCookies([{ name: 'sse_access', value: token, url: baseURL! }]);
    const dash = new PageDashboard(await context.newPage());
    await dash.goto(query);
    await dash.waitForBanner('rejected', 15_000);
    await expect(dash.page.getByTestId('subject'), what).toHaveText('');
    pages.push([what, dash]);
  }
  // A control: the properly signed token streams.
  const control = await browser.newContext({ baseURL });
  contexts.push(control);
  await control.addCookies([{ name: 'sse_access', value: good, url: baseURL! }]);
  const ok = new PageDashboard(await control.newPage());
  await ok.goto();
  await ok.waitConnected();
  await expect(ok.page.getByTestId('subject')).toHaveText('alice');

  const sent = await publishBurst(server, [['users/alice'], ['public'], []], 'probe');
  await expect.poll(() => demoIds(ok)).toEqual(reaching(sent, ALICE));
  for (const [what, dash] of pages) {
    expect(await dash.bannerState(), what).toBe('rejected');
    // A refusal the page names (not a reconnect loop, not an anonymous stream).
    await expect(dash.banner, what).toHaveAttribute('data-cause', /^(rejected|signed_out)$/);
    expect(await demoIds(dash), what).toEqual([]);
    expect(await dash.eventItems.count(), `${what}: not even a connected event`).toBe(0);
  }
  expect(await metric(server, 'sse_connections_open'), 'only the control holds a stream').toBe(1);
  // And they stay so without hammering the server: no more refused stream requests.
  const denied = async () =>
    (await (await fetch(`${server.url}/metrics`)).text())
      .split('\n')
      .filter((l) => l.startsWith('sse_streams_denied_total{'))
      .reduce((sum, l) => sum + Number(l.split(' ').pop()), 0);
  const deniedBefore = await denied();
  expect(deniedBefore, 'the server refused each of them').toBeGreaterThanOrEqual(cases.length);
  await sleep(3_000);
  expect(await denied(), 'no retry loop').toBe(deniedBefore);
  for (const [what, dash] of pages) expect(await dash.bannerState(), what).toBe('rejected');
  for (const c of contexts) await c.close();
});
