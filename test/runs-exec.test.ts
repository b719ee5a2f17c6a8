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
});
