// Plans, subscriptions, entitlement overrides and the one resolution every enforcement point
// reads (api.md §17, §18): per key, the value from a plan, then an override that raises it,
// then the override expiring (ctx.clock moved forward, no sleeps), each seen by the next request.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { sql } from 'kysely';
import { registerUser, startTestApp, type TestApp, type TestUser } from './helpers/app.js';
import { expectError, expectFieldError } from './helpers/assert.js';
import { adminCast, expectPadminOnly, type AdminCast } from './helpers/admin.js';
import { createWorkspace, inAccount, joinAccount } from './helpers/accounts-fixtures.js';
import { usageInsertSql } from '../src/modules/usage/store.js';
import { newId } from '../src/lib/ids.js';

const HOUR = 3_600_000;
const iso = (ms: number) => new Date(ms).toISOString();

describe('plans, subscriptions and entitlements', () => {
  let t: TestApp;
  let cast: AdminCast;
  let admin: { token: string };

  before(async () => {
    t = await startTestApp(); // no worker: created runs stay running, which the limits count
    cast = await adminCast(t);
    admin = { token: cast.admin.token };
  });
  after(async () => { await t.close(); });

  async function plan(name: string, entitlements: Array<{ key: string; value: string; value_type: string }>) {
    const res = await t.post('/v1/plans', { name, display_name: name.toUpperCase(), entitlements }, admin);
    assert.equal(res.status, 201, res.text);
    return res.body;
  }
  async function subscribe(orgId: string, planId: string, hours = 24 * 30) {
    const now = t.ctx.clock.nowMs();
    const res = await t.post('/v1/subscriptions', { org_id: orgId, plan_id: planId, current_period_start: iso(now - HOUR), current_period_end: iso(now + hours * HOUR) }, admin);
    assert.equal(res.status, 201, res.text);
    return res.body;
  }
  async function override(orgId: string, key: string, value: string, value_type: string, expiresInMs?: number) {
    const res = await t.post('/v1/entitlement-overrides', { org_id: orgId, key, value, value_type, ...(expiresInMs ? { expires_at: iso(t.ctx.clock.nowMs() + expiresInMs) } : {}) }, admin);
    assert.equal(res.status, 201, res.text);
    return res.body;
  }
  async function effective(user: TestUser, orgId: string, key: string) {
    const res = await t.get('/v1/entitlements', inAccount(user, orgId));
    assert.equal(res.status, 200, res.text);
    return res.body.entitlements.find((e: { key: string }) => e.key === key);
  }
  async function thread(opts: ReturnType<typeof inAccount>) {
    const th = await t.post('/v1/threads', {}, opts);
    assert.equal(th.status, 201, th.text);
    assert.equal((await t.post(`/v1/threads/${th.body.id}/messages`, { content: 'hi' }, opts)).status, 201);
    return th.body.id as string;
  }
  const createRun = async (opts: ReturnType<typeof inAccount>) => t.post(`/v1/threads/${await thread(opts)}/runs`, {}, opts);

  describe('plans', () => {
    it('create, read, list by name, replace values, delete; name taken; padmin only; audited', async () => {
      const p = await plan('pro', [{ key: 'quota.runs_per_month', value: '100', value_type: 'integer' }, { key: 'custom.note', value: 'hello', value_type: 'string' }]);
      assert.deepEqual(Object.keys(p).sort(), ['created_at', 'display_name', 'entitlements', 'id', 'name', 'updated_at']);
      assert.deepEqual(p.entitlements.map((e: { key: string }) => e.key), ['custom.note', 'quota.runs_per_month']);
      await plan('basic', []);
      expectError(await t.post('/v1/plans', { name: 'pro', display_name: 'Again' }, admin), 409, 'plans.name_taken');
      const list = await t.get('/v1/plans', { token: cast.member.token });
      assert.deepEqual(list.body.map((x: { name: string }) => x.name).filter((n: string) => ['basic', 'pro'].includes(n)), ['basic', 'pro']);
      assert.equal((await t.get(`/v1/plans/${p.id}`, { token: cast.member.token })).body.name, 'pro');
      const patched = await t.patch(`/v1/plans/${p.id}`, { entitlements: [{ key: 'quota.runs_per_month', value: '5', value_type: 'integer' }] }, admin);
      assert.equal(patched.status, 200, patched.text);
      assert.deepEqual(patched.body.entitlements.map((e: { value: string }) => e.value), ['5']);
      expectFieldError(await t.patch(`/v1/plans/${p.id}`, {}, admin), 'body');
      for (const [m, path, body] of [['POST', '/v1/plans', { name: 'x', display_name: 'X' }], ['PATCH', `/v1/plans/${p.id}`, { display_name: 'Y' }], ['DELETE', `/v1/plans/${p.id}`, undefined]] as const) {
        await expectPadminOnly(t, cast, m, path, body);
      }
      assert.equal((await t.del(`/v1/plans/${p.id}`, admin)).status, 204);
      expectError(await t.get(`/v1/plans/${p.id}`, admin), 404, 'plans.not_found');
      assert.equal((await t.post('/v1/plans', { name: 'pro', display_name: 'Pro 2' }, admin)).status, 201, 'a deleted plan frees its name');
      const rows = await t.ctx.db.selectFrom('audit_logs').select('action').where('target_id', '=', p.id).orderBy('created_at').execute();
      assert.deepEqual(rows.map((r) => r.action), ['plan.create', 'plan.update', 'plan.delete']);
    });

    it('validates names and values: pattern, types, duplicate keys, the type and range of keys the platform reads', async () => {
      const bad: Array<[unknown, string]> = [
        [{ name: 'Bad Name', display_name: 'x' }, 'name'],
        [{ name: 'ok1', display_name: '' }, 'display_name'],
        [{ name: 'ok2', display_name: 'x', entitlements: [{ key: 'a.b', value: '1.5', value_type: 'integer' }] }, 'entitlements.0.value'],
        [{ name: 'ok3', display_name: 'x', entitlements: [{ key: 'a.b', value: 'yes', value_type: 'boolean' }] }, 'entitlements.0.value'],
        [{ name: 'ok4', display_name: 'x', entitlements: [{ key: 'a.b', value: '1', value_type: 'integer' }, { key: 'a.b', value: '2', value_type: 'integer' }] }, 'entitlements.1.key'],
        [{ name: 'ok5', display_name: 'x', entitlements: [{ key: 'limit.concurrent_runs', value: 'true', value_type: 'boolean' }] }, 'entitlements.0.value'],
        [{ name: 'ok6', display_name: 'x', entitlements: [{ key: 'limit.concurrent_runs', value: '-1', value_type: 'integer' }] }, 'entitlements.0.value'],
        [{ name: 'ok7', display_name: 'x', entitlements: [{ key: 'Bad Key', value: '1', value_type: 'integer' }] }, 'entitlements.0.key'],
        [{ name: 'ok8', display_name: 'x', entitlements: [{ key: 'a.b', value: '1', value_type: 'float' }] }, 'entitlements.0.value_type'],
      ];
      for (const [body, field] of bad) expectFieldError(await t.post('/v1/plans', body, admin), field);
    });
  });

  describe('subscriptions', () => {
    it("create grants the plan's credits.monthly_grant; one active at a time; cancel; expiry by the clock", async () => {
      const owner = await registerUser(t);
      const ws = (await createWorkspace(t, owner)).id;
      const member = await registerUser(t);
      await joinAccount(t, owner, ws, member, 'member');
      const p = await plan('granting', [{ key: 'credits.monthly_grant', value: '2500', value_type: 'integer' }]);
      const before = (await t.get('/v1/me/credits', inAccount(owner, ws))).body.balance;
      const sub = await subscribe(ws, p.id, 2);
      assert.equal(sub.status, 'active');
      const credits = (await t.get('/v1/me/credits', inAccount(owner, ws))).body;
      assert.equal(credits.balance, before + 2500);
      assert.equal(credits.transactions[0].reference_type, 'plan_grant');
      assert.equal(credits.transactions[0].reference_id, sub.id);
      const again = await t.post('/v1/subscriptions', { org_id: ws, plan_id: p.id, current_period_start: iso(Date.now()), current_period_end: iso(Date.now() + HOUR) }, admin);
      expectError(again, 409, 'subscriptions.already_active');
      expectError(await t.post('/v1/subscriptions', { org_id: newId(), plan_id: p.id, current_period_start: iso(Date.now()), current_period_end: iso(Date.now() + HOUR) }, admin), 404, 'accounts.not_found');
      expectError(await t.post('/v1/subscriptions', { org_id: ws, plan_id: newId(), current_period_start: iso(Date.now()), current_period_end: iso(Date.now() + HOUR) }, admin), 404, 'plans.not_found');
      expectFieldError(await t.post('/v1/subscriptions', { org_id: ws, plan_id: p.id, current_period_start: iso(Date.now()), current_period_end: iso(Date.now() - 1) }, admin), 'current_period_end');
      expectError(await t.del(`/v1/plans/${p.id}`, admin), 409, 'plans.in_use');
      // Members of the account see its subscriptions, nobody else's.
      const mine = await t.get('/v1/subscriptions', inAccount(member, ws));
      assert.deepEqual(mine.body.map((s: { id: string }) => s.id), [sub.id]);
      expectError(await t.get('/v1/subscriptions', { ...inAccount(member, ws), query: { org_id: owner.personalAccountId } }), 404, 'accounts.not_found');
      expectError(await t.get(`/v1/subscriptions/${sub.id}`, { token: member.token }), 404, 'subscriptions.not_found');
      assert.equal((await t.get(`/v1/subscriptions/${sub.id}`, inAccount(member, ws))).body.id, sub.id);
      assert.ok((await t.get('/v1/subscriptions', { ...admin, query: { org_id: ws, status: 'active' } })).body.some((s: { id: string }) => s.id === sub.id));
      // Three hours on, the two-hour period is over: expired, and the plan is free to delete.
      t.ctx.clock.advance(3 * HOUR);
      try {
        assert.equal((await t.get(`/v1/subscriptions/${sub.id}`, admin)).body.status, 'expired');
        assert.ok((await t.get('/v1/subscriptions', { ...admin, query: { org_id: ws, status: 'expired' } })).body.some((s: { id: string }) => s.id === sub.id));
        const next = await subscribe(ws, p.id);
        assert.equal((await t.del(`/v1/subscriptions/${next.id}`, admin)).status, 204);
        assert.equal((await t.del(`/v1/subscriptions/${next.id}`, admin)).status, 204, 'cancelling again');
        const cancelled = (await t.get(`/v1/subscriptions/${next.id}`, admin)).body;
        assert.equal(cancelled.status, 'cancelled');
        assert.ok(cancelled.cancelled_at);
        const audits = await t.ctx.db.selectFrom('audit_logs').select('action').where('target_id', '=', next.id).execute();
        assert.deepEqual(audits.map((a) => a.action).sort(), ['subscription.cancel', 'subscription.create']);
        assert.equal((await t.del(`/v1/plans/${p.id}`, admin)).status, 204);
      } finally {
        t.ctx.clock.reset();
      }
      await expectPadminOnly(t, cast, 'POST', '/v1/subscriptions', { org_id: ws, plan_id: p.id, current_period_start: iso(Date.now()), current_period_end: iso(Date.now() + HOUR) });
      await expectPadminOnly(t, cast, 'DELETE', `/v1/subscriptions/${sub.id}`);
    });
  });

  describe('overrides and GET /v1/entitlements', () => {
    it('sources: default, setting, plan, override (replaced), expired override; admin reads any account', async () => {
      const u = await registerUser(t);
      const org = u.personalAccountId;
      const opts = inAccount(u, org);
      const all = (await t.get('/v1/entitlements', opts)).body;
      assert.equal(all.org_id, org);
      assert.deepEqual(all.entitlements.map((e: { key: string }) => e.key), [
        'quota.runs_per_month', 'quota.tokens_per_month', 'limit.concurrent_runs', 'limit.team_members', 'limit.agent_reasoning_iterations',
        'limit.tool_continuation_budget', 'limit.max_input_content_bytes', 'credits.monthly_grant', 'feature.byok_enabled', 'feature.mcp_remote_enabled',
      ]);
      assert.deepEqual(await effective(u, org, 'limit.tool_continuation_budget'), { key: 'limit.tool_continuation_budget', value: '32', value_type: 'integer', source: 'default' });
      const p = await plan('sources', [{ key: 'limit.tool_continuation_budget', value: '10', value_type: 'integer' }]);
      await subscribe(org, p.id);
      assert.equal((await effective(u, org, 'limit.tool_continuation_budget')).source, 'plan');
      const o1 = await override(org, 'limit.tool_continuation_budget', '50', 'integer');
      const o2 = await override(org, 'limit.tool_continuation_budget', '60', 'integer', HOUR);
      assert.notEqual(o1.id, o2.id);
      assert.deepEqual(await effective(u, org, 'limit.tool_continuation_budget'), { key: 'limit.tool_continuation_budget', value: '60', value_type: 'integer', source: 'override' });
      const listed = (await t.get('/v1/entitlement-overrides', { ...admin, query: { org_id: org } })).body;
      assert.deepEqual(listed.map((o: { id: string }) => o.id), [o2.id], 'the second replaced the first');
      t.ctx.clock.advance(2 * HOUR);
      try {
        assert.equal((await effective(u, org, 'limit.tool_continuation_budget')).source, 'plan', 'an expired override no longer counts');
        assert.equal((await t.get('/v1/entitlement-overrides', { ...admin, query: { org_id: org } })).body.length, 1, 'expired ones are listed');
      } finally {
        t.ctx.clock.reset();
      }
      expectError(await t.del(`/v1/entitlement-overrides/${o2.id}`, { ...admin, query: { org_id: newId() } }), 404, 'entitlement_overrides.not_found');
      assert.deepEqual((await t.del(`/v1/entitlement-overrides/${o2.id}`, { ...admin, query: { org_id: org } })).body, { ok: true });
      expectError(await t.del(`/v1/entitlement-overrides/${o2.id}`, admin), 404, 'entitlement_overrides.not_found');
      // Admins read any account; others only their current one.
      assert.equal((await t.get('/v1/entitlements', { ...admin, query: { org_id: org } })).body.org_id, org);
      const other = await registerUser(t);
      expectError(await t.get('/v1/entitlements', { token: other.token, query: { org_id: org } }), 404, 'accounts.not_found');
      expectError(await t.get('/v1/entitlements', { ...admin, query: { org_id: newId() } }), 404, 'accounts.not_found');
      const audits = await t.ctx.db.selectFrom('audit_logs').select('action').where('org_id', '=', org).where('action', 'like', 'entitlement_override.%').execute();
      assert.deepEqual(audits.map((a) => a.action).sort(), ['entitlement_override.create', 'entitlement_override.create', 'entitlement_override.delete']);
    });

    it('validates overrides: value against its type and the key, expiry in the future, account exists; padmin only', async () => {
      const org = cast.member.personalAccountId;
      expectFieldError(await t.post('/v1/entitlement-overrides', { org_id: org, key: 'quota.runs_per_month', value: 'ten', value_type: 'integer' }, admin), 'value');
      expectFieldError(await t.post('/v1/entitlement-overrides', { org_id: org, key: 'feature.byok_enabled', value: '1', value_type: 'integer' }, admin), 'value');
      expectFieldError(await t.post('/v1/entitlement-overrides', { org_id: org, key: 'x.y', value: '1', value_type: 'integer', expires_at: iso(Date.now() - 1000) }, admin), 'expires_at');
      expectFieldError(await t.post('/v1/entitlement-overrides', { org_id: 'nope', key: 'x.y', value: '1', value_type: 'integer' }, admin), 'org_id');
      expectError(await t.post('/v1/entitlement-overrides', { org_id: newId(), key: 'x.y', value: '1', value_type: 'integer' }, admin), 404, 'accounts.not_found');
      expectError(await t.get('/v1/entitlement-overrides', { ...admin, query: { org_id: newId() } }), 404, 'accounts.not_found');
      await expectPadminOnly(t, cast, 'POST', '/v1/entitlement-overrides', { org_id: org, key: 'x.y', value: '1', value_type: 'integer' });
      await expectPadminOnly(t, cast, 'GET', `/v1/entitlement-overrides?org_id=${org}`);
    });
  });

  describe('enforcement, one key at a time: plan → raising override → override expired', () => {
    /** A workspace on a plan of `key` = `planValue`; `check(expectAllowed)` exercises the key. */
    async function cycle(key: string, type: 'integer' | 'boolean', planValue: string, raised: string, check: (allowed: boolean, step: string) => Promise<void>, ws: string) {
      const p = await plan(`p-${key.replace(/[._]/g, '-')}`, [{ key, value: planValue, value_type: type }]);
      await subscribe(ws, p.id);
      await check(false, 'plan value');
      await override(ws, key, raised, type, HOUR);
      await check(true, 'raised by the override');
      t.ctx.clock.advance(2 * HOUR);
      try {
        await check(false, 'override expired');
      } finally {
        t.ctx.clock.reset();
      }
    }
    async function workspace() {
      const owner = await registerUser(t);
      const ws = (await createWorkspace(t, owner)).id;
      return { owner, ws, opts: inAccount(owner, ws) };
    }

    it('quota.runs_per_month (run create and retry)', async () => {
      const { ws, opts } = await workspace();
      const first = await createRun(opts);
      assert.equal(first.status, 201, first.text);
      await t.ctx.db.updateTable('runs').set({ status: 'completed' }).where('id', '=', first.body.run_id).execute();
      await t.ctx.db.updateTable('threads').set({ active_run_id: null }).where('org_id', '=', ws).execute();
      let made = 1;
      await cycle('quota.runs_per_month', 'integer', '1', '3', async (allowed, step) => {
        const res = await createRun(opts);
        if (allowed) {
          assert.equal(res.status, 201, `${step}: ${res.text}`);
          made++;
          await t.ctx.db.updateTable('runs').set({ status: 'completed' }).where('id', '=', res.body.run_id).execute();
          await t.ctx.db.updateTable('threads').set({ active_run_id: null }).where('org_id', '=', ws).execute();
        } else {
          expectError(res, 402, 'budget.runs_quota_exceeded');
          const th = (await t.get('/v1/threads', opts)).body[0].id;
          expectError(await t.post(`/v1/threads/${th}:retry`, {}, opts), 402, 'budget.runs_quota_exceeded');
        }
      }, ws);
      assert.equal(made, 2);
    });

    it('quota.tokens_per_month (run create)', async () => {
      const { owner, ws, opts } = await workspace();
      await sql`${usageInsertSql([{ orgId: ws, userId: owner.id, runId: newId(), threadId: newId(), providerName: 'p', providerKind: 'stub', model: 'm', inputTokens: 600, outputTokens: 400, cacheReadTokens: 0, cacheWriteTokens: 0, costUsd: 0 }])}`.execute(t.ctx.db);
      await cycle('quota.tokens_per_month', 'integer', '1000', '5000', async (allowed, step) => {
        const res = await createRun(opts);
        if (allowed) {
          assert.equal(res.status, 201, `${step}: ${res.text}`);
          await t.ctx.db.updateTable('runs').set({ status: 'completed' }).where('id', '=', res.body.run_id).execute();
          await t.ctx.db.updateTable('threads').set({ active_run_id: null }).where('org_id', '=', ws).execute();
        } else expectError(res, 402, 'budget.tokens_quota_exceeded');
      }, ws);
    });

    it('limit.concurrent_runs (429 with details)', async () => {
      const { ws, opts } = await workspace();
      assert.equal((await createRun(opts)).status, 201);
      let extra = 0;
      await cycle('limit.concurrent_runs', 'integer', '1', '2', async (allowed, step) => {
        const res = await createRun(opts);
        if (allowed) {
          assert.equal(res.status, 201, `${step}: ${res.text}`);
          extra++;
          await t.ctx.db.updateTable('runs').set({ status: 'completed' }).where('id', '=', res.body.run_id).execute();
        } else {
          expectError(res, 429, 'limit.concurrent_runs');
          assert.equal(res.body.details.limit, 1);
          assert.equal(res.headers['retry-after'], '1');
        }
      }, ws);
      assert.equal(extra, 1);
    });

    it('limit.team_members (adding a team member)', async () => {
      const { owner, ws, opts } = await workspace();
      const team = (await t.post('/v1/teams', { name: 'limited' }, opts)).body.id;
      const users: TestUser[] = [];
      for (let i = 0; i < 3; i++) {
        const u = await registerUser(t);
        await joinAccount(t, owner, ws, u, 'member');
        users.push(u);
      }
      assert.equal((await t.post(`/v1/teams/${team}/members`, { user_id: users[0].id, role: 'member' }, opts)).status, 201);
      let next = 1;
      await cycle('limit.team_members', 'integer', '1', '2', async (allowed, step) => {
        const res = await t.post(`/v1/teams/${team}/members`, { user_id: users[next].id, role: 'member' }, opts);
        if (allowed) {
          assert.equal(res.status, 201, `${step}: ${res.text}`);
          next++;
        } else {
          expectError(res, 409, 'limit.team_members');
        }
      }, ws);
    });

    it('limit.max_input_content_bytes (run input)', async () => {
      const { ws, opts } = await workspace();
      const run = (await createRun(opts)).body.run_id;
      const content = 'x'.repeat(150);
      await cycle('limit.max_input_content_bytes', 'integer', '100', '200', async (allowed) => {
        const res = await t.post(`/v1/runs/${run}/input`, { content }, opts);
        // Within the limit the content passes validation and meets the run's state instead.
        if (allowed) expectError(res, 409, 'runs.invalid_state');
        else expectFieldError(res, 'content');
      }, ws);
    });

    it('feature.byok_enabled (account LLM providers)', async () => {
      const { ws, opts } = await workspace();
      let n = 0;
      await cycle('feature.byok_enabled', 'boolean', 'false', 'true', async (allowed, step) => {
        const res = await t.post('/v1/llm-providers', { name: `own${n++}`, provider: 'stub' }, opts);
        if (allowed) assert.equal(res.status, 201, `${step}: ${res.text}`);
        else expectError(res, 403, 'policy.byok_disabled');
      }, ws);
    });

    it('feature.mcp_remote_enabled (remote MCP configs)', async () => {
      const { ws, opts } = await workspace();
      let n = 0;
      // Raised from false by an override to true, over a plan that says false.
      await cycle('feature.mcp_remote_enabled', 'boolean', 'false', 'true', async (allowed, step) => {
        const res = await t.post('/v1/mcp-configs', { name: `remote${n++}`, transport: 'streamable_http', url: 'https://mcp.example.com/mcp' }, opts);
        if (allowed) assert.notEqual(res.body.code, 'policy.mcp_remote_disabled', `${step}: ${res.text}`);
        else expectError(res, 403, 'policy.mcp_remote_disabled');
      }, ws);
    });

    it('the worker keys (iterations cap, tool budget) and credits.monthly_grant resolve through the same chain', async () => {
      const { owner, ws } = await workspace();
      for (const [key, planValue, raised] of [['limit.agent_reasoning_iterations', '3', '7'], ['limit.tool_continuation_budget', '4', '9'], ['credits.monthly_grant', '0', '10']]) {
        const p = await plan(`w-${key.replace(/[._]/g, '-')}`, [{ key, value: planValue, value_type: 'integer' }]);
        const sub = await subscribe(ws, p.id);
        assert.deepEqual(await effective(owner, ws, key), { key, value: planValue, value_type: 'integer', source: 'plan' });
        await override(ws, key, raised, 'integer', HOUR);
        assert.equal((await effective(owner, ws, key)).value, raised);
        t.ctx.clock.advance(2 * HOUR);
        try {
          assert.equal((await effective(owner, ws, key)).value, planValue);
        } finally {
          t.ctx.clock.reset();
        }
        assert.equal((await t.del(`/v1/subscriptions/${sub.id}`, admin)).status, 204);
      }
    });
  });

  it('20 parallel creates against limit.concurrent_runs = 3: exactly 3 succeed', async () => {
    const owner = await registerUser(t);
    const ws = (await createWorkspace(t, owner)).id;
    const opts = inAccount(owner, ws);
    await override(ws, 'limit.concurrent_runs', '3', 'integer');
    const threads = await Promise.all(Array.from({ length: 20 }, () => thread(opts)));
    const results = await Promise.all(threads.map((th) => t.post(`/v1/threads/${th}/runs`, {}, opts)));
    assert.equal(results.filter((r) => r.status === 201).length, 3);
    assert.ok(results.filter((r) => r.status !== 201).every((r) => r.status === 429 && r.body.code === 'limit.concurrent_runs'));
  });
});

// The worker reads the same resolution when it sets a run up: the iteration cap and the tool
// budget come from the account's plan, then an override, then the plan again once it expires.
describe('worker enforcement from a plan (iterations cap, tool budget)', () => {
  let t: TestApp;
  let admin: { token: string };
  before(async () => {
    t = await startTestApp({}, { worker: true });
    admin = { token: (await adminCast(t)).admin.token };
  });
  after(async () => { await t.close(); });

  /** One run of `script` in the account; its events once it ended. */
  async function runEvents(opts: ReturnType<typeof inAccount>, script: unknown): Promise<Array<{ type: string; data: any }>> {
    const th = await t.post('/v1/threads', {}, opts);
    await t.post(`/v1/threads/${th.body.id}/messages`, { content: JSON.stringify(script) }, opts);
    const created = await t.post(`/v1/threads/${th.body.id}/runs`, {}, opts);
    assert.equal(created.status, 201, created.text);
    const sse = await t.get(`/v1/runs/${created.body.run_id}/events`, opts);
    return sse.text.split('\n\n').filter((f) => f.startsWith('id: ')).map((f) => JSON.parse(f.split('\n')[1].slice(6)));
  }

  async function onPlanThenOverride(key: string, planValue: string, raised: string, observe: (opts: ReturnType<typeof inAccount>) => Promise<number>) {
    const owner = await registerUser(t);
    const ws = (await createWorkspace(t, owner)).id;
    const opts = inAccount(owner, ws);
    const p = await t.post('/v1/plans', { name: `run-${key.replace(/[._]/g, '-')}`, display_name: key, entitlements: [{ key, value: planValue, value_type: 'integer' }] }, admin);
    assert.equal(p.status, 201, p.text);
    const now = t.ctx.clock.nowMs();
    assert.equal((await t.post('/v1/subscriptions', { org_id: ws, plan_id: p.body.id, current_period_start: iso(now - HOUR), current_period_end: iso(now + 30 * 24 * HOUR) }, admin)).status, 201);
    const seen = [await observe(opts)];
    assert.equal((await t.post('/v1/entitlement-overrides', { org_id: ws, key, value: raised, value_type: 'integer', expires_at: iso(now + HOUR) }, admin)).status, 201);
    seen.push(await observe(opts));
    t.ctx.clock.advance(2 * HOUR);
    try {
      seen.push(await observe(opts));
    } finally {
      t.ctx.clock.reset();
    }
    return seen;
  }

  it('limit.agent_reasoning_iterations caps the turns of a run', async () => {
    const steps = [...Array.from({ length: 8 }, () => ({ tool_call: { name: 'echo', arguments: { text: 'again' } } })), { text: 'done' }];
    const turns = await onPlanThenOverride('limit.agent_reasoning_iterations', '2', '4', async (opts) => {
      const events = await runEvents(opts, { stub: { steps } });
      assert.equal(events.at(-1)!.data.error_class, 'budget.max_iterations');
      return events.filter((e) => e.type === 'run.segment.start').length;
    });
    assert.deepEqual(turns, [2, 4, 2]);
  });

  it('limit.tool_continuation_budget bounds the tool calls of a run', async () => {
    const steps = [...Array.from({ length: 3 }, () => ({ tool_call: { name: 'echo', arguments: { text: 'x' } } })), { text: 'done' }];
    const ran = await onPlanThenOverride('limit.tool_continuation_budget', '1', '3', async (opts) => {
      const events = await runEvents(opts, { stub: { steps } });
      assert.equal(events.at(-1)!.type, 'run.completed');
      const denied = events.filter((e) => e.type === 'tool.denied');
      assert.ok(denied.every((e) => e.data.error_class === 'budget.tool_calls_exhausted'));
      const results = events.filter((e) => e.type === 'tool.result').length;
      assert.equal(results + denied.length, 3);
      return results;
    });
    assert.deepEqual(ran, [1, 3, 1]);
  });
});
