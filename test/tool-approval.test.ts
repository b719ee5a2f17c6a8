// Tool approval (api.md §27.5a, §8.6) through HTTP: a persona lists tools whose every call
// waits for a person; the run pauses with the exact arguments and their hash; approve, deny,
// a wrong id or hash, a second answer, two calls in one turn (asked one at a time), the same
// call later in the run (asked again), a cancel while waiting and a worker restart while waiting.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { registerUser, startTestApp, type TestApp, type TestUser } from './helpers/app.js';
import { expectError, expectFieldError } from './helpers/assert.js';
import { chatChunk, chatSse, chatTextStream, chatUsageChunk, startFakeLlm, type FakeLlm } from './helpers/fake-llm.js';
import { argumentsSha256, canonicalJson } from '../src/tools/approval.js';

const sha = (s: string) => createHash('sha256').update(s, 'utf8').digest('hex');

describe('canonical JSON of tool arguments', () => {
  it('sorts keys by code point at every depth, without whitespace', () => {
    assert.equal(canonicalJson({ b: 1, a: [{ z: true, y: null }], é: 'x', A: 1.5 }), '{"A":1.5,"a":[{"y":null,"z":true}],"b":1,"é":"x"}');
    // U+FF5E sorts before U+1F600 by code point, after it by UTF-16 code unit.
    assert.equal(canonicalJson({ '\u{1F600}': 1, '\uFF5E': 2 }), '{"～":2,"😀":1}');
    assert.equal(argumentsSha256({ text: 'hi', n: { b: 1, a: 2 } }), sha('{"n":{"a":2,"b":1},"text":"hi"}'));
  });
});

describe('tool approval', () => {
  let t: TestApp;
  let worker: TestApp;
  let u: TestUser;
  let openai: FakeLlm;

  before(async () => {
    openai = await startFakeLlm();
    // The API without a worker; the worker is a second app on the same database, so it can be restarted.
    t = await startTestApp();
    worker = await startTestApp({}, { database: t.db.database, worker: true });
    const padmin = await registerUser(t);
    u = await registerUser(t);
    const p = await t.post('/v1/personas', { persona_key: 'careful', display_name: 'Careful', prompt_md: 'Ask first.', tool_approval: ['echo', 'no*'] }, { token: u.token });
    assert.equal(p.status, 201, p.text);
    const prov = await t.post('/v1/llm-providers', { scope: 'platform', name: 'fake', provider: 'openai', api_key: 'sk-fake', base_url: openai.baseUrl }, { token: padmin.token });
    assert.equal(prov.status, 201, prov.text);
  });
  after(async () => {
    await worker.close();
    await t.close();
    await openai.close();
  });

  async function start(content: string, body: Record<string, unknown> = { persona_id: 'careful' }) {
    const th = await t.post('/v1/threads', {}, { token: u.token });
    await t.post(`/v1/threads/${th.body.id}/messages`, { content }, { token: u.token });
    const created = await t.post(`/v1/threads/${th.body.id}/runs`, body, { token: u.token });
    assert.equal(created.status, 201, created.text);
    return created.body.run_id as string;
  }
  const script = (...steps: unknown[]) => JSON.stringify({ stub: { steps } });
  const stubRoute = { persona_id: 'careful', model: 'stub' };

  async function events(runId: string): Promise<any[]> {
    const res = await t.get(`/v1/runs/${runId}/events?follow=false&limit=1000`, { token: u.token, headers: { accept: 'application/json' } });
    assert.equal(res.status, 200, res.text);
    return res.body.data;
  }
  /** Waits (bounded) until the run has `count` events of `type`, and returns the last one. */
  async function waitForEvent(runId: string, type: string, count = 1): Promise<any> {
    for (let i = 0; i < 250; i++) {
      const evs = (await events(runId)).filter((e) => e.type === type);
      if (evs.length >= count) return evs[count - 1];
      await new Promise((r) => setTimeout(r, 20));
    }
    assert.fail(`no ${type} #${count} in ${runId}: ${(await events(runId)).map((e) => e.type).join(', ')}`);
  }
  async function waitForStatus(runId: string, statuses: string[]): Promise<string> {
    for (let i = 0; i < 250; i++) {
      const s = (await t.get(`/v1/runs/${runId}`, { token: u.token })).body.status;
      if (statuses.includes(s)) return s;
      await new Promise((r) => setTimeout(r, 20));
    }
    assert.fail(`run ${runId} never reached ${statuses.join('|')}`);
  }
  const answer = (runId: string, body: unknown) => t.post(`/v1/runs/${runId}/input`, body, { token: u.token });
  const decide = (runId: string, w: any, decision: 'approve' | 'deny') =>
    answer(runId, { approval: { tool_call_id: w.data.tool_call_id, decision, arguments_sha256: w.data.arguments_sha256 } });

  it('approve: the run pauses with the exact arguments and their hash, then the call runs with them', async () => {
    const args = { text: 'hi', nested: { b: 1, a: 2 } };
    const runId = await start(script({ tool_call: { name: 'echo', arguments: args } }, { text: 'done' }), stubRoute);
    const w = await waitForEvent(runId, 'run.waiting_for_input');
    assert.equal(await waitForStatus(runId, ['waiting_for_input']), 'waiting_for_input');
    assert.deepEqual({ ...w.data, tool_call_id: undefined, prompt: undefined }, {
      kind: 'tool_approval', tool_call_id: undefined, prompt: undefined, tool_name: 'echo', arguments: args, arguments_sha256: sha('{"nested":{"a":2,"b":1},"text":"hi"}'),
    });
    assert.equal(typeof w.data.prompt, 'string');
    const before = (await events(runId)).map((e) => e.type);
    assert.ok(!before.includes('tool.result'), 'nothing ran before the approval');
    assert.equal((await decide(runId, w, 'approve')).status, 200);
    assert.equal(await waitForStatus(runId, ['completed', 'failed', 'cancelled']), 'completed');
    const evs = await events(runId);
    const types = evs.map((e) => e.type);
    assert.deepEqual(types.slice(types.indexOf('tool.call')), [
      'tool.call', 'run.waiting_for_input', 'run.input_provided', 'tool.result', 'run.segment.start', 'message.delta', 'run.segment.end', 'run.completed',
    ]);
    const provided = evs.find((e) => e.type === 'run.input_provided').data;
    assert.deepEqual(provided, { kind: 'tool_approval', tool_call_id: w.data.tool_call_id, decision: 'approve', provided_by_user_id: u.id });
    assert.deepEqual(evs.find((e) => e.type === 'tool.result').data.result, args);
    // Single use: a second answer finds the run no longer waiting.
    expectError(await decide(runId, w, 'approve'), 409, 'runs.invalid_state');
  });

  it('a wrong id or hash is 409 runs.approval_mismatch and the run keeps waiting; text is refused; deny reaches the model', async () => {
    const runId = await start(script({ tool_call: { name: 'noop', arguments: { x: 1 } } }, { text: 'after deny' }), stubRoute);
    const w = await waitForEvent(runId, 'run.waiting_for_input');
    await waitForStatus(runId, ['waiting_for_input']);
    expectError(await answer(runId, { approval: { tool_call_id: 'call_other', decision: 'approve', arguments_sha256: w.data.arguments_sha256 } }), 409, 'runs.approval_mismatch');
    expectError(await answer(runId, { approval: { tool_call_id: w.data.tool_call_id, decision: 'approve', arguments_sha256: sha('{"x":2}') } }), 409, 'runs.approval_mismatch');
    expectFieldError(await answer(runId, { content: 'yes please' }), 'content');
    expectFieldError(await answer(runId, { approval: { tool_call_id: w.data.tool_call_id, decision: 'maybe', arguments_sha256: w.data.arguments_sha256 } }), 'approval.decision');
    expectFieldError(await answer(runId, { approval: { tool_call_id: w.data.tool_call_id, decision: 'approve', arguments_sha256: 'ABC' } }), 'approval.arguments_sha256');
    expectFieldError(await answer(runId, {}), 'content');
    expectFieldError(await answer(runId, { content: 'x', approval: { tool_call_id: 'a', decision: 'deny', arguments_sha256: w.data.arguments_sha256 } }), 'content');
    assert.equal((await t.get(`/v1/runs/${runId}`, { token: u.token })).body.status, 'waiting_for_input');

    assert.equal((await decide(runId, w, 'deny')).status, 200);
    assert.equal(await waitForStatus(runId, ['completed', 'failed', 'cancelled']), 'completed');
    const evs = await events(runId);
    const denied = evs.find((e) => e.type === 'tool.denied').data;
    assert.deepEqual([denied.tool_call_id, denied.tool_name, denied.error_class], [w.data.tool_call_id, 'noop', 'policy.approval_denied']);
    assert.ok(!evs.some((e) => e.type === 'tool.result'));
    assert.equal(evs.at(-1).type, 'run.completed');
  });

  it('approval is refused while the run waits for a text answer; tools not on the list run at once', async () => {
    const runId = await start(script({ tool_call: { name: 'ask_user', arguments: { question: 'Name?' } } }, { text: 'hi' }), stubRoute);
    const w = await waitForEvent(runId, 'run.waiting_for_input');
    assert.equal(w.data.kind, 'input');
    await waitForStatus(runId, ['waiting_for_input']);
    expectFieldError(await answer(runId, { approval: { tool_call_id: w.data.tool_call_id, decision: 'approve', arguments_sha256: sha('{}') } }), 'approval');
    assert.equal((await answer(runId, { content: 'Ada' })).status, 200);
    assert.equal(await waitForStatus(runId, ['completed', 'failed', 'cancelled']), 'completed');
  });

  it('two calls in one turn are asked one at a time; none runs before both are answered; results keep the model’s order', async () => {
    const call = (index: number, id: string, name: string, args: string) => chatChunk({ tool_calls: [{ index, id, type: 'function', function: { name, arguments: args } }] });
    openai.reply(
      { sse: chatSse([chatChunk({ role: 'assistant', content: null }), call(0, 'call_a', 'echo', '{"v":"a"}'), call(1, 'call_b', 'noop', '{"v":"b"}'), chatChunk({}, 'tool_calls'), chatUsageChunk(10, 5)]) },
      { sse: chatTextStream(['both answered']) },
    );
    const runId = await start('go', { persona_id: 'careful', model: 'fake^gpt-x' });
    const first = await waitForEvent(runId, 'run.waiting_for_input');
    assert.deepEqual([first.data.tool_call_id, first.data.tool_name], ['call_a', 'echo']);
    await waitForStatus(runId, ['waiting_for_input']);
    assert.equal((await decide(runId, first, 'approve')).status, 200);
    const second = await waitForEvent(runId, 'run.waiting_for_input', 2);
    assert.deepEqual([second.data.tool_call_id, second.data.tool_name, second.data.arguments], ['call_b', 'noop', { v: 'b' }]);
    await waitForStatus(runId, ['waiting_for_input']);
    assert.ok(!(await events(runId)).some((e) => e.type === 'tool.result'), 'the approved call waits for the other answer');
    expectError(await decide(runId, first, 'approve'), 409, 'runs.approval_mismatch');
    assert.equal((await decide(runId, second, 'deny')).status, 200);
    assert.equal(await waitForStatus(runId, ['completed', 'failed', 'cancelled']), 'completed');
    const evs = await events(runId);
    const outcomes = evs.filter((e) => e.type === 'tool.result' || e.type === 'tool.denied').map((e) => [e.type, e.data.tool_call_id]);
    assert.deepEqual(outcomes, [['tool.result', 'call_a'], ['tool.denied', 'call_b']]);
    // The model's next turn sees both outcomes, in order.
    const msgs = openai.requests.at(-1)!.body.messages.filter((m: any) => m.role === 'tool');
    assert.deepEqual(msgs.map((m: any) => m.tool_call_id), ['call_a', 'call_b']);
    assert.deepEqual(JSON.parse(msgs[0].content), { v: 'a' });
    assert.equal(JSON.parse(msgs[1].content).error.error_class, 'policy.approval_denied');
  });

  it('the same call later in the run asks again', async () => {
    const step = { tool_call: { name: 'echo', arguments: { same: true } } };
    const runId = await start(script(step, step, { text: 'end' }), stubRoute);
    const a = await waitForEvent(runId, 'run.waiting_for_input');
    await waitForStatus(runId, ['waiting_for_input']);
    assert.equal((await decide(runId, a, 'approve')).status, 200);
    const b = await waitForEvent(runId, 'run.waiting_for_input', 2);
    assert.equal(b.data.arguments_sha256, a.data.arguments_sha256);
    await waitForStatus(runId, ['waiting_for_input']);
    assert.equal((await decide(runId, b, 'approve')).status, 200);
    assert.equal(await waitForStatus(runId, ['completed', 'failed', 'cancelled']), 'completed');
    assert.equal((await events(runId)).filter((e) => e.type === 'tool.result').length, 2);
  });

  it('a cancel while waiting ends the run cancelled', async () => {
    const runId = await start(script({ tool_call: { name: 'echo', arguments: {} } }, { text: 'never' }), stubRoute);
    const w = await waitForEvent(runId, 'run.waiting_for_input');
    await waitForStatus(runId, ['waiting_for_input']);
    assert.equal((await t.post(`/v1/runs/${runId}/cancel`, {}, { token: u.token })).status, 200);
    assert.equal(await waitForStatus(runId, ['completed', 'failed', 'cancelled']), 'cancelled');
    expectError(await decide(runId, w, 'approve'), 409, 'runs.invalid_state');
  });

  it('survives a worker restart while waiting: a new worker resumes the approved call', async () => {
    const runId = await start(script({ tool_call: { name: 'echo', arguments: { after: 'restart' } } }, { text: 'resumed' }), stubRoute);
    const w = await waitForEvent(runId, 'run.waiting_for_input');
    await waitForStatus(runId, ['waiting_for_input']);
    await worker.close();
    worker = await startTestApp({}, { database: t.db.database, worker: true });
    assert.equal((await decide(runId, w, 'approve')).status, 200);
    assert.equal(await waitForStatus(runId, ['completed', 'failed', 'cancelled']), 'completed');
    const evs = await events(runId);
    assert.deepEqual(evs.find((e) => e.type === 'tool.result').data.result, { after: 'restart' });
    assert.equal(evs.filter((e) => e.type === 'tool.call').length, 1, 'the call is not asked or written twice');
  });
});
