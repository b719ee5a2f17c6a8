// ARKLOOP_RUN_EVENTS_RETENTION_MONTHS: the worker's purge deletes the events of runs that ended
// more than N months ago on the app clock (moved forward here, no sleeps), in batches; recent
// and unfinished runs keep theirs, and a purged run's events endpoint still answers.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { registerUser, startTestApp, type TestApp, type TestUser } from './helpers/app.js';
import { purgeRunEvents, retentionCutoff } from '../src/modules/runs/retention.js';

describe('run event retention', () => {
  let t: TestApp;
  let u: TestUser;
  before(async () => {
    // The reaper would fail the paused run once the clock jumps; it is not what is tested here.
    t = await startTestApp({ ARKLOOP_WORKER_REAPER_SECONDS: '3600' }, { worker: true });
    u = await registerUser(t);
  });
  after(async () => { t.ctx.clock.reset(); await t.close(); });

  async function startRun(content: string): Promise<string> {
    const th = await t.post('/v1/threads', {}, { token: u.token });
    await t.post(`/v1/threads/${th.body.id}/messages`, { content }, { token: u.token });
    const created = await t.post(`/v1/threads/${th.body.id}/runs`, {}, { token: u.token });
    assert.equal(created.status, 201, created.text);
    return created.body.run_id;
  }
  async function waitStatus(runId: string, status: string): Promise<void> {
    for (let i = 0; i < 200; i++) {
      if ((await t.get(`/v1/runs/${runId}`, { token: u.token })).body.status === status) return;
      await new Promise((r) => setTimeout(r, 25));
    }
    assert.fail(`run ${runId} never reached ${status}`);
  }
  const eventsJson = (runId: string) => t.get(`/v1/runs/${runId}/events`, { token: u.token, headers: { accept: 'application/json' } });

  it('the cutoff is calendar months back', () => {
    assert.equal(retentionCutoff(new Date('2026-05-31T12:00:00Z'), 3).toISOString(), '2026-03-03T12:00:00.000Z');
    assert.equal(retentionCutoff(new Date('2026-12-06T00:00:00Z'), 3).toISOString(), '2026-09-06T00:00:00.000Z');
  });

  it('purges old terminal runs in batches, keeps recent and unfinished ones, and the purged run still answers', async () => {
    const paused = await startRun(JSON.stringify({ stub: { steps: [{ ask_input: 'still there?' }] } }));
    await waitStatus(paused, 'waiting_for_input');
    const old = await startRun('an old conversation with several words');
    await waitStatus(old, 'completed');
    const oldEndedBy = Date.now();
    await new Promise((r) => setTimeout(r, 1000));
    const recentStartedAt = Date.now();
    const recent = await startRun('a recent one');
    await waitStatus(recent, 'completed');
    // Runs record their end on the system clock; move the app clock so that "3 months before
    // now" falls between the two ends: old is then past retention, recent is not.
    const cutoff = (oldEndedBy + recentStartedAt) / 2;
    let target = new Date(cutoff);
    target.setUTCMonth(target.getUTCMonth() + 3);
    target = new Date(target.getTime() + cutoff - retentionCutoff(target, 3).getTime()); // month-end clamping
    t.ctx.clock.advance(target.getTime() - Date.now());
    const seen = retentionCutoff(t.ctx.clock.now(), 3).getTime();
    assert.ok(seen > oldEndedBy && seen < recentStartedAt, 'the cutoff lies between the two runs');

    const before = await eventsJson(old);
    assert.ok(before.body.data.length >= 4, before.text);
    const recentBefore = (await eventsJson(recent)).body.data.length;
    const pausedBefore = (await eventsJson(paused)).body.data.length;

    const deleted = await purgeRunEvents(t.ctx, 2); // batches of 2: several DELETEs
    assert.equal(deleted, before.body.data.length);
    assert.equal(await purgeRunEvents(t.ctx, 2), 0, 'nothing left to purge');

    const after = await eventsJson(old);
    assert.equal(after.status, 200);
    assert.deepEqual(after.body.data, []);
    assert.equal(after.body.last_seq, before.body.last_seq, 'last_seq tells how many events there were');
    assert.equal(after.body.status, 'completed');
    const run = await t.get(`/v1/runs/${old}`, { token: u.token });
    assert.equal(run.status, 200);
    assert.equal(run.body.status, 'completed');
    const sse = await t.get(`/v1/runs/${old}/events`, { token: u.token });
    assert.equal(sse.status, 200);
    assert.doesNotMatch(sse.text, /^id: /m, 'the stream ends without events');

    assert.equal((await eventsJson(recent)).body.data.length, recentBefore);
    assert.equal((await eventsJson(paused)).body.data.length, pausedBefore);
    assert.ok(pausedBefore > 0);
  });
});
