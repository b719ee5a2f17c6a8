// Scale-out proof (issue 12 item 3; api.md §26.6, §30): 2 `arkloop api`, 2 `arkloop worker` and
// 1 `arkloop gateway` as real processes on one fresh PostgreSQL database and one Redis database
// (a DB index of its own; nothing is flushed), runs driven through the gateway with the stub
// model, scripted to stream slowly enough for kills to land mid-run:
//   - jobs spread over both workers (jobs.leased_by while leased, each worker's
//     arkloop_jobs_executed_total), each job leased once and executed once;
//   - SSE streams on either API and through the gateway see every event once, in order;
//   - limit.concurrent_runs holds for creates racing through both APIs and the gateway;
//   - SIGKILL of a worker, of an API and of the gateway loses nothing: runs finish on the other
//     worker, streams resume on the other API (directly, or through the gateway that routes
//     around the dead upstream) and through a restarted gateway with Last-Event-ID.
// PostgreSQL and Redis only: the embedded database belongs to one process.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import pg from 'pg';
import { TEST_PG_URL } from './helpers/app.js';
import { ProcessPool, exitWithin, freePort, sleep, type ArkloopProcess } from './helpers/processes.js';
import { FAST_LEASES, TERMINAL, assertWellFormed, call, eventsOf, register, startRun, waitTerminal, type Client } from './helpers/run-client.js';
import { until } from './helpers/wait.js';

const REDIS = process.env.ARKLOOP_TEST_REDIS_URL;
const skip = TEST_PG_URL && REDIS ? false : 'needs ARKLOOP_TEST_DATABASE_URL and ARKLOOP_TEST_REDIS_URL: several processes share PostgreSQL and Redis';

/** A stub script: `calls` echo tool calls `gapMs` apart, then a reply of a few words. */
function slowScript(calls: number, gapMs: number, leadMs = 0): string {
  const steps: unknown[] = leadMs ? [{ delay_ms: leadMs }] : [];
  for (let i = 0; i < calls; i++) steps.push({ delay_ms: i === 0 ? 0 : gapMs, tool_call: { name: 'echo', arguments: { text: `step ${i}` } } });
  steps.push({ delay_ms: gapMs, text: 'all steps are done now' });
  return JSON.stringify({ stub: { steps } });
}

interface Frame {
  id: number;
  event: { seq: number; type: string; id: string };
}

interface Followed {
  frames: Frame[];
  /** Connections opened (1 = never had to reconnect). */
  connects: number;
  /** Base URL of each connection, in order. */
  bases: string[];
}

/**
 * Follows a run's SSE stream until its terminal event, reconnecting whenever the connection
 * fails or ends early: to `bases[i % n]` on the i-th connection, with Last-Event-ID set to the
 * last id seen, as a browser's EventSource would. `onFrame` sees each frame as it arrives.
 */
async function follow(bases: string[], token: string, runId: string, onFrame: (f: Frame) => void = () => undefined, timeoutMs = 40_000): Promise<Followed> {
  const out: Followed = { frames: [], connects: 0, bases: [] };
  const deadline = Date.now() + timeoutMs;
  const decoder = new TextDecoder();
  while (Date.now() < deadline) {
    const base = bases[out.connects % bases.length];
    out.connects++;
    out.bases.push(base);
    const last = out.frames.at(-1)?.id;
    try {
      const res = await fetch(`${base}/v1/runs/${runId}/events`, {
        headers: { authorization: `Bearer ${token}`, accept: 'text/event-stream', ...(last ? { 'last-event-id': String(last) } : {}) },
        signal: AbortSignal.timeout(Math.max(1, deadline - Date.now())),
      });
      assert.equal(res.status, 200, `${base}: ${res.status}`);
      let buf = '';
      const reader = res.body!.getReader();
      for (;;) {
        const { done, value } = await reader.read();
        if (done) break;
        buf += decoder.decode(value, { stream: true });
        let i: number;
        while ((i = buf.indexOf('\n\n')) >= 0) {
          const raw = buf.slice(0, i);
          buf = buf.slice(i + 2);
          if (raw.startsWith(':')) continue; // heartbeat
          const lines = raw.split('\n');
          assert.ok(lines.length === 2 && lines[0].startsWith('id: ') && lines[1].startsWith('data: '), `frame shape: ${JSON.stringify(raw)}`);
          const f = { id: Number(lines[0].slice(4)), event: JSON.parse(lines[1].slice(6)) };
          out.frames.push(f);
          onFrame(f);
        }
      }
      if (TERMINAL.has(out.frames.at(-1)?.event.type ?? '')) return out;
    } catch (err) {
      if (err instanceof assert.AssertionError) throw err;
      // The connection failed or broke: reconnect below.
    }
    await sleep(100);
  }
  throw new Error(`stream of ${runId} did not reach its terminal event; ${out.frames.length} frames over ${out.connects} connections`);
}

/** Every event exactly once, in order, ending in the terminal event: the frames are the run's events. */
function assertExactlyOnce(followed: Followed, events: Array<{ seq: number; id: string; type: string }>, what: string): void {
  assert.deepEqual(
    followed.frames.map((f) => [f.id, f.event.seq, f.event.id, f.event.type]),
    events.map((e) => [e.seq, e.seq, e.id, e.type]),
    `${what} (connections: ${followed.bases.join(' → ')})`,
  );
}

/** An `arkloop worker` process, its id (jobs.leased_by) and its /metrics listener. */
interface Worker {
  p: ArkloopProcess;
  id: string;
  metrics: string;
}

/** run.execute jobs a worker executed to the end, from its /metrics. */
async function runsExecuted(metricsBase: string): Promise<number> {
  const text = await (await fetch(`${metricsBase}/metrics`)).text();
  const m = /^arkloop_jobs_executed_total\{type="run\.execute",outcome="completed"\} (\d+)/m.exec(text);
  return m ? Number(m[1]) : 0;
}

describe('scale-out: 2 api + 2 worker + 1 gateway on PostgreSQL and Redis', { skip }, () => {
  const pool = new ProcessPool();
  let env: Record<string, string>;
  let db: pg.Client;
  let apis: ArkloopProcess[];
  let workers: Worker[];
  let gatewayPort: number;
  let gateway: ArkloopProcess;
  let gw: string;
  let user: Client;
  let admin: string;
  // jobs.leased_by and attempts of every run.execute job seen leased, sampled all along.
  const leases = new Map<string, { by: Set<string>; attempts: number }>();
  let sampling = true;
  let sampler: Promise<void> = Promise.resolve();

  async function spawnWorker(): Promise<Worker> {
    const port = await freePort();
    const p = await pool.spawnWorker({ ...env, ARKLOOP_WORKER_METRICS_ADDR: `127.0.0.1:${port}` });
    const id = /"worker":"([^"]+)"[^\n]*arkloop worker started/.exec(p.output())?.[1];
    assert.ok(id, p.output());
    return { p, id, metrics: `http://127.0.0.1:${port}` };
  }

  async function spawnGateway(): Promise<ArkloopProcess> {
    const p = pool.spawn('gateway', {
      ...env,
      ARKLOOP_GATEWAY_PORT: String(gatewayPort),
      ARKLOOP_GATEWAY_UPSTREAM: apis.map((a) => a.base).join(','),
      ARKLOOP_GATEWAY_HEALTH_INTERVAL_MS: '500',
    });
    await p.waitForOutput(/arkloop gateway listening/);
    return p;
  }

  async function sample(): Promise<void> {
    while (sampling) {
      const rows = await db
        .query<{ run_id: string; leased_by: string; attempts: number }>(`SELECT payload->>'run_id' AS run_id, leased_by, attempts FROM jobs WHERE type = 'run.execute' AND state = 'leased'`)
        .catch(() => ({ rows: [] }));
      for (const r of rows.rows) {
        const l = leases.get(r.run_id) ?? { by: new Set<string>(), attempts: 0 };
        l.by.add(r.leased_by);
        l.attempts = Math.max(l.attempts, r.attempts);
        leases.set(r.run_id, l);
      }
      await sleep(25);
    }
  }

  before(async () => {
    const redis = new URL(REDIS!);
    redis.pathname = `/${1 + Math.floor(Math.random() * 15)}`;
    // Three run slots per worker, so a burst of runs cannot all land on one of them.
    env = { ...(await pool.env({ postgres: true })), ...FAST_LEASES, ARKLOOP_REDIS_URL: redis.toString(), ARKLOOP_WORKER_CONCURRENCY: '3' };
    const first = await pool.spawnApi('api', env); // migrates the fresh database
    gatewayPort = await freePort();
    gw = `http://127.0.0.1:${gatewayPort}`;
    const [second, w1, w2] = await Promise.all([pool.spawnApi('api', env), spawnWorker(), spawnWorker()]);
    apis = [first, second];
    workers = [w1, w2];
    gateway = await spawnGateway();
    db = new pg.Client({ connectionString: env.ARKLOOP_DATABASE_URL });
    await db.connect();
    sampler = sample();
    admin = await register(gw); // the first user: platform admin
    user = { base: gw, token: await register(gw) };
  });

  after(async () => {
    sampling = false;
    await sampler;
    await db?.end();
    await pool.cleanup();
  });

  it('runs through the gateway spread over both workers, each executed once; SSE on either API and the gateway sees every event once, in order', { timeout: 60_000 }, async () => {
    const before = await Promise.all(workers.map((w) => runsExecuted(w.metrics)));
    const runs = await Promise.all(Array.from({ length: 8 }, () => startRun(user, slowScript(2, 250))));
    const streams = await Promise.all(
      runs.flatMap(({ runId }) => [apis[0].base!, apis[1].base!, gw].map(async (base) => ({ runId, base, followed: await follow([base], user.token, runId) }))),
    );
    for (const { runId, base, followed } of streams) {
      const { data, status } = await eventsOf(user, runId);
      assert.equal(status, 'completed');
      assertWellFormed(data);
      assert.equal(followed.connects, 1);
      assertExactlyOnce(followed, data, `stream on ${base}`);
    }
    // Each job leased once, by one worker; both workers took some.
    for (const { runId } of runs) assert.deepEqual({ n: leases.get(runId)?.by.size, attempts: leases.get(runId)?.attempts }, { n: 1, attempts: 1 }, runId);
    const owners = new Set(runs.map(({ runId }) => [...leases.get(runId)!.by][0]));
    assert.equal(owners.size, 2, 'both workers leased runs');
    // …and executed them once: the completed executions of the two processes add up to the runs.
    const executed = (await Promise.all(workers.map((w) => runsExecuted(w.metrics)))).map((n, i) => n - before[i]);
    assert.ok(executed.every((n) => n > 0), `executions per worker: ${executed}`);
    assert.equal(executed[0] + executed[1], runs.length);
  });

  it('limit.concurrent_runs holds for creates racing through both APIs and the gateway, and slots free up across processes', { timeout: 60_000 }, async () => {
    const token = await register(gw);
    const c = { base: gw, token };
    const org = (await call(gw, 'GET', '/v1/me', undefined, token)).body.org_id as string;
    assert.equal((await call(gw, 'POST', '/v1/entitlement-overrides', { org_id: org, key: 'limit.concurrent_runs', value: '3', value_type: 'integer' }, admin)).status, 201);
    for (const a of apis) {
      await until(async () => {
        const e = (await call(a.base!, 'GET', '/v1/entitlements', undefined, token)).body.entitlements.find((x: { key: string }) => x.key === 'limit.concurrent_runs');
        return e.value === '3';
      }, `the override seen by ${a.base}`);
    }
    const threads: string[] = [];
    for (let i = 0; i < 15; i++) {
      const th = (await call(gw, 'POST', '/v1/threads', {}, token)).body.id as string;
      assert.equal((await call(gw, 'POST', `/v1/threads/${th}/messages`, { content: slowScript(1, 4000) }, token)).status, 201);
      threads.push(th);
    }
    const bases = [apis[0].base!, apis[1].base!, gw];
    const race = async (ths: string[]) => Promise.all(ths.map((th, i) => call(bases[i % 3], 'POST', `/v1/threads/${th}/runs`, {}, token)));
    const first = await race(threads.slice(0, 12));
    assert.deepEqual(first.filter((r) => r.status !== 201).map((r) => [r.status, r.body.code]), Array(9).fill([429, 'limit.concurrent_runs']));
    const created = first.filter((r) => r.status === 201).map((r) => r.body.run_id as string);
    const active = await db.query<{ n: number }>(`SELECT count(*)::int AS n FROM runs WHERE org_id = $1 AND status IN ('running', 'waiting_for_input')`, [org]);
    assert.ok(active.rows[0].n <= 3);
    // Once those end (on whichever worker), three more fit again, raced the same way. A 429
    // clears by itself (§26.6), so a slot released a moment after the run ended is waited for.
    for (const id of created) assert.equal((await waitTerminal(c, id, 20_000)).status, 'completed');
    const second = await Promise.all(
      threads.slice(12).map(async (th, i) => {
        const deadline = Date.now() + 5_000;
        for (;;) {
          const r = await call(bases[i % 3], 'POST', `/v1/threads/${th}/runs`, {}, token);
          if (r.status !== 429 || Date.now() > deadline) return r;
          await sleep(100);
        }
      }),
    );
    assert.deepEqual(second.map((r) => r.status), [201, 201, 201], second.map((r) => r.text).join('\n'));
    for (const r of second) assert.equal((await waitTerminal(c, r.body.run_id, 20_000)).status, 'completed');
  });

  it('SIGKILL of a worker holding runs: the other worker takes them once their leases lapse and they complete', { timeout: 60_000 }, async () => {
    // Each run waits 3 s in its model call before any output, so the killed worker's runs have
    // emitted nothing yet and are executed normally by the other one (§26.6).
    const runs = await Promise.all(Array.from({ length: 6 }, () => startRun(user, JSON.stringify({ stub: { steps: [{ delay_ms: 3000 }, { text: 'done after the wait' }] } }))));
    const ownerOf = (runId: string) => [...leases.get(runId)!.by][0];
    await until(() => runs.every(({ runId }) => leases.has(runId)) && new Set(runs.map(({ runId }) => ownerOf(runId))).size === 2, 'both workers holding runs');
    const [victim, survivor] = workers;
    const held = runs.map(({ runId }) => runId).filter((id) => ownerOf(id) === victim.id);
    assert.ok(held.length > 0);
    const survivorBefore = await runsExecuted(survivor.metrics);
    victim.p.child.kill('SIGKILL');
    await exitWithin(victim.p.child, 10_000);
    const results = await Promise.all(runs.map(({ runId }) => waitTerminal(user, runId, 30_000)));
    assert.deepEqual(results.map((r) => r.status), Array(6).fill('completed'), results.map((r) => `${r.id}: ${r.status} ${r.error_class ?? ''}`).join('\n'));
    for (const { runId } of runs) assertWellFormed((await eventsOf(user, runId)).data);
    // The killed worker's runs were leased a second time, by the survivor, which executed all six.
    for (const id of held) assert.deepEqual({ by: [...leases.get(id)!.by], attempts: leases.get(id)!.attempts }, { by: [victim.id, survivor.id], attempts: 2 }, id);
    assert.equal((await runsExecuted(survivor.metrics)) - survivorBefore, runs.length);
    workers[0] = await spawnWorker();
  });

  it('SIGKILL of an API mid-stream: its streams resume with Last-Event-ID on the other API and through the gateway, every event once', { timeout: 60_000 }, async () => {
    const [dead, alive] = apis;
    const c = { base: alive.base!, token: user.token };
    const runs = await Promise.all(Array.from({ length: 4 }, () => startRun(c, slowScript(6, 400))));
    // Per run: one stream on the API about to die (falling back to the other), one through the gateway.
    const seen = new Map<string, number>();
    const onFrame = (key: string) => () => seen.set(key, (seen.get(key) ?? 0) + 1);
    const direct = runs.map(({ runId }) => follow([dead.base!, alive.base!], user.token, runId, onFrame(`d${runId}`)));
    const viaGateway = [];
    for (const { runId } of runs) {
      viaGateway.push(follow([gw], user.token, runId, onFrame(`g${runId}`)));
      await until(() => (seen.get(`g${runId}`) ?? 0) > 0, 'the gateway stream open'); // one at a time: round robin puts half on each API
    }
    await until(() => runs.every(({ runId }) => (seen.get(`d${runId}`) ?? 0) >= 2), 'direct streams under way');
    dead.child.kill('SIGKILL');
    await exitWithin(dead.child, 10_000);
    const [d, g] = [await Promise.all(direct), await Promise.all(viaGateway)];
    for (const [i, { runId }] of runs.entries()) {
      const { data, status } = await eventsOf(c, runId);
      assert.equal(status, 'completed');
      assertWellFormed(data);
      assertExactlyOnce(d[i], data, `direct stream of ${runId}`);
      assertExactlyOnce(g[i], data, `gateway stream of ${runId}`);
      assert.ok(d[i].connects >= 2 && d[i].bases.at(-1) === alive.base, `resumed on the other API: ${d[i].bases.join(' → ')}`);
    }
    assert.ok(g.some((f) => f.connects >= 2), 'some gateway streams were on the killed API and resumed');
    // New requests through the gateway keep working: it routes around the dead upstream.
    for (let i = 0; i < 4; i++) assert.equal((await call(gw, 'GET', '/v1/me', undefined, user.token)).status, 200);
  });

  it('SIGKILL of the gateway and a restart on its port: clients reconnect with Last-Event-ID and see every event once', { timeout: 60_000 }, async () => {
    const runs = await Promise.all(Array.from({ length: 3 }, () => startRun(user, slowScript(6, 400))));
    const seen = new Map<string, number>();
    const streams = runs.map(({ runId }) => follow([gw], user.token, runId, () => seen.set(runId, (seen.get(runId) ?? 0) + 1)));
    await until(() => runs.every(({ runId }) => (seen.get(runId) ?? 0) >= 2), 'streams under way');
    gateway.child.kill('SIGKILL');
    await exitWithin(gateway.child, 10_000);
    gateway = await spawnGateway();
    const followed = await Promise.all(streams);
    for (const [i, { runId }] of runs.entries()) {
      const { data, status } = await eventsOf(user, runId);
      assert.equal(status, 'completed');
      assertWellFormed(data);
      assert.ok(followed[i].connects >= 2, `reconnected: ${followed[i].connects}`);
      assertExactlyOnce(followed[i], data, `gateway stream of ${runId}`);
    }
  });
});
