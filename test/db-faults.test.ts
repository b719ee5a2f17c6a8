// The database and Redis going away under a serving process (issue 7, api.md §1.5 503 row,
// §25.2, §26.6): every connection of `arkloop serve` terminated again and again while runs
// stream, PostgreSQL unreachable for a few seconds (the process reaches it through a TCP
// proxy the test cuts and restores), and Redis stopped and started. The process must live,
// streams must stay gap-free, every run must end, and service must come back by itself.
// Every wait is for a condition, with a bound.
import { after, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import pg from 'pg';
import { Redis } from 'ioredis';
import { TEST_PG_URL } from './helpers/app.js';
import { ProcessPool, exitWithin, freePort, sleep, type ArkloopProcess } from './helpers/processes.js';
import { TcpProxy } from './helpers/tcp-proxy.js';
import { assertWellFormed, call, eventsOf, followSse, register, startRun, waitTerminal, type Client } from './helpers/run-client.js';

const pgOnly = 'needs PostgreSQL (ARKLOOP_TEST_DATABASE_URL)';
const LEASES = { ARKLOOP_WORKER_LEASE_SECONDS: '5', ARKLOOP_WORKER_HEARTBEAT_SECONDS: '0.5', ARKLOOP_WORKER_POLL_SECONDS: '0.25' };

/** Polls `probe` until it returns a value (not undefined); fails after `timeoutMs`. */
async function waitFor<T>(what: string, probe: () => Promise<T | undefined>, timeoutMs = 20_000, everyMs = 100): Promise<T> {
  const start = Date.now();
  let lastErr: unknown = null;
  while (Date.now() - start < timeoutMs) {
    try {
      const v = await probe();
      if (v !== undefined) return v;
    } catch (err) {
      lastErr = err;
    }
    await sleep(everyMs);
  }
  throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${lastErr ? `: ${(lastErr as Error).message}` : ''}`);
}

async function readyz(base: string): Promise<{ status: number; body: any }> {
  const res = await fetch(`${base}/readyz`, { signal: AbortSignal.timeout(10_000) });
  return { status: res.status, body: await res.json() };
}

function assertAlive(p: ArkloopProcess): void {
  assert.equal(p.child.exitCode, null, `the process exited:\n${p.output().slice(-3000)}`);
  assert.equal(p.child.signalCode, null, `the process was killed:\n${p.output().slice(-3000)}`);
}

/** A stream's frames are exactly the run's stored events: gap-free, ending with the terminal one. */
async function assertStreamComplete(c: Client, runId: string, frames: Array<{ id: number; event: any }>): Promise<string> {
  const events = frames.map((f) => f.event);
  assert.deepEqual(frames.map((f) => f.id), events.map((e) => e.seq), 'id: lines equal seq');
  assertWellFormed(events);
  const stored = await eventsOf(c, runId);
  assert.deepEqual(events.map((e) => [e.seq, e.type, e.event_id]), stored.data.map((e: any) => [e.seq, e.type, e.event_id]));
  return stored.status;
}

/** Allowed answers while the database is in trouble: success, or the 503 envelope (never a 500). */
function assertOkOr503(res: { status: number; body: any; text: string }, ok: number): void {
  if (res.status === ok) return;
  assert.equal(res.status, 503, res.text);
  assert.equal(res.body.code, 'service_unavailable');
  assert.equal(res.body.error, 'service_unavailable');
  assert.match(res.body.trace_id, /^[0-9a-f]{32}$/);
}

describe('the database and Redis going away', () => {
  const pool = new ProcessPool();
  const cleanups: Array<() => Promise<void> | void> = [];
  after(async () => {
    await pool.cleanup();
    for (const c of cleanups.reverse()) await c();
  });

  for (const topology of ['serve', 'api + worker'] as const) {
  it(`pg_terminate_backend of every connection, again and again, while runs stream (${topology}): the processes live and every run completes`, { timeout: 120_000 }, async (t) => {
    if (!TEST_PG_URL) return t.skip(pgOnly);
    // A 10 s lease: on a loaded machine, heartbeats failing through the 2.5 s storm plus the pool's
    // reconnects can outlast 5 s; a lapsed lease is the other test's subject, not this one's.
    const env = { ...(await pool.env({ postgres: true })), ...LEASES, ARKLOOP_WORKER_LEASE_SECONDS: '10' };
    const dbName = new URL(env.ARKLOOP_DATABASE_URL).pathname.slice(1);
    const serve = await pool.spawnApi(topology === 'serve' ? 'serve' : 'api', env);
    const processes = [serve, ...(topology === 'serve' ? [] : [await pool.spawnWorker(env)])];
    const c: Client = { base: serve.base!, token: await register(serve.base!) };

    const script = {
      stub: {
        steps: [
          { delay_ms: 300, tool_call: { name: 'echo', arguments: { text: 'a' } } },
          { delay_ms: 300, tool_call: { name: 'echo', arguments: { text: 'b' } } },
          { delay_ms: 300, tool_call: { name: 'echo', arguments: { text: 'c' } } },
          { delay_ms: 300, text: 'one two three four five' },
        ],
      },
    };
    const runs = await Promise.all([0, 1, 2, 3].map(() => startRun(c, JSON.stringify(script))));
    const asking = await startRun(c, JSON.stringify({ stub: { steps: [{ ask_input: 'colour?' }, { text: 'thanks' }] } }));
    const streams = [...runs, asking].map((r) => followSse(c, r.runId, 60_000));
    for (const s of streams) s.catch(() => undefined); // awaited below; a failure before that must not go unhandled

    const admin = new pg.Client({ connectionString: TEST_PG_URL });
    await admin.connect();
    let killed = 0;
    const statuses = new Map<number, number>();
    try {
      // About 2.5 s of terminations every 150 ms, with requests in between.
      const until = Date.now() + 2500;
      while (Date.now() < until) {
        const res = await admin.query('SELECT count(pg_terminate_backend(pid))::int AS n FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid()', [dbName]);
        killed += res.rows[0].n;
        const list = await call(c.base, 'GET', '/v1/threads', undefined, c.token);
        assertOkOr503(list, 200);
        statuses.set(list.status, (statuses.get(list.status) ?? 0) + 1);
        await sleep(150);
      }
    } finally {
      await admin.end();
    }
    assert.ok(killed >= 5, `terminated ${killed} connections`);
    for (const p of processes) assertAlive(p);
    t.diagnostic(`terminated ${killed} connections; GET /v1/threads answers during the storm: ${JSON.stringify(Object.fromEntries(statuses))}`);

    const ready = await waitFor('readyz 200', async () => ((await readyz(c.base)).status === 200 ? true : undefined));
    assert.equal(ready, true);
    // The paused run takes its input on a fresh pool and completes too.
    await waitFor('the run to wait for input', async () => ((await call(c.base, 'GET', `/v1/runs/${asking.runId}`, undefined, c.token)).body.status === 'waiting_for_input' ? true : undefined));
    const input = await call(c.base, 'POST', `/v1/runs/${asking.runId}/input`, { content: 'blue' }, c.token);
    assert.equal(input.status, 200, input.text);

    const all = [...runs, asking];
    const frames = await Promise.all(streams);
    for (let k = 0; k < all.length; k++) {
      const run = await waitTerminal(c, all[k].runId, 30_000);
      const status = await assertStreamComplete(c, all[k].runId, frames[k]);
      assert.equal(status, 'completed', `run ${k}: ${run.error_class ?? ''} ${run.error_message ?? ''}`);
    }
    for (const f of frames.slice(0, runs.length)) {
      const text = f.map((x) => x.event).filter((e) => e.type === 'message.delta').map((e) => e.data.content_delta).join('');
      assert.equal(text, 'one two three four five');
    }
    for (const p of processes) assertAlive(p);
  });
  }

  it('PostgreSQL unreachable for seconds: 503 with Retry-After while away, nothing half-written, everything back without a restart', { timeout: 120_000 }, async (t) => {
    if (!TEST_PG_URL) return t.skip(pgOnly);
    const env = { ...(await pool.env({ postgres: true })), ...LEASES };
    const target = new URL(env.ARKLOOP_DATABASE_URL);
    const proxy = new TcpProxy(target.hostname, Number(target.port || 5432));
    await proxy.start();
    cleanups.push(() => proxy.close());
    const viaProxy = new URL(target);
    viaProxy.hostname = '127.0.0.1';
    viaProxy.port = String(proxy.port);
    env.ARKLOOP_DATABASE_URL = viaProxy.toString();
    const serve = await pool.spawnApi('serve', env);
    const c: Client = { base: serve.base!, token: await register(serve.base!) };

    // A run in a long model call across the outage, a run that keeps writing through it, and
    // a run paused for input.
    const slow = await startRun(c, JSON.stringify({ stub: { steps: [{ tool_call: { name: 'echo', arguments: { text: 'x' } } }, { delay_ms: 6000, text: 'slow answer' }] } }));
    // Within the default persona's 10 turns: 8 tool turns 700 ms apart, so writes fall due during the outage.
    const busySteps = Array.from({ length: 8 }, (_, i) => ({ delay_ms: 700, tool_call: { name: 'echo', arguments: { text: `n${i}` } } }));
    const busy = await startRun(c, JSON.stringify({ stub: { steps: [...busySteps, { text: 'busy done' }] } }));
    const asking = await startRun(c, JSON.stringify({ stub: { steps: [{ ask_input: 'colour?' }, { text: 'thanks' }] } }));
    const all = [slow, busy, asking];
    const streams = all.map((r) => followSse(c, r.runId, 90_000));
    for (const s of streams) s.catch(() => undefined); // awaited below
    await waitFor('the paused run', async () => ((await call(c.base, 'GET', `/v1/runs/${asking.runId}`, undefined, c.token)).body.status === 'waiting_for_input' ? true : undefined));
    await sleep(300);

    await proxy.cut();
    const cutAt = Date.now();
    // While away: /readyz 503 with its own body; requests the 503 envelope with Retry-After: 1.
    const down = await waitFor('readyz 503', async () => {
      const r = await readyz(c.base);
      return r.status === 503 ? r.body : undefined;
    }, 10_000);
    assert.equal(down.status, 'unavailable');
    assert.match(down.reason, /database/);
    const list = await call(c.base, 'GET', '/v1/threads', undefined, c.token);
    assert.equal(list.status, 503, list.text);
    assert.deepEqual(Object.keys(list.body).sort(), ['code', 'details', 'error', 'message', 'trace_id']);
    assert.equal(list.body.code, 'service_unavailable');
    const created = await fetch(`${c.base}/v1/threads`, {
      method: 'POST',
      headers: { authorization: `Bearer ${c.token}`, 'content-type': 'application/json' },
      body: JSON.stringify({ title: 'written during the outage' }),
    });
    assert.equal(created.status, 503);
    assert.equal(created.headers.get('retry-after'), '1');
    assert.equal((await created.json()).code, 'service_unavailable');
    assert.equal((await fetch(`${c.base}/healthz`)).status, 200, 'liveness does not depend on the database');
    await sleep(Math.max(0, 3000 - (Date.now() - cutAt)));
    assertAlive(serve);

    await proxy.restore();
    const restoredAt = Date.now();
    await waitFor('readyz 200 after the database is back', async () => ((await readyz(c.base)).status === 200 ? true : undefined), 15_000);
    const back = await waitFor('GET /v1/threads 200', async () => {
      const r = await call(c.base, 'GET', '/v1/threads', undefined, c.token);
      return r.status === 200 ? r.body : undefined;
    }, 15_000);
    t.diagnostic(`outage ${restoredAt - cutAt} ms; serving again ${Date.now() - restoredAt} ms after the database returned`);
    assert.ok(!back.some((th: any) => th.title === 'written during the outage'), 'the refused create left nothing behind');

    const input = await call(c.base, 'POST', `/v1/runs/${asking.runId}/input`, { content: 'blue' }, c.token);
    assert.equal(input.status, 200, input.text);
    const frames = await Promise.all(streams);
    const outcome: string[] = [];
    for (let k = 0; k < all.length; k++) {
      const run = await waitTerminal(c, all[k].runId, 30_000);
      const status = await assertStreamComplete(c, all[k].runId, frames[k]);
      outcome.push(`${status}${run.error_class ? ` (${run.error_class})` : ''}`);
    }
    t.diagnostic(`runs: ${outcome.join(', ')}`);
    // The long model call never needed the database while it was away, and the paused run
    // took its input afterwards: both complete. The busy run's writes that fall due during the
    // outage wait it out within the lease (databasePatience), so it completes too — unless a
    // statement of it was in flight at the very moment of the cut: that one may have committed
    // or not, so the attempt is abandoned and the run, which had streamed output, ends with
    // internal.worker_lost (§26.6). Either way it ends with its terminal event.
    assert.equal(outcome[0], 'completed');
    assert.equal(outcome[2], 'completed');
    assert.match(outcome[1], /^(completed|failed \(internal\.worker_lost\))$/);

    // And new work runs as before.
    const fresh = await startRun(c, 'after the outage');
    assert.equal((await waitTerminal(c, fresh.runId, 15_000)).status, 'completed');
    assertAlive(serve);
  });

  it('an outage longer than the lease: the worker lets the job go, and once the database is back the run is taken up again and completes', { timeout: 120_000 }, async (t) => {
    if (!TEST_PG_URL) return t.skip(pgOnly);
    const env = { ...(await pool.env({ postgres: true })), ARKLOOP_WORKER_LEASE_SECONDS: '2', ARKLOOP_WORKER_HEARTBEAT_SECONDS: '0.5', ARKLOOP_WORKER_POLL_SECONDS: '0.25' };
    const target = new URL(env.ARKLOOP_DATABASE_URL);
    const proxy = new TcpProxy(target.hostname, Number(target.port || 5432));
    await proxy.start();
    cleanups.push(() => proxy.close());
    const viaProxy = new URL(target);
    viaProxy.hostname = '127.0.0.1';
    viaProxy.port = String(proxy.port);
    const serve = await pool.spawnApi('serve', { ...env, ARKLOOP_DATABASE_URL: viaProxy.toString() });
    const c: Client = { base: serve.base!, token: await register(serve.base!) };
    // Nothing streamed before the model's long first turn: a run another attempt may replay.
    const run = await startRun(c, JSON.stringify({ stub: { steps: [{ delay_ms: 5000, text: 'played again' }] } }));
    const stream = followSse(c, run.runId, 90_000);
    stream.catch(() => undefined);
    await waitFor('the first turn to start', async () => ((await eventsOf(c, run.runId)).data.some((e: any) => e.type === 'run.segment.start') ? true : undefined));

    await proxy.cut();
    await sleep(4000); // twice the lease: it lapses while the database is away
    assertAlive(serve);
    await proxy.restore();
    const done = await waitTerminal(c, run.runId, 30_000);
    const status = await assertStreamComplete(c, run.runId, await stream);
    assert.equal(status, 'completed', `${done.error_class ?? ''}`);
    const { data: events } = await eventsOf(c, run.runId);
    assert.equal(events.filter((e: any) => e.type === 'message.delta').map((e: any) => e.data.content_delta).join(''), 'played again');
    assert.match(serve.output(), /lease lapsed|heartbeat failed/);
    assertAlive(serve);
  });

  it('Redis stopped and started: rate limits fail open while it is away and use Redis again once it is back', { timeout: 90_000 }, async (t) => {
    if (spawnSync('redis-server', ['--version']).status !== 0) return t.skip('redis-server is not installed');
    const port = await freePort();
    let redis: ChildProcess | null = null;
    const startRedis = async () => {
      redis = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'], { stdio: 'ignore' });
      const probe = new Redis({ port, lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null });
      probe.on('error', () => undefined);
      try {
        await waitFor('redis-server', async () => ((await probe.connect().then(() => probe.ping(), () => null)) === 'PONG' ? true : undefined), 10_000);
      } finally {
        probe.disconnect();
      }
    };
    const stopRedis = async () => {
      const r = redis as ChildProcess | null;
      if (!r) return;
      r.kill('SIGKILL');
      await exitWithin(r, 10_000).catch(() => undefined);
      redis = null;
    };
    cleanups.push(stopRedis);
    await startRedis();
    const keys = async () => {
      const r = new Redis({ port, maxRetriesPerRequest: 0 });
      try {
        return await r.keys('arkloop:rl:*');
      } finally {
        r.disconnect();
      }
    };

    const env = { ...(await pool.env()), ARKLOOP_REDIS_URL: `redis://127.0.0.1:${port}` };
    const serve = await pool.spawnApi('serve', env);
    const login = async (name: string) => call(serve.base!, 'POST', '/v1/auth/login', { login: name, password: 'not the password' });
    // Up: the 11th failure of one login is refused, and the counters are in Redis.
    for (let i = 0; i < 10; i++) assert.equal((await login('redis-one')).status, 401);
    assert.equal((await login('redis-one')).status, 429);
    assert.ok((await keys()).length > 0, 'the counters live in Redis');

    await stopRedis();
    // Away: the same limits fail open (allowed, logged), the process serves on.
    for (let i = 0; i < 15; i++) assert.equal((await login('redis-two')).status, 401);
    assert.equal((await readyz(serve.base!)).status, 200);
    assertAlive(serve);

    await startRedis();
    // Back (an empty Redis): counting resumes without a restart, so a login locks again.
    await waitFor('the rate limit to count in Redis again', async () => {
      const res = await login('redis-three');
      return res.status === 429 ? true : undefined;
    }, 20_000, 50);
    assert.ok((await keys()).some((k) => k.includes('redis-three')), 'the new counters are in the restarted Redis');
    assert.match(serve.output(), /redis/i);
    assertAlive(serve);
  });
});
