// The web console's browser tests share this setup: the API with a worker listening on a real
// socket, its first user (the platform admin), a platform stub provider streaming slowly as the
// default route, a platform persona that asks before `echo`, and one Chromium.
import assert from 'node:assert/strict';
import { mkdirSync } from 'node:fs';
import type { BrowserContext, Page } from 'playwright-core';
import { registerUser, startTestApp, type TestApp, type TestUser } from './app.js';
import { launchBrowser, type TestBrowser } from './browser.js';

export const ARTIFACTS = 'test-artifacts/console';
export const CHUNK_DELAY_MS = 40;

export interface ConsoleRig {
  t: TestApp;
  b: TestBrowser;
  base: string;
  admin: TestUser;
  /** Script errors and CSP violations seen on any page opened through `open`. */
  problems: string[];
  open(context: BrowserContext): Promise<Page>;
  shoot(page: Page, name: string): Promise<void>;
  close(): Promise<void>;
}

export async function startConsoleRig(): Promise<ConsoleRig> {
  mkdirSync(ARTIFACTS, { recursive: true });
  const t = await startTestApp({}, { worker: true });
  await t.app.listen({ host: '127.0.0.1', port: 0 });
  const base = `http://127.0.0.1:${(t.app.server.address() as { port: number }).port}`;
  const admin = await registerUser(t);
  const prov = await t.post('/v1/llm-providers', { scope: 'platform', name: 'slow', provider: 'stub', advanced_json: { chunk_delay_ms: CHUNK_DELAY_MS } }, { token: admin.token });
  assert.equal(prov.status, 201, prov.text);
  const model = await t.post(`/v1/llm-providers/${prov.body.id}/models`, { model: 'stub', is_default: true }, { token: admin.token });
  assert.equal(model.status, 201, model.text);
  const persona = await t.post(
    '/v1/personas',
    { scope: 'platform', persona_key: 'careful', display_name: 'Careful', prompt_md: 'Ask before acting.', tool_approval: ['echo'] },
    { token: admin.token },
  );
  assert.equal(persona.status, 201, persona.text);
  const b = await launchBrowser();
  const problems: string[] = [];
  return {
    t,
    b,
    base,
    admin,
    problems,
    async open(context) {
      const p = await context.newPage();
      p.on('pageerror', (e) => problems.push(`page error: ${e.message}`));
      p.on('console', (m) => {
        if (m.type() === 'error' && /Content Security Policy|Refused to/i.test(m.text())) problems.push(`console: ${m.text()}`);
      });
      return p;
    },
    async shoot(page, name) {
      await page.screenshot({ path: `${ARTIFACTS}/${name}.png`, fullPage: true });
    },
    async close() {
      await b.close();
      await t.close();
    },
  };
}

export async function signIn(page: Page, base: string, user: { login: string; password: string }): Promise<void> {
  await page.goto(`${base}/signin`);
  await page.getByLabel('Login or email').fill(user.login);
  await page.getByLabel('Password').fill(user.password);
  await page.getByRole('button', { name: 'Sign in' }).click();
  await page.getByRole('link', { name: 'Settings' }).waitFor();
}
