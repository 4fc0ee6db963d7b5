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
    { name: 'webkit', use: { engine: 'webkit' } },
  ],
});
