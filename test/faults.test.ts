// Fault tests with real `arkloop` processes (api.md §26): a worker killed mid-run (the lost
// worker rule of §26.6), events followed on one API process while another creates the run
// and a separate worker executes it, a graceful SIGTERM of `serve` in the middle of a run, and a
// worker SIGKILLed in the middle of a webhook delivery (at least once, §20.2).
// The multi-process tests need PostgreSQL (the embedded database belongs to one process).
import { after, describe, it } from 'node:test';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import assert from 'node:assert/strict';
import { TEST_PG_URL } from './helpers/app.js';
import { ProcessPool, exitWithin, sleep, type ArkloopProcess } from './helpers/processes.js';
import { until } from './helpers/wait.js';
import { FAST_LEASES, assertWellFormed, call, eventsOf, followSse, register, startRun, waitForEvents, waitTerminal, type Client } from './helpers/run-client.js';

const pgOnly = 'needs PostgreSQL (ARKLOOP_TEST_DATABASE_URL): several processes share the database';

describe('faults with real processes', () => {
  const pool = new ProcessPool();
  after(async () => {
    await pool.cleanup();
  });

  /** `arkloop api` + `arkloop worker` on one fresh PostgreSQL database with short leases. */
  async function apiAndWorker(extra: Record<string, string> = {}): Promise<{ env: Record<string, string>; api: ArkloopProcess; worker: ArkloopProcess; c: Client }> {
    const env = { ...(await pool.env({ postgres: true })), ...FAST_LEASES, ...extra };
    const api = await pool.spawnApi('api', env);
    const worker = await pool.spawnWorker(env);
    const c = { base: api.base!, token: await register(api.base!) };
    return { env, api, worker, c };
  }

  it('a worker killed after the run emitted output: the next worker fails it with internal.worker_lost', { timeout: 90_000 }, async (t) => {
    if (!TEST_PG_URL) return t.skip(pgOnly);
    const { env, worker, c } = await apiAndWorker();
    const script = { stub: { steps: [{ tool_call: { name: 'echo', arguments: { text: 'hi' } } }, { delay_ms: 4000, text: 'late' }] } };
    const { threadId, runId } = await startRun(c, JSON.stringify(script));
    await waitForEvents(c, runId, (evs) => evs.some((e) => e.type === 'tool.call'), 'tool.call');

    worker.child.kill('SIGKILL');
    await exitWithin(worker.child, 10_000);
    const killedAt = Date.now();
    await pool.spawnWorker(env);

    const run = await waitTerminal(c, runId, 20_000);
    assert.ok(Date.now() - killedAt < 20_000);
    assert.equal(run.status, 'failed');
    assert.equal(run.error_class, 'internal.worker_lost');
    const { data: events, status } = await eventsOf(c, runId);
    assert.equal(status, 'failed');
    assertWellFormed(events);
    const failed = events.at(-1);
    assert.equal(failed.type, 'run.failed');
    assert.equal(failed.data.error_class, 'internal.worker_lost');
    assert.equal(failed.data.retryable, true);
    assert.ok(!events.some((e) => e.type === 'message.delta'), 'the killed turn never streamed');
    const thread = await call(c.base, 'GET', `/v1/threads/${threadId}`, undefined, c.token);
    assert.equal(thread.body.active_run_id, null);
    // The thread is usable again.
    const again = await call(c.base, 'POST', `/v1/threads/${threadId}/runs`, {}, c.token);
    assert.equal(again.status, 201, again.text);
  });

  it('a worker SIGKILLed while a webhook receiver answers: sent again with the same id once the lease lapses, recorded once, never after', { timeout: 90_000 }, async (t) => {
    if (!TEST_PG_URL) return t.skip(pgOnly);
    const { env, worker, c } = await apiAndWorker({ ARKLOOP_SECURITY_SSRF_ALLOW_PRIVATE: 'true' });
    const received: Array<{ id: string; eventId: string }> = [];
    const receiver = http.createServer((req, res) => {
      req.resume();
      req.on('end', async () => {
        received.push({ id: String(req.headers['webhook-id']), eventId: String(req.headers['x-arkloop-delivery']) });
        // The first time, the worker dies while the receiver works: its 200 is never recorded.
        if (received.length === 1) {
          worker.child.kill('SIGKILL');
          await exitWithin(worker.child, 10_000);
        }
        res.writeHead(200).end('ok');
      });
    });
    await new Promise<void>((resolve) => receiver.listen(0, '127.0.0.1', resolve));
    try {
      const url = `http://127.0.0.1:${(receiver.address() as AddressInfo).port}/hook`;
      const ep = await call(c.base, 'POST', '/v1/webhook-endpoints', { url, events: ['thread.created'] }, c.token);
      assert.equal(ep.status, 201, ep.text);
      assert.equal((await call(c.base, 'POST', '/v1/threads', {}, c.token)).status, 201);
      await until(() => received.length === 1, 'the first attempt', 20_000);
      await exitWithin(worker.child, 10_000);
      await pool.spawnWorker(env);
      await until(() => received.length === 2, 'the re-send after the lease lapsed', 20_000);
      assert.equal(received[1].id, received[0].id, 'the same webhook-id: receivers dedupe');
      let d: any;
      await until(async () => (d = (await call(c.base, 'GET', `/v1/webhook-endpoints/${ep.body.id}/deliveries`, undefined, c.token)).body.data[0])?.status === 'succeeded', 'success recorded', 20_000);
      assert.deepEqual([d.attempts, d.last_status_code], [1, 200]);
      await sleep(1500); // a lease more: nothing is sent a third time
      assert.equal(received.length, 2);
    } finally {
      receiver.closeAllConnections();
      await new Promise<void>((resolve) => receiver.close(() => resolve()));
    }
  });

  it('a worker killed before any output: the next worker executes the run normally', { timeout: 90_000 }, async (t) => {
    if (!TEST_PG_URL) return t.skip(pgOnly);
    const { env, worker, c } = await apiAndWorker();
    const script = { stub: { steps: [{ delay_ms: 4000, text: 'x' }] } };
    const { threadId, runId } = await startRun(c, JSON.stringify(script));
    await waitForEvents(c, runId, (evs) => evs.some((e) => e.type === 'run.segment.start'), 'run.segment.start');

    worker.child.kill('SIGKILL');
    await exitWithin(worker.child, 10_000);
    const before = await eventsOf(c, runId);
    assert.ok(!before.data.some((e) => e.type === 'message.delta' || e.type === 'tool.call'), 'killed before any output');
    await pool.spawnWorker(env);

    const run = await waitTerminal(c, runId, 25_000);
    const { data: events } = await eventsOf(c, runId);
    assert.equal(run.status, 'completed', JSON.stringify(events.map((e) => [e.type, e.data.error_class ?? ''])));
    assertWellFormed(events);
    assert.equal(events.at(-1).type, 'run.completed');
    assert.deepEqual(events.filter((e) => e.type === 'message.delta').map((e) => e.data.content_delta), ['x']);
    const msgs = await call(c.base, 'GET', `/v1/threads/${threadId}/messages`, undefined, c.token);
    assert.deepEqual(msgs.body.map((m: any) => [m.role, m.content]), [['user', JSON.stringify(script)], ['assistant', 'x']]);
    const thread = await call(c.base, 'GET', `/v1/threads/${threadId}`, undefined, c.token);
    assert.equal(thread.body.active_run_id, null);
  });

  it('events of a run created on API B and executed by a worker stream live on API A', { timeout: 90_000 }, async (t) => {
    if (!TEST_PG_URL) return t.skip(pgOnly);
    const env = await pool.env({ postgres: true });
    const apiA = await pool.spawnApi('api', env);
    const apiB = await pool.spawnApi('api', env);
    await pool.spawnWorker(env);
    const token = await register(apiB.base!);
    const onA: Client = { base: apiA.base!, token };
    const onB: Client = { base: apiB.base!, token };

    // Several runs at once, each with tool calls and delays so most events arrive live.
    const script = {
      stub: {
        steps: [
          { delay_ms: 500, tool_call: { name: 'echo', arguments: { text: 'a' } } },
          { delay_ms: 200, tool_call: { name: 'echo', arguments: { text: 'b' } } },
          { delay_ms: 200, text: 'one two three four five six seven eight nine ten' },
        ],
      },
    };
    const runs = await Promise.all([0, 1, 2].map(() => startRun(onB, JSON.stringify(script))));
    const openedAt = Date.now();
    const streams = await Promise.all(runs.map((r) => followSse(onA, r.runId)));

    for (let k = 0; k < runs.length; k++) {
      const frames = streams[k];
      const events = frames.map((f) => f.event);
      assert.deepEqual(frames.map((f) => f.id), frames.map((f) => f.event.seq), 'id: lines equal seq');
      assertWellFormed(events);
      assert.ok(events.every((e) => e.run_id === runs[k].runId));
      assert.equal(events.at(-1).type, 'run.completed');
      assert.equal(
        events.filter((e) => e.type === 'message.delta').map((e) => e.data.content_delta).join(''),
        'one two three four five six seven eight nine ten',
      );
      assert.equal(events.filter((e) => e.type === 'tool.call').length, 2);
      // Live, not only replayed: the stream stayed open while the run went on.
      assert.ok(frames.at(-1)!.at - openedAt >= 500, 'the terminal event arrived live');
      // Exactly what the table holds, as seen from API B.
      const stored = await eventsOf(onB, runs[k].runId);
      assert.deepEqual(events.map((e) => [e.seq, e.type, e.event_id]), stored.data.map((e) => [e.seq, e.type, e.event_id]));
      assert.equal(stored.status, 'completed');
    }
  });

  for (const engine of ['embedded', 'postgres'] as const) {
    for (const phase of ['after output', 'before output'] as const) {
      it(`serve (${engine}): SIGTERM mid-run ${phase} exits 0 in time, and a restart ends the run`, { timeout: 240_000 }, async (t) => {
        if (engine === 'postgres' && !TEST_PG_URL) return t.skip('needs PostgreSQL (ARKLOOP_TEST_DATABASE_URL)');
        const env = { ...(await pool.env({ postgres: engine === 'postgres' })), ...FAST_LEASES };
        const first = await pool.spawnApi('serve', env);
        const c: Client = { base: first.base!, token: await register(first.base!) };
        const steps =
          phase === 'after output'
            ? [{ tool_call: { name: 'echo', arguments: { text: 'hi' } } }, { delay_ms: 12_000, text: 'late' }]
            : [{ delay_ms: 12_000, text: 'x' }];
        const script = { stub: { steps } };
        const { threadId, runId } = await startRun(c, JSON.stringify(script));
        const mark = phase === 'after output' ? 'tool.call' : 'run.segment.start';
        await waitForEvents(c, runId, (evs) => evs.some((e) => e.type === mark), mark);

        const termAt = Date.now();
        first.child.kill('SIGTERM');
        const code = await exitWithin(first.child, 20_000);
        assert.equal(code, 0, first.output().slice(-2000));
        // Well within the 15 s shutdown limit, and without waiting for the model's 12 s delay.
        assert.ok(Date.now() - termAt < 10_000, `shutdown took ${Date.now() - termAt} ms`);
        assert.match(first.output(), /"msg":"stopped"/);

        // After the lease expires the restarted worker takes the run over (§26.6): it had
        // streamed output (a tool call) → internal.worker_lost; it had not → played normally.
        const second = await pool.spawnApi('serve', env);
        const c2: Client = { base: second.base!, token: c.token };
        const run = await waitTerminal(c2, runId, 30_000);
        const { data: events } = await eventsOf(c2, runId);
        assertWellFormed(events);
        if (phase === 'after output') {
          assert.equal(run.status, 'failed', JSON.stringify(events.map((e) => e.type)));
          assert.equal(run.error_class, 'internal.worker_lost');
        } else {
          assert.equal(run.status, 'completed', JSON.stringify(events.map((e) => [e.type, e.data.error_class ?? ''])));
          assert.deepEqual(events.filter((e) => e.type === 'message.delta').map((e) => e.data.content_delta), ['x']);
        }
        const thread = await call(c2.base, 'GET', `/v1/threads/${threadId}`, undefined, c2.token);
        assert.equal(thread.body.active_run_id, null);
        second.child.kill('SIGTERM');
        assert.equal(await exitWithin(second.child, 20_000), 0);
      });
    }
  }
});
