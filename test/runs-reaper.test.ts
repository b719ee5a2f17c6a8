// The reaper: runs over the run timeout and runs waiting for input too long are failed.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { registerUser, startTestApp, type TestApp, type TestUser } from './helpers/app.js';

describe('run time limits', () => {
  let t: TestApp;
  let u: TestUser;
  before(async () => {
    t = await startTestApp(
      { ARKLOOP_RUN_TIMEOUT_MINUTES: '0.01', ARKLOOP_RUN_INPUT_TIMEOUT_MINUTES: '0.01', ARKLOOP_WORKER_REAPER_SECONDS: '0.2' },
      { worker: true },
    );
    await registerUser(t);
    u = await registerUser(t);
  });
  after(async () => { await t.close(); });

  async function runUntilEnd(script: unknown) {
    const th = await t.post('/v1/threads', {}, { token: u.token });
    await t.post(`/v1/threads/${th.body.id}/messages`, { content: JSON.stringify(script) }, { token: u.token });
    const { body } = await t.post(`/v1/threads/${th.body.id}/runs`, {}, { token: u.token });
    const sse = await t.get(`/v1/runs/${body.run_id}/events`, { token: u.token });
    const events = sse.text.split('\n\n').filter((f) => f.startsWith('id: ')).map((f) => JSON.parse(f.split('\n')[1].slice(6)));
    return { runId: body.run_id as string, threadId: th.body.id as string, events };
  }

  it('fails a run over ARKLOOP_RUN_TIMEOUT_MINUTES with run.timeout', async () => {
    const { events, threadId } = await runUntilEnd({ stub: { steps: [{ delay_ms: 10_000, text: 'too late' }] } });
    const last = events.at(-1);
    assert.equal(last.type, 'run.failed');
    assert.equal(last.data.error_class, 'run.timeout');
    assert.equal(last.data.retryable, true);
    assert.deepEqual(events.map((e) => e.seq), events.map((_, i) => i + 1));
    assert.equal((await t.get(`/v1/threads/${threadId}`, { token: u.token })).body.active_run_id, null);
  });

  it('fails a run waiting for input too long with run.input_timeout', async () => {
    const { events } = await runUntilEnd({ stub: { steps: [{ ask_input: 'anyone?' }, { text: 'hi' }] } });
    assert.equal(events.at(-1).type, 'run.failed');
    assert.equal(events.at(-1).data.error_class, 'run.input_timeout');
    assert.ok(events.some((e) => e.type === 'run.waiting_for_input'));
  });
});
