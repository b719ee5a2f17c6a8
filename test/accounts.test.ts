import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { registerUser, type TestApp, type TestUser } from './helpers/app.js';
import { startIdentityApp } from './helpers/identity-app.js';
import { expectAuthRequired, expectError, expectFieldError } from './helpers/assert.js';
import { NIL_UUID, auditRows, createWorkspace, inAccount, joinAccount, workspaceWithRoles } from './helpers/accounts-fixtures.js';
import { newId } from '../src/lib/ids.js';

const ISO = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$/;

describe('accounts (§11.1–§11.8)', () => {
  let t: TestApp;
  let platformAdmin: TestUser;
  before(async () => {
    // The identity app adds test-only `user+key` probe routes (to see API keys refused).
    t = await startIdentityApp({}, { probes: true });
    platformAdmin = await registerUser(t); // the first user becomes platform admin
  });
  after(async () => { await t.close(); });

  describe('POST /v1/accounts', () => {
    it('creates a workspace, makes the caller owner, grants credits and audits', async () => {
      const u = await registerUser(t);
      const res = await t.post('/v1/accounts', { slug: 'acme-co', name: '  Acme Co  ', extra: 'ignored' }, { token: u.token });
      assert.equal(res.status, 201, res.text);
      assert.deepEqual(Object.keys(res.body).sort(), ['created_at', 'id', 'name', 'slug', 'type', 'updated_at']);
      assert.equal(res.body.slug, 'acme-co');
      assert.equal(res.body.name, 'Acme Co');
      assert.equal(res.body.type, 'workspace');
      assert.match(res.body.created_at, ISO);
      assert.match(res.body.updated_at, ISO);

      const got = await t.get(`/v1/accounts/${res.body.id}`, { token: u.token });
      assert.equal(got.status, 200);
      assert.equal(got.body.role, 'owner');

      const credits = await t.get('/v1/me/credits', inAccount(u, res.body.id));
      assert.equal(credits.status, 200, credits.text);
      assert.equal(credits.body.org_id, res.body.id);
      assert.equal(credits.body.balance, await t.ctx.settings.int('credit.initial_grant'));
      assert.equal(credits.body.transactions[0].reference_type, 'initial_grant');

      const rows = await auditRows(t, 'account.create', res.body.id);
      assert.equal(rows.length, 1);
      assert.equal(rows[0].actor_user_id, u.id);
      assert.equal(rows[0].target_type, 'account');
      assert.equal(rows[0].target_id, res.body.id);
      assert.equal(rows[0].trace_id, res.headers['x-trace-id']);
    });

    it('answers 409 accounts.slug_taken for a used or personal-form slug', async () => {
      const u = await registerUser(t);
      const other = await registerUser(t);
      await createWorkspace(t, other).then(async (ws) => {
        expectError(await t.post('/v1/accounts', { slug: ws.slug, name: 'x' }, { token: u.token }), 409, 'accounts.slug_taken');
      });
      const personal = await t.get('/v1/me', { token: other.token });
      expectError(await t.post('/v1/accounts', { slug: personal.body.org_slug, name: 'x' }, { token: u.token }), 409, 'accounts.slug_taken');
      expectError(await t.post('/v1/accounts', { slug: 'u-0123456789ab', name: 'x' }, { token: u.token }), 409, 'accounts.slug_taken');
    });

    it('validates slug and name', async () => {
      const u = await registerUser(t);
      const post = (body: unknown) => t.post('/v1/accounts', body, { token: u.token });
      expectFieldError(await post({ name: 'x' }), 'slug');
      expectFieldError(await post({ slug: 'good-slug' }), 'name');
      expectFieldError(await post({ slug: 'ab', name: 'x' }), 'slug');
      expectFieldError(await post({ slug: 'a'.repeat(65), name: 'x' }), 'slug');
      expectFieldError(await post({ slug: 'Upper', name: 'x' }), 'slug');
      expectFieldError(await post({ slug: '-lead', name: 'x' }), 'slug');
      expectFieldError(await post({ slug: 'trail-', name: 'x' }), 'slug');
      expectFieldError(await post({ slug: 'has space', name: 'x' }), 'slug');
      expectFieldError(await post({ slug: 123, name: 'x' }), 'slug');
      expectFieldError(await post({ slug: 'fine-slug', name: '   ' }), 'name');
      expectFieldError(await post({ slug: 'fine-slug', name: 'n'.repeat(101) }), 'name');
      expectFieldError(await post({ slug: 'fine-slug', name: null }), 'name');
      expectError(await t.post('/v1/accounts', undefined, { token: u.token, raw: 'not json', headers: { 'content-type': 'application/json' } }), 422, 'validation.error');
      const ok = await post({ slug: 'abc', name: 'n'.repeat(100) });
      assert.equal(ok.status, 201, ok.text);
    });

    it('requires a user', async () => {
      await expectAuthRequired(t, 'POST', '/v1/accounts', { slug: 'nobody-slug', name: 'x' });
    });
  });

  describe('GET /v1/accounts/me', () => {
    it('lists the caller’s accounts with roles, personal first then by name', async () => {
      const u = await registerUser(t);
      const other = await registerUser(t);
      const zeta = await createWorkspace(t, u, 'zeta');
      const alpha = await createWorkspace(t, other, 'Alpha');
      await joinAccount(t, other, alpha.id, u, 'member');
      const beta = await createWorkspace(t, u, 'beta');
      const res = await t.get('/v1/accounts/me', { token: u.token });
      assert.equal(res.status, 200);
      assert.deepEqual(
        res.body.map((a: any) => [a.id, a.type, a.role]),
        [
          [u.personalAccountId, 'personal', 'owner'],
          [alpha.id, 'workspace', 'member'],
          [beta.id, 'workspace', 'owner'],
          [zeta.id, 'workspace', 'owner'],
        ],
      );
      assert.equal(res.body[0].name, u.login);
      assert.equal(res.body[0].slug, 'u-' + u.id.replace(/-/g, '').slice(0, 12));
      assert.deepEqual(Object.keys(res.body[0]).sort(), ['created_at', 'id', 'name', 'role', 'slug', 'type', 'updated_at']);
    });

    it('requires a user', async () => {
      await expectAuthRequired(t, 'GET', '/v1/accounts/me');
    });
  });

  describe('GET /v1/accounts/{account_id}', () => {
    it('returns the account with the caller’s role', async () => {
      const { owner, admin, member, ws } = await workspaceWithRoles(t);
      for (const [u, role] of [[owner, 'owner'], [admin, 'admin'], [member, 'member']] as const) {
        const res = await t.get(`/v1/accounts/${ws.id}`, { token: u.token });
        assert.equal(res.status, 200);
        assert.equal(res.body.id, ws.id);
        assert.equal(res.body.name, ws.name);
        assert.equal(res.body.role, role);
      }
      const personal = await t.get(`/v1/accounts/${owner.personalAccountId}`, { token: owner.token });
      assert.equal(personal.body.type, 'personal');
      assert.equal(personal.body.role, 'owner');
    });

    it('answers 404 accounts.not_found for strangers, unknown and non-UUID ids', async () => {
      const { ws } = await workspaceWithRoles(t);
      const stranger = await registerUser(t);
      expectError(await t.get(`/v1/accounts/${ws.id}`, { token: stranger.token }), 404, 'accounts.not_found');
      expectError(await t.get(`/v1/accounts/${newId()}`, { token: stranger.token }), 404, 'accounts.not_found');
      expectError(await t.get('/v1/accounts/not-a-uuid', { token: stranger.token }), 404, 'accounts.not_found');
      expectError(await t.get(`/v1/accounts/${platformAdmin.personalAccountId}`, { token: stranger.token }), 404, 'accounts.not_found');
    });

    it('lets a platform admin act in any account as owner', async () => {
      const { ws } = await workspaceWithRoles(t);
      const res = await t.get(`/v1/accounts/${ws.id}`, { token: platformAdmin.token });
      assert.equal(res.status, 200);
      assert.equal(res.body.role, 'owner');
      const me = await t.get('/v1/me', inAccount(platformAdmin, ws.id));
      assert.equal(me.body.org_id, ws.id);
      assert.equal(me.body.role, 'owner');
      assert.ok(me.body.permissions.includes('platform.admin'));
      const patch = await t.patch(`/v1/accounts/${ws.id}`, { name: 'Renamed by admin' }, { token: platformAdmin.token });
      assert.equal(patch.status, 200);
      const rows = await auditRows(t, 'account.update', ws.id);
      assert.equal(rows.at(-1)!.actor_user_id, platformAdmin.id);
      assert.equal((rows.at(-1)!.metadata as any).acting_as_platform_admin, true);
    });

    it('is reachable through the /v1/orgs alias', async () => {
      const u = await registerUser(t);
      const ws = await createWorkspace(t, u);
      const res = await t.get(`/v1/orgs/${ws.id}`, { token: u.token });
      assert.equal(res.status, 200);
      assert.equal(res.body.id, ws.id);
    });
  });

  describe('PATCH /v1/accounts/{account_id}', () => {
    it('renames and changes the slug, with before/after audit', async () => {
      const u = await registerUser(t);
      const ws = await createWorkspace(t, u, 'Old name');
      const before = await t.get(`/v1/accounts/${ws.id}`, { token: u.token });
      const res = await t.patch(`/v1/accounts/${ws.id}`, { name: ' New name ', slug: 'new-slug-' + ws.slug.slice(3) }, { token: u.token });
      assert.equal(res.status, 200, res.text);
      assert.equal(res.body.name, 'New name');
      assert.equal(res.body.slug, 'new-slug-' + ws.slug.slice(3));
      assert.equal(res.body.created_at, before.body.created_at);
      assert.ok(res.body.updated_at >= before.body.updated_at);
      assert.equal(res.body.role, undefined);
      const rows = await auditRows(t, 'account.update', ws.id);
      assert.equal(rows.length, 1);
      assert.equal((rows[0].before_state as any).name, 'Old name');
      assert.equal((rows[0].after_state as any).name, 'New name');
      // PUT is PATCH; keeping the own slug is fine.
      const put = await t.put(`/v1/accounts/${ws.id}`, { slug: res.body.slug }, { token: u.token });
      assert.equal(put.status, 200, put.text);
    });

    it('answers 409 accounts.slug_taken and validates the body', async () => {
      const u = await registerUser(t);
      const a = await createWorkspace(t, u);
      const b = await createWorkspace(t, u);
      expectError(await t.patch(`/v1/accounts/${a.id}`, { slug: b.slug }, { token: u.token }), 409, 'accounts.slug_taken');
      expectError(await t.patch(`/v1/accounts/${a.id}`, {}, { token: u.token }), 400, 'validation.error');
      expectError(await t.patch(`/v1/accounts/${a.id}`, { unknown: 1 }, { token: u.token }), 400, 'validation.error');
      expectFieldError(await t.patch(`/v1/accounts/${a.id}`, { name: null }, { token: u.token }), 'name');
      expectFieldError(await t.patch(`/v1/accounts/${a.id}`, { name: '' }, { token: u.token }), 'name');
      expectFieldError(await t.patch(`/v1/accounts/${a.id}`, { slug: 'BAD SLUG' }, { token: u.token }), 'slug');
    });

    it('needs account.manage; strangers get 404', async () => {
      const { member, admin, ws } = await workspaceWithRoles(t);
      const stranger = await registerUser(t);
      expectError(await t.patch(`/v1/accounts/${ws.id}`, { name: 'x' }, { token: member.token }), 403, 'auth.forbidden');
      expectError(await t.patch(`/v1/accounts/${ws.id}`, { name: 'x' }, { token: stranger.token }), 404, 'accounts.not_found');
      const ok = await t.patch(`/v1/accounts/${ws.id}`, { name: 'By admin' }, { token: admin.token });
      assert.equal(ok.status, 200);
    });
  });

  describe('members (§11.5–§11.7)', () => {
    it('lists members oldest first with the AccountMember shape', async () => {
      const { owner, admin, member, ws } = await workspaceWithRoles(t);
      const res = await t.get(`/v1/accounts/${ws.id}/members`, { token: member.token });
      assert.equal(res.status, 200);
      assert.deepEqual(res.body.map((m: any) => [m.user_id, m.role]), [[owner.id, 'owner'], [admin.id, 'admin'], [member.id, 'member']]);
      assert.deepEqual(Object.keys(res.body[0]).sort(), ['account_id', 'created_at', 'email', 'login', 'role', 'user_id', 'username']);
      assert.equal(res.body[1].account_id, ws.id);
      assert.equal(res.body[1].login, admin.login);
      assert.equal(res.body[1].username, admin.login);
      assert.equal(res.body[1].email, admin.email);
      assert.match(res.body[1].created_at, ISO);
    });

    it('changes a role with audit', async () => {
      const { owner, member, ws } = await workspaceWithRoles(t);
      const res = await t.patch(`/v1/accounts/${ws.id}/members/${member.id}`, { role: 'admin' }, { token: owner.token });
      assert.equal(res.status, 200, res.text);
      assert.equal(res.body.user_id, member.id);
      assert.equal(res.body.role, 'admin');
      assert.equal(res.body.login, member.login);
      const me = await t.get('/v1/me', inAccount(member, ws.id));
      assert.equal(me.body.role, 'admin');
      assert.ok(me.body.permissions.includes('account.members.manage'));
      const rows = await auditRows(t, 'account.member_update', ws.id);
      assert.equal(rows.length, 1);
      assert.equal((rows[0].before_state as any).role, 'member');
      assert.equal((rows[0].after_state as any).role, 'admin');
      assert.equal((rows[0].metadata as any).user_id, member.id);
    });

    it('keeps owner grants and removals to owners and protects the last owner', async () => {
      const { owner, admin, member, ws } = await workspaceWithRoles(t);
      expectError(await t.patch(`/v1/accounts/${ws.id}/members/${member.id}`, { role: 'owner' }, { token: admin.token }), 403, 'auth.forbidden');
      expectError(await t.patch(`/v1/accounts/${ws.id}/members/${owner.id}`, { role: 'member' }, { token: admin.token }), 403, 'auth.forbidden');
      expectError(await t.patch(`/v1/accounts/${ws.id}/members/${owner.id}`, { role: 'admin' }, { token: owner.token }), 409, 'accounts.last_owner');
      // admin may still change non-owner roles
      const ok = await t.patch(`/v1/accounts/${ws.id}/members/${member.id}`, { role: 'admin' }, { token: admin.token });
      assert.equal(ok.status, 200);
      // a second owner makes demotion possible
      const grant = await t.patch(`/v1/accounts/${ws.id}/members/${admin.id}`, { role: 'owner' }, { token: owner.token });
      assert.equal(grant.body.role, 'owner');
      const demote = await t.patch(`/v1/accounts/${ws.id}/members/${owner.id}`, { role: 'member' }, { token: owner.token });
      assert.equal(demote.status, 200);
      expectError(await t.patch(`/v1/accounts/${ws.id}/members/${admin.id}`, { role: 'member' }, { token: admin.token }), 409, 'accounts.last_owner');
    });

    it('validates the member update', async () => {
      const { owner, member, ws } = await workspaceWithRoles(t);
      const url = `/v1/accounts/${ws.id}/members/${member.id}`;
      expectFieldError(await t.patch(url, {}, { token: owner.token }), 'role');
      expectFieldError(await t.patch(url, { role: 'superuser' }, { token: owner.token }), 'role');
      expectFieldError(await t.patch(url, { role: 'Admin' }, { token: owner.token }), 'role');
      expectFieldError(await t.patch(url, { role: 1 }, { token: owner.token }), 'role');
      expectError(await t.patch(`/v1/accounts/${ws.id}/members/not-a-uuid`, { role: 'admin' }, { token: owner.token }), 404, 'account_members.not_found');
      const stranger = await registerUser(t);
      expectError(await t.patch(`/v1/accounts/${ws.id}/members/${stranger.id}`, { role: 'admin' }, { token: owner.token }), 404, 'account_members.not_found');
    });

    it('needs account.members.manage (checked before the path id)', async () => {
      const { owner, member, ws } = await workspaceWithRoles(t);
      expectError(await t.patch(`/v1/accounts/${ws.id}/members/${owner.id}`, { role: 'member' }, { token: member.token }), 403, 'auth.forbidden');
      expectError(await t.patch(`/v1/accounts/${ws.id}/members/not-a-uuid`, { role: 'member' }, { token: member.token }), 403, 'auth.forbidden');
      expectError(await t.del(`/v1/accounts/${ws.id}/members/${owner.id}`, { token: member.token }), 403, 'auth.forbidden');
    });

    it('refuses member changes in personal accounts', async () => {
      const u = await registerUser(t);
      expectError(await t.patch(`/v1/accounts/${u.personalAccountId}/members/${u.id}`, { role: 'admin' }, { token: u.token }), 400, 'accounts.personal_account');
      expectError(await t.del(`/v1/accounts/${u.personalAccountId}/members/${u.id}`, { token: u.token }), 400, 'accounts.personal_account');
    });

    it('removes a member, their team places and access, with audit', async () => {
      const { owner, admin, member, ws } = await workspaceWithRoles(t);
      const team = await t.post('/v1/teams', { name: 'Core' }, inAccount(owner, ws.id));
      await t.post(`/v1/teams/${team.body.id}/members`, { user_id: member.id, role: 'member' }, inAccount(owner, ws.id));
      const res = await t.del(`/v1/accounts/${ws.id}/members/${member.id}`, { token: admin.token });
      assert.equal(res.status, 204);
      assert.equal(res.text, '');
      expectError(await t.get(`/v1/accounts/${ws.id}`, { token: member.token }), 404, 'accounts.not_found');
      expectError(await t.get('/v1/me', inAccount(member, ws.id)), 404, 'accounts.not_found');
      const teamMembers = await t.get(`/v1/teams/${team.body.id}/members`, inAccount(owner, ws.id));
      assert.deepEqual(teamMembers.body, []);
      const rows = await auditRows(t, 'account.member_remove', ws.id);
      assert.equal(rows.length, 1);
      assert.equal(rows[0].actor_user_id, admin.id);
      assert.equal((rows[0].before_state as any).user_id, member.id);
      expectError(await t.del(`/v1/accounts/${ws.id}/members/${member.id}`, { token: admin.token }), 404, 'account_members.not_found');
      expectError(await t.del(`/v1/accounts/${ws.id}/members/nope`, { token: admin.token }), 404, 'account_members.not_found');
    });

    it('lets a member leave, protects owners and the last owner', async () => {
      const { owner, admin, member, ws } = await workspaceWithRoles(t);
      expectError(await t.del(`/v1/accounts/${ws.id}/members/${owner.id}`, { token: admin.token }), 403, 'auth.forbidden');
      expectError(await t.del(`/v1/accounts/${ws.id}/members/${owner.id}`, { token: owner.token }), 409, 'accounts.last_owner');
      const leave = await t.del(`/v1/accounts/${ws.id}/members/${member.id}`, { token: member.token });
      assert.equal(leave.status, 204);
      const rows = await auditRows(t, 'account.member_remove', ws.id);
      assert.equal((rows[0].metadata as any).self, true);
      // with a second owner, the first may leave
      await t.patch(`/v1/accounts/${ws.id}/members/${admin.id}`, { role: 'owner' }, { token: owner.token });
      assert.equal((await t.del(`/v1/accounts/${ws.id}/members/${owner.id}`, { token: admin.token })).status, 204);
      const members = await t.get(`/v1/accounts/${ws.id}/members`, { token: admin.token });
      assert.deepEqual(members.body.map((m: any) => m.user_id), [admin.id]);
    });

    it('stops a removed member’s API keys working in that account', async () => {
      const { owner, member, ws } = await workspaceWithRoles(t);
      const key = await t.post('/v1/api-keys', { name: 'k' }, inAccount(member, ws.id));
      assert.equal(key.status, 201, key.text);
      const before = await t.get('/v1/_probe/read', { token: key.body.key });
      assert.equal(before.status, 200, before.text);
      assert.equal(before.body.org_id, ws.id);
      assert.equal((await t.del(`/v1/accounts/${ws.id}/members/${member.id}`, { token: owner.token })).status, 204);
      expectError(await t.get('/v1/_probe/read', { token: key.body.key }), 401, 'auth.unauthorized');
    });

    it('a role change applies to the member’s API keys at once', async () => {
      const { owner, member, ws } = await workspaceWithRoles(t);
      const key = await t.post('/v1/api-keys', { name: 'k' }, inAccount(member, ws.id));
      expectError(await t.get('/v1/_probe/secrets', { token: key.body.key }), 403, 'auth.forbidden');
      await t.patch(`/v1/accounts/${ws.id}/members/${member.id}`, { role: 'admin' }, { token: owner.token });
      const res = await t.get('/v1/_probe/secrets', { token: key.body.key });
      assert.equal(res.status, 200, res.text);
      assert.equal(res.body.role, 'admin');
    });

    it('API keys are refused on account endpoints', async () => {
      const { owner, ws } = await workspaceWithRoles(t);
      const key = await t.post('/v1/api-keys', { name: 'k' }, inAccount(owner, ws.id));
      expectError(await t.get(`/v1/accounts/${ws.id}`, { token: key.body.key }), 403, 'auth.forbidden');
      expectError(await t.get('/v1/accounts/me', { token: key.body.key }), 403, 'auth.forbidden');
      expectError(await t.post('/v1/accounts', { slug: 'by-key', name: 'x' }, { token: key.body.key }), 403, 'auth.forbidden');
    });
  });

  describe('usage (§11.8)', () => {
    it('sums every usage record of the account', async () => {
      const { owner, admin, member, ws } = await workspaceWithRoles(t);
      const now = new Date();
      const rec = (userId: string | null, model: string, input: number, output: number, cost: number, at = now) => ({
        id: newId(),
        org_id: ws.id,
        user_id: userId,
        model,
        input_tokens: input,
        output_tokens: output,
        cost_usd: cost,
        created_at: at,
      });
      await t.ctx.db
        .insertInto('usage_records')
        .values([
          rec(owner.id, 'm-a', 100, 10, 0.5),
          rec(member.id, 'm-b', 200, 20, 1.25),
          rec(null, 'm-a', 1, 1, 0.000001),
          { ...rec(member.id, 'm-a', 5, 5, 5), org_id: member.personalAccountId },
        ])
        .execute();
      const y = now.getUTCFullYear();
      const m = now.getUTCMonth() + 1;
      const sum = await t.get(`/v1/accounts/${ws.id}/usage`, { token: admin.token });
      assert.equal(sum.status, 200, sum.text);
      assert.deepEqual(sum.body, {
        org_id: ws.id,
        year: y,
        month: m,
        total_input_tokens: 301,
        total_output_tokens: 31,
        total_cost_usd: 1.750001,
        record_count: 3,
      });
      const explicit = await t.get(`/v1/accounts/${ws.id}/usage?year=${y}&month=${m}`, { token: owner.token });
      assert.deepEqual(explicit.body, sum.body);
      const other = await t.get(`/v1/accounts/${ws.id}/usage?year=2001&month=1`, { token: owner.token });
      assert.equal(other.body.record_count, 0);

      const day = now.toISOString().slice(0, 10);
      const daily = await t.get(`/v1/accounts/${ws.id}/usage/daily?start=${day}&end=${day}`, { token: owner.token });
      assert.equal(daily.status, 200, daily.text);
      assert.deepEqual(daily.body, [{ date: day, input_tokens: 301, output_tokens: 31, cost_usd: 1.750001, record_count: 3 }]);

      const byModel = await t.get(`/v1/accounts/${ws.id}/usage/by-model`, { token: owner.token });
      assert.equal(byModel.status, 200);
      assert.deepEqual(byModel.body.map((r: any) => [r.model, r.input_tokens, r.record_count]), [['m-b', 200, 1], ['m-a', 101, 2]]);

      // the member's own view is only their own records
      const mine = await t.get('/v1/me/usage', inAccount(member, ws.id));
      assert.equal(mine.body.total_input_tokens, 200);
    });

    it('needs account.usage.read and validates the query', async () => {
      const { owner, member, ws } = await workspaceWithRoles(t);
      for (const p of ['usage', 'usage/daily?start=2024-01-01&end=2024-01-02', 'usage/by-model']) {
        expectError(await t.get(`/v1/accounts/${ws.id}/${p}`, { token: member.token }), 403, 'auth.forbidden');
      }
      expectFieldError(await t.get(`/v1/accounts/${ws.id}/usage?month=13`, { token: owner.token }), 'month');
      expectFieldError(await t.get(`/v1/accounts/${ws.id}/usage?year=abc`, { token: owner.token }), 'year');
      expectFieldError(await t.get(`/v1/accounts/${ws.id}/usage/by-model?month=0`, { token: owner.token }), 'month');
      expectFieldError(await t.get(`/v1/accounts/${ws.id}/usage/daily?end=2024-01-02`, { token: owner.token }), 'start');
      expectFieldError(await t.get(`/v1/accounts/${ws.id}/usage/daily?start=2024-02-01&end=2024-01-02`, { token: owner.token }), 'end');
    });
  });

  describe('current account selection', () => {
    it('X-Account-Id selects a workspace; /v1/me reflects its role and permissions', async () => {
      const { admin, member, ws } = await workspaceWithRoles(t);
      const me = await t.get('/v1/me', inAccount(member, ws.id));
      assert.equal(me.status, 200);
      assert.equal(me.body.org_id, ws.id);
      assert.equal(me.body.org_name, ws.name);
      assert.equal(me.body.org_slug, ws.slug);
      assert.equal(me.body.org_type, 'workspace');
      assert.equal(me.body.role, 'member');
      assert.ok(me.body.permissions.includes('account.members.read'));
      assert.ok(!me.body.permissions.includes('account.members.manage'));
      assert.ok(!me.body.permissions.includes('platform.admin'));
      const adm = await t.get('/v1/me', inAccount(admin, ws.id));
      assert.equal(adm.body.role, 'admin');
      assert.ok(adm.body.permissions.includes('account.members.manage'));
      assert.ok(adm.body.permissions.includes('account.usage.read'));
      const personal = await t.get('/v1/me', { token: member.token });
      assert.equal(personal.body.org_id, member.personalAccountId);
      assert.equal(personal.body.role, 'owner');
      assert.equal(personal.body.org_type, 'personal');
    });

    it('malformed header → 400, non-member account → 404', async () => {
      const { ws } = await workspaceWithRoles(t);
      const stranger = await registerUser(t);
      expectFieldError(await t.get('/v1/me', { token: stranger.token, headers: { 'x-account-id': 'nope' } }), 'X-Account-Id');
      expectFieldError(await t.get('/v1/teams', { token: stranger.token, headers: { 'x-account-id': '1234' } }), 'X-Account-Id');
      expectError(await t.get('/v1/me', inAccount(stranger, ws.id)), 404, 'accounts.not_found');
      expectError(await t.get('/v1/teams', inAccount(stranger, ws.id)), 404, 'accounts.not_found');
      expectError(await t.get('/v1/me', inAccount(stranger, NIL_UUID)), 404, 'accounts.not_found');
    });

    it('the path account wins over X-Account-Id', async () => {
      const { owner, ws } = await workspaceWithRoles(t);
      const res = await t.get(`/v1/accounts/${owner.personalAccountId}`, inAccount(owner, ws.id));
      assert.equal(res.status, 200);
      assert.equal(res.body.id, owner.personalAccountId);
    });
  });

  describe('cross-account isolation', () => {
    it('a stranger gets 404 on every path of another account', async () => {
      const { owner, member, ws } = await workspaceWithRoles(t);
      const stranger = await registerUser(t);
      const opts = { token: stranger.token };
      const base = `/v1/accounts/${ws.id}`;
      const checks: Array<[string, string, unknown?]> = [
        ['GET', base],
        ['PATCH', base, { name: 'x' }],
        ['PUT', base, { name: 'x' }],
        ['GET', `${base}/members`],
        ['PATCH', `${base}/members/${member.id}`, { role: 'admin' }],
        ['DELETE', `${base}/members/${member.id}`],
        ['DELETE', `${base}/members/${stranger.id}`],
        ['GET', `${base}/usage`],
        ['GET', `${base}/usage/daily?start=2024-01-01&end=2024-01-01`],
        ['GET', `${base}/usage/by-model`],
        ['POST', `${base}/invitations`, { email: 'a@example.com', role: 'member' }],
        ['GET', `${base}/invitations`],
        ['GET', `/v1/orgs/${ws.id}/members`],
        ['GET', `/v1/accounts/${owner.personalAccountId}`],
        ['GET', `/v1/accounts/${owner.personalAccountId}/members`],
      ];
      for (const [method, path, body] of checks) {
        const res = await t.request(method, path, body, opts);
        assert.equal(res.status, 404, `${method} ${path} → ${res.status} ${res.text}`);
        expectError(res, 404, 'accounts.not_found');
      }
    });

    it('every account path requires credentials', async () => {
      const { ws } = await workspaceWithRoles(t);
      await expectAuthRequired(t, 'GET', `/v1/accounts/${ws.id}`);
      await expectAuthRequired(t, 'PATCH', `/v1/accounts/${ws.id}`, { name: 'x' });
      await expectAuthRequired(t, 'GET', `/v1/accounts/${ws.id}/members`);
      await expectAuthRequired(t, 'GET', `/v1/accounts/${ws.id}/usage`);
    });
  });
});
