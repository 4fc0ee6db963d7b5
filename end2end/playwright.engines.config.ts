import { defineConfig } from '@playwright/test';
import type { Engine } from './engines/driver';

/**
 * The core fault suite in every engine (engines/core.spec.ts, written once against the small
 * `Driver` interface in engines/driver.ts). Pick the engine with `--project`:
 *   npx playwright test -c playwright.engines.config.ts --project firefox
 *   xvfb-run -a npx playwright test -c playwright.engines.config.ts --project webkit
 *   npx playwright test -c playwright.engines.config.ts --project chromium
 * Playwright's runner only runs the tests here; Firefox and WebKit are driven by puppeteer-core
 * (WebDriver BiDi) and plain W3C WebDriver. One worker: 2 slow cores, and the tests measure time.
 */
export default defineConfig<{ engine: Engine }>({
  testDir: 'engines',
  globalSetup: './tests/global-setup.ts',
  workers: 1,
  fullyParallel: false,
  retries: 0,
  reporter: 'list',
  timeout: 90_000,
  expect: { timeout: 10_000 },
  forbidOnly: !!process.env.CI,
  projects: [
    { name: 'chromium', use: { engine: 'chromium' } },
    { name: 'firefox', use: { engine: 'firefox' } },
    // One retry in WebKit alone, reported as `flaky` (never silently green): once in many clean
    // runs, the 3-tab test saw the first window still showing its server-rendered role ("solo")
    // while the other two followed it; not reproduced in 42 further runs. A failure now prints
    // every tab's facts and console, so the next one says which side was wrong.
    { name: 'webkit', use: { engine: 'webkit' }, retries: 1 },
  ],
});
