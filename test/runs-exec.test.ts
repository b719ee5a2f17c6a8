// Runs executed by a worker with the built-in stub model: the documented event sequence,
// the assistant message, usage, tool calls, retries, failures and cancel.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { registerUser, startTestApp, type TestApp, type TestUser } from './helpers/app.js';

function frames(text: string): any[] {
  return text
    .split('\n\n')
    .filter((f) => f.startsWith('id: '))
    .map((f) => JSON.parse(f.split('\n')[1].slice(6)));
}

describe('runs executed by the worker (stub model)', () => {
  let t: TestApp;
  let u: TestUser;
  before(async () => {
    t = await startTestApp({ ARKLOOP_LLM_RETRY_BASE_DELAY_MS: '10' }, { worker: true });
    await registerUser(t);
    u = await registerUser(t);
  });
  after(async () => { await t.close(); });

  async function run(content: string, body: Record<string, unknown> = {}) {
    const th = await t.post('/v1/threads', {}, { token: u.token });
    await t.post(`/v1/threads/${th.body.id}/messages`, { content }, { token: u.token });
    const created = await t.post(`/v1/threads/${th.body.id}/runs`, body, { token: u.token });
    assert.equal(created.status, 201, created.text);
    const sse = await t.get(`/v1/runs/${created.body.run_id}/events`, { token: u.token });
    return { threadId: th.body.id as string, runId: created.body.run_id as string, events: frames(sse.text) };
  }

  it('answers a plain message with the documented event sequence', async () => {
    const { threadId, runId, events } = await run('hello world');
    assert.deepEqual(
      events.map((e) => e.type),
      ['run.started', 'run.route.selected', 'run.segment.start', 'message.delta', 'message.delta', 'message.delta', 'run.segment.end', 'run.completed'],
    );
    assert.deepEqual(events.map((e) => e.seq), [1, 2, 3, 4, 5, 6, 7, 8]);
    assert.equal(events[1].data.source, 'stub');
    assert.deepEqual(events.filter((e) => e.type === 'message.delta').map((e) => e.data.content_delta), ['[stub] ', 'hello ', 'world']);
    const done = events[7].data;
    assert.ok(done.message_id);
    const msgs = await t.get(`/v1/threads/${threadId}/messages`, { token: u.token });
    assert.deepEqual(msgs.body.map((m: any) => [m.role, m.content]), [['user', 'hello world'], ['assistant', '[stub] hello world']]);
    assert.equal(msgs.body[1].run_id, runId);
    const detail = await t.get(`/v1/runs/${runId}`, { token: u.token });
    assert.equal(detail.body.status, 'completed');
    assert.equal(detail.body.model, 'stub');
    assert.ok(detail.body.total_output_tokens > 0);
    const thread = await t.get(`/v1/threads/${threadId}`, { token: u.token });
    assert.equal(thread.body.active_run_id, null);
    assert.equal(thread.body.title, 'hello world'); // first line of the first user message
  });

  it('runs scripted tool calls and feeds the results back', async () => {
    const script = { stub: { steps: [{ tool_call: { name: 'echo', arguments: { text: 'hi' } } }, { text: 'done' }] } };
    const { events } = await run(JSON.stringify(script));
    const types = events.map((e) => e.type);
    assert.deepEqual(types, [
      'run.started', 'run.route.selected', 'run.segment.start', 'run.segment.end', 'tool.call', 'tool.result',
      'run.segment.start', 'message.delta', 'run.segment.end', 'run.completed',
    ]);
    const call = events.find((e) => e.type === 'tool.call').data;
    const result = events.find((e) => e.type === 'tool.result').data;
    assert.equal(call.tool_call_id, result.tool_call_id);
    assert.equal(call.source, 'builtin');
    assert.deepEqual(result.result, { text: 'hi' });
    assert.equal(result.error, null);
  });

  it('retries a 503 and then answers', async () => {
    const script = { stub: { steps: [{ error: { status: 503, message: 'busy' } }, { text: 'ok' }] } };
    const { events } = await run(JSON.stringify(script));
    const retry = events.find((e) => e.type === 'run.llm.retry');
    assert.ok(retry);
    assert.equal(retry.data.attempt, 1);
    assert.equal(retry.data.status, 503);
    assert.equal(events.at(-1).type, 'run.completed');
  });

  it('fails with the provider error class after the retries', async () => {
    const script = { stub: { steps: [{ error: { status: 401, message: 'bad key' } }] } };
    const { runId, events } = await run(JSON.stringify(script));
    const failed = events.at(-1);
    assert.equal(failed.type, 'run.failed');
    assert.equal(failed.data.error_class, 'provider.auth_failed');
    assert.equal(failed.data.retryable, false);
    const detail = await t.get(`/v1/runs/${runId}`, { token: u.token });
    assert.equal(detail.body.status, 'failed');
    assert.equal(detail.body.error_class, 'provider.auth_failed');
  });

  it('denies tools the persona does not offer', async () => {
    const script = { stub: { steps: [{ tool_call: { name: 'echo', arguments: {} } }] } };
    const { events } = await run(JSON.stringify(script), { persona_id: 'search' });
    const denied = events.find((e) => e.type === 'tool.denied');
    assert.ok(denied, JSON.stringify(events.map((e) => e.type)));
    assert.equal(denied.data.error_class, 'policy.tool_denied');
    assert.equal(events.at(-1).type, 'run.completed');
  });

  it('fails with budget.max_iterations when the model still asks for tools', async () => {
    const script = { stub: { steps: [{ tool_call: { name: 'echo', arguments: {} } }] } };
    const { events } = await run(JSON.stringify(script), { persona_id: 'lite' });
    assert.equal(events.at(-1).type, 'run.failed');
    assert.equal(events.at(-1).data.error_class, 'budget.max_iterations');
  });

  it('cancels a running run promptly', async () => {
    const script = { stub: { steps: [{ delay_ms: 5000, text: 'late' }] } };
    const th = await t.post('/v1/threads', {}, { token: u.token });
    await t.post(`/v1/threads/${th.body.id}/messages`, { content: JSON.stringify(script) }, { token: u.token });
    const created = await t.post(`/v1/threads/${th.body.id}/runs`, {}, { token: u.token });
    // Wait until the worker holds it.
    for (let i = 0; i < 100; i++) {
      const ev = await t.get(`/v1/runs/${created.body.run_id}/events`, { token: u.token, headers: { accept: 'application/json' } });
      if (ev.body.data.some((e: any) => e.type === 'run.segment.start')) break;
      await new Promise((r) => setTimeout(r, 20));
    }
    const started = Date.now();
    assert.equal((await t.post(`/v1/runs/${created.body.run_id}:cancel`, undefined, { token: u.token })).status, 200);
    const sse = await t.get(`/v1/runs/${created.body.run_id}/events`, { token: u.token });
    const evs = frames(sse.text);
    assert.equal(evs.at(-1).type, 'run.cancelled');
    assert.ok(Date.now() - started < 2000);
  });

  async function waitFor(runId: string, type: string) {
    for (let i = 0; i < 200; i++) {
      const ev = await t.get(`/v1/runs/${runId}/events`, { token: u.token, headers: { accept: 'application/json' } });
      if (ev.body.data.some((e: any) => e.type === type)) return ev.body;
      await new Promise((r) => setTimeout(r, 20));
    }
    assert.fail(`no ${type} event`);
  }

  it('cancelling a waiting run keeps the text it streamed before it paused as its message', async () => {
    const script = { stub: { steps: [{ ask_input: 'Go on?' }, { text: 'never' }] } };
    const th = await t.post('/v1/threads', {}, { token: u.token });
    await t.post(`/v1/threads/${th.body.id}/messages`, { content: JSON.stringify(script) }, { token: u.token });
    const created = await t.post(`/v1/threads/${th.body.id}/runs`, {}, { token: u.token });
    const runId = created.body.run_id as string;
    await waitFor(runId, 'run.waiting_for_input');
    for (let i = 0; i < 50 && (await t.get(`/v1/runs/${runId}`, { token: u.token })).body.status !== 'waiting_for_input'; i++) await new Promise((r) => setTimeout(r, 20));
    // What a real model may say before it asks (text, then an ask_user call in the same turn).
    await t.ctx.engine.append(t.ctx.db, runId, 'message.delta', { content_delta: 'Half an answer', content: 'Half an answer', role: 'assistant' });
    assert.equal((await t.post(`/v1/runs/${runId}:cancel`, undefined, { token: u.token })).status, 200);
    const events = frames((await t.get(`/v1/runs/${runId}/events`, { token: u.token })).text);
    const end = events.at(-1);
    assert.equal(end.type, 'run.cancelled');
    assert.ok(end.data.message_id, 'the streamed text became a message');
    const msgs = await t.get(`/v1/threads/${th.body.id}/messages`, { token: u.token });
    assert.deepEqual(msgs.body.map((m: any) => [m.role, m.content, m.id === end.data.message_id]).at(-1), ['assistant', 'Half an answer', true]);
    const detail = await t.get(`/v1/runs/${runId}`, { token: u.token });
    assert.equal(detail.body.status, 'cancelled');
    assert.ok(detail.body.total_input_tokens > 0, 'totals include the calls made before the pause');
    assert.equal((await t.get(`/v1/threads/${th.body.id}`, { token: u.token })).body.active_run_id, null);
  });

  it('pauses for input and resumes with it', async () => {
    const script = { stub: { steps: [{ ask_input: 'Your name?' }, { text: 'thanks' }] } };
    const th = await t.post('/v1/threads', {}, { token: u.token });
    await t.post(`/v1/threads/${th.body.id}/messages`, { content: JSON.stringify(script) }, { token: u.token });
    const { body } = await t.post(`/v1/threads/${th.body.id}/runs`, {}, { token: u.token });
    const waiting = await waitFor(body.run_id, 'run.waiting_for_input');
    assert.equal(waiting.data.find((e: any) => e.type === 'run.waiting_for_input').data.prompt, 'Your name?');
    for (let i = 0; i < 50 && (await t.get(`/v1/runs/${body.run_id}`, { token: u.token })).body.status !== 'waiting_for_input'; i++) await new Promise((r) => setTimeout(r, 20));
    assert.equal((await t.get(`/v1/runs/${body.run_id}`, { token: u.token })).body.status, 'waiting_for_input');
    const big = 'x'.repeat(32769);
    const tooBig = await t.post(`/v1/runs/${body.run_id}/input`, { content: big }, { token: u.token });
    assert.equal(tooBig.status, 400);
    assert.equal(tooBig.body.details.max_bytes, 32768);
    assert.equal((await t.post(`/v1/runs/${body.run_id}/input`, { content: 'Ada' }, { token: u.token })).status, 200);
    const sse = frames((await t.get(`/v1/runs/${body.run_id}/events`, { token: u.token })).text);
    const types = sse.map((e) => e.type);
    assert.ok(types.indexOf('run.input_provided') > types.indexOf('run.waiting_for_input'));
    assert.equal(types.at(-1), 'run.completed');
    assert.deepEqual(sse.map((e) => e.seq), sse.map((_, i) => i + 1));
    const again = await t.post(`/v1/runs/${body.run_id}/input`, { content: 'x' }, { token: u.token });
    assert.equal(again.status, 409);
    assert.equal(again.body.code, 'runs.invalid_state');
  });

  it('retries a thread: the last assistant message is replaced by a new run', async () => {
    const { threadId } = await run('hello again');
    const retried = await t.post(`/v1/threads/${threadId}:retry`, undefined, { token: u.token });
    assert.equal(retried.status, 201, retried.text);
    frames((await t.get(`/v1/runs/${retried.body.run_id}/events`, { token: u.token })).text);
    const msgs = await t.get(`/v1/threads/${threadId}/messages`, { token: u.token });
    assert.deepEqual(msgs.body.map((m: any) => m.role), ['user', 'assistant']);
    assert.equal(msgs.body[1].run_id, retried.body.run_id);
    const alias = await t.post(`/v1/runs/${retried.body.run_id}/retry`, {}, { token: u.token });
    assert.equal(alias.status, 201);
  });

  it('deleting a thread cancels its active run', async () => {
    const script = { stub: { steps: [{ delay_ms: 5000, text: 'late' }] } };
    const th = await t.post('/v1/threads', {}, { token: u.token });
    await t.post(`/v1/threads/${th.body.id}/messages`, { content: JSON.stringify(script) }, { token: u.token });
    const { body } = await t.post(`/v1/threads/${th.body.id}/runs`, {}, { token: u.token });
    await waitFor(body.run_id, 'run.segment.start');
    assert.equal((await t.del(`/v1/threads/${th.body.id}`, { token: u.token })).status, 204);
    for (let i = 0; i < 100; i++) {
      const row = await t.ctx.db.selectFrom('runs').select('status').where('id', '=', body.run_id).executeTakeFirstOrThrow();
      if (row.status === 'cancelled') break;
      await new Promise((r) => setTimeout(r, 20));
    }
    const events = await t.ctx.db.selectFrom('run_events').select(['type', 'data']).where('run_id', '=', body.run_id).orderBy('seq').execute();
    const requested = events.find((e) => e.type === 'run.cancel_requested');
    const cancelled = events.find((e) => e.type === 'run.cancelled');
    assert.equal((requested?.data as any).reason, 'thread_deleted');
    assert.equal((cancelled?.data as any).reason, 'thread_deleted');
    assert.equal((await t.get(`/v1/runs/${body.run_id}`, { token: u.token })).status, 404);
  });

  it('asks the human through the ask_user tool and feeds the answer back as its result', async () => {
    const script = { stub: { steps: [{ tool_call: { name: 'ask_user', arguments: { question: 'Color?' } } }, { text: 'noted' }] } };
    const th = await t.post('/v1/threads', {}, { token: u.token });
    await t.post(`/v1/threads/${th.body.id}/messages`, { content: JSON.stringify(script) }, { token: u.token });
    const { body } = await t.post(`/v1/threads/${th.body.id}/runs`, {}, { token: u.token });
    const waiting = await waitFor(body.run_id, 'run.waiting_for_input');
    const call = waiting.data.find((e: any) => e.type === 'tool.call');
    const wait = waiting.data.find((e: any) => e.type === 'run.waiting_for_input');
    assert.equal(call.data.tool_name, 'ask_user');
    assert.deepEqual(wait.data, { kind: 'input', prompt: 'Color?', tool_call_id: call.data.tool_call_id });
    for (let i = 0; i < 50 && (await t.get(`/v1/runs/${body.run_id}`, { token: u.token })).body.status !== 'waiting_for_input'; i++) await new Promise((r) => setTimeout(r, 20));
    assert.equal((await t.post(`/v1/runs/${body.run_id}/input`, { content: 'blue' }, { token: u.token })).status, 200);
    const events = frames((await t.get(`/v1/runs/${body.run_id}/events`, { token: u.token })).text);
    const types = events.map((e) => e.type);
    const result = events.find((e) => e.type === 'tool.result');
    assert.deepEqual(result.data.result, { answer: 'blue' });
    assert.equal(result.data.tool_call_id, call.data.tool_call_id);
    assert.ok(types.indexOf('run.input_provided') < types.indexOf('tool.result'));
    assert.equal(types.at(-1), 'run.completed');
    assert.deepEqual(events.map((e) => e.seq), events.map((_, i) => i + 1));
  });
});

describe('the worker checks the monthly token quota before each model call', () => {
  let t: TestApp;
  let u: TestUser;
  before(async () => {
    t = await startTestApp({ ARKLOOP_QUOTA_TOKENS_PER_MONTH: '20' }, { worker: true });
    await registerUser(t);
    u = await registerUser(t);
  });
  after(async () => { await t.close(); });

  it('fails the run with budget.tokens_quota_exceeded once a call used the quota up, and refuses the next run (402)', async () => {
    const script = { stub: { steps: [{ tool_call: { name: 'echo', arguments: { text: 'a long enough message to use the quota up' } } }, { text: 'never said' }] } };
    const th = await t.post('/v1/threads', {}, { token: u.token });
    await t.post(`/v1/threads/${th.body.id}/messages`, { content: JSON.stringify(script) }, { token: u.token });
    const created = await t.post(`/v1/threads/${th.body.id}/runs`, {}, { token: u.token });
    assert.equal(created.status, 201, created.text);
    const events = frames((await t.get(`/v1/runs/${created.body.run_id}/events`, { token: u.token })).text);
    assert.deepEqual(events.map((e) => e.type), [
      'run.started', 'run.route.selected', 'run.segment.start', 'run.segment.end', 'tool.call', 'tool.result', 'run.failed',
    ]);
    assert.equal(events.at(-1).data.error_class, 'budget.tokens_quota_exceeded');
    const detail = await t.get(`/v1/runs/${created.body.run_id}`, { token: u.token });
    assert.equal(detail.body.status, 'failed');
    assert.ok(detail.body.total_input_tokens >= 20, 'the first call is accounted');
    const again = await t.post(`/v1/threads/${th.body.id}/runs`, {}, { token: u.token });
    assert.equal(again.status, 402);
    assert.equal(again.body.code, 'budget.tokens_quota_exceeded');
  });
});

describe('dispatch: a run goes straight to a free worker slot of the process, else through the queue', () => {
  let t: TestApp;
  let u: TestUser;
  before(async () => {
    t = await startTestApp({ ARKLOOP_WORKER_CONCURRENCY: '1' }, { worker: true });
    await registerUser(t);
    u = await registerUser(t);
  });
  after(async () => { await t.close(); });

  async function start(content: string) {
    const th = await t.post('/v1/threads', {}, { token: u.token });
    await t.post(`/v1/threads/${th.body.id}/messages`, { content }, { token: u.token });
    const created = await t.post(`/v1/threads/${th.body.id}/runs`, {}, { token: u.token });
    assert.equal(created.status, 201, created.text);
    const job = await t.ctx.db.selectFrom('jobs').select(['state', 'leased_by', 'attempts'])
      .where((eb) => eb.and([eb('type', '=', 'run.execute'), eb(eb.ref('payload'), '@>', JSON.stringify({ run_id: created.body.run_id }) as never)]))
      .executeTakeFirst();
    return { runId: created.body.run_id as string, job };
  }

  it('leases the first run to the local worker in its create statement and queues the next while the slot is busy', async () => {
    const slow = await start(JSON.stringify({ stub: { steps: [{ delay_ms: 400, text: 'slow' }] } }));
    assert.equal(slow.job?.state, 'leased');
    assert.match(String(slow.job?.leased_by), /^worker-/);
    assert.equal(slow.job?.attempts, 1);
    const queued = await start('after the slow one');
    assert.equal(queued.job?.state, 'queued', 'no free slot: the run waits in the queue');
    const a = frames((await t.get(`/v1/runs/${slow.runId}/events`, { token: u.token })).text);
    const b = frames((await t.get(`/v1/runs/${queued.runId}/events`, { token: u.token })).text);
    assert.equal(a.at(-1).type, 'run.completed');
    assert.equal(b.at(-1).type, 'run.completed');
    assert.deepEqual(b.filter((e) => e.type === 'message.delta').map((e) => e.data.content_delta).join(''), '[stub] after the slow one');
    assert.ok(Date.parse(b.at(-1).ts) >= Date.parse(a.at(-1).ts), 'the queued run ran after the slot freed');
    const left = await t.ctx.db.selectFrom('jobs').select('id').where('type', '=', 'run.execute').execute();
    assert.equal(left.length, 0, 'finished runs leave no job behind');
  });

  it('resumes a run after input on the free local slot, or through the queue when the slot is busy', async () => {
    const waiting = await start(JSON.stringify({ stub: { steps: [{ ask_input: 'first?' }, { ask_input: 'second?' }, { text: 'both answered' }] } }));
    const waitStatus = async (id: string) => {
      for (let i = 0; i < 100 && (await t.get(`/v1/runs/${id}`, { token: u.token })).body.status !== 'waiting_for_input'; i++) await new Promise((r) => setTimeout(r, 20));
    };
    const resumeJob = () => t.ctx.db.selectFrom('jobs').select(['state', 'leased_by']).where('type', '=', 'run.execute').executeTakeFirst();
    const slotFree = async () => {
      // The paused job is removed (and its slot freed) just after the pause commits.
      for (let i = 0; i < 100 && (await resumeJob()); i++) await new Promise((r) => setTimeout(r, 10));
      await new Promise((r) => setTimeout(r, 20));
    };
    await waitStatus(waiting.runId);
    await slotFree();
    assert.equal((await t.post(`/v1/runs/${waiting.runId}/input`, { content: 'one' }, { token: u.token })).status, 200);
    const local = await resumeJob();
    assert.ok(!local || local.state === 'leased', 'the free slot took the resume at once');
    await waitStatus(waiting.runId);
    await slotFree();
    const slow = await start(JSON.stringify({ stub: { steps: [{ delay_ms: 400, text: 'slow' }] } }));
    assert.equal(slow.job?.state, 'leased');
    assert.equal((await t.post(`/v1/runs/${waiting.runId}/input`, { content: 'two' }, { token: u.token })).status, 200);
    assert.equal((await t.ctx.db.selectFrom('jobs').select('state').where('state', '=', 'queued').execute()).length, 1, 'the resume waits in the queue');
    const events = frames((await t.get(`/v1/runs/${waiting.runId}/events`, { token: u.token })).text);
    assert.equal(events.at(-1).type, 'run.completed');
    assert.deepEqual(events.filter((e) => e.type === 'run.input_provided').map((e) => e.data.content), ['one', 'two']);
    assert.equal(events.filter((e) => e.type === 'message.delta').map((e) => e.data.content_delta).join(''), 'both answered');
    assert.deepEqual(events.map((e) => e.seq), events.map((_, i) => i + 1));
  });
});
