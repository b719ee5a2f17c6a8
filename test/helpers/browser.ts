// Headless Debian Chromium for the console tests and bench, driven by playwright-core (which
// never downloads a browser). Without /usr/bin/chromium the callers skip with one clear line.
import { existsSync } from 'node:fs';
import { chromium, type Browser, type BrowserContext } from 'playwright-core';

export const CHROMIUM = process.env.ARKLOOP_CHROMIUM ?? '/usr/bin/chromium';
export const hasChromium = existsSync(CHROMIUM);
export const NO_CHROMIUM = `console browser tests skipped: no Chromium at ${CHROMIUM} (apt-get install -y chromium)`;

export interface TestBrowser {
  browser: Browser;
  /** A fresh context (its own cookies and storage) at the given width. */
  context(width?: number): Promise<BrowserContext>;
  close(): Promise<void>;
}

/** playwright's launch() gives every browser a fresh temporary profile (user-data-dir) of its own. */
export async function launchBrowser(): Promise<TestBrowser> {
  const browser = await chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: [
      '--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
      '--disable-component-update', '--disable-sync',
    ],
  });
  return {
    browser,
    context: (width = 1280) => browser.newContext({ viewport: { width, height: width < 600 ? 740 : 800 } }),
    close: async () => {
      await browser.close().catch(() => undefined);
    },
  };
}
