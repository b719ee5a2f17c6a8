// §8 Runs endpoints available before the worker: create (one transaction: run, run.started,
// job), lists, detail, events (JSON and SSE replay), cancel of a run no worker holds.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { sql } from 'kysely';
import { newId } from '../src/lib/ids.js';
import { registerUser, startTestApp, type TestApp, type TestUser } from './helpers/app.js';
import { expectAuthRequired, expectError, expectFieldError } from './helpers/assert.js';

function parseSse(text: string): Array<{ id: number; data: any }> {
  return text
    .split('\n\n')
    .filter((f) => f.startsWith('id: '))
    .map((f) => {
      const [idLine, dataLine] = f.split('\n');
      return { id: Number(idLine.slice(4)), data: JSON.parse(dataLine.slice(6)) };
    });
}

describe('runs (API side)', () => {
  let t: TestApp;
  let u: TestUser;
  let other: TestUser;
  before(async () => {
    t = await startTestApp();
    await registerUser(t);
    u = await registerUser(t);
    other = await registerUser(t);
  });
  after(async () => { await t.close(); });

  async function threadWithMessage(user = u, content = 'hello world'): Promise<string> {
    const th = await t.post('/v1/threads', { title: 'r' }, { token: user.token });
    await t.post(`/v1/threads/${th.body.id}/messages`, { content }, { token: user.token });
    return th.body.id;
  }

  it('requires credentials', async () => {
    await expectAuthRequired(t, 'POST', '/v1/threads/01890000-0000-7000-8000-000000000000/runs', {});
    await expectAuthRequired(t, 'GET', '/v1/runs');
  });

  it('creates a run with run.started, a job and the thread’s active run', async () => {
    const threadId = await threadWithMessage();
    const res = await t.post(`/v1/threads/${threadId}/runs`, undefined, { token: u.token });
    assert.equal(res.status, 201, res.text);
    assert.deepEqual(Object.keys(res.body).sort(), ['run_id', 'trace_id']);
    assert.equal(res.body.trace_id, res.headers['x-trace-id']);
    const runId = res.body.run_id;
    const thread = await t.get(`/v1/threads/${threadId}`, { token: u.token });
    assert.equal(thread.body.active_run_id, runId);
    const detail = await t.get(`/v1/runs/${runId}`, { token: u.token });
    assert.equal(detail.status, 200);
    assert.equal(detail.body.status, 'running');
    assert.equal(detail.body.last_seq, 1);
    assert.equal(detail.body.persona_id, null);
    assert.equal(detail.body.created_by_user_name, u.login);
    assert.equal(detail.body.duration_ms, null);
    const events = await t.get(`/v1/runs/${runId}/events`, { token: u.token, headers: { accept: 'application/json' } });
    assert.equal(events.status, 200);
    assert.equal(events.body.status, 'running');
    assert.equal(events.body.data.length, 1);
    assert.equal(events.body.data[0].type, 'run.started');
    assert.equal(events.body.data[0].seq, 1);
    assert.equal(events.body.data[0].data.thread_id, threadId);
    const jobs = await t.ctx.db.selectFrom('jobs').selectAll().where('type', '=', 'run.execute').execute();
    assert.ok(jobs.some((j) => (j.payload as { run_id: string }).run_id === runId));
    // one active run per thread
    const busy = await t.post(`/v1/threads/${threadId}/runs`, {}, { token: u.token });
    expectError(busy, 409, 'runs.thread_busy');
    assert.equal(busy.body.details.active_run_id, runId);
  });

  it('replays events over SSE with id lines, honouring after_seq and Last-Event-ID', async () => {
    const threadId = await threadWithMessage();
    const { body } = await t.post(`/v1/threads/${threadId}/runs`, {}, { token: u.token });
    const sse = await t.get(`/v1/runs/${body.run_id}/events?follow=false`, { token: u.token });
    assert.equal(sse.status, 200);
    assert.match(String(sse.headers['content-type']), /^text\/event-stream/);
    assert.equal(sse.headers['cache-control'], 'no-cache');
    assert.equal(sse.headers['x-accel-buffering'], 'no');
    const frames = parseSse(sse.text);
    assert.deepEqual(frames.map((f) => f.id), [1]);
    assert.equal(frames[0].data.type, 'run.started');
    assert.deepEqual(Object.keys(frames[0].data).sort(), ['created_at', 'data', 'event_id', 'run_id', 'seq', 'ts', 'type']);
    const after = await t.get(`/v1/runs/${body.run_id}/events?follow=false&after_seq=1`, { token: u.token });
    assert.deepEqual(parseSse(after.text), []);
    const viaHeader = await t.get(`/v1/runs/${body.run_id}/events?follow=false`, { token: u.token, headers: { 'last-event-id': '1' } });
    assert.deepEqual(parseSse(viaHeader.text), []);
    const viaQueryToken = await t.get(`/v1/runs/${body.run_id}/events?follow=false&access_token=${u.token}`);
    assert.equal(parseSse(viaQueryToken.text).length, 1);
  });

  it('cancels a run no worker holds: cancel_requested then cancelled, thread freed; then 409', async () => {
    const threadId = await threadWithMessage();
    const { body } = await t.post(`/v1/threads/${threadId}/runs`, {}, { token: u.token });
    const res = await t.post(`/v1/runs/${body.run_id}:cancel`, undefined, { token: u.token });
    assert.equal(res.status, 200, res.text);
    assert.deepEqual(res.body, { ok: true });
    const detail = await t.get(`/v1/runs/${body.run_id}`, { token: u.token });
    assert.equal(detail.body.status, 'cancelled');
    assert.equal(detail.body.cancel_requested, true);
    assert.ok(detail.body.cancelled_at);
    assert.equal(typeof detail.body.duration_ms, 'number');
    const sse = await t.get(`/v1/runs/${body.run_id}/events`, { token: u.token }); // follow=true closes at the terminal event
    assert.deepEqual(parseSse(sse.text).map((f) => f.data.type), ['run.started', 'run.cancel_requested', 'run.cancelled']);
    const thread = await t.get(`/v1/threads/${threadId}`, { token: u.token });
    assert.equal(thread.body.active_run_id, null);
    expectError(await t.post(`/v1/runs/${body.run_id}/cancel`, undefined, { token: u.token }), 409, 'runs.invalid_state');
    const audit = await t.ctx.db.selectFrom('audit_logs').selectAll().where('action', '=', 'run.cancel').where('target_id', '=', body.run_id).execute();
    assert.equal(audit.length, 1);
  });

  it('pages through runs created within one millisecond without skipping any', async () => {
    const threadId = await threadWithMessage();
    for (const m of ['.500100', '.500400', '.500456', '.500999']) {
      await t.ctx.db.insertInto('runs').values({
        id: newId(), org_id: u.personalAccountId, thread_id: threadId, created_by_user_id: u.id, status: 'completed', trace_id: 't',
        created_at: sql`${'2030-01-01 00:00:00' + m + '+00'}::timestamptz` as never,
      }).execute();
    }
    for (const path of [`/v1/threads/${threadId}/runs`, `/v1/runs?thread_id=${threadId}`]) {
      const all = (await t.get(`${path}${path.includes('?') ? '&' : '?'}limit=200`, { token: u.token })).body.map((r: { run_id: string }) => r.run_id);
      assert.equal(all.length, 4);
      const seen: string[] = [];
      let before = '';
      for (let i = 0; i < 10; i++) {
        const page = (await t.get(`${path}${path.includes('?') ? '&' : '?'}limit=1${before ? `&before=${before}` : ''}`, { token: u.token })).body;
        if (!page.length) break;
        seen.push(page[0].run_id);
        before = page[0].run_id;
      }
      assert.deepEqual(seen, all, path);
    }
  });

  it('lists runs of a thread and of the account, newest first, with filters and cursors', async () => {
    const threadId = await threadWithMessage();
    const ids: string[] = [];
    for (let i = 0; i < 3; i++) {
      const r = await t.post(`/v1/threads/${threadId}/runs`, {}, { token: u.token });
      ids.push(r.body.run_id);
      await t.post(`/v1/runs/${r.body.run_id}:cancel`, undefined, { token: u.token });
    }
    const list = await t.get(`/v1/threads/${threadId}/runs`, { token: u.token });
    assert.deepEqual(list.body.map((r: any) => r.run_id), [...ids].reverse());
    const page = await t.get(`/v1/threads/${threadId}/runs?limit=1&before=${ids[2]}`, { token: u.token });
    assert.deepEqual(page.body.map((r: any) => r.run_id), [ids[1]]);
    const all = await t.get(`/v1/runs?status=cancelled&thread_id=${threadId}`, { token: u.token });
    assert.deepEqual(all.body.map((r: any) => r.run_id), [...ids].reverse());
    expectFieldError(await t.get('/v1/runs?status=sleeping', { token: u.token }), 'status');
    expectFieldError(await t.get('/v1/runs?before=nope', { token: u.token }), 'before');
    expectFieldError(await t.get('/v1/runs?limit=0', { token: u.token }), 'limit');
  });

  it('refuses bad input and keeps other accounts out', async () => {
    const threadId = await threadWithMessage();
    expectError(await t.post('/v1/threads/nope/runs', {}, { token: u.token }), 404, 'threads.not_found');
    expectError(await t.post(`/v1/threads/${threadId}/runs`, {}, { token: other.token }), 404, 'threads.not_found');
    expectError(await t.post(`/v1/threads/${threadId}/runs`, { persona_id: 'nobody' }, { token: u.token }), 404, 'personas.not_found');
    expectError(await t.post(`/v1/threads/${threadId}/runs`, { model: 'nope^x' }, { token: u.token }), 404, 'policy.route_not_found');
    expectError(await t.post(`/v1/threads/${threadId}/runs`, { route_id: '01890000-0000-7000-8000-000000000000' }, { token: u.token }), 404, 'policy.route_not_found');
    expectFieldError(await t.post(`/v1/threads/${threadId}/runs`, { route_id: 'x' }, { token: u.token }), 'route_id');
    expectFieldError(await t.post(`/v1/threads/${threadId}/runs`, { persona_id: 5 }, { token: u.token }), 'persona_id');
    const empty = await t.post('/v1/threads', {}, { token: u.token });
    expectError(await t.post(`/v1/threads/${empty.body.id}/runs`, {}, { token: u.token }), 400, 'runs.no_user_message');
    const { body } = await t.post(`/v1/threads/${threadId}/runs`, { persona_id: 'lite' }, { token: u.token });
    assert.equal((await t.get(`/v1/runs/${body.run_id}`, { token: u.token })).body.persona_id, 'lite@1');
    expectError(await t.get(`/v1/runs/${body.run_id}`, { token: other.token }), 404, 'runs.not_found');
    expectError(await t.get(`/v1/runs/${body.run_id}/events`, { token: other.token }), 404, 'runs.not_found');
    expectError(await t.post(`/v1/runs/${body.run_id}:cancel`, undefined, { token: other.token }), 404, 'runs.not_found');
    expectError(await t.get('/v1/runs/not-a-uuid', { token: u.token }), 404, 'runs.not_found');
    assert.deepEqual((await t.get('/v1/runs', { token: other.token })).body, []);
  });

  it('enforces monthly quotas (402) and the concurrent-run limit (429)', async () => {
    const limited = await startTestApp({ ARKLOOP_LIMIT_CONCURRENT_RUNS: '1', ARKLOOP_QUOTA_RUNS_PER_MONTH: '2' });
    try {
      await registerUser(limited);
      const user = await registerUser(limited);
      const mk = async () => {
        const th = await limited.post('/v1/threads', {}, { token: user.token });
        await limited.post(`/v1/threads/${th.body.id}/messages`, { content: 'x' }, { token: user.token });
        return th.body.id as string;
      };
      const a = await mk();
      const b = await mk();
      const first = await limited.post(`/v1/threads/${a}/runs`, {}, { token: user.token });
      assert.equal(first.status, 201);
      const second = await limited.post(`/v1/threads/${b}/runs`, {}, { token: user.token });
      expectError(second, 429, 'limit.concurrent_runs');
      assert.deepEqual([second.body.details.limit, second.body.details.active], [1, 1]);
      assert.equal(second.headers['retry-after'], '1');
      await limited.post(`/v1/runs/${first.body.run_id}:cancel`, undefined, { token: user.token });
      assert.equal((await limited.post(`/v1/threads/${b}/runs`, {}, { token: user.token })).status, 201);
      const c = await mk();
      expectError(await limited.post(`/v1/threads/${c}/runs`, {}, { token: user.token }), 402, 'budget.runs_quota_exceeded');
    } finally {
      await limited.close();
    }
  });

  it('refuses runs when the account has no credits', async () => {
    const threadId = await threadWithMessage();
    const balance = await t.get('/v1/me/credits', { token: u.token });
    await t.ctx.db.updateTable('credit_balances').set({ balance: 0 }).where('org_id', '=', u.personalAccountId).execute();
    expectError(await t.post(`/v1/threads/${threadId}/runs`, {}, { token: u.token }), 402, 'budget.insufficient_credits');
    await t.ctx.db.updateTable('credit_balances').set({ balance: balance.body.balance }).where('org_id', '=', u.personalAccountId).execute();
  });

  it('read_all holders list every run of the account but read events only of visible threads', async () => {
    const owner = await registerUser(t);
    const member = await registerUser(t);
    const ws = await t.post('/v1/accounts', { slug: `runs-${Date.now().toString(36)}`, name: 'Runs WS' }, { token: owner.token });
    const inv = await t.post(`/v1/accounts/${ws.body.id}/invitations`, { email: member.email, role: 'member' }, { token: owner.token });
    await t.post(`/v1/account-invitations/${inv.body.token}/accept`, undefined, { token: member.token });
    const m = { token: member.token, headers: { 'x-account-id': ws.body.id } };
    const o = { token: owner.token, headers: { 'x-account-id': ws.body.id } };
    const th = await t.post('/v1/threads', { title: 'private to member' }, m);
    await t.post(`/v1/threads/${th.body.id}/messages`, { content: 'hi' }, m);
    const created = await t.post(`/v1/threads/${th.body.id}/runs`, {}, m);
    assert.equal(created.status, 201);
    const ownerList = await t.get('/v1/runs', o);
    assert.deepEqual(ownerList.body.map((r: any) => r.run_id), [created.body.run_id]);
    assert.equal((await t.get(`/v1/runs/${created.body.run_id}`, o)).status, 200);
    expectError(await t.get(`/v1/runs/${created.body.run_id}/events`, o), 404, 'runs.not_found');
    expectError(await t.post(`/v1/runs/${created.body.run_id}:cancel`, undefined, o), 404, 'runs.not_found');
    // A member without read_all sees only runs of threads visible to them.
    const th2 = await t.post('/v1/threads', {}, o);
    await t.post(`/v1/threads/${th2.body.id}/messages`, { content: 'hi' }, o);
    const ownerRun = await t.post(`/v1/threads/${th2.body.id}/runs`, {}, o);
    const memberList = await t.get('/v1/runs', m);
    assert.deepEqual(memberList.body.map((r: any) => r.run_id), [created.body.run_id]);
    expectError(await t.get(`/v1/runs/${ownerRun.body.run_id}`, m), 404, 'runs.not_found');
  });

  it('replays an idempotent run creation instead of starting a second run', async () => {
    const threadId = await threadWithMessage();
    const headers = { 'idempotency-key': `run-${Date.now()}` };
    const first = await t.post(`/v1/threads/${threadId}/runs`, {}, { token: u.token, headers });
    const again = await t.post(`/v1/threads/${threadId}/runs`, {}, { token: u.token, headers });
    assert.equal(first.status, 201);
    assert.equal(again.status, 201);
    assert.equal(again.body.run_id, first.body.run_id);
    assert.equal(again.headers['idempotent-replayed'], 'true');
    const runs = await t.get(`/v1/threads/${threadId}/runs`, { token: u.token });
    assert.equal(runs.body.length, 1);
  });

  it('refuses input to a run that is not waiting, and bad event-stream parameters', async () => {
    const threadId = await threadWithMessage();
    const { body } = await t.post(`/v1/threads/${threadId}/runs`, {}, { token: u.token });
    const running = await t.post(`/v1/runs/${body.run_id}/input`, { content: 'x' }, { token: u.token });
    expectError(running, 409, 'runs.invalid_state');
    assert.equal(running.body.details.status, 'running');
    expectFieldError(await t.post(`/v1/runs/${body.run_id}/input`, { content: '' }, { token: u.token }), 'content');
    expectFieldError(await t.post(`/v1/runs/${body.run_id}/input`, {}, { token: u.token }), 'content');
    expectError(await t.post(`/v1/runs/${body.run_id}/input`, { content: 'x' }, { token: other.token }), 404, 'runs.not_found');
    const json = { token: u.token, headers: { accept: 'application/json' } };
    expectFieldError(await t.get(`/v1/runs/${body.run_id}/events?after_seq=-1`, json), 'after_seq');
    expectFieldError(await t.get(`/v1/runs/${body.run_id}/events?limit=0`, json), 'limit');
    expectFieldError(await t.get(`/v1/runs/${body.run_id}/events?limit=1001`, json), 'limit');
    expectFieldError(await t.get(`/v1/runs/${body.run_id}/events?follow=maybe`, json), 'follow');
    expectFieldError(await t.get(`/v1/runs/${body.run_id}/events?after_seq=99999999999999999999`, json), 'after_seq');
    // A Last-Event-ID past any seq just means nothing newer.
    const past = await t.get(`/v1/runs/${body.run_id}/events?follow=false`, { token: u.token, headers: { 'last-event-id': '99999999999999999999' } });
    assert.equal(past.status, 200);
    assert.equal(past.text, '');
    await t.post(`/v1/runs/${body.run_id}:cancel`, undefined, { token: u.token });
  });
});
