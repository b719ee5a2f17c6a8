// Users for platform admins (api.md §21.2–21.5): search and paging, detail, update rules
// (self action, last platform admin — also under concurrency), suspension refusing every
// credential at once and reactivation, deletion rules and what deletion frees.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { registerUser, startTestApp, uniq, type TestApp, type TestUser } from './helpers/app.js';
import { adminCast, expectPadminOnly, type AdminCast } from './helpers/admin.js';
import { expectError, expectFieldError } from './helpers/assert.js';
import { createWorkspace, joinAccount } from './helpers/accounts-fixtures.js';
import { newId } from '../src/lib/ids.js';

describe('admin users', () => {
  let t: TestApp;
  let cast: AdminCast;
  let admin: TestUser;
  const as = () => ({ token: admin.token });
  const patchUser = (id: string, body: unknown, token = admin.token) => t.patch(`/v1/admin/users/${id}`, body, { token });
  const apiKeyOf = async (u: TestUser) => {
    const res = await t.post('/v1/api-keys', { name: 'k' }, { token: u.token });
    assert.equal(res.status, 201, res.text);
    return res.body.key as string;
  };
  const refresh = (cookie: string) => t.post('/v1/auth/refresh', undefined, { headers: { cookie: `arkloop_refresh_token=${cookie}` } });
  const login = (u: TestUser) => t.post('/v1/auth/login', { login: u.login, password: u.password });
  const auditOf = (action: string, targetId: string) =>
    t.ctx.db.selectFrom('audit_logs').selectAll().where('action', '=', action).where('target_id', '=', targetId).orderBy('created_at').orderBy('id').execute();
  const activeAdmins = async () =>
    (await t.ctx.db.selectFrom('users').select('id').where('is_platform_admin', '=', true).where('status', '=', 'active').execute()).map((r) => r.id);

  before(async () => {
    t = await startTestApp();
    cast = await adminCast(t);
    admin = cast.admin;
  });
  after(async () => {
    await t.close();
  });

  it('every route is for platform admins only', async () => {
    const id = cast.member.id;
    await expectPadminOnly(t, cast, 'GET', '/v1/admin/users');
    await expectPadminOnly(t, cast, 'GET', `/v1/admin/users/${id}`);
    await expectPadminOnly(t, cast, 'PATCH', `/v1/admin/users/${id}`, { username: 'x' });
    await expectPadminOnly(t, cast, 'DELETE', `/v1/admin/users/${id}`);
    await expectPadminOnly(t, cast, 'GET', '/v1/admin/dashboard');
    assert.notEqual((await t.get(`/v1/admin/users/${id}`, as())).body.username, 'x');
  });

  it('lists newest first, searches login, username and email case-insensitively, filters status, pages by cursor', async () => {
    const tag = uniq('Srch').toLowerCase();
    const a = await registerUser(t, { login: `${tag}a`, email: `first.${tag}@example.com` });
    const b = await registerUser(t, { email: `${tag.toUpperCase()}.B@Example.com` });
    const c = await registerUser(t);
    assert.equal((await patchUser(c.id, { username: `The ${tag.toUpperCase()} one` })).status, 200);
    const d = await registerUser(t, { login: `${tag}d` });
    assert.equal((await patchUser(d.id, { status: 'suspended' })).status, 200);

    const all = await t.get(`/v1/admin/users?q=${tag.toUpperCase()}`, as());
    assert.equal(all.status, 200, all.text);
    assert.deepEqual(all.body.map((u: { id: string }) => u.id), [d.id, c.id, b.id, a.id]);
    assert.deepEqual(Object.keys(all.body[0]).sort(), ['avatar_url', 'created_at', 'email', 'email_verified', 'id', 'is_platform_admin', 'last_login_at', 'locale', 'login', 'status', 'timezone', 'username']);
    assert.equal(all.body[0].status, 'suspended');
    const active = await t.get(`/v1/admin/users?q=${tag}&status=active`, as());
    assert.deepEqual(active.body.map((u: { id: string }) => u.id), [c.id, b.id, a.id]);
    const suspended = await t.get(`/v1/admin/users?q=${tag}&status=suspended`, as());
    assert.deepEqual(suspended.body.map((u: { id: string }) => u.id), [d.id]);

    // Paging: two at a time, `cursor` and its alias `before`.
    const p1 = await t.get(`/v1/admin/users?q=${tag}&limit=2`, as());
    assert.deepEqual(p1.body.map((u: { id: string }) => u.id), [d.id, c.id]);
    const p2 = await t.get(`/v1/admin/users?q=${tag}&limit=2&cursor=${c.id}`, as());
    assert.deepEqual(p2.body.map((u: { id: string }) => u.id), [b.id, a.id]);
    const p3 = await t.get(`/v1/admin/users?q=${tag}&limit=2&before=${a.id}`, as());
    assert.deepEqual(p3.body, []);
    // Wildcards are literal.
    assert.deepEqual((await t.get('/v1/admin/users?q=%25', as())).body, []);
    assert.deepEqual((await t.get('/v1/admin/users?q=_', as())).body.filter((u: { login: string }) => !u.login.includes('_')), []);

    expectFieldError(await t.get('/v1/admin/users?cursor=nope', as()), 'cursor');
    expectFieldError(await t.get(`/v1/admin/users?cursor=${newId()}`, as()), 'cursor');
    expectFieldError(await t.get('/v1/admin/users?status=deleted', as()), 'status');
    expectFieldError(await t.get('/v1/admin/users?limit=0', as()), 'limit');
    expectFieldError(await t.get('/v1/admin/users?limit=201', as()), 'limit');
  });

  it('shows a user with their accounts; unknown and malformed ids answer users.not_found', async () => {
    const owner = await registerUser(t);
    const u = await registerUser(t);
    const ws = await createWorkspace(t, owner);
    await joinAccount(t, owner, ws.id, u, 'admin');
    const res = await t.get(`/v1/admin/users/${u.id}`, as());
    assert.equal(res.status, 200, res.text);
    assert.equal(res.body.login, u.login);
    assert.deepEqual(
      res.body.orgs.map((o: { org_id: string; type: string; role: string }) => [o.org_id, o.type, o.role]),
      [[u.personalAccountId, 'personal', 'owner'], [ws.id, 'workspace', 'admin']],
    );
    for (const o of res.body.orgs) assert.ok(Date.parse(o.joined_at) > 0);
    expectError(await t.get(`/v1/admin/users/${newId()}`, as()), 404, 'users.not_found');
    expectError(await t.get('/v1/admin/users/not-a-uuid', as()), 404, 'users.not_found');
    expectError(await patchUser(newId(), { username: 'x' }), 404, 'users.not_found');
    expectError(await t.del(`/v1/admin/users/${newId()}`, as()), 404, 'users.not_found');
  });

  it('updates profile fields; a new email is unverified unless said otherwise; taken emails answer 409', async () => {
    const u = await registerUser(t);
    const other = await registerUser(t);
    const res = await patchUser(u.id, { username: '  Alice  ', locale: 'fr', timezone: 'europe/paris', email_verified: true });
    assert.equal(res.status, 200, res.text);
    assert.deepEqual([res.body.username, res.body.locale, res.body.timezone, res.body.email_verified], ['Alice', 'fr', 'Europe/Paris', true]);
    assert.equal((await t.get('/v1/me', { token: u.token })).body.username, 'Alice', 'the user sees it at once');

    const moved = await patchUser(u.id, { email: `moved.${u.email}` });
    assert.equal(moved.body.email, `moved.${u.email}`);
    assert.equal(moved.body.email_verified, false);
    const kept = await patchUser(u.id, { email: `again.${u.email}`, email_verified: true });
    assert.equal(kept.body.email_verified, true);
    expectError(await patchUser(u.id, { email: other.email.toUpperCase() }), 409, 'auth.email_taken');
    assert.equal((await patchUser(u.id, { timezone: null })).body.timezone, null);

    expectError(await patchUser(u.id, {}), 400, 'validation.error');
    expectFieldError(await patchUser(u.id, { timezone: 'Mars/Olympus' }), 'timezone');
    expectFieldError(await patchUser(u.id, { email: 'nope' }), 'email');
    expectFieldError(await patchUser(u.id, { status: 'deleted' }), 'status');
    expectFieldError(await patchUser(u.id, { username: '' }), 'username');
    expectFieldError(await patchUser(u.id, { is_platform_admin: 'yes' }), 'is_platform_admin');

    assert.equal((await patchUser(u.id, { locale: 'fr', status: 'active' })).status, 200, 'a change to nothing is fine');
    const audit = await auditOf('admin.user_update', u.id);
    assert.equal(audit.length, 4, 'and writes no audit row');
    assert.equal((audit[0].before_state as { username: string }).username, u.login);
    assert.equal((audit[0].after_state as { username: string }).username, 'Alice');
    assert.equal(audit[0].actor_user_id, admin.id);
  });

  it('refuses self actions and taking away the last active platform admin', async () => {
    expectError(await patchUser(admin.id, { status: 'suspended' }), 409, 'admin.self_action');
    expectError(await patchUser(admin.id, { is_platform_admin: false }), 409, 'admin.self_action');
    expectError(await t.del(`/v1/admin/users/${admin.id}`, as()), 409, 'admin.self_action');
    assert.equal((await patchUser(admin.id, { username: 'Root' })).status, 200, 'other self changes are fine');

    const second = await registerUser(t);
    const promoted = await patchUser(second.id, { is_platform_admin: true });
    assert.equal(promoted.body.is_platform_admin, true);
    assert.equal((await t.get('/v1/admin/users', { token: second.token })).status, 200, 'the new admin is one at once');
    // The second admin takes the first one's role away; the first cannot take it back then.
    assert.equal((await patchUser(admin.id, { is_platform_admin: false }, second.token)).status, 200);
    expectError(await t.get('/v1/admin/users', as()), 403, 'auth.forbidden');
    expectError(await patchUser(second.id, { is_platform_admin: false }, second.token), 409, 'admin.self_action');
    assert.deepEqual(await activeAdmins(), [second.id]);
    assert.equal((await patchUser(admin.id, { is_platform_admin: true }, second.token)).status, 200);
    // A suspended admin does not count as one.
    const third = await registerUser(t);
    assert.equal((await patchUser(third.id, { is_platform_admin: true })).status, 200);
    assert.equal((await patchUser(third.id, { status: 'suspended' })).status, 200);
    assert.equal((await patchUser(second.id, { is_platform_admin: false })).status, 200);
    assert.deepEqual(await activeAdmins(), [admin.id]);
    assert.equal((await patchUser(third.id, { status: 'active', is_platform_admin: false })).status, 200);
  });

  it('two admins demoting each other at once: exactly one stays admin', async () => {
    for (let round = 0; round < 5; round++) {
      const other = await registerUser(t);
      assert.equal((await patchUser(other.id, { is_platform_admin: true })).status, 200);
      const [x, y] = await Promise.all([patchUser(other.id, { is_platform_admin: false }), patchUser(admin.id, { is_platform_admin: false }, other.token)]);
      const statuses = [x.status, y.status].sort();
      assert.equal(statuses[0], 200, `${x.text} ${y.text}`);
      assert.ok([403, 409].includes(statuses[1]), `${x.text} ${y.text}`);
      const left = await activeAdmins();
      assert.equal(left.length, 1, `round ${round}: ${left}`);
      if (left[0] !== admin.id) {
        assert.equal((await patchUser(admin.id, { is_platform_admin: true }, other.token)).status, 200);
        assert.equal((await patchUser(other.id, { is_platform_admin: false })).status, 200);
      }
    }
    // Two admins suspending each other at once, likewise.
    const other = await registerUser(t);
    assert.equal((await patchUser(other.id, { is_platform_admin: true })).status, 200);
    const otherToken = (await login(other)).body.access_token as string;
    const both = await Promise.all([patchUser(other.id, { status: 'suspended' }), patchUser(admin.id, { status: 'suspended' }, otherToken)]);
    assert.equal(both.filter((r) => r.status === 200).length, 1, both.map((r) => r.text).join(' '));
    assert.equal((await activeAdmins()).length, 1);
    const first = await t.ctx.db.selectFrom('users').select('status').where('id', '=', admin.id).executeTakeFirstOrThrow();
    if (first.status === 'suspended') {
      assert.equal((await patchUser(admin.id, { status: 'active' }, otherToken)).status, 200);
      admin.token = (await login(admin)).body.access_token;
    }
  });

  it('suspension refuses the access token, the refresh token, the API key and the password at once; reactivation lets the user back in', async () => {
    const u = await registerUser(t);
    const key = await apiKeyOf(u);
    const second = (await login(u)).body.access_token as string;
    assert.equal((await t.get('/v1/me', { token: u.token })).status, 200); // cached credentials now
    assert.equal((await t.get('/v1/threads', { token: key })).status, 200);

    const res = await patchUser(u.id, { status: 'suspended' });
    assert.equal(res.status, 200, res.text);
    assert.equal(res.body.status, 'suspended');
    expectError(await t.get('/v1/me', { token: u.token }), 401, 'auth.unauthorized');
    expectError(await t.get('/v1/me', { token: second }), 401, 'auth.unauthorized');
    expectError(await t.get('/v1/threads', { token: key }), 401, 'auth.unauthorized');
    expectError(await refresh(u.refreshCookie), 401, 'auth.refresh_token_invalid');
    expectError(await login(u), 403, 'auth.user_suspended');
    expectError(await t.post('/v1/auth/login', { login: u.login, password: 'wrong password' }), 401, 'auth.invalid_credentials');
    const sessions = await t.ctx.db.selectFrom('sessions').select('revoked_at').where('user_id', '=', u.id).execute();
    assert.ok(sessions.length >= 2 && sessions.every((s) => s.revoked_at !== null), 'every session revoked');
    const [audit] = await auditOf('admin.user_update', u.id);
    assert.equal((audit.before_state as { status: string }).status, 'active');
    assert.equal((audit.after_state as { status: string }).status, 'suspended');

    const back = await patchUser(u.id, { status: 'active' });
    assert.equal(back.body.status, 'active');
    const again = await login(u);
    assert.equal(again.status, 200, again.text);
    assert.equal((await t.get('/v1/me', { token: again.body.access_token })).status, 200);
    assert.equal((await t.get('/v1/threads', { token: key })).status, 200, 'API keys work again');
    expectError(await t.get('/v1/me', { token: u.token }), 401, 'auth.unauthorized');
  });

  it('delete: refuses the sole owner of a workspace with members; frees login and email; revokes everything', async () => {
    const u = await registerUser(t);
    const member = await registerUser(t);
    const ws = await createWorkspace(t, u);
    const lonely = await createWorkspace(t, u);
    await joinAccount(t, u, ws.id, member, 'member');
    const key = await apiKeyOf(u);
    const blocked = await t.del(`/v1/admin/users/${u.id}`, as());
    expectError(blocked, 409, 'accounts.last_owner');
    assert.deepEqual(blocked.body.details.account_ids, [ws.id]);
    assert.equal((await t.get('/v1/me', { token: u.token })).status, 200, 'nothing changed');

    assert.equal((await t.patch(`/v1/accounts/${ws.id}/members/${member.id}`, { role: 'owner' }, { token: u.token })).status, 200);
    assert.equal((await t.del(`/v1/admin/users/${u.id}`, as())).status, 204);
    expectError(await t.get(`/v1/admin/users/${u.id}`, as()), 404, 'users.not_found');
    expectError(await t.del(`/v1/admin/users/${u.id}`, as()), 404, 'users.not_found');
    expectError(await patchUser(u.id, { status: 'active' }), 404, 'users.not_found');
    assert.ok(!(await t.get(`/v1/admin/users?q=${u.login}`, as())).body.some((x: { id: string }) => x.id === u.id));
    expectError(await t.get('/v1/me', { token: u.token }), 401, 'auth.unauthorized');
    expectError(await t.get('/v1/threads', { token: key }), 401, 'auth.unauthorized');
    expectError(await refresh(u.refreshCookie), 401, 'auth.refresh_token_invalid');
    expectError(await login(u), 401, 'auth.invalid_credentials');
    const members = await t.get(`/v1/accounts/${ws.id}/members`, { token: member.token });
    assert.deepEqual(members.body.map((m: { user_id: string }) => m.user_id), [member.id]);
    assert.equal((await t.ctx.db.selectFrom('account_memberships').select('account_id').where('account_id', '=', lonely.id).execute()).length, 0);

    // The login and email are free again.
    const reborn = await registerUser(t, { login: u.login, email: u.email });
    assert.notEqual(reborn.id, u.id);
    const [audit] = await auditOf('admin.user_delete', u.id);
    assert.equal(audit.actor_user_id, admin.id);
    assert.equal((audit.before_state as { login: string }).login, u.login);
  });

  it('the dashboard counts users, runs, tokens and active accounts', async () => {
    const res = await t.get('/v1/admin/dashboard', as());
    assert.equal(res.status, 200, res.text);
    const users = await t.ctx.db.selectFrom('users').select('id').where('status', '!=', 'deleted').execute();
    assert.equal(res.body.total_users, users.length);
    assert.ok(res.body.active_users_30d >= 1 && res.body.active_users_30d <= users.length);
    assert.deepEqual(Object.keys(res.body).sort(), ['active_orgs', 'active_users_30d', 'runs_today', 'total_cost_usd', 'total_input_tokens', 'total_output_tokens', 'total_runs', 'total_users']);
  });
});
