// The dashboard and run details for platform admins (api.md §21.1, §21.6), over real runs of
// the stub model executed by a worker.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { registerUser, startTestApp, type TestApp, type TestUser } from './helpers/app.js';
import { adminCast, expectPadminOnly, type AdminCast } from './helpers/admin.js';
import { expectError } from './helpers/assert.js';
import { newId } from '../src/lib/ids.js';

describe('admin dashboard and run details', () => {
  let t: TestApp;
  let cast: AdminCast;
  let u: TestUser;
  const as = () => ({ token: cast.admin.token });

  async function finishedRun(user: TestUser, content: string) {
    const th = await t.post('/v1/threads', {}, { token: user.token });
    await t.post(`/v1/threads/${th.body.id}/messages`, { content }, { token: user.token });
    const created = await t.post(`/v1/threads/${th.body.id}/runs`, {}, { token: user.token });
    assert.equal(created.status, 201, created.text);
    await t.get(`/v1/runs/${created.body.run_id}/events`, { token: user.token }); // follows to the end
    return { threadId: th.body.id as string, runId: created.body.run_id as string };
  }

  before(async () => {
    t = await startTestApp({}, { worker: true });
    cast = await adminCast(t);
    u = await registerUser(t);
  });
  after(async () => {
    await t.close();
  });

  it('padmin only', async () => {
    await expectPadminOnly(t, cast, 'GET', '/v1/admin/dashboard');
    await expectPadminOnly(t, cast, 'GET', `/v1/admin/runs/${newId()}`);
  });

  it('a run of any account in detail, with its model calls; also once its thread is deleted', async () => {
    const { threadId, runId } = await finishedRun(u, 'hello admin');
    const own = await t.get(`/v1/runs/${runId}`, { token: u.token });
    const res = await t.get(`/v1/admin/runs/${runId}`, as());
    assert.equal(res.status, 200, res.text);
    const { provider_kind, credential_name, persona_model, usage_records, ...detail } = res.body;
    assert.deepEqual(detail, own.body, 'RunDetail as the owner sees it');
    assert.equal(provider_kind, 'stub');
    assert.equal(typeof credential_name === 'string' || credential_name === null, true);
    assert.equal(persona_model === null || typeof persona_model === 'string', true);
    assert.equal(usage_records.length, 1);
    const [rec] = usage_records;
    assert.equal(rec.model, 'stub');
    assert.equal(rec.provider_kind, 'stub');
    assert.equal(rec.input_tokens, detail.total_input_tokens);
    assert.equal(rec.output_tokens, detail.total_output_tokens);
    assert.ok(Date.parse(rec.created_at) > 0);

    assert.equal((await t.del(`/v1/threads/${threadId}`, { token: u.token })).status, 204);
    expectError(await t.get(`/v1/runs/${runId}`, { token: u.token }), 404, 'runs.not_found');
    const after = await t.get(`/v1/admin/runs/${runId}`, as());
    assert.equal(after.status, 200, after.text);
    assert.equal(after.body.run_id, runId);

    expectError(await t.get(`/v1/admin/runs/${newId()}`, as()), 404, 'runs.not_found');
    expectError(await t.get('/v1/admin/runs/nope', as()), 404, 'runs.not_found');
  });

  it('the dashboard counts users, runs today, tokens, cost and active accounts; closed days through the rollup, once', async () => {
    // Runs of earlier days (closed: rolled up on the first read) beside today's.
    const old = await registerUser(t);
    const threeDays = await finishedRun(old, 'three days ago');
    const longAgo = await finishedRun(old, 'long ago');
    const day = 86_400_000;
    await t.ctx.db.updateTable('runs').set({ created_at: new Date(Date.now() - 3 * day) }).where('id', '=', threeDays.runId).execute();
    await t.ctx.db.updateTable('runs').set({ created_at: new Date(Date.now() - 40 * day) }).where('id', '=', longAgo.runId).execute();
    const oracle = async () => {
      const dayStart = new Date(new Date().toISOString().slice(0, 10) + 'T00:00:00Z');
      const since = new Date(dayStart.getTime() - 29 * day);
      const runs = await t.ctx.db.selectFrom('runs').select(['org_id', 'created_by_user_id', 'created_at']).execute();
      return {
        total_runs: runs.length,
        runs_today: runs.filter((r) => r.created_at >= dayStart).length,
        active_orgs: new Set(runs.filter((r) => r.created_at >= since).map((r) => r.org_id)).size,
      };
    };
    const first = (await t.get('/v1/admin/dashboard', as())).body;
    const expected = await oracle();
    assert.deepEqual({ total_runs: first.total_runs, runs_today: first.runs_today, active_orgs: first.active_orgs }, expected);
    const state = await t.ctx.db.selectFrom('run_activity_rollup_state').select('rolled_until').executeTakeFirstOrThrow();
    assert.ok(state.rolled_until !== null, 'closed days were rolled up');
    const rolled = await t.ctx.db.selectFrom('run_activity_daily').selectAll().execute();
    assert.equal(rolled.reduce((n, r) => n + Number(r.run_count), 0), 2, 'the two runs of closed days');

    const v = await registerUser(t);
    await finishedRun(v, 'one');
    await finishedRun(v, 'two');
    const res = await t.get('/v1/admin/dashboard', as());
    assert.equal(res.status, 200, res.text);
    const d = res.body;
    assert.deepEqual({ total_runs: d.total_runs, runs_today: d.runs_today, active_orgs: d.active_orgs }, await oracle());
    assert.equal(d.total_runs, first.total_runs + 2);
    assert.equal(d.runs_today, first.runs_today + 2);
    assert.equal(d.active_orgs, first.active_orgs + 1);
    assert.equal(d.total_users, first.total_users + 1);
    assert.equal(d.active_users_30d, first.active_users_30d + 1);
    assert.ok(d.total_input_tokens > first.total_input_tokens);
    assert.ok(d.total_output_tokens > first.total_output_tokens);
    assert.equal(typeof d.total_cost_usd, 'number');
    const users = await t.ctx.db.selectFrom('users').select('id').execute();
    assert.equal(d.total_users, users.length);
    // Active: signed in with a password or OTP, or created a run in the last 30 days (registration alone is neither).
    assert.equal(d.active_users_30d, 3, 'u, old (a run three days ago) and v');
    assert.equal((await t.post('/v1/auth/login', { login: cast.member.login, password: cast.member.password })).status, 200);
    assert.equal((await t.get('/v1/admin/dashboard', as())).body.active_users_30d, 4, 'and the member who signed in');
  });
});
