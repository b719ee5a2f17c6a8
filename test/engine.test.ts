// The run engine's primitives on a real database: gap-free event seqs under concurrent
// writers, live fan-out (also across processes on PostgreSQL), and the job queue's leases.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import pino from 'pino';
import { openDatabase, type Database } from '../src/db/database.js';
import { Engine } from '../src/engine/engine.js';
import { listRunEvents, type RunEvent } from '../src/engine/events.js';
import { RunEventCursor } from '../src/engine/hub.js';
import { completeJob, enqueueJob, failJob, heartbeatJobs, leaseJobs } from '../src/engine/jobs.js';
import { newId } from '../src/lib/ids.js';
import { registerUser, startTestApp, type TestApp, type TestUser } from './helpers/app.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('run engine', () => {
  let t: TestApp;
  let u: TestUser;
  let threadId: string;
  before(async () => {
    t = await startTestApp();
    u = await registerUser(t);
    const th = await t.post('/v1/threads', { title: 'engine' }, { token: u.token });
    threadId = th.body.id;
  });
  after(async () => { await t.close(); });

  async function newRun(): Promise<string> {
    const id = newId();
    await t.ctx.db
      .insertInto('runs')
      .values({ id, org_id: u.personalAccountId, thread_id: threadId, created_by_user_id: u.id, status: 'running', trace_id: 'test' })
      .execute();
    return id;
  }

  it('gives concurrent writers gap-free, unique seqs from 1', async () => {
    const runId = await newRun();
    await Promise.all(
      Array.from({ length: 40 }, (_, i) =>
        t.ctx.engine.transaction(t.ctx.db, (tx) => tx.append(runId, 'message.delta', { i })),
      ),
    );
    const events = await listRunEvents(t.ctx.db, runId, 0, 1000);
    assert.deepEqual(events.map((e) => e.seq), Array.from({ length: 40 }, (_, i) => i + 1));
    const run = await t.ctx.db.selectFrom('runs').select('last_seq').where('id', '=', runId).executeTakeFirstOrThrow();
    assert.equal(run.last_seq, 40);
    assert.match(events[0].created_at, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);
    assert.equal(events[0].ts, events[0].created_at);
  });

  it('appends batches with consecutive seqs, also interleaved with single appends', async () => {
    const runId = await newRun();
    const batch = (k: number) => Array.from({ length: 5 }, (_, i) => ({ type: 'message.delta', data: { k, i } }));
    await Promise.all([
      t.ctx.engine.appendMany(t.ctx.db, runId, batch(1)),
      t.ctx.engine.append(t.ctx.db, runId, 'single', { k: 2 }),
      t.ctx.engine.appendMany(t.ctx.db, runId, batch(3)),
      t.ctx.engine.append(t.ctx.db, runId, 'single', { k: 4 }),
    ]);
    const events = await listRunEvents(t.ctx.db, runId, 0, 100);
    assert.deepEqual(events.map((e) => e.seq), Array.from({ length: 12 }, (_, i) => i + 1));
    // Each batch stays contiguous and in order.
    for (const k of [1, 3]) {
      const seqs = events.filter((e) => e.data.k === k).map((e) => e.seq);
      assert.deepEqual(seqs, seqs.map((_, i) => seqs[0] + i));
      assert.deepEqual(events.filter((e) => e.data.k === k).map((e) => e.data.i), [0, 1, 2, 3, 4]);
    }
    const run = await t.ctx.db.selectFrom('runs').select(['last_seq', 'output_emitted']).where('id', '=', runId).executeTakeFirstOrThrow();
    assert.equal(run.last_seq, 12);
  });

  it('refuses appends once the run has ended', async () => {
    const runId = await newRun();
    await t.ctx.db.updateTable('runs').set({ status: 'completed' }).where('id', '=', runId).execute();
    await assert.rejects(t.ctx.engine.append(t.ctx.db, runId, 'late', {}));
    await assert.rejects(t.ctx.engine.appendMany(t.ctx.db, runId, [{ type: 'a', data: {} }, { type: 'b', data: {} }]));
    assert.equal((await listRunEvents(t.ctx.db, runId, 0, 10)).length, 0);
  });

  it('rolls an event back with its transaction, leaving no gap', async () => {
    const runId = await newRun();
    await t.ctx.engine.transaction(t.ctx.db, (tx) => tx.append(runId, 'a', {}));
    await assert.rejects(
      t.ctx.engine.transaction(t.ctx.db, async (tx) => {
        await tx.append(runId, 'b', {});
        throw new Error('abort');
      }),
    );
    await t.ctx.engine.transaction(t.ctx.db, (tx) => tx.append(runId, 'c', {}));
    const events = await listRunEvents(t.ctx.db, runId, 0, 10);
    assert.deepEqual(events.map((e) => [e.seq, e.type]), [[1, 'a'], [2, 'c']]);
  });

  it('delivers live events in order to a cursor that started mid-stream', async () => {
    const runId = await newRun();
    await t.ctx.engine.transaction(t.ctx.db, (tx) => tx.append(runId, 'first', {}));
    const got: RunEvent[] = [];
    const cursor = new RunEventCursor(t.ctx.db, runId, 0, (e) => got.push(e));
    const unsubscribe = t.ctx.engine.hub.subscribe(runId, (e) => cursor.offer(e));
    await cursor.catchUp();
    for (let i = 0; i < 20; i++) await t.ctx.engine.transaction(t.ctx.db, (tx) => tx.append(runId, 'live', { i }));
    const big = 'x'.repeat(20_000); // too large for a NOTIFY payload: travels by reference
    await t.ctx.engine.transaction(t.ctx.db, (tx) => tx.append(runId, 'big', { big }));
    for (let i = 0; i < 50 && got.length < 22; i++) await sleep(20);
    unsubscribe();
    assert.deepEqual(got.map((e) => e.seq), Array.from({ length: 22 }, (_, i) => i + 1));
    assert.equal(got[21].data.big, big);
  });

  it('delivers events written by another process (PostgreSQL) or another engine on the same database', async () => {
    const runId = await newRun();
    const other: Database = t.db.url ? await openDatabase({ databaseUrl: t.db.url, dataDir: null, poolSize: 2 }) : t.db.database;
    const writer = new Engine(other, pino({ level: 'silent' }));
    await writer.start();
    const got: number[] = [];
    const cursor = new RunEventCursor(t.ctx.db, runId, 0, (e) => got.push(e.seq));
    const unsubscribe = t.ctx.engine.hub.subscribe(runId, (e) => cursor.offer(e));
    try {
      for (let i = 0; i < 10; i++) {
        await writer.transaction(other.db, (tx) => tx.append(runId, 'remote', { i }));
        if (!t.db.url) cursor.offer((await listRunEvents(t.ctx.db, runId, i, 1))[0]); // embedded: one process
      }
      for (let i = 0; i < 100 && got.length < 10; i++) await sleep(20);
      assert.deepEqual(got, Array.from({ length: 10 }, (_, i) => i + 1));
    } finally {
      unsubscribe();
      await writer.close();
      if (t.db.url) await other.close();
    }
  });

  it('leases each job to one worker, renews leases, and re-leases expired ones', async () => {
    const type = `test.${newId()}`;
    for (let i = 0; i < 6; i++) await enqueueJob(t.ctx.db, { type, payload: { i } }, { notify: false });
    const [a, b] = await Promise.all([leaseJobs(t.ctx.db, 'w1', [type], 4, 30), leaseJobs(t.ctx.db, 'w2', [type], 4, 30)]);
    const ids = [...a, ...b].map((j) => j.id);
    assert.equal(ids.length, 6);
    assert.equal(new Set(ids).size, 6);
    assert.deepEqual(await heartbeatJobs(t.ctx.db, 'w1', a.map((j) => j.id), 30), []);
    assert.deepEqual(await heartbeatJobs(t.ctx.db, 'w3', [a[0].id], 30), [a[0].id]);
    // w1 dies: its leases expire and another worker takes them.
    await t.ctx.db.updateTable('jobs').set({ lease_expires_at: new Date(Date.now() - 1000) }).where('leased_by', '=', 'w1').execute();
    const retaken = await leaseJobs(t.ctx.db, 'w3', [type], 10, 30);
    assert.deepEqual(retaken.map((j) => j.id).sort(), a.map((j) => j.id).sort());
    assert.ok(retaken.every((j) => j.attempts === 2));
    await completeJob(t.ctx.db, 'w3', retaken[0].id);
    await failJob(t.ctx.db, 'w3', retaken[1], 'boom', 60_000);
    const rows = await t.ctx.db.selectFrom('jobs').selectAll().where('id', 'in', [retaken[0].id, retaken[1].id]).execute();
    const failed = rows.find((r) => r.id === retaken[1].id)!;
    assert.equal(rows.find((r) => r.id === retaken[0].id), undefined); // completed jobs leave the queue
    assert.equal(failed.state, 'queued');
    assert.equal(failed.last_error, 'boom');
    assert.ok(failed.run_at.getTime() > Date.now() + 60_000);
    assert.equal((await leaseJobs(t.ctx.db, 'w4', [type], 10, 30)).length, 0);
  });
});
