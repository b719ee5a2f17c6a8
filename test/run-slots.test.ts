// Concurrent-run slots shared in Redis (api.md §26.6, §8.1): the limit holds under parallel
// creates; slots come back when runs complete, fail or are cancelled; a slot left behind by a
// process that died, and a set Redis lost, are repaired; while Redis is unreachable the
// database counts (logged) and Redis is used again once it is back, without a restart; and two
// real API processes on PostgreSQL and Redis never exceed the limit between them.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import type { Redis } from 'ioredis';
import { registerUser, startTestApp, TEST_PG_URL, type TestApp, type TestUser } from './helpers/app.js';
import { expectError } from './helpers/assert.js';
import { capturingLogger } from './helpers/gateway.js';
import { ProcessPool } from './helpers/processes.js';
import { call, register } from './helpers/run-client.js';
import { TcpProxy } from './helpers/tcp-proxy.js';
import { until } from './helpers/wait.js';
import { newId } from '../src/lib/ids.js';

const REDIS = process.env.ARKLOOP_TEST_REDIS_URL;
const skip = REDIS ? false : 'ARKLOOP_TEST_REDIS_URL is not set';
const LONG = JSON.stringify({ stub: { steps: [{ delay_ms: 120_000, text: 'late' }] } });
const QUICK = JSON.stringify({ stub: { steps: [{ text: 'done' }] } });
const FAILING = JSON.stringify({ stub: { steps: [{ error: { status: 400, message: 'bad request' } }] } });

/** A Redis client of the test's own, touching only the keys of the test's accounts. */
async function redisClient(): Promise<Redis> {
  const { Redis } = await import('ioredis');
  return new Redis(REDIS!);
}

const slotKey = (orgId: string) => `arkloop:runslots:${orgId}`;

describe('concurrent-run slots in Redis', { skip }, () => {
  let t: TestApp;
  let redis: Redis;
  before(async () => {
    t = await startTestApp({ ARKLOOP_REDIS_URL: REDIS!, ARKLOOP_LIMIT_CONCURRENT_RUNS: '2', ARKLOOP_WORKER_REAPER_SECONDS: '0.2' }, { worker: true });
    await registerUser(t);
    redis = await redisClient();
  });
  after(async () => {
    redis?.disconnect();
    await t?.close();
  });

  async function thread(u: TestUser, content: string): Promise<string> {
    const th = await t.post('/v1/threads', {}, { token: u.token });
    assert.equal((await t.post(`/v1/threads/${th.body.id}/messages`, { content }, { token: u.token })).status, 201);
    return th.body.id;
  }
  async function status(u: TestUser, runId: string): Promise<string> {
    return (await t.get(`/v1/runs/${runId}`, { token: u.token })).body.status;
  }
  const members = async (orgId: string) => (await redis.zrange(slotKey(orgId), 0, -1)).filter((m) => m !== 'seeded').sort();

  it('12 parallel creates against a limit of 2: exactly 2 hold a slot, the rest get 429 with details', async () => {
    const u = await registerUser(t);
    const threads = await Promise.all(Array.from({ length: 12 }, () => thread(u, LONG)));
    const results = await Promise.all(threads.map((th) => t.post(`/v1/threads/${th}/runs`, {}, { token: u.token })));
    const ok = results.filter((r) => r.status === 201);
    assert.equal(ok.length, 2);
    for (const r of results.filter((x) => x.status !== 201)) {
      expectError(r, 429, 'limit.concurrent_runs');
      assert.deepEqual(r.body.details, { limit: 2, active: 2 });
      assert.equal(r.headers['retry-after'], '1');
    }
    assert.deepEqual(await members(u.personalAccountId), ok.map((r) => r.body.run_id).sort(), 'the set names the two runs');
    for (const r of ok) assert.equal((await t.post(`/v1/runs/${r.body.run_id}:cancel`, undefined, { token: u.token })).status, 200);
    await until(async () => (await members(u.personalAccountId)).length === 0, 'the cancelled runs to give their slots back');
  });

  it('gives the slot back when a run completes, fails or is cancelled', async () => {
    const u = await registerUser(t);
    const org = u.personalAccountId;
    for (const [content, end] of [[QUICK, 'completed'], [FAILING, 'failed']]) {
      const run = await t.post(`/v1/threads/${await thread(u, content)}/runs`, {}, { token: u.token });
      assert.equal(run.status, 201, run.text);
      await until(async () => (await status(u, run.body.run_id)) === end, `the run to be ${end}`);
      await until(async () => !(await members(org)).includes(run.body.run_id), `the ${end} run's slot to be released`);
    }
    const long = await Promise.all([thread(u, LONG), thread(u, LONG)].map(async (th) => (await t.post(`/v1/threads/${await th}/runs`, {}, { token: u.token })).body.run_id as string));
    expectError(await t.post(`/v1/threads/${await thread(u, LONG)}/runs`, {}, { token: u.token }), 429, 'limit.concurrent_runs');
    await t.post(`/v1/runs/${long[0]}:cancel`, undefined, { token: u.token });
    await until(async () => (await status(u, long[0])) === 'cancelled', 'the cancel');
    const again = await t.post(`/v1/threads/${await thread(u, LONG)}/runs`, {}, { token: u.token });
    assert.equal(again.status, 201, 'the freed slot is taken again');
    for (const id of [long[1], again.body.run_id]) await t.post(`/v1/runs/${id}:cancel`, undefined, { token: u.token });
  });

  it('repairs slots a dead process left behind (after the grace for uncommitted creates) and runs Redis lost', async () => {
    const u = await registerUser(t);
    const org = u.personalAccountId;
    const first = await t.post(`/v1/threads/${await thread(u, LONG)}/runs`, {}, { token: u.token });
    assert.equal(first.status, 201);
    // A process that reserved and died before committing: one reservation long past the grace,
    // one just made (its create might still commit).
    const [old, fresh] = [newId(), newId()];
    const [sec] = await redis.time();
    // And a set of another installation sharing this Redis (an account not in this database).
    const foreign = newId();
    await redis.zadd(slotKey(foreign), Number(sec) * 1000 - 120_000, newId());
    await redis.zadd(slotKey(org), Number(sec) * 1000 - 120_000, old, Number(sec) * 1000, fresh);
    await until(async () => !(await members(org)).includes(old), 'the sweep to drop the stale reservation');
    assert.ok((await members(org)).includes(fresh), 'a reservation within the grace is kept');
    assert.equal((await members(foreign)).length, 1, "another installation's reservation is left alone");
    await redis.del(slotKey(foreign));
    assert.match((await t.get('/metrics')).text, /arkloop_run_slot_repairs_total\{kind="removed"\} [1-9]/, 'the repair is counted');
    const refused = await t.post(`/v1/threads/${await thread(u, LONG)}/runs`, {}, { token: u.token });
    expectError(refused, 429, 'limit.concurrent_runs');
    assert.deepEqual(refused.body.details, { limit: 2, active: 2 });
    await redis.zrem(slotKey(org), fresh);

    // Redis lost the account's set (flushed, restarted): the next create seeds it from the database.
    await redis.del(slotKey(org));
    const second = await t.post(`/v1/threads/${await thread(u, LONG)}/runs`, {}, { token: u.token });
    assert.equal(second.status, 201);
    assert.deepEqual(await members(org), [first.body.run_id, second.body.run_id].sort(), 'the active run is back in the set');
    const third = await t.post(`/v1/threads/${await thread(u, LONG)}/runs`, {}, { token: u.token });
    assert.deepEqual(third.body.details, { limit: 2, active: 2 });

    // An active run missing from an existing set comes back with the next sweep.
    await redis.zrem(slotKey(org), first.body.run_id);
    await until(async () => (await members(org)).includes(first.body.run_id), 'the sweep to re-add the active run');
    for (const r of [first, second]) await t.post(`/v1/runs/${r.body.run_id}:cancel`, undefined, { token: u.token });
  });
});

describe('concurrent-run slots when Redis goes away', { skip }, () => {
  let t: TestApp;
  let proxy: TcpProxy;
  let redis: Redis;
  const { log, lines } = capturingLogger();
  before(async () => {
    const target = new URL(REDIS!);
    proxy = new TcpProxy(target.hostname, Number(target.port || 6379));
    await proxy.start();
    const via = new URL(REDIS!);
    via.hostname = '127.0.0.1';
    via.port = String(proxy.port);
    // No worker: created runs stay running, and no sweep runs but the one at reconnection.
    t = await startTestApp({ ARKLOOP_REDIS_URL: via.toString(), ARKLOOP_LIMIT_CONCURRENT_RUNS: '2' }, { log });
    redis = await redisClient();
  });
  after(async () => {
    redis?.disconnect();
    await t?.close();
    await proxy?.close();
  });

  it('counts in the database while Redis is unreachable (logged), and uses Redis again once it is back', async () => {
    await registerUser(t);
    const u = await registerUser(t);
    const org = u.personalAccountId;
    const create = async () => {
      const th = await t.post('/v1/threads', {}, { token: u.token });
      await t.post(`/v1/threads/${th.body.id}/messages`, { content: 'hi' }, { token: u.token });
      return t.post(`/v1/threads/${th.body.id}/runs`, {}, { token: u.token });
    };
    const a = await create();
    assert.equal(a.status, 201);
    assert.ok(await redis.zscore(slotKey(org), a.body.run_id), 'reserved in Redis');

    await proxy.cut();
    const b = await create();
    assert.equal(b.status, 201, 'answered from the database count');
    const c = await create();
    expectError(c, 429, 'limit.concurrent_runs');
    assert.deepEqual(c.body.details, { limit: 2, active: 2 });
    assert.ok(lines.some((l) => l.includes('redis unavailable; concurrent-run slots are counted in the database')), 'the outage is logged');
    assert.equal(lines.filter((l) => l.includes('concurrent-run slots are counted in the database')).length, 1, 'once per outage');
    // a ends while Redis is away: its release is lost; b was never reserved in Redis.
    assert.equal((await t.post(`/v1/runs/${a.body.run_id}:cancel`, undefined, { token: u.token })).status, 200);

    await proxy.restore();
    await until(async () => (await redis.zscore(slotKey(org), b.body.run_id)) !== null && (await redis.zscore(slotKey(org), a.body.run_id)) === null, 'the reconnection to reconcile the set', 15_000, 100);
    assert.ok(lines.some((l) => l.includes('redis available again')), 'the recovery is logged');
    const d = await create();
    assert.equal(d.status, 201);
    await until(async () => (await redis.zscore(slotKey(org), d.body.run_id)) !== null, 'the new run reserved in Redis again', 5_000);
    const e = await create();
    expectError(e, 429, 'limit.concurrent_runs');
    assert.deepEqual(e.body.details, { limit: 2, active: 2 });
  });
});

describe('concurrent-run slots across two API processes', { skip }, () => {
  const pool = new ProcessPool();
  after(async () => { await pool.cleanup(); });

  it('20 parallel creates for one account over both processes against a limit of 3: exactly 3', { timeout: 120_000 }, async (t) => {
    if (!TEST_PG_URL) return t.skip('needs PostgreSQL (ARKLOOP_TEST_DATABASE_URL): two processes share the database');
    const env = { ...(await pool.env({ postgres: true })), ARKLOOP_REDIS_URL: REDIS!, ARKLOOP_LIMIT_CONCURRENT_RUNS: '3' };
    const [a, b] = [(await pool.spawnApi('api', env)).base!, (await pool.spawnApi('api', env)).base!];
    await register(a); // the platform admin
    const user = await register(b);
    const org = (await call(a, 'GET', '/v1/me', undefined, user)).body.org_id as string;
    const threads: string[] = [];
    for (let i = 0; i < 20; i++) {
      const th = (await call(a, 'POST', '/v1/threads', {}, user)).body.id as string;
      await call(b, 'POST', `/v1/threads/${th}/messages`, { content: 'hi' }, user);
      threads.push(th);
    }
    // No worker: created runs stay running, so they keep their slots.
    const results = await Promise.all(threads.map((th, i) => call(i % 2 ? a : b, 'POST', `/v1/threads/${th}/runs`, {}, user)));
    const ok = results.filter((r) => r.status === 201);
    assert.equal(ok.length, 3, results.map((r) => r.text).join('\n'));
    assert.ok(results.filter((r) => r.status !== 201).every((r) => r.status === 429 && r.body.code === 'limit.concurrent_runs'));
    const redis = await redisClient();
    try {
      const held = (await redis.zrange(slotKey(org), 0, -1)).filter((m) => m !== 'seeded').sort();
      assert.deepEqual(held, ok.map((r) => r.body.run_id).sort(), 'the slots were reserved in Redis');
    } finally {
      redis.disconnect();
    }
  });
});
