// The web console's settings and admin pages in a real browser (issue 11), as the platform
// admin: an API key whose secret is shown once, a provider with a model, a persona, an MCP
// server with its discovered tools, a webhook with its delivery log, usage and credits; then the
// admin dashboard, a run's event timeline, platform settings and the audit log. Screenshots of
// each page at 1280 px and a few at 360 px go to test-artifacts/console/.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import type { BrowserContext, Page } from 'playwright-core';
import { registerUser } from './helpers/app.js';
import { hasChromium, NO_CHROMIUM } from './helpers/browser.js';
import { signIn, startConsoleRig, type ConsoleRig } from './helpers/console.js';
import { EVERYTHING_BIN } from './helpers/mcp.js';

if (!hasChromium) console.log(NO_CHROMIUM);

describe('web console settings and admin in Chromium', { skip: hasChromium ? false : NO_CHROMIUM }, () => {
  let rig: ConsoleRig;
  let ctx: BrowserContext;
  let page: Page;
  let runId: string;

  before(async () => {
    rig = await startConsoleRig();
    const { t, admin } = rig;
    const opts = { token: admin.token };
    assert.equal((await t.put('/v1/admin/platform-settings/security.ssrf_allow_private', { value: true }, opts)).status, 200);
    // A finished run of the admin's own, for the runs page and the timeline.
    const th = await t.post('/v1/threads', { title: 'for the timeline' }, opts);
    await t.post(`/v1/threads/${th.body.id}/messages`, { content: 'hello timeline' }, opts);
    runId = (await t.post(`/v1/threads/${th.body.id}/runs`, {}, opts)).body.run_id;
    for (let i = 0; i < 200 && (await t.get(`/v1/runs/${runId}`, opts)).body.status === 'running'; i++) await new Promise((r) => setTimeout(r, 25));
    ctx = await rig.b.context(1280);
    page = await rig.open(ctx);
    await signIn(page, rig.base, admin);
  });
  after(async () => {
    await rig?.close();
  });

  const section = async (name: string) => {
    await page.getByRole('navigation', { name: 'Settings sections' }).getByRole('link', { name }).click();
    await page.getByRole('heading', { name, exact: true }).first().waitFor();
  };

  it('creates an API key and shows its secret once', async () => {
    await page.getByRole('link', { name: 'Settings' }).click();
    await section('API keys');
    const form = page.getByRole('form', { name: 'New API key' });
    await form.getByLabel('Name').fill('ci');
    await form.getByRole('button', { name: 'Create' }).click();
    const secret = (await page.locator('.secret pre').innerText()).trim();
    assert.match(secret, /^al_[A-Za-z0-9]{40}$/);
    await rig.shoot(page, 'settings-api-key-1280');
    await page.getByRole('button', { name: 'Done' }).click();
    await page.locator('td code', { hasText: secret.slice(0, 7) }).waitFor();
    await page.reload();
    await page.locator('td code', { hasText: secret.slice(0, 7) }).waitFor();
    assert.ok(!(await page.content()).includes(secret), 'the secret is not shown again');
    // The key works as a credential.
    const res = await fetch(`${rig.base}/v1/threads`, { headers: { authorization: `Bearer ${secret}` } });
    assert.equal(res.status, 200);
  });

  it('creates a workspace, invites a member who accepts through the link', async () => {
    await section('Account');
    const form = page.getByRole('form', { name: 'Create a workspace' });
    await form.getByLabel('Name').fill('Team Rocket');
    await form.getByLabel('Slug (a-z, 0-9, -)').fill(`rocket-${Date.now()}`);
    await form.getByRole('button', { name: 'Create' }).click();
    await page.locator('li', { hasText: 'Team Rocket' }).getByRole('button', { name: 'Use this account' }).click();
    await page.getByText('Account: Team Rocket').waitFor();
    await section('Members');
    const invitee = await registerUser(rig.t);
    const invite = page.getByRole('form', { name: 'Invite someone' });
    await invite.getByLabel('Email').fill(invitee.email);
    await invite.getByRole('button', { name: 'Invite' }).click();
    const link = (await page.locator('.secret pre').innerText()).trim();
    assert.match(link, /\/invitations\/[A-Za-z0-9_-]+$/);
    await page.getByRole('button', { name: 'Done' }).click();
    await page.locator('tr', { hasText: invitee.email }).getByText('pending').waitFor();

    const other = await rig.b.context(1280);
    const p = await rig.open(other);
    await p.goto(link); // signed out: the sign-in page, then back to the link
    await p.getByLabel('Login or email').fill(invitee.login);
    await p.getByLabel('Password').fill(invitee.password);
    await p.getByRole('button', { name: 'Sign in' }).click();
    await p.getByText('You are invited to Team Rocket as member').waitFor();
    await p.getByRole('button', { name: 'Accept and join' }).click();
    await p.getByRole('cell', { name: invitee.login, exact: true }).waitFor();
    assert.match(await p.getByText('Account:').innerText(), /Team Rocket/);
    await other.close();
    await page.reload();
    await page.locator('tr', { has: page.getByRole('cell', { name: invitee.login, exact: true }) }).getByRole('cell', { name: 'member', exact: true }).waitFor();
    // Back to the personal account for the rest.
    await section('Account');
    await page.locator('li', { hasText: 'Personal' }).or(page.locator('li', { hasText: 'personal' })).getByRole('button', { name: 'Use this account' }).click();
    await page.getByText('(personal)').waitFor();
  });

  it('adds an LLM provider and a model, and a persona', async () => {
    await section('LLM providers');
    await page.locator('td', { hasText: 'slow^stub' }).waitFor();
    const form = page.getByRole('form', { name: 'Add a provider' });
    await form.getByLabel('Name').fill('mine');
    await form.getByLabel('Kind').selectOption('stub');
    await form.getByRole('button', { name: 'Create' }).click();
    await page.getByLabel('Model name for mine').fill('tiny');
    await page.getByRole('button', { name: 'Add model' }).first().click();
    await page.locator('td code', { hasText: 'mine^tiny' }).waitFor();
    await rig.shoot(page, 'settings-providers-1280');

    await section('Personas');
    const p = page.getByRole('form', { name: 'New persona' });
    await p.getByLabel('Key').fill('terse');
    await p.getByLabel('Display name').fill('Terse');
    await p.getByLabel('System prompt').fill('Answer in one line.');
    await p.getByLabel('Tools that need approval (comma-separated)').fill('echo, web_*');
    await p.getByRole('button', { name: 'Create' }).click();
    const row = page.locator('tr', { hasText: 'terse@1' });
    await row.getByText('echo, web_*').waitFor();
  });

  it('adds an MCP server and lists the tools it discovers', async () => {
    await section('MCP servers');
    const form = page.getByRole('form', { name: 'Add an MCP server' });
    await form.getByLabel('Name').fill('everything');
    await form.getByLabel('Transport', { exact: true }).selectOption('stdio');
    await form.getByLabel('Command (stdio, platform admins only)').fill(process.execPath);
    await form.getByLabel('Arguments (comma-separated)').fill(`${EVERYTHING_BIN},stdio`);
    await form.getByRole('button', { name: 'Create' }).click();
    const row = page.locator('tr', { hasText: 'everything' });
    await row.getByRole('button', { name: 'Discover tools' }).click();
    await row.locator('li code', { hasText: 'echo' }).first().waitFor({ timeout: 20_000 });
    await rig.shoot(page, 'settings-mcp-1280');
  });

  it('adds a webhook, shows its secret once and its delivery log', async () => {
    await section('Webhooks');
    const form = page.getByRole('form', { name: 'Add an endpoint' });
    await form.getByLabel('URL').fill('http://127.0.0.1:9/hook');
    await form.getByRole('button', { name: 'Create' }).click();
    assert.match((await page.locator('.secret pre').innerText()).trim(), /^whsec_/);
    await page.getByRole('button', { name: 'Done' }).click();
    await rig.t.post('/v1/threads', { title: 'fires a webhook' }, { token: rig.admin.token });
    const log = page.locator('details', { hasText: 'Delivery log' });
    await log.locator('summary').click();
    await log.getByText('thread.created').waitFor();
  });

  it('shows tool providers, usage and credits', async () => {
    await section('Tool providers');
    await page.locator('td', { hasText: 'web_fetch.basic' }).waitFor();
    await section('Usage and credits');
    await page.getByText('Credit balance').waitFor();
    await page.locator('td', { hasText: 'initial_grant' }).waitFor();
    await rig.shoot(page, 'settings-usage-1280');
  });

  it('shows the admin dashboard, a run timeline, platform settings and the audit log', async () => {
    await page.getByRole('link', { name: 'Admin' }).click();
    await page.getByRole('heading', { name: 'Dashboard' }).waitFor();
    const admin = page.getByRole('navigation', { name: 'Admin sections' });
    await admin.getByRole('link', { name: 'Runs' }).click();
    await page.getByRole('link', { name: runId.slice(0, 8) }).click();
    await page.getByRole('heading', { name: `Run ${runId}` }).waitFor();
    const timeline = page.locator('.timeline li');
    await timeline.last().waitFor();
    const types = await page.locator('.timeline summary').allInnerTexts();
    assert.match(types[0], /^1 run\.started/);
    assert.match(types[types.length - 1], /run\.completed/);
    await rig.shoot(page, 'admin-run-1280');

    await admin.getByRole('link', { name: 'Platform settings' }).click();
    const row = page.locator('tr', { hasText: 'credit.initial_grant' });
    page.once('dialog', (d) => void d.accept('1234'));
    await row.getByRole('button', { name: 'Edit credit.initial_grant' }).click();
    await row.locator('td code', { hasText: '1234' }).waitFor();

    await admin.getByRole('link', { name: 'Audit log' }).click();
    await page.getByLabel('Filter by action').fill('platform_setting.*');
    await page.getByRole('button', { name: 'Filter' }).click();
    await page.locator('td code', { hasText: 'platform_setting.update' }).first().waitFor();
    await rig.shoot(page, 'admin-audit-1280');
  });

  it('fits settings and admin pages in 360 px', async () => {
    const phone = await rig.b.context(360);
    const p = await rig.open(phone);
    await signIn(p, rig.base, rig.admin);
    for (const [path, name] of [['/settings/api-keys', 'settings-api-keys-360'], ['/admin', 'admin-dashboard-360'], ['/admin/users', 'admin-users-360']]) {
      await p.goto(`${rig.base}${path}`);
      await p.locator('h2').first().waitFor();
      await p.waitForLoadState('networkidle');
      await rig.shoot(p, name);
      const overflow = await p.evaluate(() => document.body.scrollWidth - document.documentElement.clientWidth);
      assert.ok(overflow <= 0, `${path}: no page-wide horizontal scrolling at 360 px (${overflow} px)`);
    }
    await phone.close();
    assert.deepEqual(rig.problems, []);
  });
});
