//! Starts a browser of the given engine through its adapter (the one place that knows all three).
import { launchChromium } from './chromium';
import type { Driver, Engine } from './driver';
import { launchFirefox } from './firefox';
import { launchWebKit } from './webkit';

export async function launch(engine: Engine): Promise<Driver> {
  switch (engine) {
    case 'chromium':
      return launchChromium();
    case 'firefox':
      return launchFirefox();
    case 'webkit':
      return launchWebKit();
  }
}
