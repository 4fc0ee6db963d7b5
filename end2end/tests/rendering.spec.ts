// Fine-grained rendering: the driver ticks every 250 ms and pings arrive every second, but a page
// that stays connected changes only what shows time passing. MutationObservers count the DOM
// changes of each part over 5 s of steady `connected`.
import { expect, measured, sleep, test } from './fixtures';

interface Counts {
  batches: number;
  records: number;
  added: number;
  removed: number;
}

test('steady connected for 5 s: the banner re-renders at most once, the timeline never', async ({
  dashboard,
  page,
}) => {
  await dashboard.goto();
  await dashboard.waitConnected();
  await sleep(1000); // past the first ping and the connected notice
  const eventsBefore = await dashboard.eventItems.count();

  await page.evaluate(() => {
    const parts: Record<string, string> = {
      banner: '[data-testid="connection-banner"]',
      timeline: '[data-testid="state-timeline"]',
      log: '[data-testid="event-log"]',
      cause: '[data-testid="state-cause"]',
      heartbeat: '[data-testid="last-heartbeat"]',
    };
    const counts: Record<string, Counts> = {};
    for (const [name, selector] of Object.entries(parts)) {
      const c = (counts[name] = { batches: 0, records: 0, added: 0, removed: 0 });
      new MutationObserver((records) => {
        c.batches++;
        c.records += records.length;
        for (const r of records) {
          c.added += r.addedNodes.length;
          c.removed += r.removedNodes.length;
        }
      }).observe(document.querySelector(selector)!, {
        subtree: true,
        childList: true,
        characterData: true,
        attributes: true,
      });
    }
    (window as unknown as { __renders: Record<string, Counts> }).__renders = counts;
  });
  await sleep(5000);
  const counts = await page.evaluate(() => (window as unknown as { __renders: Record<string, Counts> }).__renders);
  const newEvents = (await dashboard.eventItems.count()) - eventsBefore;
  expect(await dashboard.bannerState()).toBe('connected');

  const detail = JSON.stringify(counts);
  measured('banner re-renders over 5 s connected', counts.banner.batches, 1, 'renders');
  measured('timeline DOM changes over 5 s connected', counts.timeline.records, 0, 'changes');
  expect(counts.banner.batches, detail).toBeLessThanOrEqual(1);
  expect(counts.timeline.records, detail).toBe(0);
  expect(counts.cause.records, detail).toBe(0);
  // Pings arrived (one a second) while watching: the state did change underneath.
  expect(newEvents, 'pings arrived while watching').toBeGreaterThanOrEqual(3);
  // The observers do see changes: the heartbeat's age ticks.
  expect(counts.heartbeat.batches, detail).toBeGreaterThan(3);
});
