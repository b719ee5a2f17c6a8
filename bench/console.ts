// Web console first load (issue 11): `arkloop serve` on the embedded engine as a child process,
// headless Debian Chromium (playwright-core) signed in through the refresh cookie, and per
// navigation to `/`: time to first paint, time until the chat view is interactive (thread list
// loaded, composer enabled) and the bytes transferred. Cold = a fresh browser context (empty
// cache), warm = a reload in the same context (libraries cached, console modules revalidated).
//
//   node --import tsx bench/console.ts [--iterations 10] [--threads 20]
//
// Hand-written: it is a script of browser steps and a few sums; no library measures this.
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import type { BrowserContext, Page } from 'playwright-core';
import { hasChromium, launchBrowser, NO_CHROMIUM } from '../test/helpers/browser.js';
import { Cleanup, cleanEnv, cleanUpOnExit, freePort, REPO_ROOT, spawnServer, waitReady } from './servers.js';

const TARGET_MS = 1000;
const TARGET_BYTES = 300 * 1024;

interface Sample {
  firstPaintMs: number;
  interactiveMs: number;
  bytes: number;
  requests: number;
}

const { values: args } = parseArgs({
  options: {
    iterations: { type: 'string', default: '10' },
    threads: { type: 'string', default: '20' },
  },
});

async function signedInCookie(origin: string, login: string, password: string): Promise<string> {
  const res = await fetch(`${origin}/v1/auth/login`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ login, password }) });
  if (res.status !== 200) throw new Error(`login: ${res.status} ${await res.text()}`);
  const cookie = res.headers.getSetCookie().find((c) => c.startsWith('arkloop_refresh_token='));
  return cookie!.split(';')[0].split('=')[1];
}

/** One navigation to `/`, measured inside the page (navigation start = 0). */
async function measure(page: Page, reload: boolean, origin: string): Promise<Sample> {
  if (reload) await page.reload({ waitUntil: 'commit' });
  else await page.goto(`${origin}/`, { waitUntil: 'commit' });
  await page.locator('.threads li a').first().waitFor();
  await page.locator('#composer-text:not([disabled])').waitFor();
  const interactiveMs = await page.evaluate(() => performance.now());
  return page.evaluate((interactive) => {
    const paint = performance.getEntriesByName('first-paint')[0] ?? performance.getEntriesByName('first-contentful-paint')[0];
    const nav = performance.getEntriesByType('navigation')[0] as PerformanceNavigationTiming;
    const resources = performance.getEntriesByType('resource') as PerformanceResourceTiming[];
    const bytes = nav.transferSize + resources.reduce((n, r) => n + r.transferSize, 0);
    return { firstPaintMs: paint ? paint.startTime : NaN, interactiveMs: interactive, bytes, requests: resources.length + 1 };
  }, interactiveMs);
}

const pct = (xs: number[], p: number) => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))];
};

function report(label: string, samples: Sample[]): boolean {
  const fp = samples.map((s) => s.firstPaintMs);
  const ti = samples.map((s) => s.interactiveMs);
  const by = samples.map((s) => s.bytes);
  const ok = pct(ti, 50) < TARGET_MS && Math.max(...by) < TARGET_BYTES;
  console.log(
    `${label.padEnd(5)} first paint p50 ${pct(fp, 50).toFixed(0)} ms (max ${Math.max(...fp).toFixed(0)}) · ` +
      `interactive chat p50 ${pct(ti, 50).toFixed(0)} ms (max ${Math.max(...ti).toFixed(0)}) · ` +
      `transferred ${(Math.max(...by) / 1024).toFixed(1)} KB in ${samples[0].requests} requests · ${ok ? 'PASS' : 'FAIL'}`,
  );
  return ok;
}

async function main(): Promise<void> {
  if (!hasChromium) {
    console.log(NO_CHROMIUM.replace('tests', 'bench'));
    return;
  }
  const iterations = Number(args.iterations);
  const cleanup = new Cleanup();
  cleanUpOnExit(cleanup);
  const dataDir = mkdtempSync(path.join(os.tmpdir(), 'arkloop-bench-console-'));
  cleanup.add('data dir', () => rmSync(dataDir, { recursive: true, force: true }));
  const port = await freePort();
  const origin = `http://127.0.0.1:${port}`;
  const server = spawnServer('arkloop serve (PGlite)', ['--import', 'tsx', path.join(REPO_ROOT, 'src', 'cli', 'run.ts'), 'serve'], {
    env: cleanEnv({ ARKLOOP_DATA_DIR: dataDir, ARKLOOP_API_ADDR: `127.0.0.1:${port}`, ARKLOOP_LOG_LEVEL: 'warn' }),
    cwd: REPO_ROOT,
    origin,
  });
  cleanup.add('server', async () => void (await server.stop()));
  const b = await launchBrowser();
  cleanup.add('browser', () => b.close());
  try {
    await waitReady(server);
    // A user with a few threads, so the list has rows to load.
    const login = 'bench';
    const password = 'bench password 1';
    const reg = await fetch(`${origin}/v1/auth/register`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ login, email: 'bench@example.com', password }) });
    const { access_token: token } = (await reg.json()) as { access_token: string };
    for (let i = 0; i < Number(args.threads); i++) {
      await fetch(`${origin}/v1/threads`, { method: 'POST', headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' }, body: JSON.stringify({ title: `thread ${i}` }) });
    }

    const cold: Sample[] = [];
    const warm: Sample[] = [];
    for (let i = 0; i < iterations + 1; i++) {
      const ctx: BrowserContext = await b.context(1280);
      await ctx.addCookies([{ name: 'arkloop_refresh_token', value: await signedInCookie(origin, login, password), url: `${origin}/v1/auth` }]);
      const page = await ctx.newPage();
      const first = await measure(page, false, origin);
      const again = await measure(page, true, origin);
      if (i > 0) { // the first round warms the server (its first requests compile schemas and read files)
        cold.push(first);
        warm.push(again);
      }
      await ctx.close();
    }
    console.log(`web console, embedded engine, ${iterations} navigations each, Chromium ${b.browser.version()}`);
    const okCold = report('cold', cold);
    report('warm', warm);
    console.log(`targets: interactive chat view < ${TARGET_MS} ms and first load < ${TARGET_BYTES / 1024} KB (cold)`);
    process.exitCode = okCold ? 0 : 1;
  } finally {
    await cleanup.runAll();
  }
}

await main();
