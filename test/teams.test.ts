import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { registerUser, startTestApp, type TestApp } from './helpers/app.js';
import { expectAuthRequired, expectError, expectFieldError } from './helpers/assert.js';
import { NIL_UUID, auditRows, createWorkspace, inAccount, joinAccount, workspaceWithRoles } from './helpers/accounts-fixtures.js';
import { newId } from '../src/lib/ids.js';

const ISO = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$/;

async function setTeamLimit(t: TestApp, value: number | null): Promise<void> {
  if (value === null) await t.ctx.db.deleteFrom('platform_settings').where('key', '=', 'limit.team_members').execute();
  else {
    const json = JSON.stringify(value);
    await t.ctx.db
      .insertInto('platform_settings')
      .values({ key: 'limit.team_members', value: json })
      .onConflict((oc) => oc.column('key').doUpdateSet({ value: json }))
      .execute();
  }
  await t.ctx.settings.invalidate();
}

describe('teams (§11.9–§11.15)', () => {
  let t: TestApp;
  before(async () => {
    t = await startTestApp();
    await registerUser(t); // the first user is platform admin; the tests use ordinary users
  });
  after(async () => { await t.close(); });

  async function setup() {
    const roles = await workspaceWithRoles(t);
    const team = await t.post('/v1/teams', { name: 'Core ' + newId().slice(-6) }, inAccount(roles.owner, roles.ws.id));
    assert.equal(team.status, 201, team.text);
    return { ...roles, team: team.body };
  }

  describe('POST /v1/teams', () => {
    it('creates a team in the current account, with audit', async () => {
      const { admin, ws } = await workspaceWithRoles(t);
      const res = await t.post('/v1/teams', { name: '  Platform  ', extra: true }, inAccount(admin, ws.id));
      assert.equal(res.status, 201, res.text);
      assert.deepEqual(Object.keys(res.body).sort(), ['account_id', 'created_at', 'id', 'members_count', 'name']);
      assert.equal(res.body.account_id, ws.id);
      assert.equal(res.body.name, 'Platform');
      assert.equal(res.body.members_count, 0);
      assert.match(res.body.created_at, ISO);
      const rows = await auditRows(t, 'team.create', ws.id);
      assert.equal(rows.length, 1);
      assert.equal(rows[0].target_type, 'team');
      assert.equal(rows[0].target_id, res.body.id);
      assert.equal(rows[0].actor_user_id, admin.id);
    });

    it('without X-Account-Id acts in the personal account', async () => {
      const u = await registerUser(t);
      const res = await t.post('/v1/teams', { name: 'Solo' }, { token: u.token });
      assert.equal(res.status, 201);
      assert.equal(res.body.account_id, u.personalAccountId);
    });

    it('answers 409 teams.name_taken case-insensitively, per account', async () => {
      const { owner, ws } = await workspaceWithRoles(t);
      await t.post('/v1/teams', { name: 'Design' }, inAccount(owner, ws.id));
      expectError(await t.post('/v1/teams', { name: 'design' }, inAccount(owner, ws.id)), 409, 'teams.name_taken');
      expectError(await t.post('/v1/teams', { name: ' DESIGN ' }, inAccount(owner, ws.id)), 409, 'teams.name_taken');
      const elsewhere = await t.post('/v1/teams', { name: 'Design' }, { token: owner.token });
      assert.equal(elsewhere.status, 201);
    });

    it('validates the name', async () => {
      const { owner, ws } = await workspaceWithRoles(t);
      const o = inAccount(owner, ws.id);
      expectFieldError(await t.post('/v1/teams', {}, o), 'name');
      expectFieldError(await t.post('/v1/teams', { name: '' }, o), 'name');
      expectFieldError(await t.post('/v1/teams', { name: '   ' }, o), 'name');
      expectFieldError(await t.post('/v1/teams', { name: 'x'.repeat(101) }, o), 'name');
      expectFieldError(await t.post('/v1/teams', { name: 42 }, o), 'name');
      expectFieldError(await t.post('/v1/teams', { name: null }, o), 'name');
    });

    it('needs account.members.manage', async () => {
      const { member, ws } = await workspaceWithRoles(t);
      expectError(await t.post('/v1/teams', { name: 'Nope' }, inAccount(member, ws.id)), 403, 'auth.forbidden');
      // permission comes before validation
      expectError(await t.post('/v1/teams', {}, inAccount(member, ws.id)), 403, 'auth.forbidden');
      await expectAuthRequired(t, 'POST', '/v1/teams', { name: 'x' });
    });
  });

  describe('GET /v1/teams and /v1/teams/{team_id}', () => {
    it('lists the current account’s teams by name with member counts', async () => {
      const { owner, member, ws } = await workspaceWithRoles(t);
      const o = inAccount(owner, ws.id);
      const b = await t.post('/v1/teams', { name: 'beta' }, o);
      const a = await t.post('/v1/teams', { name: 'Alpha' }, o);
      const c = await t.post('/v1/teams', { name: 'charlie' }, o);
      await t.post(`/v1/teams/${b.body.id}/members`, { user_id: member.id, role: 'member' }, o);
      await t.post(`/v1/teams/${b.body.id}/members`, { user_id: owner.id, role: 'admin' }, o);
      const res = await t.get('/v1/teams', inAccount(member, ws.id));
      assert.equal(res.status, 200);
      assert.deepEqual(res.body.map((x: any) => [x.id, x.members_count]), [[a.body.id, 0], [b.body.id, 2], [c.body.id, 0]]);
      const personal = await t.get('/v1/teams', { token: owner.token });
      assert.deepEqual(personal.body, []);
    });

    it('reads one team; other accounts’ and unknown teams are 404', async () => {
      const { owner, member, ws, team } = await setup();
      const res = await t.get(`/v1/teams/${team.id}`, inAccount(member, ws.id));
      assert.equal(res.status, 200);
      assert.deepEqual(res.body, team);
      // the same user in another current account does not see it
      expectError(await t.get(`/v1/teams/${team.id}`, { token: owner.token }), 404, 'teams.not_found');
      expectError(await t.get(`/v1/teams/${newId()}`, inAccount(owner, ws.id)), 404, 'teams.not_found');
      expectError(await t.get('/v1/teams/not-a-uuid', inAccount(owner, ws.id)), 404, 'teams.not_found');
      await expectAuthRequired(t, 'GET', `/v1/teams/${team.id}`);
      await expectAuthRequired(t, 'GET', '/v1/teams');
    });
  });

  describe('PATCH /v1/teams/{team_id}', () => {
    it('renames with before/after audit; PUT is PATCH', async () => {
      const { admin, ws, team } = await setup();
      const res = await t.patch(`/v1/teams/${team.id}`, { name: ' Renamed ' }, inAccount(admin, ws.id));
      assert.equal(res.status, 200, res.text);
      assert.equal(res.body.name, 'Renamed');
      assert.equal(res.body.id, team.id);
      assert.equal(res.body.created_at, team.created_at);
      const rows = await auditRows(t, 'team.update', ws.id);
      assert.equal(rows.length, 1);
      assert.equal((rows[0].before_state as any).name, team.name);
      assert.equal((rows[0].after_state as any).name, 'Renamed');
      const put = await t.put(`/v1/teams/${team.id}`, { name: 'RENAMED' }, inAccount(admin, ws.id));
      assert.equal(put.status, 200, put.text);
      assert.equal(put.body.name, 'RENAMED');
    });

    it('errors: name taken, empty body, bad name, 404s, 403', async () => {
      const { owner, member, ws, team } = await setup();
      const o = inAccount(owner, ws.id);
      await t.post('/v1/teams', { name: 'Taken' }, o);
      expectError(await t.patch(`/v1/teams/${team.id}`, { name: 'taken' }, o), 409, 'teams.name_taken');
      expectFieldError(await t.patch(`/v1/teams/${team.id}`, {}, o), 'name');
      expectFieldError(await t.patch(`/v1/teams/${team.id}`, { name: null }, o), 'name');
      expectFieldError(await t.patch(`/v1/teams/${team.id}`, { name: '' }, o), 'name');
      expectError(await t.patch(`/v1/teams/${newId()}`, { name: 'x' }, o), 404, 'teams.not_found');
      expectError(await t.patch('/v1/teams/123', { name: 'x' }, o), 404, 'teams.not_found');
      expectError(await t.patch(`/v1/teams/${team.id}`, { name: 'x' }, inAccount(member, ws.id)), 403, 'auth.forbidden');
      expectError(await t.patch('/v1/teams/123', { name: 'x' }, inAccount(member, ws.id)), 403, 'auth.forbidden');
    });
  });

  describe('DELETE /v1/teams/{team_id}', () => {
    it('deletes the team, unbinds its projects, audits', async () => {
      const { owner, member, ws, team } = await setup();
      const o = inAccount(owner, ws.id);
      await t.post(`/v1/teams/${team.id}/members`, { user_id: member.id, role: 'member' }, o);
      const projectId = newId();
      await t.ctx.db
        .insertInto('projects')
        .values({ id: projectId, org_id: ws.id, team_id: team.id, name: 'P', description: null, visibility: 'shared', created_by_user_id: owner.id })
        .execute();
      const res = await t.del(`/v1/teams/${team.id}`, o);
      assert.equal(res.status, 204);
      assert.equal(res.text, '');
      const project = await t.ctx.db.selectFrom('projects').select('team_id').where('id', '=', projectId).executeTakeFirstOrThrow();
      assert.equal(project.team_id, null);
      expectError(await t.get(`/v1/teams/${team.id}`, o), 404, 'teams.not_found');
      expectError(await t.del(`/v1/teams/${team.id}`, o), 404, 'teams.not_found');
      const rows = await auditRows(t, 'team.delete', ws.id);
      assert.equal(rows.length, 1);
      assert.equal(rows[0].target_id, team.id);
      assert.equal((rows[0].before_state as any).members_count, 1);
    });

    it('403 for members, 404 for other accounts and bad ids', async () => {
      const { owner, member, ws, team } = await setup();
      expectError(await t.del(`/v1/teams/${team.id}`, inAccount(member, ws.id)), 403, 'auth.forbidden');
      expectError(await t.del(`/v1/teams/${team.id}`, { token: owner.token }), 404, 'teams.not_found');
      expectError(await t.del('/v1/teams/zzz', inAccount(owner, ws.id)), 404, 'teams.not_found');
      await expectAuthRequired(t, 'DELETE', `/v1/teams/${team.id}`);
    });
  });

  describe('team members', () => {
    it('adds, lists oldest first and removes members, with audit', async () => {
      const { owner, admin, member, ws, team } = await setup();
      const o = inAccount(owner, ws.id);
      const add = await t.post(`/v1/teams/${team.id}/members`, { user_id: member.id, role: 'member', extra: 1 }, o);
      assert.equal(add.status, 201, add.text);
      assert.deepEqual(Object.keys(add.body).sort(), ['created_at', 'email', 'login', 'role', 'team_id', 'user_id', 'username']);
      assert.equal(add.body.team_id, team.id);
      assert.equal(add.body.user_id, member.id);
      assert.equal(add.body.role, 'member');
      assert.equal(add.body.login, member.login);
      assert.equal(add.body.email, member.email);
      const add2 = await t.post(`/v1/teams/${team.id}/members`, { user_id: admin.id.toUpperCase(), role: 'admin' }, o);
      assert.equal(add2.status, 201, add2.text);
      assert.equal(add2.body.user_id, admin.id);
      const list = await t.get(`/v1/teams/${team.id}/members`, inAccount(member, ws.id));
      assert.equal(list.status, 200);
      assert.deepEqual(list.body.map((m: any) => [m.user_id, m.role]), [[member.id, 'member'], [admin.id, 'admin']]);
      assert.equal((await t.get(`/v1/teams/${team.id}`, o)).body.members_count, 2);
      const added = await auditRows(t, 'team.member_add', ws.id);
      assert.equal(added.length, 2);
      assert.equal(added[0].target_id, team.id);
      assert.deepEqual({ user_id: (added[0].metadata as any).user_id, role: (added[0].metadata as any).role }, { user_id: member.id, role: 'member' });

      const del = await t.del(`/v1/teams/${team.id}/members/${member.id}`, o);
      assert.equal(del.status, 204);
      const after = await t.get(`/v1/teams/${team.id}/members`, o);
      assert.deepEqual(after.body.map((m: any) => m.user_id), [admin.id]);
      const removed = await auditRows(t, 'team.member_remove', ws.id);
      assert.equal(removed.length, 1);
      assert.equal((removed[0].metadata as any).user_id, member.id);
      expectError(await t.del(`/v1/teams/${team.id}/members/${member.id}`, o), 404, 'team_members.not_found');
    });

    it('add errors: 404s, 409 member_exists, validation', async () => {
      const { owner, member, ws, team } = await setup();
      const o = inAccount(owner, ws.id);
      const stranger = await registerUser(t);
      expectError(await t.post(`/v1/teams/${newId()}/members`, { user_id: member.id, role: 'member' }, o), 404, 'teams.not_found');
      expectError(await t.post('/v1/teams/nope/members', { user_id: member.id, role: 'member' }, o), 404, 'teams.not_found');
      expectError(await t.post(`/v1/teams/${team.id}/members`, { user_id: stranger.id, role: 'member' }, o), 404, 'account_members.not_found');
      expectError(await t.post(`/v1/teams/${team.id}/members`, { user_id: NIL_UUID, role: 'member' }, o), 404, 'account_members.not_found');
      await t.post(`/v1/teams/${team.id}/members`, { user_id: member.id, role: 'member' }, o);
      expectError(await t.post(`/v1/teams/${team.id}/members`, { user_id: member.id, role: 'admin' }, o), 409, 'teams.member_exists');
      expectFieldError(await t.post(`/v1/teams/${team.id}/members`, { role: 'member' }, o), 'user_id');
      expectFieldError(await t.post(`/v1/teams/${team.id}/members`, { user_id: 'not-a-uuid', role: 'member' }, o), 'user_id');
      expectFieldError(await t.post(`/v1/teams/${team.id}/members`, { user_id: 7, role: 'member' }, o), 'user_id');
      expectFieldError(await t.post(`/v1/teams/${team.id}/members`, { user_id: member.id }, o), 'role');
      expectFieldError(await t.post(`/v1/teams/${team.id}/members`, { user_id: member.id, role: 'owner' }, o), 'role');
      // the team of another account is invisible even with a member of it named
      expectError(await t.post(`/v1/teams/${team.id}/members`, { user_id: member.id, role: 'member' }, { token: owner.token }), 404, 'teams.not_found');
    });

    it('remove errors: 404s', async () => {
      const { owner, member, ws, team } = await setup();
      const o = inAccount(owner, ws.id);
      expectError(await t.del(`/v1/teams/${team.id}/members/${member.id}`, o), 404, 'team_members.not_found');
      expectError(await t.del(`/v1/teams/${team.id}/members/xyz`, o), 404, 'team_members.not_found');
      expectError(await t.del(`/v1/teams/xyz/members/${member.id}`, o), 404, 'teams.not_found');
      expectError(await t.del(`/v1/teams/${newId()}/members/${member.id}`, o), 404, 'teams.not_found');
    });

    it('a team admin may manage its members; a plain member may not', async () => {
      const { owner, member, ws, team } = await setup();
      const teamAdmin = await registerUser(t);
      const other = await registerUser(t);
      await joinAccount(t, owner, ws.id, teamAdmin, 'member');
      await joinAccount(t, owner, ws.id, other, 'member');
      const o = inAccount(owner, ws.id);
      await t.post(`/v1/teams/${team.id}/members`, { user_id: teamAdmin.id, role: 'admin' }, o);
      await t.post(`/v1/teams/${team.id}/members`, { user_id: member.id, role: 'member' }, o);

      // a plain team member (account role member) cannot add or remove
      expectError(await t.post(`/v1/teams/${team.id}/members`, { user_id: other.id, role: 'member' }, inAccount(member, ws.id)), 403, 'auth.forbidden');
      expectError(await t.del(`/v1/teams/${team.id}/members/${teamAdmin.id}`, inAccount(member, ws.id)), 403, 'auth.forbidden');
      // the team admin can
      const add = await t.post(`/v1/teams/${team.id}/members`, { user_id: other.id, role: 'member' }, inAccount(teamAdmin, ws.id));
      assert.equal(add.status, 201, add.text);
      const del = await t.del(`/v1/teams/${team.id}/members/${member.id}`, inAccount(teamAdmin, ws.id));
      assert.equal(del.status, 204);
      // ...but only in their own team, and not the team itself
      const team2 = await t.post('/v1/teams', { name: 'Other team' }, o);
      expectError(await t.post(`/v1/teams/${team2.body.id}/members`, { user_id: other.id, role: 'member' }, inAccount(teamAdmin, ws.id)), 403, 'auth.forbidden');
      expectError(await t.patch(`/v1/teams/${team.id}`, { name: 'x' }, inAccount(teamAdmin, ws.id)), 403, 'auth.forbidden');
      expectError(await t.del(`/v1/teams/${team.id}`, inAccount(teamAdmin, ws.id)), 403, 'auth.forbidden');
    });

    it('enforces limit.team_members (0 = unlimited)', async () => {
      const { owner, admin, member, ws, team } = await setup();
      const o = inAccount(owner, ws.id);
      await setTeamLimit(t, 2);
      try {
        assert.equal((await t.post(`/v1/teams/${team.id}/members`, { user_id: owner.id, role: 'admin' }, o)).status, 201);
        assert.equal((await t.post(`/v1/teams/${team.id}/members`, { user_id: admin.id, role: 'member' }, o)).status, 201);
        const res = await t.post(`/v1/teams/${team.id}/members`, { user_id: member.id, role: 'member' }, o);
        expectError(res, 409, 'limit.team_members');
        assert.equal(res.body.details.limit, 2);
        await setTeamLimit(t, 0);
        assert.equal((await t.post(`/v1/teams/${team.id}/members`, { user_id: member.id, role: 'member' }, o)).status, 201);
      } finally {
        await setTeamLimit(t, null);
      }
    });

    it('members of other accounts get 404 on every team path', async () => {
      const { team } = await setup();
      const stranger = await registerUser(t);
      const s = { token: stranger.token };
      const paths: Array<[string, string, unknown?]> = [
        ['GET', `/v1/teams/${team.id}`],
        ['PATCH', `/v1/teams/${team.id}`, { name: 'x' }],
        ['DELETE', `/v1/teams/${team.id}`],
        ['GET', `/v1/teams/${team.id}/members`],
        ['POST', `/v1/teams/${team.id}/members`, { user_id: stranger.id, role: 'member' }],
        ['DELETE', `/v1/teams/${team.id}/members/${stranger.id}`],
      ];
      for (const [method, path, body] of paths) {
        const res = await t.request(method, path, body, s);
        assert.equal(res.status, 404, `${method} ${path} → ${res.status} ${res.text}`);
        assert.equal(res.body.code, 'teams.not_found');
      }
      const ws = await createWorkspace(t, stranger);
      expectError(await t.get(`/v1/teams/${team.id}`, inAccount(stranger, ws.id)), 404, 'teams.not_found');
    });
  });
});
