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

  it('the dashboard counts users, runs today, tokens, cost and active accounts', async () => {
    const before = (await t.get('/v1/admin/dashboard', as())).body;
    const v = await registerUser(t);
    await finishedRun(v, 'one');
    await finishedRun(v, 'two');
    const res = await t.get('/v1/admin/dashboard', as());
    assert.equal(res.status, 200, res.text);
    const d = res.body;
    assert.equal(d.total_users, before.total_users + 1);
    assert.equal(d.total_runs, before.total_runs + 2);
    assert.equal(d.runs_today, before.runs_today + 2);
    assert.equal(d.active_orgs, before.active_orgs + 1);
    assert.equal(d.active_users_30d, before.active_users_30d + 1);
    assert.ok(d.total_input_tokens > before.total_input_tokens);
    assert.ok(d.total_output_tokens > before.total_output_tokens);
    const users = await t.ctx.db.selectFrom('users').select('id').execute();
    assert.equal(d.total_users, users.length);
    // Active: signed in with a password or OTP, or created a run (registration alone is neither).
    assert.equal((await t.post('/v1/auth/login', { login: cast.member.login, password: cast.member.password })).status, 200);
    const withLogin = await t.get('/v1/admin/dashboard', as());
    assert.equal(withLogin.body.active_users_30d, 3, 'u and v ran, the member signed in');
    assert.equal(typeof d.total_cost_usd, 'number');
  });
});
