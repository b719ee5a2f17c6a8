// Credits and usage administration (api.md §16): the ledger under concurrency, adjust,
// bulk-adjust, reset-all, and the platform usage views over records and their daily rollup.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { sql } from 'kysely';
import { registerUser, startTestApp, type TestApp } from './helpers/app.js';
import { expectError, expectFieldError } from './helpers/assert.js';
import { adminCast, expectPadminOnly, type AdminCast } from './helpers/admin.js';
import { createWorkspace, inAccount, joinAccount } from './helpers/accounts-fixtures.js';
import { rollUpUsage } from '../src/modules/usage/platform.js';
import { newId } from '../src/lib/ids.js';
import { chatChunk, chatSse, chatUsageChunk, startFakeLlm, type FakeLlm } from './helpers/fake-llm.js';
import { setSetting } from './helpers/identity-app.js';

describe('credits and usage administration', () => {
  let t: TestApp;
  let cast: AdminCast;
  let admin: { token: string };
  let openai: FakeLlm;

  before(async () => {
    openai = await startFakeLlm();
    t = await startTestApp({ ARKLOOP_WORKER_CONCURRENCY: '4' }, { worker: true });
    cast = await adminCast(t);
    admin = { token: cast.admin.token };
    // Priced runs: every run pays for what it used, 0.4 USD per 1k input tokens, 1000 credits per USD.
    await setSetting(t, 'credit.deduction_policy', { tiers: [{ multiplier: 1 }] });
    const p = await t.post('/v1/llm-providers', { scope: 'platform', name: 'priced', provider: 'openai', api_key: 'sk-priced', base_url: openai.baseUrl }, admin);
    assert.equal(p.status, 201, p.text);
    const m = await t.post(`/v1/llm-providers/${p.body.id}/models`, { model: 'priced-model', is_default: true, cost_per_1k_input: 0.4, cost_per_1k_output: 0 }, admin);
    assert.equal(m.status, 201, m.text);
  });
  after(async () => {
    await t.close();
    await openai.close();
  });

  /** balance = Σ amount of the ledger, and the newest row's balance_after = balance, for every account. */
  async function assertLedgerConsistent() {
    const bad = await sql<{ org_id: string }>`
      SELECT b.org_id FROM credit_balances b
      WHERE b.balance <> (SELECT coalesce(sum(amount), 0) FROM credit_transactions c WHERE c.org_id = b.org_id)`.execute(t.ctx.db);
    assert.deepEqual(bad.rows, [], 'balances that are not the sum of their ledger');
  }

  it('adjust: one account, may go below zero, ledger and audit rows; errors and validation; padmin only', async () => {
    const u = await registerUser(t);
    const org = u.personalAccountId;
    const start = (await t.get('/v1/admin/credits', { ...admin, query: { org_id: org } })).body.balance;
    const up = await t.post('/v1/admin/credits/adjust', { org_id: org, amount: 250, note: 'gift' }, admin);
    assert.deepEqual(up.body, { org_id: org, balance: start + 250 });
    const down = await t.post('/v1/admin/credits/adjust', { org_id: org, amount: -(start + 1000) }, admin);
    assert.equal(down.body.balance, -750);
    const view = (await t.get('/v1/admin/credits', { ...admin, query: { org_id: org, limit: 2 } })).body;
    assert.equal(view.balance, -750);
    assert.deepEqual(view.transactions.map((x: { reference_type: string; amount: number; type: string }) => [x.reference_type, x.amount, x.type]), [['admin_adjust', -(start + 1000), 'debit'], ['admin_adjust', 250, 'credit']]);
    assert.equal(view.transactions[1].note, 'gift');
    const page2 = (await t.get('/v1/admin/credits', { ...admin, query: { org_id: org, limit: 2, before: view.transactions[1].id } })).body;
    assert.equal(page2.transactions[0].reference_type, 'initial_grant');
    expectFieldError(await t.get('/v1/admin/credits', { ...admin, query: { org_id: org, before: newId() } }), 'before');
    const audit = await t.ctx.db.selectFrom('audit_logs').selectAll().where('action', '=', 'credits.adjust').where('org_id', '=', org).orderBy('created_at').execute();
    assert.equal(audit.length, 2);
    assert.deepEqual([audit[0].before_state, audit[0].after_state], [{ balance: start }, { balance: start + 250 }]);
    expectError(await t.post('/v1/admin/credits/adjust', { org_id: newId(), amount: 1 }, admin), 404, 'accounts.not_found');
    expectError(await t.get('/v1/admin/credits', { ...admin, query: { org_id: newId() } }), 404, 'accounts.not_found');
    expectFieldError(await t.post('/v1/admin/credits/adjust', { org_id: org, amount: 0 }, admin), 'amount');
    expectFieldError(await t.post('/v1/admin/credits/adjust', { org_id: org, amount: 1e12 + 1 }, admin), 'amount');
    expectFieldError(await t.post('/v1/admin/credits/adjust', { org_id: org, amount: 1.5 }, admin), 'amount');
    expectFieldError(await t.post('/v1/admin/credits/adjust', { org_id: org, amount: '5' }, admin), 'amount');
    expectFieldError(await t.get('/v1/admin/credits', admin), 'org_id');
    await expectPadminOnly(t, cast, 'POST', '/v1/admin/credits/adjust', { org_id: org, amount: 1 });
    await expectPadminOnly(t, cast, 'GET', `/v1/admin/credits?org_id=${org}`);
    await expectPadminOnly(t, cast, 'POST', '/v1/admin/credits/bulk-adjust', { amount: 1 });
    await expectPadminOnly(t, cast, 'POST', '/v1/admin/credits/reset-all', {});
    await assertLedgerConsistent();
  });

  it('bulk-adjust reaches every account; reset-all zeroes every non-zero balance through the ledger', async () => {
    const accounts = Number((await sql<{ n: number }>`SELECT count(*) AS n FROM accounts`.execute(t.ctx.db)).rows[0].n);
    const bulk = await t.post('/v1/admin/credits/bulk-adjust', { amount: 7, note: 'all' }, admin);
    assert.deepEqual(bulk.body, { affected: accounts });
    const nonZero = Number((await sql<{ n: number }>`SELECT count(*) AS n FROM credit_balances WHERE balance <> 0`.execute(t.ctx.db)).rows[0].n);
    const reset = await t.post('/v1/admin/credits/reset-all', { note: 'new season' }, admin);
    assert.deepEqual(reset.body, { affected: nonZero });
    const left = await sql<{ n: number }>`SELECT count(*) AS n FROM credit_balances WHERE balance <> 0`.execute(t.ctx.db);
    assert.equal(Number(left.rows[0].n), 0);
    const me = (await t.get('/v1/me/credits', { token: cast.member.token })).body;
    assert.equal(me.balance, 0);
    assert.equal(me.transactions[0].reference_type, 'admin_reset');
    assert.equal(me.transactions[0].balance_after, 0);
    assert.equal(me.transactions[1].reference_type, 'admin_bulk_adjust');
    assert.equal((await t.post('/v1/admin/credits/reset-all', {}, admin)).body.affected, 0);
    for (const action of ['credits.bulk_adjust', 'credits.reset_all']) {
      const rows = await t.ctx.db.selectFrom('audit_logs').select(['org_id', 'metadata']).where('action', '=', action).execute();
      assert.ok(rows.length >= 1 && rows[0].org_id === null, action);
    }
    await assertLedgerConsistent();
  });

  it('200 parallel operations on one account (adjusts, redeems, priced runs, a bulk-adjust and a reset-all): balance = Σ ledger, nothing lost or doubled', async () => {
    const owner = await registerUser(t);
    const ws = (await createWorkspace(t, owner)).id;
    const members = [];
    for (let i = 0; i < 10; i++) {
      const m = await registerUser(t);
      await joinAccount(t, owner, ws, m, 'member');
      members.push(m);
    }
    const batch = await t.post('/v1/admin/redemption-codes/batch', { count: 1, type: 'credits', value: '5', max_uses: 100 }, admin);
    assert.equal(batch.status, 201, batch.text);
    const code = batch.body.codes[0].code;
    // Ten priced runs (one call of 100 input tokens each: 0.04 USD = 40 credits), on threads of their own.
    const threads: string[] = [];
    for (let i = 0; i < 10; i++) {
      const th = await t.post('/v1/threads', {}, inAccount(owner, ws));
      await t.post(`/v1/threads/${th.body.id}/messages`, { content: 'hi' }, inAccount(owner, ws));
      threads.push(th.body.id);
    }
    openai.reply(...threads.map(() => ({ sse: chatSse([chatChunk({ role: 'assistant', content: 'ok' }), chatChunk({}, 'stop'), chatUsageChunk(100, 0)]) })));
    const before = await t.ctx.db.selectFrom('credit_transactions').select(sql<number>`count(*)`.as('n')).where('org_id', '=', ws).executeTakeFirstOrThrow();
    const ops: Array<() => Promise<{ status: number }>> = [];
    const runIds: string[] = [];
    for (const th of threads) {
      ops.push(async () => {
        const r = await t.post(`/v1/threads/${th}/runs`, {}, inAccount(owner, ws));
        if (r.status === 201) runIds.push(r.body.run_id);
        // A run meeting a balance the reset took to zero is refused up front (§8.1): not an error here.
        return { status: r.status === 201 || r.body.code === 'budget.insufficient_credits' ? 200 : r.status };
      });
    }
    for (let i = 0; i < 178; i++) ops.push(() => t.post('/v1/admin/credits/adjust', { org_id: ws, amount: i % 3 === 0 ? -3 : 11 }, admin));
    for (const m of members) ops.push(() => t.post('/v1/me/redeem', { code }, inAccount(m, ws)));
    ops.splice(60, 0, () => t.post('/v1/admin/credits/bulk-adjust', { amount: 13 }, admin));
    ops.splice(120, 0, () => t.post('/v1/admin/credits/reset-all', {}, admin));
    const results = await Promise.all(ops.map((op) => op()));
    assert.equal(results.length, 200);
    assert.ok(results.every((r) => r.status === 200), JSON.stringify(results.filter((r) => r.status !== 200).slice(0, 3)));
    assert.ok(runIds.length > 0, 'some runs were created');
    // A run created before the reset-all may meet the zeroed balance when the worker begins it:
    // it then fails up front without a model call (and without a charge).
    const completed: string[] = [];
    for (const id of runIds) {
      const evs = await t.get(`/v1/runs/${id}/events`, inAccount(owner, ws)); // ends at the terminal event
      if (/run\.completed/.test(evs.text)) completed.push(id);
      else assert.match(evs.text, /"error_class":"budget\.insufficient_credits"/);
    }
    assert.ok(completed.length > 0, 'some runs completed');
    const charged = (await Promise.all(runIds.map(async (id) => (await t.get(`/v1/runs/${id}`, inAccount(owner, ws))).body.credits_used as number))).filter((c) => c > 0);
    assert.deepEqual(charged, completed.map(() => 40));
    const rows = await t.ctx.db.selectFrom('credit_transactions').select(['reference_type', 'amount', 'balance_after']).where('org_id', '=', ws).orderBy('created_at').orderBy('id').execute();
    const added = rows.length - Number(before.n);
    const byType = (ty: string) => rows.filter((r) => r.reference_type === ty).length;
    assert.equal(byType('admin_adjust'), 178);
    assert.equal(byType('run_usage'), completed.length);
    assert.equal(byType('redemption'), 10);
    assert.equal(byType('admin_bulk_adjust'), 1);
    assert.ok(byType('admin_reset') <= 1);
    assert.equal(added, 178 + 10 + 1 + completed.length + byType('admin_reset'));
    const view = (await t.get('/v1/admin/credits', { ...admin, query: { org_id: ws, limit: 200 } })).body;
    assert.equal(view.balance, rows.reduce((s, r) => s + Number(r.amount), 0));
    // Newest first is the order the balance changed in: each row's balance_after follows from the one before.
    const chain = [...view.transactions].reverse();
    for (let i = 1; i < chain.length; i++) assert.equal(chain[i].balance_after, chain[i - 1].balance_after + chain[i].amount, `row ${i}`);
    assert.equal(view.transactions[0].balance_after, view.balance);
    await assertLedgerConsistent();
  });

  describe('platform usage', () => {
    async function record(orgId: string, model: string, at: string, input: number, output: number, cost: string) {
      await sql`INSERT INTO usage_records (id, org_id, user_id, run_id, thread_id, provider_name, provider_kind, model, input_tokens, output_tokens, cost_usd, created_at)
        VALUES (${newId()}, ${orgId}, ${cast.member.id}, ${newId()}, ${newId()}, 'p', 'stub', ${model}, ${input}, ${output}, ${cost}::numeric, ${at}::timestamptz)`.execute(t.ctx.db);
    }

    /** Records are never backdated in production; here they are, so the rollup (the worker ran one at start) starts over. */
    async function restartRollup() {
      await sql`DELETE FROM usage_daily`.execute(t.ctx.db);
      await sql`UPDATE usage_rollup_state SET rolled_until = NULL`.execute(t.ctx.db);
    }

    it('daily, summary and by-model agree with the account views, before and after the rollup', async () => {
      await restartRollup();
      const a = await registerUser(t);
      const b = await registerUser(t);
      const [orgA, orgB] = [a.personalAccountId, b.personalAccountId];
      await record(orgA, 'm1', '2021-03-01T10:00:00Z', 100, 10, '0.0100000000');
      await record(orgA, 'm2', '2021-03-01T23:59:59Z', 200, 20, '0.0200000000');
      await record(orgB, 'm1', '2021-03-02T00:00:00Z', 300, 30, '0.0300000000');
      await record(orgB, 'm1', '2021-04-01T00:00:00Z', 1, 1, '1.0000000000');
      const read = async () => ({
        daily: (await t.get('/v1/admin/usage/daily', { ...admin, query: { start: '2021-02-28', end: '2021-03-31' } })).body,
        summary: (await t.get('/v1/admin/usage/summary', { ...admin, query: { year: 2021, month: 3 } })).body,
        byModel: (await t.get('/v1/admin/usage/by-model', { ...admin, query: { year: 2021, month: 3 } })).body,
      });
      const raw = await read();
      assert.deepEqual(raw.daily, [
        { date: '2021-03-01', input_tokens: 300, output_tokens: 30, cost_usd: 0.03, record_count: 2 },
        { date: '2021-03-02', input_tokens: 300, output_tokens: 30, cost_usd: 0.03, record_count: 1 },
      ]);
      assert.deepEqual(raw.summary, { year: 2021, month: 3, total_input_tokens: 600, total_output_tokens: 60, total_cost_usd: 0.06, record_count: 3, active_orgs: 2 });
      assert.deepEqual(raw.byModel.map((m: { model: string; cost_usd: number }) => [m.model, m.cost_usd]), [['m1', 0.04], ['m2', 0.02]]);
      const accountA = (await t.get(`/v1/accounts/${orgA}/usage/daily`, { token: a.token, query: { start: '2021-03-01', end: '2021-03-31' } })).body;
      assert.deepEqual(accountA, [raw.daily[0]]);
      assert.ok((await rollUpUsage(t.ctx.db)) > 0);
      assert.deepEqual(await read(), raw, 'the rollup changes no figure');
      assert.equal(await rollUpUsage(t.ctx.db), 0, 'nothing left to roll');
      // A record of today stays raw and is counted at once.
      const today = new Date().toISOString().slice(0, 10);
      await record(orgA, 'm1', new Date().toISOString(), 5, 5, '0.0000010000');
      const now = (await t.get('/v1/admin/usage/daily', { ...admin, query: { start: today, end: today } })).body;
      assert.equal(now.at(-1).date, today);
      assert.ok(now.at(-1).record_count >= 1);
      expectFieldError(await t.get('/v1/admin/usage/daily', { ...admin, query: { start: '2021-03-02', end: '2021-03-01' } }), 'end');
      expectFieldError(await t.get('/v1/admin/usage/summary', { ...admin, query: { month: 13 } }), 'month');
      await expectPadminOnly(t, cast, 'GET', '/v1/admin/usage/daily?start=2021-03-01&end=2021-03-02');
      await expectPadminOnly(t, cast, 'GET', '/v1/admin/usage/summary');
      await expectPadminOnly(t, cast, 'GET', '/v1/admin/usage/by-model');
    });

    it('10,000 tiny costs sum exactly (no float drift), raw and rolled up', async () => {
      const u = await registerUser(t);
      await restartRollup();
      await sql`INSERT INTO usage_records (id, org_id, user_id, model, input_tokens, output_tokens, cost_usd, created_at)
        SELECT gen_random_uuid(), ${u.personalAccountId}::uuid, ${u.id}::uuid, 'tiny', 1, 1, 0.0000001, '2020-06-15T12:00:00Z'::timestamptz FROM generate_series(1, 10000)`.execute(t.ctx.db);
      const q = { ...admin, query: { year: 2020, month: 6 } };
      const raw = (await t.get('/v1/admin/usage/summary', q)).body;
      assert.equal(raw.total_cost_usd, 0.001);
      assert.equal(raw.record_count, 10000);
      await rollUpUsage(t.ctx.db);
      assert.deepEqual((await t.get('/v1/admin/usage/summary', q)).body, raw);
      const acct = (await t.get(`/v1/accounts/${u.personalAccountId}/usage`, { token: u.token, query: { year: 2020, month: 6 } })).body;
      assert.equal(acct.total_cost_usd, 0.001);
    });
  });
});
