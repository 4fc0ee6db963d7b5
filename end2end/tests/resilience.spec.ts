// Real faults between a real Chromium and a real server: every test injects one, measures how
// fast the page tells the truth, and checks that it comes back without a reload.
import path from 'node:path';
import { expect, measured, sleep, test } from './fixtures';

// cut, freeze, offline (banner and timing), SIGKILL, 503: engines/core.spec.ts, in every engine.

test.describe('back in view', () => {
  // A 3 s heartbeat: the watchdog waits 2 × 3 + 1 = 7 s; coming back into view checks at once
  // (silent for more than 3 + 1 s: dead).
  test.use({ serverOptions: { heartbeatMs: 3000 } });

  test('a stream that died while the tab was hidden is reopened as the tab shows, not when the watchdog fires', async ({
    dashboard,
    faultProxy,
  }) => {
    await dashboard.goto('?share=0');
    await dashboard.waitConnected();
    // Freeze right after a heartbeat, so the watchdog is ~7 s away.
    await expect.poll(() => dashboard.heartbeatAgeMs(), { intervals: [50], timeout: 10_000 }).toBeLessThan(400);
    faultProxy.freeze();
    const frozenAt = Date.now();
    await dashboard.setVisibility(false);
    // 4.5 s without an event on the page's own clock (the tick that also runs the watchdog).
    await dashboard.waitForSilence(4500, 10_000);
    expect(await dashboard.machineState(), 'the watchdog has not fired yet').toBe('connected');
    const shownAt = Date.now();
    await dashboard.setVisibility(true);
    const took = await dashboard.waitForMachine('stale', 5000, shownAt);
    measured('shown after 4.5 s of a frozen link -> machine stale', took, 500);
    measured('  (freeze -> stale; the watchdog alone: ~7 s)', Date.now() - frozenAt);
    expect(took).toBeLessThanOrEqual(500);
    expect(await dashboard.machineCause()).toBe('heartbeat-missed');
    faultProxy.pass();
    await dashboard.waitForMachine('connected', 20_000);
  });
});

test.describe('offline', () => {
  test.use({ useProxy: false });

  // Chromium-only: Playwright sees every request the page makes, also ones that fail offline.
  // The banner and its timing: engines/core.spec.ts.
  test('no /events request while offline', async ({ dashboard, context, page }) => {
    await dashboard.goto();
    await dashboard.waitConnected();
    let eventsRequests = 0;
    page.on('request', (r) => {
      if (new URL(r.url()).pathname.startsWith('/events')) eventsRequests++;
    });

    await context.setOffline(true);
    await dashboard.waitForBanner('offline', 10_000);
    // 3 s on the page's own clock (its tick drives the retries): time for any retry to have run.
    await dashboard.waitForSilence((await dashboard.heartbeatAgeMs()) + 3000);
    const whileOffline = eventsRequests;

    await context.setOffline(false);
    await dashboard.waitForBanner('connected', 10_000);
    expect(whileOffline, '/events requests while offline').toBe(0);
  });
});

for (const [code, state, cause, ariaLive] of [
  [401, 'rejected', 'rejected', 'assertive'],
  [204, 'closed', 'server-closed', undefined],
] as const) {
  test(`${code} on /events: ${state}, and no more retries`, async ({
    dashboard,
    faultProxy,
  }) => {
    await dashboard.goto();
    await dashboard.waitConnected();
    const before = faultProxy.eventsRequests;

    const faultAt = Date.now();
    faultProxy.status(code);
    measured(`${code} -> banner ${state}`, await dashboard.waitForBanner(state, 15_000, faultAt));
    if (ariaLive) await expect(dashboard.banner).toHaveAttribute('aria-live', ariaLive);
    expect(await dashboard.machineCause()).toBe(cause);
    await expect(dashboard.bannerCause).not.toHaveText('');

    // 3 s on the page's own clock (its tick drives the retries) after it showed the state.
    await dashboard.waitForSilence((await dashboard.heartbeatAgeMs()) + 3000);
    const requests = faultProxy.eventsRequests - before;
    measured(`/events requests from the ${code} until 3 s (page clock) after ${state}`, requests, 2, 'requests');
    expect(requests, 'the stream attempt and one classifying probe at most').toBeLessThanOrEqual(2);
    expect(await dashboard.bannerState()).toBe(state);
  });
}

test('hidden past the grace period: paused (stream closed); visible again: connected at once', async ({
  dashboard,
  faultProxy,
  page,
}) => {
  await page.clock.install();
  await dashboard.goto();
  const before = await dashboard.waitConnected();
  expect(faultProxy.openEventStreams).toBe(1);

  await dashboard.setVisibility(false);
  // Two more heartbeats received while hidden: the stream stayed open and delivering.
  await dashboard.waitForArrivals(2);
  expect(await dashboard.bannerState(), 'a short hide changes nothing').toBe('connected');
  expect(faultProxy.openEventStreams).toBe(1);

  await page.clock.fastForward('05:01'); // past the default 300 000 ms grace
  await dashboard.waitForBanner('paused', 10_000);
  expect(await dashboard.machineCause()).toBe('hidden');
  await expect.poll(() => faultProxy.openEventStreams, { message: 'open /events streams while paused' }).toBe(0);

  const visibleAt = Date.now();
  await dashboard.setVisibility(true);
  measured('visible -> banner connected', await dashboard.waitForBanner('connected', 10_000, visibleAt));
  await expect(dashboard.connectionId).not.toHaveText(before);
});

test('wall-clock jump (+1 h): a new connection within 3 s, recorded as clock-jump', async ({ dashboard, page }) => {
  await page.clock.install();
  await dashboard.goto();
  const before = await dashboard.waitConnected();

  const jumpAt = Date.now();
  await page.clock.setSystemTime(jumpAt + 3_600_000);
  await expect(dashboard.connectionId).not.toHaveText(before, { timeout: 10_000 });
  const took = Date.now() - jumpAt;
  measured('clock jump -> new connection id', took, 3000);
  expect(took).toBeLessThanOrEqual(3000);
  await expect(dashboard.timelineItems.and(page.locator('[data-cause="clock-jump"]'))).not.toHaveCount(0);
  await dashboard.waitForBanner('connected', 5000);
});

test.describe('retry now', () => {
  test.use({ serverOptions: { retryMs: 20_000 } });

  test('during a long backoff, "Retry now" connects within 2 s', async ({ dashboard, faultProxy }) => {
    await dashboard.goto();
    await dashboard.waitConnected();
    faultProxy.cut();
    await dashboard.waitForBanner('reconnecting', 10_000);
    faultProxy.pass();
    await expect.poll(() => dashboard.number(dashboard.reconnectCountdown)).toBeGreaterThanOrEqual(5);

    const clickedAt = Date.now();
    await dashboard.retryNow.click();
    const took = await dashboard.waitForBanner('connected', 10_000, clickedAt);
    measured('Retry now -> banner connected', took, 2000);
    expect(took).toBeLessThanOrEqual(2000);
  });
});

test.describe('blips', () => {
  test.use({ serverOptions: { retryMs: 0 } });

  test('non-connected episodes shorter than 500 ms never reach the banner', async ({
    dashboard,
    faultProxy,
    page,
  }) => {
    await page.addInitScript({ path: path.join(__dirname, 'fixtures', 'state-recorder.js') });
    await dashboard.goto();
    await dashboard.waitConnected();

    // With `retry: 0` a retry waits a random 0-500 ms (then the next 250 ms tick), so about half
    // of the blips stay under 500 ms. Blip at least 5 times, and on until 3 short ones happened.
    let cuts = 0;
    const shortSoFar = async () => timelineEpisodes((await dashboard.timeline()).reverse()).filter((d) => d < 500);
    while (cuts < 5 || ((await shortSoFar()).length < 3 && cuts < 14)) {
      faultProxy.cut();
      await sleep(30);
      faultProxy.pass();
      cuts++;
      await dashboard.waitForMachine('connected', 15_000);
      await sleep(1200);
    }

    type Rec = { t: number; state: string };
    const log = await page.evaluate(() => (window as unknown as { __states: Record<string, Rec[]> }).__states);
    const episodes = nonConnectedEpisodes(log.machine);
    const timeline = (await dashboard.timeline()).reverse(); // page shows newest first
    const durations = timelineEpisodes(timeline);
    const detail = `machine: ${JSON.stringify(log.machine)}\nbanner: ${JSON.stringify(log.banner)}\ntimeline: ${JSON.stringify(timeline)}`;
    expect(durations.length, `one episode per cut at least\n${detail}`).toBeGreaterThanOrEqual(cuts);
    expect(episodes.length, `page and timeline agree on the episodes\n${detail}`).toBe(durations.length);

    const short = durations.map((d, i) => ({ d, ep: episodes[i] })).filter((x) => x.d < 500);
    measured('longest non-connected episode (timeline)', Math.max(...durations));
    console.log(`  [measured] episode durations: ${durations.map(Math.round).join(', ')} ms`);
    expect(short.length, `enough short blips to check anything (${cuts} cuts)\n${detail}`).toBeGreaterThanOrEqual(3);
    for (const { d, ep } of short) {
      const shown = log.banner.filter((b) => b.state !== 'connected' && b.t >= ep.start && b.t <= ep.end + 50);
      expect(shown, `banner during a ${Math.round(d)} ms episode\n${detail}`).toEqual([]);
    }
    // And no banner change at all that did not follow ~500 ms of real trouble.
    for (const b of log.banner.filter((b) => b.state !== 'connected' && b.t > episodes[0].start)) {
      const ep = episodes.find((e) => e.start <= b.t && b.t <= e.end);
      expect(ep && b.t - ep.start >= 450, `banner ${b.state} at ${b.t}\n${detail}`).toBe(true);
    }
  });
});

/** Runs of non-connected machine states after the first `connected`, with page timestamps. */
function nonConnectedEpisodes(log: Array<{ t: number; state: string }>): Array<{ start: number; end: number }> {
  const out: Array<{ start: number; end: number }> = [];
  let seenConnected = false;
  let start: number | undefined;
  for (const r of log) {
    if (r.state === 'connected') {
      if (start !== undefined) out.push({ start, end: r.t });
      start = undefined;
      seenConnected = true;
    } else if (seenConnected && start === undefined) {
      start = r.t;
    }
  }
  return out;
}

/** Total durations of finished non-connected runs in the timeline (oldest first), after the first `connected`. */
function timelineEpisodes(entries: Array<{ state: string; durationMs: number }>): number[] {
  const out: number[] = [];
  let seenConnected = false;
  let acc: number | undefined;
  for (const e of entries) {
    if (e.state === 'connected') {
      if (acc !== undefined) out.push(acc);
      acc = undefined;
      seenConnected = true;
    } else if (seenConnected) {
      acc = (acc ?? 0) + e.durationMs;
    }
  }
  return out;
}
