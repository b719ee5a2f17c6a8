// Me (api.md §4): profile, usage, credits, invite code, redemption and feature flags.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { sql } from 'kysely';
import { newId } from '../src/lib/ids.js';
import { changeCredits } from '../src/modules/credits/store.js';
import { registerUser, uniq, type TestUser } from './helpers/app.js';
import { expectAuthRequired, expectError, expectFieldError } from './helpers/assert.js';
import { addMember, auditRows, createWorkspace, startIdentityApp, type IdentityApp } from './helpers/identity-app.js';
import { flagsChanged } from '../src/modules/feature-flags/flags.js';

const ALL_POINTS = [
  'data.threads.read',
  'data.threads.manage',
  'data.runs.read',
  'data.runs.manage',
  'data.runs.read_all',
  'data.projects.read',
  'data.projects.manage',
  'data.personas.read',
  'data.personas.manage',
  'data.secrets',
  'data.api_keys.manage',
  'data.webhooks.manage',
  'account.members.read',
  'account.members.manage',
  'account.manage',
  'account.usage.read',
  'account.audit.read',
  'account.ip_rules.manage',
];
const MEMBER_POINTS = [
  'data.threads.read',
  'data.threads.manage',
  'data.runs.read',
  'data.runs.manage',
  'data.projects.read',
  'data.projects.manage',
  'data.personas.read',
  'data.api_keys.manage',
  'account.members.read',
];
const ME_KEYS = [
  'avatar_url',
  'created_at',
  'email',
  'email_verification_required',
  'email_verified',
  'id',
  'is_platform_admin',
  'locale',
  'login',
  'org_id',
  'org_name',
  'org_slug',
  'org_type',
  'permissions',
  'role',
  'timezone',
  'username',
];
const ISO_RE = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$/;

describe('me', () => {
  let t: IdentityApp;
  let admin: TestUser;
  let a: TestUser;
  let b: TestUser;
  let wsAdmin: TestUser;
  let ws: string;
  const inWs = { 'x-account-id': '' };

  before(async () => {
    t = await startIdentityApp({ ARKLOOP_FEATURE_BYOK_ENABLED: 'false' });
    admin = await registerUser(t);
    a = await registerUser(t);
    b = await registerUser(t);
    wsAdmin = await registerUser(t);
    ws = await createWorkspace(t, a.id, 'Acme Corp');
    inWs['x-account-id'] = ws;
    await addMember(t, ws, b.id, 'member');
    await addMember(t, ws, wsAdmin.id, 'admin');
  });
  after(async () => {
    await t.close();
  });

  describe('GET /v1/me', () => {
    it('describes the caller in their personal account', async () => {
      const res = await t.get('/v1/me', { token: a.token });
      assert.equal(res.status, 200);
      assert.deepEqual(Object.keys(res.body).sort(), ME_KEYS);
      const m = res.body;
      assert.equal(m.id, a.id);
      assert.equal(m.login, a.login);
      assert.equal(m.username, a.login);
      assert.equal(m.email, a.email);
      assert.equal(m.email_verified, false);
      assert.equal(m.email_verification_required, false);
      assert.equal(m.locale, 'en');
      assert.equal(m.timezone, null);
      assert.equal(m.avatar_url, null);
      assert.equal(m.is_platform_admin, false);
      assert.match(m.created_at, ISO_RE);
      assert.equal(m.org_id, a.personalAccountId);
      assert.equal(m.org_name, a.login);
      assert.equal(typeof m.org_slug, 'string');
      assert.equal(m.org_type, 'personal');
      assert.equal(m.role, 'owner');
      assert.deepEqual(m.permissions, ALL_POINTS);
    });

    it('lists platform.admin for platform admins', async () => {
      const m = (await t.get('/v1/me', { token: admin.token })).body;
      assert.equal(m.is_platform_admin, true);
      assert.deepEqual(m.permissions, [...ALL_POINTS, 'platform.admin']);
    });

    it('GET /v1/auth/me is the same document', async () => {
      for (const [u, headers] of [[a, {}], [b, inWs], [admin, { 'x-account-id': b.personalAccountId }]] as Array<[TestUser, Record<string, string>]>) {
        const one = await t.get('/v1/me', { token: u.token, headers });
        const two = await t.get('/v1/auth/me', { token: u.token, headers });
        assert.equal(two.status, 200);
        assert.deepEqual(two.body, one.body);
      }
    });

    it('follows X-Account-Id: role and permissions of the selected account', async () => {
      const member = (await t.get('/v1/me', { token: b.token, headers: inWs })).body;
      assert.equal(member.org_id, ws);
      assert.equal(member.org_name, 'Acme Corp');
      assert.equal(member.org_type, 'workspace');
      assert.match(member.org_slug, /^ws-/);
      assert.equal(member.role, 'member');
      assert.deepEqual(member.permissions, MEMBER_POINTS);
      const wa = (await t.get('/v1/me', { token: wsAdmin.token, headers: inWs })).body;
      assert.equal(wa.role, 'admin');
      assert.deepEqual(wa.permissions, ALL_POINTS);
      const owner = (await t.get('/v1/me', { token: a.token, headers: { 'x-account-id': ws.toUpperCase() } })).body;
      assert.equal(owner.org_id, ws);
      assert.equal(owner.role, 'owner');
      assert.equal((await t.get('/v1/me', { token: a.token, headers: { 'x-account-id': a.personalAccountId } })).body.org_id, a.personalAccountId);
      // A platform admin may act in any account, as its owner.
      const padmin = (await t.get('/v1/me', { token: admin.token, headers: { 'x-account-id': b.personalAccountId } })).body;
      assert.equal(padmin.org_id, b.personalAccountId);
      assert.equal(padmin.role, 'owner');
      assert.deepEqual(padmin.permissions, [...ALL_POINTS, 'platform.admin']);
    });

    it('an account the caller does not belong to is a 404; a malformed id a 400', async () => {
      expectError(await t.get('/v1/me', { token: b.token, headers: { 'x-account-id': a.personalAccountId } }), 404, 'accounts.not_found');
      expectError(await t.get('/v1/me', { token: b.token, headers: { 'x-account-id': newId() } }), 404, 'accounts.not_found');
      expectError(await t.get('/v1/me', { token: admin.token, headers: { 'x-account-id': newId() } }), 404, 'accounts.not_found');
      for (const bad of ['nope', '', '123', `${ws}x`]) {
        expectFieldError(await t.get('/v1/me', { token: b.token, headers: { 'x-account-id': bad } }), 'X-Account-Id');
      }
      // Credentials come first.
      expectError(await t.get('/v1/me', { headers: { 'x-account-id': 'nope' } }), 401, 'auth.unauthorized');
    });

    it('needs an access token', async () => {
      await expectAuthRequired(t, 'GET', '/v1/me');
      await expectAuthRequired(t, 'GET', '/v1/auth/me');
    });
  });

  describe('PATCH /v1/me', () => {
    it('updates the profile and answers the full document', async () => {
      const res = await t.patch('/v1/me', { username: '  Alice A.  ', locale: 'fr-FR', timezone: 'Europe/Paris', avatar_url: 'https://cdn.example.com/a.png' }, { token: a.token });
      assert.equal(res.status, 200, res.text);
      assert.deepEqual(Object.keys(res.body).sort(), ME_KEYS);
      assert.equal(res.body.username, 'Alice A.');
      assert.equal(res.body.locale, 'fr-FR');
      assert.equal(res.body.timezone, 'Europe/Paris');
      assert.equal(res.body.avatar_url, 'https://cdn.example.com/a.png');
      assert.equal(res.body.login, a.login, 'login never changes');
      assert.deepEqual((await t.get('/v1/me', { token: a.token })).body, res.body);
      // One field at a time leaves the others alone.
      const tz = await t.patch('/v1/me', { timezone: 'America/New_York' }, { token: a.token });
      assert.equal(tz.body.timezone, 'America/New_York');
      assert.equal(tz.body.username, 'Alice A.');
      assert.equal(tz.body.avatar_url, 'https://cdn.example.com/a.png');
      // Answers in the current account.
      const inAcme = await t.patch('/v1/me', { locale: 'en' }, { token: a.token, headers: inWs });
      assert.equal(inAcme.body.org_id, ws);
    });

    it('null clears timezone and avatar_url', async () => {
      const res = await t.patch('/v1/me', { timezone: null, avatar_url: null }, { token: a.token });
      assert.equal(res.status, 200, res.text);
      assert.equal(res.body.timezone, null);
      assert.equal(res.body.avatar_url, null);
      assert.equal(res.body.username, 'Alice A.');
    });

    it('stores time zones in their canonical spelling, aliases as sent', async () => {
      for (const [sent, stored] of [['europe/paris', 'Europe/Paris'], ['utc', 'UTC'], ['Asia/Kolkata', 'Asia/Kolkata'], ['US/Pacific', 'US/Pacific'], ['Etc/GMT+5', 'Etc/GMT+5']]) {
        const res = await t.patch('/v1/me', { timezone: sent }, { token: wsAdmin.token });
        assert.equal(res.status, 200, res.text);
        assert.equal(res.body.timezone, stored, sent);
      }
    });

    it('PUT is PATCH', async () => {
      const res = await t.put('/v1/me', { username: 'Via Put' }, { token: a.token });
      assert.equal(res.status, 200, res.text);
      assert.equal(res.body.username, 'Via Put');
      assert.equal(res.body.locale, 'en');
    });

    it('validates every field and needs at least one', async () => {
      const patch = (body: unknown) => t.patch('/v1/me', body, { token: b.token });
      expectError(await patch({}), 400, 'validation.error');
      expectError(await patch({ login: 'renamed', email: 'x@example.com' }), 400, 'validation.error');
      expectError(await t.patch('/v1/me', undefined, { token: b.token, raw: '' }), 400, 'validation.error');
      expectError(await t.patch('/v1/me', undefined, { token: b.token, raw: '{', headers: { 'content-type': 'application/json' } }), 422, 'validation.error');
      expectError(await t.patch('/v1/me', undefined, { token: b.token, raw: '[1]', headers: { 'content-type': 'application/json' } }), 422, 'validation.error');
      for (const bad of ['', '   ', 'x'.repeat(65), null, 5, ['x']]) expectFieldError(await patch({ username: bad }), 'username');
      for (const bad of ['', 'x'.repeat(17), null, true]) expectFieldError(await patch({ locale: bad }), 'locale');
      for (const bad of ['Mars/Olympus', 'Europe/Atlantis', 'UTC+99', '', 'x'.repeat(65), 3]) expectFieldError(await patch({ timezone: bad }), 'timezone');
      for (const bad of ['not a url', 'ftp://example.com/a.png', 'http://', '//example.com/a.png', `https://example.com/${'x'.repeat(2030)}`, 7]) {
        expectFieldError(await patch({ avatar_url: bad }), 'avatar_url');
      }
      // A valid field next to an invalid one changes nothing.
      expectFieldError(await patch({ username: 'Fine', timezone: 'Nowhere/Land' }), 'timezone');
      assert.equal((await t.get('/v1/me', { token: b.token })).body.username, b.login);
      // Boundaries.
      const max = await patch({ username: 'x'.repeat(64), locale: 'y'.repeat(16), timezone: 'UTC' });
      assert.equal(max.status, 200, max.text);
      assert.equal(max.body.username, 'x'.repeat(64));
    });

    it('writes user.update with the state before and after', async () => {
      const res = await t.patch('/v1/me', { username: 'Bee' }, { token: b.token });
      const row = (await auditRows(t, { action: 'user.update', targetId: b.id })).at(-1)!;
      assert.equal(row.trace_id, res.headers['x-trace-id']);
      assert.equal(row.actor_user_id, b.id);
      assert.equal(row.org_id, b.personalAccountId);
      const parse = (v: unknown) => (typeof v === 'string' ? JSON.parse(v) : v) as Record<string, unknown>;
      assert.equal(parse(row.before_state).username, 'x'.repeat(64));
      assert.equal(parse(row.after_state).username, 'Bee');
      // Also from a workspace: the entry belongs to the personal account.
      await t.patch('/v1/me', { username: 'Bee2' }, { token: b.token, headers: inWs });
      assert.equal((await auditRows(t, { action: 'user.update', targetId: b.id })).at(-1)!.org_id, b.personalAccountId);
    });

    it('needs an access token', async () => {
      await expectAuthRequired(t, 'PATCH', '/v1/me', { username: 'x' });
    });
  });

  describe('usage', () => {
    const insertUsage = async (orgId: string, userId: string | null, model: string, input: number, output: number, cost: number, at: Date) => {
      await t.ctx.db
        .insertInto('usage_records')
        .values({ id: newId(), org_id: orgId, user_id: userId, model, input_tokens: input, output_tokens: output, cost_usd: cost, created_at: at })
        .execute();
    };
    const now = new Date();
    const year = now.getUTCFullYear();
    const month = now.getUTCMonth() + 1;
    const prev = new Date(Date.UTC(year, month - 1, 1) - 3600_000); // the last hour of the previous month
    let u: TestUser;

    before(async () => {
      u = await registerUser(t);
      await addMember(t, ws, u.id, 'member');
      const mine = u.personalAccountId;
      await insertUsage(mine, u.id, 'gpt-4o', 100, 50, 0.5, now);
      await insertUsage(mine, u.id, 'gpt-4o', 10, 5, 0.05, now);
      await insertUsage(mine, u.id, 'claude-3', 200, 100, 0.25, now);
      await insertUsage(mine, u.id, 'gpt-4o', 1000, 1000, 9, prev);
      await insertUsage(mine, null, 'system-model', 7, 7, 7, now); // not the caller's
      await insertUsage(ws, u.id, 'gpt-4o', 3, 4, 0.125, now);
      await insertUsage(ws, b.id, 'gpt-4o', 500, 500, 5, now); // another member's
      // A fixed past month for ordering and precision.
      const jan = (d: number, h = 12) => new Date(Date.UTC(2031, 0, d, h));
      await insertUsage(mine, u.id, 'zeta', 1, 1, 1, jan(3));
      await insertUsage(mine, u.id, 'beta', 2, 2, 0.5, jan(3));
      await insertUsage(mine, u.id, 'alpha', 3, 3, 0.5, jan(5));
      await insertUsage(mine, u.id, 'gamma', 4, 4, 0.2, jan(5, 0));
      await insertUsage(mine, u.id, 'gamma', 5, 5, 0.3, jan(31, 23));
      await insertUsage(mine, u.id, 'tiny', 1, 0, 0.000001234, new Date(Date.UTC(2031, 1, 1, 0, 0, 0)));
      await insertUsage(mine, u.id, 'edge', 1, 1, 0, new Date(Date.UTC(2031, 0, 1, 0, 0, 0)));
      await insertUsage(mine, u.id, 'edge', 1, 1, 0, new Date(Date.UTC(2030, 11, 31, 23, 59, 59, 999)));
    });

    it('GET /v1/me/usage sums the caller’s records of the current account for a month', async () => {
      const res = await t.get('/v1/me/usage', { token: u.token });
      assert.equal(res.status, 200, res.text);
      assert.deepEqual(res.body, {
        org_id: u.personalAccountId,
        year,
        month,
        total_input_tokens: 310,
        total_output_tokens: 155,
        total_cost_usd: 0.8,
        record_count: 3,
      });
      const explicit = await t.get(`/v1/me/usage?year=${year}&month=${month}`, { token: u.token });
      assert.deepEqual(explicit.body, res.body);
      const before = await t.get(`/v1/me/usage?year=${prev.getUTCFullYear()}&month=${prev.getUTCMonth() + 1}`, { token: u.token });
      assert.equal(before.body.total_input_tokens, 1000);
      assert.equal(before.body.total_cost_usd, 9);
      assert.equal(before.body.record_count, 1);
      // Month bounds are UTC and half-open.
      const jan = await t.get('/v1/me/usage?year=2031&month=1', { token: u.token });
      assert.equal(jan.body.record_count, 6);
      assert.equal(jan.body.total_input_tokens, 1 + 2 + 3 + 4 + 5 + 1);
      const feb = await t.get('/v1/me/usage?year=2031&month=2', { token: u.token });
      assert.equal(feb.body.total_cost_usd, 0.000001234);
      const empty = await t.get('/v1/me/usage?year=2000&month=1', { token: u.token });
      assert.deepEqual(empty.body, { org_id: u.personalAccountId, year: 2000, month: 1, total_input_tokens: 0, total_output_tokens: 0, total_cost_usd: 0, record_count: 0 });
      // In the workspace: the caller's records there only.
      const shared = await t.get('/v1/me/usage', { token: u.token, headers: inWs });
      assert.equal(shared.body.org_id, ws);
      assert.equal(shared.body.total_input_tokens, 3);
      assert.equal(shared.body.total_cost_usd, 0.125);
    });

    it('validates year and month', async () => {
      for (const q of ['year=1999', 'year=2101', 'year=abc', 'year=2024.5', 'month=0', 'month=13', 'month=x', 'year=']) {
        expectError(await t.get(`/v1/me/usage?${q}`, { token: u.token }), 400, 'validation.error');
        expectError(await t.get(`/v1/me/usage/by-model?${q}`, { token: u.token }), 400, 'validation.error');
      }
      assert.equal((await t.get('/v1/me/usage?year=2000&month=12', { token: u.token })).status, 200);
      assert.equal((await t.get('/v1/me/usage?year=2100&month=1', { token: u.token })).status, 200);
    });

    it('GET /v1/me/usage/daily lists days with records, ascending, end inclusive', async () => {
      const res = await t.get('/v1/me/usage/daily?start=2031-01-01&end=2031-01-31', { token: u.token });
      assert.equal(res.status, 200, res.text);
      assert.deepEqual(res.body, [
        { date: '2031-01-01', input_tokens: 1, output_tokens: 1, cost_usd: 0, record_count: 1 },
        { date: '2031-01-03', input_tokens: 3, output_tokens: 3, cost_usd: 1.5, record_count: 2 },
        { date: '2031-01-05', input_tokens: 7, output_tokens: 7, cost_usd: 0.7, record_count: 2 },
        { date: '2031-01-31', input_tokens: 5, output_tokens: 5, cost_usd: 0.3, record_count: 1 },
      ]);
      const one = await t.get('/v1/me/usage/daily?start=2031-01-05&end=2031-01-05', { token: u.token });
      assert.deepEqual(one.body.map((d: { date: string }) => d.date), ['2031-01-05']);
      const across = await t.get('/v1/me/usage/daily?start=2030-12-31&end=2031-01-01', { token: u.token });
      assert.deepEqual(across.body.map((d: { date: string }) => d.date), ['2030-12-31', '2031-01-01']);
      const none = await t.get('/v1/me/usage/daily?start=2031-01-06&end=2031-01-30', { token: u.token });
      assert.deepEqual(none.body, []);
    });

    it('daily: start ≤ end, a span of at most 366 days, real dates', async () => {
      const daily = (q: string) => t.get(`/v1/me/usage/daily?${q}`, { token: u.token });
      expectFieldError(await daily('start=2031-01-02&end=2031-01-01'), 'end');
      expectFieldError(await daily('start=2030-01-01&end=2031-01-03'), 'end'); // 367 days
      assert.equal((await daily('start=2030-01-01&end=2031-01-02')).status, 200); // 366 days
      assert.equal((await daily('start=2024-01-01&end=2025-01-01')).status, 200); // leap year
      expectFieldError(await daily('end=2031-01-01'), 'start');
      expectFieldError(await daily('start=2031-01-01'), 'end');
      for (const bad of ['2031-1-1', '2031-02-30', '2031-13-01', 'yesterday', '2031-01-01T00:00:00Z', '']) {
        expectError(await daily(`start=${bad}&end=2031-01-31`), 400, 'validation.error');
      }
    });

    it('GET /v1/me/usage/by-model orders by cost, then model', async () => {
      const res = await t.get('/v1/me/usage/by-model?year=2031&month=1', { token: u.token });
      assert.equal(res.status, 200, res.text);
      assert.deepEqual(res.body, [
        { model: 'zeta', input_tokens: 1, output_tokens: 1, cost_usd: 1, record_count: 1 },
        { model: 'alpha', input_tokens: 3, output_tokens: 3, cost_usd: 0.5, record_count: 1 },
        { model: 'beta', input_tokens: 2, output_tokens: 2, cost_usd: 0.5, record_count: 1 },
        { model: 'gamma', input_tokens: 9, output_tokens: 9, cost_usd: 0.5, record_count: 2 },
        { model: 'edge', input_tokens: 1, output_tokens: 1, cost_usd: 0, record_count: 1 },
      ]);
      const current = await t.get('/v1/me/usage/by-model', { token: u.token });
      assert.deepEqual(current.body.map((r: { model: string; cost_usd: number }) => [r.model, r.cost_usd]), [['gpt-4o', 0.55], ['claude-3', 0.25]]);
      assert.deepEqual((await t.get('/v1/me/usage/by-model?year=2000&month=1', { token: u.token })).body, []);
    });

    it('needs an access token', async () => {
      await expectAuthRequired(t, 'GET', '/v1/me/usage');
      await expectAuthRequired(t, 'GET', '/v1/me/usage/daily?start=2031-01-01&end=2031-01-02');
      await expectAuthRequired(t, 'GET', '/v1/me/usage/by-model');
    });
  });

  describe('GET /v1/me/credits', () => {
    let u: TestUser;
    before(async () => {
      u = await registerUser(t);
      for (const [amount, type] of [[50, 'admin_adjust'], [-30, 'run_usage'], [20, 'redemption'], [-5, 'run_usage'], [100, 'plan_grant']] as const) {
        await changeCredits(t.ctx.db, { orgId: u.personalAccountId, amount, referenceType: type, note: `${type} ${amount}`, threadTitle: type === 'run_usage' ? 'A thread' : null });
      }
    });

    it('shows the balance and the ledger newest first', async () => {
      const res = await t.get('/v1/me/credits', { token: u.token });
      assert.equal(res.status, 200, res.text);
      assert.equal(res.body.org_id, u.personalAccountId);
      assert.equal(res.body.balance, 1000 + 50 - 30 + 20 - 5 + 100);
      const tx = res.body.transactions;
      assert.deepEqual(tx.map((x: { amount: number }) => x.amount), [100, -5, 20, -30, 50, 1000]);
      assert.deepEqual(tx.map((x: { balance_after: number }) => x.balance_after), [1135, 1035, 1040, 1020, 1050, 1000]);
      assert.deepEqual(Object.keys(tx[0]).sort(), ['amount', 'balance_after', 'created_at', 'id', 'note', 'org_id', 'reference_id', 'reference_type', 'thread_title', 'type']);
      assert.equal(tx[1].type, 'debit');
      assert.equal(tx[1].thread_title, 'A thread');
      assert.equal(tx[0].type, 'credit');
      assert.equal(tx[5].reference_type, 'initial_grant');
      assert.match(tx[0].created_at, ISO_RE);
    });

    it('pages with limit and before', async () => {
      const all = (await t.get('/v1/me/credits?limit=200', { token: u.token })).body.transactions;
      const seen: string[] = [];
      let before = '';
      for (;;) {
        const res = await t.get(`/v1/me/credits?limit=2${before ? `&before=${before}` : ''}`, { token: u.token });
        assert.equal(res.status, 200, res.text);
        assert.ok(res.body.transactions.length <= 2);
        if (!res.body.transactions.length) break;
        seen.push(...res.body.transactions.map((x: { id: string }) => x.id));
        before = res.body.transactions.at(-1).id;
      }
      assert.deepEqual(seen, all.map((x: { id: string }) => x.id));
      assert.equal((await t.get('/v1/me/credits?limit=1', { token: u.token })).body.transactions.length, 1);
    });

    it('pages through entries written within one millisecond without skipping any', async () => {
      const w = await registerUser(t);
      const micros = ['.123100', '.123400', '.123456', '.123999'];
      for (const m of micros) {
        await t.ctx.db.insertInto('credit_transactions').values({
          id: newId(), org_id: w.personalAccountId, amount: 1, type: 'credit', reference_type: 'admin_adjust', balance_after: 0,
          created_at: sql`${'2030-01-01 00:00:00' + m + '+00'}::timestamptz` as never,
        }).execute();
      }
      const all = (await t.get('/v1/me/credits?limit=200', { token: w.token })).body.transactions.map((x: { id: string }) => x.id);
      assert.equal(all.length, micros.length + 1);
      const seen: string[] = [];
      let before = '';
      for (let i = 0; i < 10; i++) {
        const page = (await t.get(`/v1/me/credits?limit=1${before ? `&before=${before}` : ''}`, { token: w.token })).body.transactions;
        if (!page.length) break;
        seen.push(page[0].id);
        before = page[0].id;
      }
      assert.deepEqual(seen, all);
    });

    it('refuses bad limits and cursors', async () => {
      for (const q of ['limit=0', 'limit=201', 'limit=abc', 'limit=-1']) expectFieldError(await t.get(`/v1/me/credits?${q}`, { token: u.token }), 'limit');
      expectFieldError(await t.get('/v1/me/credits?before=abc', { token: u.token }), 'before');
      expectFieldError(await t.get(`/v1/me/credits?before=${newId()}`, { token: u.token }), 'before');
      // Another account's transaction is no cursor here.
      const foreign = (await t.get('/v1/me/credits', { token: b.token })).body.transactions[0].id;
      expectFieldError(await t.get(`/v1/me/credits?before=${foreign}`, { token: u.token }), 'before');
    });

    it('is the current account’s', async () => {
      const res = await t.get('/v1/me/credits', { token: b.token, headers: inWs });
      assert.equal(res.status, 200);
      assert.equal(res.body.org_id, ws);
      assert.equal(res.body.balance, 0);
      await expectAuthRequired(t, 'GET', '/v1/me/credits');
    });
  });

  describe('invite code', () => {
    it('GET creates the code on first call and then returns it', async () => {
      const u = await registerUser(t);
      const res = await t.get('/v1/me/invite-code', { token: u.token });
      assert.equal(res.status, 200, res.text);
      assert.deepEqual(Object.keys(res.body).sort(), ['code', 'created_at', 'id', 'is_active', 'max_uses', 'use_count', 'user_id']);
      assert.match(res.body.code, /^[ABCDEFGHJKLMNPQRSTUVWXYZ23456789]{8}$/);
      assert.equal(res.body.user_id, u.id);
      assert.equal(res.body.max_uses, 0);
      assert.equal(res.body.use_count, 0);
      assert.equal(res.body.is_active, true);
      assert.deepEqual((await t.get('/v1/me/invite-code', { token: u.token })).body, res.body);
      // The same in every account: it belongs to the user.
      assert.deepEqual((await t.get('/v1/me/invite-code', { token: b.token, headers: inWs })).body, (await t.get('/v1/me/invite-code', { token: b.token })).body);
    });

    it('concurrent first calls create a single code', async () => {
      const u = await registerUser(t);
      const results = await Promise.all(Array.from({ length: 5 }, () => t.get('/v1/me/invite-code', { token: u.token })));
      assert.ok(results.every((r) => r.status === 200));
      assert.equal(new Set(results.map((r) => r.body.code)).size, 1);
      const rows = await t.ctx.db.selectFrom('invite_codes').select('id').where('user_id', '=', u.id).execute();
      assert.equal(rows.length, 1);
    });

    it('reset replaces it with a fresh one; the old one stops working', async () => {
      const u = await registerUser(t);
      const old = (await t.get('/v1/me/invite-code', { token: u.token })).body;
      const res = await t.post('/v1/me/invite-code/reset', undefined, { token: u.token });
      assert.equal(res.status, 200, res.text);
      assert.notEqual(res.body.code, old.code);
      assert.notEqual(res.body.id, old.id);
      assert.equal(res.body.use_count, 0);
      assert.equal(res.body.is_active, true);
      assert.deepEqual((await t.get('/v1/me/invite-code', { token: u.token })).body, res.body);
      const rows = await t.ctx.db.selectFrom('invite_codes').select(['id', 'is_active']).where('user_id', '=', u.id).execute();
      assert.equal(rows.find((r) => r.id === old.id)!.is_active, false);
      const again = await t.post('/v1/me/invite-code/reset', undefined, { token: u.token });
      const active = await t.ctx.db.selectFrom('invite_codes').select('id').where('user_id', '=', u.id).where('is_active', '=', true).execute();
      assert.deepEqual(active.map((r) => r.id), [again.body.id], 'invite.max_codes_per_user = 1');
      const l = uniq('inv');
      expectError(await t.post('/v1/auth/register', { login: l, email: `${l}@example.com`, password: 'password123', invite_code: old.code }), 400, 'auth.invite_code_invalid');
      const audit = await auditRows(t, { action: 'invite_code.reset', actorUserId: u.id });
      assert.equal(audit.length, 2);
      assert.equal(audit[0].target_id, res.body.id);
      assert.equal(audit[0].org_id, u.personalAccountId);
    });

    it('needs an access token', async () => {
      await expectAuthRequired(t, 'GET', '/v1/me/invite-code');
      await expectAuthRequired(t, 'POST', '/v1/me/invite-code/reset');
    });
  });

  describe('POST /v1/me/redeem', () => {
    const insertCode = async (c: { code: string; value?: string; maxUses?: number; expiresAt?: Date | null; active?: boolean }) => {
      const id = newId();
      await t.ctx.db
        .insertInto('redemption_codes')
        .values({ id, code: c.code, type: 'credits', value: c.value ?? '100', max_uses: c.maxUses ?? 1, is_active: c.active ?? true, expires_at: c.expiresAt ?? null })
        .execute();
      return id;
    };
    let r1: TestUser;
    let r2: TestUser;
    const gift = `GIFT-${uniq('').slice(-6).toUpperCase()}-11`;
    const solo = `SOLO-${uniq('').slice(-6).toUpperCase()}`;
    let giftId = '';

    before(async () => {
      r1 = await registerUser(t);
      r2 = await registerUser(t);
      giftId = await insertCode({ code: gift, value: '150', maxUses: 2 });
      await insertCode({ code: solo, value: '25', maxUses: 1 });
    });

    it('adds the value to the current account, ignoring case, dashes and spaces', async () => {
      const typed = ` ${gift.toLowerCase().replace(/-/g, ' ')} `;
      const res = await t.post('/v1/me/redeem', { code: typed }, { token: r1.token });
      assert.equal(res.status, 200, res.text);
      assert.deepEqual(res.body, { code: gift, type: 'credits', value: '150', balance: 1150 });
      const credits = (await t.get('/v1/me/credits', { token: r1.token })).body;
      assert.equal(credits.balance, 1150);
      assert.equal(credits.transactions[0].reference_type, 'redemption');
      assert.equal(credits.transactions[0].reference_id, giftId);
      assert.equal(credits.transactions[0].amount, 150);
      const row = await t.ctx.db.selectFrom('redemption_codes').select('use_count').where('id', '=', giftId).executeTakeFirstOrThrow();
      assert.equal(row.use_count, 1);
      const audit = await auditRows(t, { action: 'redemption_code.redeem', actorUserId: r1.id });
      assert.equal(audit.length, 1);
      assert.equal(audit[0].target_id, giftId);
      assert.equal(audit[0].org_id, r1.personalAccountId);
    });

    it('once per user; exhausted when used up', async () => {
      expectError(await t.post('/v1/me/redeem', { code: gift }, { token: r1.token }), 409, 'redemption_codes.already_redeemed');
      assert.equal((await t.post('/v1/me/redeem', { code: gift }, { token: r2.token })).status, 200);
      expectError(await t.post('/v1/me/redeem', { code: gift }, { token: b.token }), 409, 'redemption_codes.exhausted');
      assert.equal((await t.post('/v1/me/redeem', { code: solo.replace('-', '') }, { token: r1.token })).status, 200);
      expectError(await t.post('/v1/me/redeem', { code: solo }, { token: r2.token }), 409, 'redemption_codes.exhausted');
      assert.equal((await t.get('/v1/me/credits', { token: r1.token })).body.balance, 1175);
    });

    it('expired, inactive and unknown codes', async () => {
      const expired = `OLD-${uniq('').slice(-6).toUpperCase()}`;
      await insertCode({ code: expired, expiresAt: new Date(Date.now() - 1000), maxUses: 5 });
      const later = `LATER-${uniq('').slice(-6).toUpperCase()}`;
      await insertCode({ code: later, expiresAt: new Date(Date.now() + 3600_000), maxUses: 5 });
      const off = `OFF-${uniq('').slice(-6).toUpperCase()}`;
      await insertCode({ code: off, active: false, maxUses: 5 });
      expectError(await t.post('/v1/me/redeem', { code: expired }, { token: r2.token }), 409, 'redemption_codes.expired');
      expectError(await t.post('/v1/me/redeem', { code: off }, { token: r2.token }), 404, 'redemption_codes.not_found');
      expectError(await t.post('/v1/me/redeem', { code: 'NO-SUCH-CODE' }, { token: r2.token }), 404, 'redemption_codes.not_found');
      assert.equal((await t.post('/v1/me/redeem', { code: later }, { token: r2.token })).status, 200);
      // Nothing was credited by the refusals.
      assert.equal((await t.get('/v1/me/credits', { token: r2.token })).body.balance, 1000 + 150 + 100);
    });

    it('credits the account selected by X-Account-Id', async () => {
      const code = `TEAM-${uniq('').slice(-6).toUpperCase()}`;
      await insertCode({ code, value: '70', maxUses: 3 });
      const res = await t.post('/v1/me/redeem', { code }, { token: b.token, headers: inWs });
      assert.equal(res.status, 200, res.text);
      assert.equal(res.body.balance, 70);
      assert.equal((await t.get('/v1/me/credits', { token: a.token, headers: inWs })).body.balance, 70);
      const row = await t.ctx.db.selectFrom('redemptions').selectAll().where('user_id', '=', b.id).executeTakeFirstOrThrow();
      assert.equal(row.org_id, ws);
    });

    it('validates the code', async () => {
      const redeem = (body: unknown) => t.post('/v1/me/redeem', body, { token: r2.token });
      expectFieldError(await redeem({}), 'code');
      expectFieldError(await redeem({ code: '' }), 'code');
      expectFieldError(await redeem({ code: '   ' }), 'code');
      expectFieldError(await redeem({ code: 'x'.repeat(65) }), 'code');
      expectFieldError(await redeem({ code: 1234 }), 'code');
      expectFieldError(await redeem({ code: null }), 'code');
      await expectAuthRequired(t, 'POST', '/v1/me/redeem', { code: 'X' });
    });

    it('allows 10 attempts per user per minute', async () => {
      const u = await registerUser(t);
      const code = `RL-${uniq('').slice(-6).toUpperCase()}`;
      await insertCode({ code, maxUses: 5 });
      for (let i = 0; i < 10; i++) expectError(await t.post('/v1/me/redeem', { code: `WRONG-${i}` }, { token: u.token }), 404, 'redemption_codes.not_found');
      const limited = await t.post('/v1/me/redeem', { code }, { token: u.token });
      expectError(limited, 429, 'rate_limit');
      const retry = Number(limited.headers['retry-after']);
      assert.ok(retry >= 1 && retry <= 60, `Retry-After ${retry}`);
      // Another user is not affected.
      assert.equal((await t.post('/v1/me/redeem', { code }, { token: r1.token })).status, 200);
    });
  });

  describe('GET /v1/me/feature-flags', () => {
    it('is empty without flags', async () => {
      const res = await t.get('/v1/me/feature-flags', { token: a.token });
      assert.equal(res.status, 200);
      assert.deepEqual(res.body, { data: [] });
    });

    it('evaluates every flag for the current account: override, else default; env first for setting-backed keys', async () => {
      for (const [key, def] of [['beta.search', false], ['beta.voice', true], ['feature.byok_enabled', true], ['feature.mcp_remote_enabled', false]] as const) {
        await t.ctx.db.insertInto('feature_flags').values({ id: newId(), key, default_value: def, description: null }).execute();
      }
      for (const [key, enabled] of [['beta.search', true], ['beta.voice', false], ['feature.byok_enabled', true], ['feature.mcp_remote_enabled', true]] as const) {
        await t.ctx.db.insertInto('feature_flag_overrides').values({ flag_key: key, org_id: a.personalAccountId, enabled }).execute();
      }
      await t.ctx.db.insertInto('feature_flag_overrides').values({ flag_key: 'beta.search', org_id: ws, enabled: true }).execute();
      await flagsChanged(t.ctx, null); // as the flag endpoints do after their writes

      const mine = await t.get('/v1/me/feature-flags', { token: a.token });
      assert.equal(mine.status, 200, mine.text);
      assert.deepEqual(mine.body.data, [
        { key: 'beta.search', enabled: true, source: 'override' },
        { key: 'beta.voice', enabled: false, source: 'override' },
        { key: 'feature.byok_enabled', enabled: false, source: 'env' },
        { key: 'feature.mcp_remote_enabled', enabled: true, source: 'override' },
      ]);
      const theirs = await t.get('/v1/me/feature-flags', { token: b.token });
      assert.deepEqual(theirs.body.data, [
        { key: 'beta.search', enabled: false, source: 'default' },
        { key: 'beta.voice', enabled: true, source: 'default' },
        { key: 'feature.byok_enabled', enabled: false, source: 'env' },
        { key: 'feature.mcp_remote_enabled', enabled: false, source: 'default' },
      ]);
      const inAcme = await t.get('/v1/me/feature-flags', { token: b.token, headers: inWs });
      assert.deepEqual(inAcme.body.data[0], { key: 'beta.search', enabled: true, source: 'override' });
      assert.deepEqual(inAcme.body.data[1], { key: 'beta.voice', enabled: true, source: 'default' });
    });

    it('needs an access token', async () => {
      await expectAuthRequired(t, 'GET', '/v1/me/feature-flags');
    });
  });
});
