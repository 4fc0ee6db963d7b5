// Tabs of one browser window share one stream: one leader tab holds the EventSource (chosen with
// a Web Lock), the others follow over a BroadcastChannel. Real Chromium, one browser context (a
// window's tabs: one connection pool, one Web Locks scope), real server processes.
import path from 'node:path';
import { expect, measured, sleep, test } from './fixtures';
import type { Dashboard } from './fixtures/dashboard';
import { metric, publish, Tabs } from './fixtures/tabs';

const HEARTBEAT_MS = 1000;
/** The follower's watchdog over the leader: 2 × heartbeat + 1 s (the stream watchdog's deadline). */
const LEADER_DEADLINE_MS = 2 * HEARTBEAT_MS + 1000;

test.use({ useProxy: false });

async function allConnected(tabs: Dashboard[], timeoutMs = 20_000): Promise<void> {
  await Promise.all(tabs.map((t) => t.waitForBanner('connected', timeoutMs)));
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

/** Every open tab's log holds exactly `ids`, once each, in order. */
async function expectEveryIdOnce(tabs: Dashboard[], ids: string[]): Promise<void> {
  for (const [i, tab] of tabs.entries()) {
    await expect
      .poll(() => Tabs.appEventIds(tab, 'demo'), { message: `tab ${i + 1} (${await tab.role()}) event log`, timeout: 10_000 })
      .toEqual(ids);
  }
}

test('10 tabs: all connected over one stream (sse_connections_open = 1), one leader, count 10', async ({ context, server }) => {
  test.setTimeout(180_000);
  const tabs = new Tabs(context);
  await tabs.open(10);
  await allConnected(tabs.all);
  await tabs.leader();
  expect(await metric(server, 'sse_connections_open')).toBe(1);
  for (const tab of tabs.all) await expect.poll(() => tab.sharedCount()).toBe(10);
  expect((await tabs.roles()).sort().join(',')).toBe(['leader', ...Array(9).fill('follower')].sort().join(','));
  // Still one stream a few heartbeats later (no tab stole the lock from a healthy leader).
  await sleep(4 * HEARTBEAT_MS);
  expect(await metric(server, 'sse_connections_open')).toBe(1);
  expect(await metric(server, 'sse_connections_total')).toBe(1);
});
