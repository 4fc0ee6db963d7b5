// Private streams across a fleet in a real Chromium: alice and bob (separate browsers) signed in
// through nginx (deploy/nginx.conf) in front of two sse-status instances on one Redis. Events
// published to both topics through both instances reach only their readers, and a revocation
// sent to one instance ends alice's streams on whichever instance serves them.
import type { BrowserContext } from '@playwright/test';
import { expect, measured, sleep, test as base } from './fixtures';
import { cycle, demoIds, demoTexts, publishBurst, reaching, signIn, type Publisher } from './fixtures/access';
import type { PageDashboard } from './fixtures/dashboard';
import { type Fleet, useFleet } from './fixtures/fleet';
import { metric } from './fixtures/tabs';

const SECRET = 'e2e-fleet-auth-secret-0123456789abcdef';
const ALICE = ['users/alice', 'public'];
const BOB = ['users/bob', 'public'];

const test = base.extend<{ fleet: Fleet }>({
  fleet: async ({}, use, testInfo) => {
    // Both instances check (and the demo signs) with one secret; tokens outlive the test.
    await useFleet(use, testInfo, { SSE_AUTH_SECRET: SECRET, SSE_DEMO_USERS: 'alice,bob', SSE_DEMO_TOKEN_TTL_MS: '600000' });
  },
  baseURL: async ({ fleet }, use) => {
    await use(fleet.url);
  },
});

/** Open streams on every instance, in instance order. */
function streams(fleet: Fleet): Promise<number[]> {
  return Promise.all(fleet.instances.map((s) => metric(s, 'sse_connections_open')));
}

test('alice and bob through nginx on two instances: each sees only their topic, public and broadcasts; a revocation sent to one instance ends alice’s streams on both within 1 s', async ({
  page,
  browser,
  fleet,
  baseURL,
}) => {
  test.setTimeout(120_000);
  const contexts: BrowserContext[] = [];
  const newWindow = async (): Promise<BrowserContext> => {
    const c = await browser.newContext({ baseURL });
    contexts.push(c);
    return c;
  };
  // Alice in two browsers (say laptop and phone: two streams), bob in a third.
  const alice = [await signIn(page, 'alice')];
  const instanceOf = async (d: PageDashboard) => fleet.instances.indexOf(await fleet.byServerId(await d.text(d.serverId)));
  const first = await instanceOf(alice[0]);
  const second = await signIn(await (await newWindow()).newPage(), 'alice');
  alice.push(second);
  // nginx balances by request, so where a stream lands is not up to us; a few reloads (bounded)
  // put the second stream on the other instance, so the revocation has a stream on each.
  for (let i = 0; i < 6 && (await instanceOf(second)) === first; i++) {
    await second.goto();
    await second.waitConnected();
  }
  const aliceInstances = await Promise.all(alice.map(instanceOf));
  test.info().annotations.push({ type: 'placement', description: `alice's streams on instances ${aliceInstances.join(', ')}` });
  const bob = await signIn(await (await newWindow()).newPage(), 'bob');
  await expect.poll(async () => (await streams(fleet)).reduce((a, b) => a + b), { timeout: 10_000 }).toBe(3);

  // Publishes to both readers' topics, public and broadcasts, alternating between the instances.
  const via = (i: number): Publisher => ({ url: fleet.instances[i % 2].url, publishToken: fleet.token });
  const targets = cycle([['users/alice'], ['users/bob'], ['public'], [], ['users/bob'], ['users/alice']], 12);
  const sent = await publishBurst(via, targets, 'fleet');
  for (const [i, tab] of alice.entries()) {
    await expect.poll(() => demoIds(tab), { message: `alice window ${i + 1}` }).toEqual(reaching(sent, ALICE));
    expect((await demoTexts(tab.page)).join('|')).not.toContain('users/bob');
  }
  await expect.poll(() => demoIds(bob), { message: 'bob' }).toEqual(reaching(sent, BOB));
  expect((await demoTexts(bob.page)).join('|')).not.toContain('users/alice');

  // Revoke through one instance: the one that does not serve alice's first window.
  const revoker = fleet.instances[1 - first];
  const since = Date.now();
  const res = await fetch(`${revoker.url}/api/revoke`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${fleet.token}` },
    body: JSON.stringify({ subject: 'alice' }),
  });
  expect(res.status).toBeLessThan(300);
  const took = await Promise.all(alice.map((tab) => tab.waitForBanner('rejected', 1_000 + 1_000, since)));
  for (const tab of alice) await expect(tab.banner).toHaveAttribute('data-cause', 'revoked');
  for (const [i, t] of took.entries())
    measured(`revoke via instance ${1 - first} -> alice window on instance ${aliceInstances[i]} shows revoked`, t, 1000);
  for (const t of took) expect(t).toBeLessThanOrEqual(1000);
  // The fleet holds none of alice's streams, only bob's.
  await expect.poll(async () => (await streams(fleet)).reduce((a, b) => a + b), { timeout: 2_000 }).toBe(1);

  // Bob is untouched and still gets his events; alice stays revoked (no reconnect on her own).
  expect(await bob.bannerState()).toBe('connected');
  const later = await publishBurst(via, [['users/bob'], ['users/alice']], 'later');
  await expect.poll(() => demoIds(bob)).toEqual(reaching([...sent, ...later], BOB));
  await sleep(2_000);
  for (const tab of alice) {
    expect(await tab.bannerState()).toBe('rejected');
    expect(await demoIds(tab)).toEqual(reaching(sent, ALICE));
  }
  expect((await streams(fleet)).reduce((a, b) => a + b)).toBe(1);
  for (const c of contexts) await c.close();
});

test('SIGKILL of the instance serving alice while alice’s and bob’s events are published: she resumes on the other instance with exactly her missed events, none of bob’s', async ({
  page,
  browser,
  fleet,
  baseURL,
}) => {
  test.setTimeout(120_000);
  const alice = await signIn(page, 'alice');
  const bobContext = await browser.newContext({ baseURL });
  const bob = await signIn(await bobContext.newPage(), 'bob');
  const via = (i: number): Publisher => ({ url: fleet.instances[i % 2].url, publishToken: fleet.token });
  const before = await publishBurst(via, [['users/alice'], ['users/bob'], ['public'], []], 'before');
  await expect.poll(() => demoIds(alice)).toEqual(reaching(before, ALICE));
  await expect.poll(() => demoIds(bob)).toEqual(reaching(before, BOB));

  const killedId = await alice.text(alice.serverId);
  const serving = await fleet.byServerId(killedId);
  const survivor = fleet.instances.find((s) => s !== serving)!;
  await serving.kill();
  // Published on the survivor while alice has no stream (the fleet's retry floor is 2 s).
  const missed = await publishBurst(
    { url: survivor.url, publishToken: fleet.token },
    cycle([['users/bob'], ['users/alice'], ['users/bob'], ['public'], ['users/alice'], []], 8),
    'missed',
  );
  expect(await alice.machineState(), 'still without a stream when the burst ends').not.toBe('connected');
  await alice.waitForMachine('connected', 20_000);
  await expect(alice.serverId, 'served by the other instance now').not.toHaveText(killedId);
  expect(await alice.bannerState()).toBe('connected');
  const aliceMissed = reaching(missed, ALICE);
  await expect(page.getByTestId('replay-notice')).toHaveAttribute('data-replayed', String(aliceMissed.length));
  await expect(page.getByTestId('resync-notice')).toBeHidden();
  await expect.poll(() => demoIds(alice)).toEqual([...reaching(before, ALICE), ...aliceMissed]);
  expect((await demoTexts(page)).join('|')).not.toContain('users/bob');
  // Bob, wherever he was served, has exactly his.
  await bob.waitForBanner('connected', 20_000);
  await expect.poll(() => demoIds(bob)).toEqual([...reaching(before, BOB), ...reaching(missed, BOB)]);
  expect((await demoTexts(bob.page)).join('|')).not.toContain('users/alice');
  await bobContext.close();
});
