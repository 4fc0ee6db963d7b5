//! The `test` of the cross-engine suite: per test a fresh sse-status process, the TCP fault proxy
//! in front of it, and a fresh browser of the project's engine (`use: { engine }`) behind the
//! `Driver` interface. Reuses the main suite's server and proxy fixtures (plain Node modules).
import { test as base } from '@playwright/test';
import { faultProxyFixture, serverFixture } from '../tests/fixtures/processes';
import type { FaultProxy } from '../tests/fixtures/proxy';
import type { ServerOptions, ServerProcess } from '../tests/fixtures/server';
import { Dashboard } from '../tests/fixtures/dashboard';
import type { Driver, Engine } from './driver';
import { launch } from './launch';

export { expect } from '@playwright/test';

interface Fixtures {
  engine: Engine;
  serverOptions: ServerOptions;
  server: ServerProcess;
  faultProxy: FaultProxy;
  driver: Driver;
  /** The dashboard in the browser's first tab, through the proxy (not opened yet). */
  dash: Dashboard;
}

/** The browser versions seen by this worker, printed once at the end. */
const versions = new Set<string>();

export const test = base.extend<Fixtures>({
  engine: ['chromium', { option: true }],
  serverOptions: [{}, { option: true }],

  server: serverFixture,
  faultProxy: faultProxyFixture,

  driver: async ({ engine }, use, testInfo) => {
    const started = Date.now();
    const driver = await launch(engine);
    testInfo.annotations.push({ type: 'browser', description: `${driver.version} (started in ${Date.now() - started} ms)` });
    if (!versions.has(driver.version)) {
      versions.add(driver.version);
      console.log(`  [browser] ${engine}: ${driver.version}`);
    }
    try {
      await use(driver);
    } finally {
      await driver.close();
    }
  },

  dash: async ({ driver, faultProxy }, use) => {
    await use(new Dashboard(driver.first, faultProxy.url));
  },
});

/** Records a measurement in the output (`[measured] <engine>: ...`) and in the test's annotations. */
export function measured(what: string, value: number, budget?: number): void {
  const info = test.info();
  const engine = (info.project.use as { engine?: string }).engine ?? '?';
  const line = `${engine}: ${what}: ${Math.round(value)} ms${budget === undefined ? '' : ` (budget ${budget} ms)`}`;
  console.log(`  [measured] ${line}`);
  info.annotations.push({ type: 'measured', description: line });
}

export { sleep } from '../tests/fixtures/time';
