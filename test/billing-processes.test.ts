// Money across processes (PostgreSQL): two `arkloop api` processes on one database.
//   - 200 parallel ledger operations on one account spread over both (adjusts, redeems, a
//     bulk-adjust and a reset-all): the balance is the sum of the ledger, no row lost or doubled;
//   - an override written through one process decides the next request of the other, and
//     20 parallel creates against a concurrent-run limit of 3 over both give exactly 3.
import { after, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import pg from 'pg';
import { TEST_PG_URL } from './helpers/app.js';
import { ProcessPool } from './helpers/processes.js';
import { call, register } from './helpers/run-client.js';

const pgOnly = 'needs PostgreSQL (ARKLOOP_TEST_DATABASE_URL): several processes share the database';

describe('money across two API processes', () => {
  const pool = new ProcessPool();
  after(async () => { await pool.cleanup(); });

  async function twoApis() {
    const env = await pool.env({ postgres: true });
    const [a, b] = [await pool.spawnApi('api', env), await pool.spawnApi('api', env)];
    const admin = await register(a.base!); // the first user: platform admin
    return { env, a: a.base!, b: b.base!, admin };
  }

  it('200 parallel ledger operations over both processes: balance = Σ ledger, nothing lost or doubled', { timeout: 120_000 }, async (t) => {
    if (!TEST_PG_URL) return t.skip(pgOnly);
    const { env, a, b, admin } = await twoApis();
    const owner = await register(a);
    const ws = (await call(a, 'POST', '/v1/accounts', { slug: 'ledger-ws', name: 'Ledger' }, owner)).body.id as string;
    const members: string[] = [];
    for (let i = 0; i < 10; i++) {
      const token = await register(i % 2 ? a : b);
      const me = (await call(a, 'GET', '/v1/me', undefined, token)).body;
      const inv = await call(a, 'POST', `/v1/accounts/${ws}/invitations`, { email: me.email, role: 'member' }, owner);
      assert.equal((await call(b, 'POST', `/v1/account-invitations/${inv.body.token}/accept`, {}, token)).status, 200);
      members.push(token);
    }
    const code = (await call(a, 'POST', '/v1/admin/redemption-codes/batch', { count: 1, type: 'credits', value: '5', max_uses: 100 }, admin)).body.codes[0].code;
    const ops: Array<() => Promise<{ status: number; text: string }>> = [];
    for (let i = 0; i < 188; i++) ops.push(() => call(i % 2 ? a : b, 'POST', '/v1/admin/credits/adjust', { org_id: ws, amount: i % 3 === 0 ? -3 : 11 }, admin));
    members.forEach((m, i) => ops.push(() => call(i % 2 ? b : a, 'POST', '/v1/me/redeem', { code }, m, { 'x-account-id': ws })));
    ops.splice(60, 0, () => call(a, 'POST', '/v1/admin/credits/bulk-adjust', { amount: 13 }, admin));
    ops.splice(130, 0, () => call(b, 'POST', '/v1/admin/credits/reset-all', {}, admin));
    const results = await Promise.all(ops.map((op) => op()));
    assert.equal(results.length, 200);
    assert.deepEqual(results.filter((r) => r.status !== 200).map((r) => r.text), []);
    const db = new pg.Client({ connectionString: env.ARKLOOP_DATABASE_URL });
    await db.connect();
    try {
      const byType = await db.query<{ reference_type: string; n: string }>('SELECT reference_type, count(*) AS n FROM credit_transactions WHERE org_id = $1 GROUP BY 1', [ws]);
      const n = Object.fromEntries(byType.rows.map((r) => [r.reference_type, Number(r.n)]));
      assert.equal(n.admin_adjust, 188);
      assert.equal(n.redemption, 10);
      assert.equal(n.admin_bulk_adjust, 1);
      assert.ok((n.admin_reset ?? 0) <= 1);
      const mismatched = await db.query(`SELECT b.org_id FROM credit_balances b WHERE b.balance <> (SELECT coalesce(sum(amount), 0) FROM credit_transactions c WHERE c.org_id = b.org_id)`);
      assert.deepEqual(mismatched.rows, []);
    } finally {
      await db.end();
    }
    // Newest first is the order the balance changed in, whichever process wrote each row.
    const view = (await call(b, 'GET', `/v1/admin/credits?org_id=${ws}&limit=200`, undefined, admin)).body;
    assert.equal(view.transactions[0].balance_after, view.balance);
    const chain = [...view.transactions].reverse();
    for (let i = 1; i < chain.length; i++) assert.equal(chain[i].balance_after, chain[i - 1].balance_after + chain[i].amount, `row ${i}`);
  });

  it('an override set through one process decides the next requests of the other; 20 parallel creates over both against a limit of 3 → exactly 3', { timeout: 120_000 }, async (t) => {
    if (!TEST_PG_URL) return t.skip(pgOnly);
    const { a, b, admin } = await twoApis();
    const user = await register(a);
    const org = (await call(b, 'GET', '/v1/me', undefined, user)).body.org_id as string;
    const limitOf = async (base: string) => (await call(base, 'GET', '/v1/entitlements', undefined, user)).body.entitlements.find((e: { key: string }) => e.key === 'limit.concurrent_runs');
    assert.equal((await limitOf(b)).source, 'default'); // cached in b now
    assert.equal((await call(a, 'POST', '/v1/entitlement-overrides', { org_id: org, key: 'limit.concurrent_runs', value: '3', value_type: 'integer' }, admin)).status, 201);
    let seen = null;
    for (let i = 0; i < 100 && (seen = await limitOf(b)).source !== 'override'; i++) await new Promise((r) => setTimeout(r, 20));
    assert.deepEqual(seen, { key: 'limit.concurrent_runs', value: '3', value_type: 'integer', source: 'override' });
    // No worker: created runs stay running, so the limit holds them.
    const threads: string[] = [];
    for (let i = 0; i < 20; i++) {
      const th = (await call(a, 'POST', '/v1/threads', {}, user)).body.id as string;
      await call(a, 'POST', `/v1/threads/${th}/messages`, { content: 'hi' }, user);
      threads.push(th);
    }
    const results = await Promise.all(threads.map((th, i) => call(i % 2 ? a : b, 'POST', `/v1/threads/${th}/runs`, {}, user)));
    assert.equal(results.filter((r) => r.status === 201).length, 3);
    assert.ok(results.filter((r) => r.status !== 201).every((r) => r.status === 429 && r.body.code === 'limit.concurrent_runs'));
  });
});
