// /metrics on every role (api.md §25.3, issue 12 item 4): the API in process (both engines),
// a real `arkloop worker` process on its own listener (PostgreSQL), and the gateway. Each is
// scraped after real activity and its metric families are checked for sensible values.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { TEST_PG_URL, databaseKind, registerUser, startTestApp, type TestApp, type TestUser } from './helpers/app.js';
import { spawnSync } from 'node:child_process';
import { ENTRY, ProcessPool, freePort, sleep } from './helpers/processes.js';
import { listenTestApp, rawRequest, startTestGateway } from './helpers/gateway.js';
import { register, startRun, waitForEvents } from './helpers/run-client.js';
import { until } from './helpers/wait.js';
import { startWorker } from '../src/server.js';

interface Sample {
  labels: Record<string, string>;
  value: number;
}

/** The samples of `name` in a Prometheus text exposition (throws when the family is missing). */
function samples(text: string, name: string): Sample[] {
  const family = name.replace(/_(count|sum|bucket)$/, '');
  assert.ok(new RegExp(`^# TYPE (${name}|${family}) `, 'm').test(text), `family ${family} is exposed`);
  const out: Sample[] = [];
  for (const line of text.split('\n')) {
    const m = /^([a-zA-Z_:][\w:]*)(?:\{(.*)\})? (\S+)$/.exec(line);
    if (!m || m[1] !== name) continue;
    const labels: Record<string, string> = {};
    for (const l of (m[2] ?? '').matchAll(/(\w+)="((?:[^"\\]|\\.)*)"/g)) labels[l[1]] = l[2];
    out.push({ labels, value: Number(m[3]) });
  }
  return out;
}

/** The value of the one sample of `name` whose labels include `match` (0 when there is none). */
function value(text: string, name: string, match: Record<string, string> = {}): number {
  const hit = samples(text, name).filter((s) => Object.entries(match).every(([k, v]) => s.labels[k] === v));
  return hit.reduce((sum, s) => sum + s.value, 0);
}


describe(`/metrics on every role (${databaseKind})`, () => {
  let t: TestApp;
  let user: TestUser;
  const as = () => ({ token: user.token });

  before(async () => {
    t = await startTestApp();
    user = await registerUser(t);
  });
  after(async () => {
    await t.close();
  });

  it('the API reports requests, runs, jobs, event-bus lag, DB pool, webhook backlog and SSE streams', async () => {
    // A run executed by an in-process worker…
    const worker = startWorker(t.ctx);
    const th = await t.post('/v1/threads', {}, as());
    assert.equal(th.status, 201, th.text);
    assert.equal((await t.post(`/v1/threads/${th.body.id}/messages`, { content: 'hello metrics' }, as())).status, 201);
    const run = await t.post(`/v1/threads/${th.body.id}/runs`, {}, as());
    assert.equal(run.status, 201, run.text);
    await until(async () => (await t.get(`/v1/runs/${run.body.run_id}`, as())).body.status === 'completed', 'run completed');
    await worker.stop();
    // …then, with no worker left, a webhook delivery that stays pending.
    const ep = await t.post('/v1/webhook-endpoints', { url: 'https://hooks.example.com/in', events: ['thread.created'] }, as());
    assert.equal(ep.status, 201, ep.text);
    assert.equal((await t.post('/v1/threads', {}, as())).status, 201);
    await sleep(30);

    const res = await t.get('/metrics');
    assert.equal(res.status, 200);
    assert.match(String(res.headers['content-type']), /text\/plain/);
    const m = res.text;
    assert.ok(value(m, 'arkloop_http_requests_total', { method: 'POST', route: '/v1/threads/:thread_id/runs', status: '201' }) >= 1);
    assert.ok(value(m, 'arkloop_http_request_duration_seconds_count', { route: '/v1/threads', status: '201' }) >= 2);
    assert.ok(value(m, 'arkloop_runs', { status: 'completed' }) >= 1);
    assert.ok(value(m, 'arkloop_jobs_executed_total', { type: 'run.execute', outcome: 'completed' }) >= 1);
    samples(m, 'arkloop_job_lease_delay_seconds'); // a run dispatched in process is never leased from the queue
    assert.ok(value(m, 'arkloop_job_queue_depth', { type: 'webhook.deliver', state: 'queued' }) >= 1);
    assert.ok(value(m, 'arkloop_job_oldest_due_seconds', { type: 'webhook.deliver' }) > 0);
    assert.ok(value(m, 'arkloop_webhook_deliveries_pending') >= 1);
    assert.ok(value(m, 'arkloop_webhook_oldest_pending_seconds') > 0);
    // Every event of the run went through the hub (NOTIFY on PostgreSQL, in process on PGlite).
    assert.ok(value(m, 'arkloop_event_bus_lag_seconds_count') >= 3);
    assert.ok(value(m, 'arkloop_event_bus_lag_seconds_sum') >= 0);
    const max = value(m, 'arkloop_db_pool_connections', { state: 'max' });
    if (databaseKind === 'pglite') assert.equal(max, 1, 'one embedded session');
    else assert.ok(max > 1, 'the pg pool size');
    assert.ok(value(m, 'arkloop_db_pool_connections', { state: 'in_use' }) <= max);
    assert.ok(value(m, 'arkloop_db_pool_connections', { state: 'waiting' }) >= 0);
    assert.equal(value(m, 'arkloop_sse_streams'), 0);
    assert.ok(value(m, 'arkloop_process_resident_memory_bytes') > 0);
  });

  it('database gauges come from a snapshot shared by every scrape for 2 s (a scrape storm reads once)', async () => {
    const pending = async () => value((await t.get('/metrics')).text, 'arkloop_webhook_deliveries_pending');
    await sleep(2100); // past the previous test's snapshot
    const first = await pending();
    // A new pending delivery (the endpoint of the previous test hears thread.created)…
    assert.equal((await t.post('/v1/threads', {}, as())).status, 201);
    // …is not seen by a storm of scrapes inside the window: they share the first read…
    const storm = await Promise.all(Array.from({ length: 20 }, () => pending()));
    assert.deepEqual(new Set(storm), new Set([first]));
    // …and is seen once the window has passed.
    await sleep(2100);
    assert.equal(await pending(), first + 1);
  });

  it('the gateway counts its 429s by identity type', async () => {
    const base = await listenTestApp(t);
    const g = await startTestGateway([base], { settings: { 'gateway.ratelimit_capacity': 2, 'gateway.ratelimit_rate_per_minute': 1 } });
    try {
      const statuses: number[] = [];
      for (let i = 0; i < 3; i++) statuses.push((await rawRequest(g.base, '/v1/me')).status);
      for (let i = 0; i < 3; i++) statuses.push((await rawRequest(g.base, '/v1/me', { headers: { authorization: `Bearer ${user.token}` } })).status);
      assert.equal(statuses.filter((s) => s === 429).length, 2, statuses.join(','));
      const m = (await rawRequest(g.base, '/metrics')).text;
      assert.equal(value(m, 'arkloop_gateway_rate_limited_total', { identity_type: 'anonymous' }), 1);
      const byType = samples(m, 'arkloop_gateway_rate_limited_total');
      assert.equal(byType.length, 2, JSON.stringify(byType));
      assert.equal(value(m, 'arkloop_gateway_requests_total', { status: '429' }), 2);
      assert.equal(value(m, 'arkloop_gateway_request_duration_seconds_count', { status: '429' }), 2);
    } finally {
      await g.close();
    }
  });
});

it('arkloop worker refuses a malformed ARKLOOP_WORKER_METRICS_ADDR, naming it', () => {
  const res = spawnSync(process.execPath, [...ENTRY, 'worker'], {
    env: { ...process.env, ARKLOOP_DATA_DIR: '/tmp/arkloop-test-unused', ARKLOOP_WORKER_METRICS_ADDR: 'metrics-please' },
    encoding: 'utf8',
    timeout: 20_000,
  });
  assert.equal(res.status, 2);
  assert.match(res.stderr, /configuration error: ARKLOOP_WORKER_METRICS_ADDR must be host:port/);
});

describe('/metrics of an arkloop worker process (PostgreSQL)', { skip: TEST_PG_URL ? false : 'needs ARKLOOP_TEST_DATABASE_URL (two processes share one database)' }, () => {
  const pool = new ProcessPool();
  after(() => pool.cleanup());

  it('serves /healthz and /metrics with the jobs it executed, lease delay, event-bus lag and its DB pool', async () => {
    const env = await pool.env();
    // The API with a smaller pool (ARKLOOP_DATABASE_POOL_SIZE); the worker keeps the default 20.
    const api = await pool.spawnApi('api', { ...env, ARKLOOP_DATABASE_POOL_SIZE: '7' });
    const port = await freePort();
    const worker = await pool.spawnWorker({ ...env, ARKLOOP_WORKER_METRICS_ADDR: `127.0.0.1:${port}` });
    const wbase = `http://127.0.0.1:${port}`;
    assert.match(worker.output(), new RegExp(`"metrics":"${wbase}/metrics"`));
    assert.equal((await fetch(`${wbase}/healthz`)).status, 200);
    assert.equal((await fetch(`${wbase}/nope`)).status, 404);

    const c = { base: api.base!, token: await register(api.base!) };
    const { runId } = await startRun(c, 'hello worker metrics');
    await waitForEvents(c, runId, (events) => events.some((e) => e.type === 'run.completed'), 'run.completed');

    const res = await fetch(`${wbase}/metrics`);
    assert.equal(res.status, 200);
    const m = await res.text();
    assert.equal(value(m, 'arkloop_jobs_executed_total', { type: 'run.execute', outcome: 'completed' }), 1);
    assert.equal(value(m, 'arkloop_job_lease_delay_seconds_count', { type: 'run.execute' }), 1);
    assert.ok(value(m, 'arkloop_job_lease_delay_seconds_sum', { type: 'run.execute' }) < 5);
    assert.ok(value(m, 'arkloop_event_bus_lag_seconds_count') >= 3, 'the worker hears the run events over NOTIFY');
    assert.equal(value(m, 'arkloop_runs', { status: 'completed' }), 1);
    assert.equal(value(m, 'arkloop_db_pool_connections', { state: 'max' }), 20);
    samples(m, 'arkloop_job_oldest_due_seconds');
    samples(m, 'arkloop_webhook_deliveries_pending');

    // The API process (no worker in it) reports the same run and hears its events too.
    const am = await (await fetch(`${api.base}/metrics`)).text();
    assert.equal(value(am, 'arkloop_runs', { status: 'completed' }), 1);
    assert.equal(value(am, 'arkloop_jobs_executed_total', { type: 'run.execute' }), 0);
    assert.ok(value(am, 'arkloop_http_requests_total', { route: '/v1/threads/:thread_id/runs', status: '201' }) >= 1);
    assert.equal(value(am, 'arkloop_db_pool_connections', { state: 'max' }), 7);
  });
});
