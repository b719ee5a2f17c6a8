// §9 Projects: shapes, validation, teams, visibility and editing rights (§1.4), lists and
// cursors, soft delete detaching threads, the (always empty) workspace, API keys, audit rows.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { registerUser, startTestApp, type ReqOpts, type TestApp, type TestUser } from './helpers/app.js';
import { expectAuthRequired, expectError, expectFieldError } from './helpers/assert.js';
import {
  ISO_MS,
  NIL_UUID,
  addMember,
  auditRows,
  createApiKey,
  createProject,
  createTeam,
  createThread,
  createWorkspace,
  inAccount,
  workspaceWithRoles,
} from './helpers/content-fixtures.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('projects', () => {
  let t: TestApp;
  let padmin: TestUser;
  let alice: TestUser;
  let bob: TestUser;
  let a: ReqOpts;
  let b: ReqOpts;

  before(async () => {
    t = await startTestApp();
    padmin = await registerUser(t); // the first user is the platform admin
    alice = await registerUser(t);
    bob = await registerUser(t);
    a = { token: alice.token };
    b = { token: bob.token };
  });
  after(async () => { await t.close(); });

  const ids = (rows: Array<{ id: string }>) => rows.map((r) => r.id);

  describe('authentication and permissions', () => {
    it('every endpoint requires credentials', async () => {
      const id = NIL_UUID;
      for (const [method, path, body] of [
        ['POST', '/v1/projects', { name: 'x' }],
        ['GET', '/v1/projects'],
        ['GET', `/v1/projects/${id}`],
        ['PATCH', `/v1/projects/${id}`, { name: 'x' }],
        ['DELETE', `/v1/projects/${id}`],
        ['GET', `/v1/projects/${id}/workspace`],
        ['GET', `/v1/projects/${id}/workspace/files`],
        ['GET', `/v1/projects/${id}/workspace/file?path=/a`],
      ] as Array<[string, string, unknown?]>) {
        await expectAuthRequired(t, method, path, body);
      }
    });

    it('API keys work and are limited by their scopes', async () => {
      const key = await createApiKey(t, alice, alice.personalAccountId);
      const created = await t.post('/v1/projects', { name: 'by key' }, { token: key });
      assert.equal(created.status, 201);
      assert.equal(created.body.created_by_user_id, alice.id);
      const id = created.body.id;
      assert.equal((await t.get(`/v1/projects/${id}`, { token: key })).status, 200);
      assert.ok(ids((await t.get('/v1/projects', { token: key })).body).includes(id));
      assert.equal((await t.patch(`/v1/projects/${id}`, { name: 'renamed' }, { token: key })).body.name, 'renamed');
      assert.equal((await t.get(`/v1/projects/${id}/workspace`, { token: key })).status, 200);
      assert.equal((await t.get(`/v1/projects/${id}/workspace/files`, { token: key })).status, 200);
      expectError(await t.get(`/v1/projects/${id}/workspace/file?path=/x`, { token: key }), 404, 'workspace_files.not_found');

      const readOnly = await createApiKey(t, alice, alice.personalAccountId, ['data.projects.read']);
      assert.equal((await t.get(`/v1/projects/${id}`, { token: readOnly })).status, 200);
      assert.equal((await t.get(`/v1/projects/${id}/workspace`, { token: readOnly })).status, 200);
      expectError(await t.post('/v1/projects', { name: 'x' }, { token: readOnly }), 403, 'auth.forbidden');
      expectError(await t.post('/v1/projects', {}, { token: readOnly }), 403, 'auth.forbidden');
      expectError(await t.patch(`/v1/projects/${id}`, { name: 'x' }, { token: readOnly }), 403, 'auth.forbidden');
      expectError(await t.del(`/v1/projects/bad-id`, { token: readOnly }), 403, 'auth.forbidden');
      // Workspace files need data.runs.read as well.
      expectError(await t.get(`/v1/projects/${id}/workspace/files`, { token: readOnly }), 403, 'auth.forbidden');
      expectError(await t.get(`/v1/projects/${id}/workspace/file?path=/x`, { token: readOnly }), 403, 'auth.forbidden');
      const runsOnly = await createApiKey(t, alice, alice.personalAccountId, ['data.runs.read']);
      expectError(await t.get(`/v1/projects/${id}/workspace/files`, { token: runsOnly }), 403, 'auth.forbidden');
      expectError(await t.get(`/v1/projects/${id}`, { token: runsOnly }), 403, 'auth.forbidden');
      const both = await createApiKey(t, alice, alice.personalAccountId, ['data.projects.read', 'data.runs.read']);
      assert.equal((await t.get(`/v1/projects/${id}/workspace/files`, { token: both })).status, 200);

      assert.equal((await t.del(`/v1/projects/${id}`, { token: key })).status, 204);
      expectError(await t.get('/v1/projects', { token: key, headers: { 'x-account-id': bob.personalAccountId } }), 403, 'auth.forbidden');
    });
  });

  describe('POST /v1/projects', () => {
    it('creates a project with the Project shape', async () => {
      const res = await t.post('/v1/projects', { name: '  Apollo  ', description: ' the moon ' }, a);
      assert.equal(res.status, 201, res.text);
      const p = res.body;
      assert.deepEqual(Object.keys(p).sort(), [
        'created_at', 'created_by_user_id', 'description', 'id', 'name', 'org_id', 'team_id', 'updated_at', 'visibility',
      ]);
      assert.equal(p.org_id, alice.personalAccountId);
      assert.equal(p.name, 'Apollo');
      assert.equal(p.description, ' the moon ');
      assert.equal(p.visibility, 'private');
      assert.equal(p.team_id, null);
      assert.equal(p.created_by_user_id, alice.id);
      assert.match(p.created_at, ISO_MS);
      assert.equal(p.updated_at, p.created_at);
      assert.deepEqual((await t.get(`/v1/projects/${p.id}`, a)).body, p);
      const rows = await auditRows(t, 'project.create', p.id);
      assert.equal(rows.length, 1);
      assert.equal(rows[0].actor_user_id, alice.id);
      assert.equal(rows[0].org_id, alice.personalAccountId);
      assert.equal(rows[0].trace_id, res.headers['x-trace-id']);
      assert.equal((rows[0].metadata as Record<string, unknown>).name, 'Apollo');
    });

    it('null is the same as absent; limits and enums are enforced', async () => {
      const p = await createProject(t, a, { description: null, team_id: null, visibility: null, extra: 1 });
      assert.equal(p.description, null);
      assert.equal(p.visibility, 'private');
      assert.equal((await createProject(t, a, { name: 'n'.repeat(200), description: 'd'.repeat(2000) })).name, 'n'.repeat(200));
      assert.equal((await createProject(t, a, { visibility: 'shared' })).visibility, 'shared');
      expectFieldError(await t.post('/v1/projects', {}, a), 'name');
      expectFieldError(await t.post('/v1/projects', { name: null }, a), 'name');
      expectFieldError(await t.post('/v1/projects', { name: '   ' }, a), 'name');
      expectFieldError(await t.post('/v1/projects', { name: 'n'.repeat(201) }, a), 'name');
      expectFieldError(await t.post('/v1/projects', { name: 7 }, a), 'name');
      expectFieldError(await t.post('/v1/projects', { name: 'x', description: 'd'.repeat(2001) }, a), 'description');
      expectFieldError(await t.post('/v1/projects', { name: 'x', description: 5 }, a), 'description');
      expectFieldError(await t.post('/v1/projects', { name: 'x', visibility: 'public' }, a), 'visibility');
      expectFieldError(await t.post('/v1/projects', { name: 'x', visibility: 'Shared' }, a), 'visibility');
      expectFieldError(await t.post('/v1/projects', { name: 'x', team_id: 'team' }, a), 'team_id');
    });

    it('team_id must be a team of the current account', async () => {
      const ws = await workspaceWithRoles(t);
      const team = await createTeam(t, ws.ws, [ws.member]);
      const m = inAccount(ws.member, ws.ws);
      const p = await createProject(t, m, { team_id: team.toUpperCase(), visibility: 'shared' });
      assert.equal(p.team_id, team);
      // The creator need not be in the team.
      assert.equal((await createProject(t, inAccount(ws.other, ws.ws), { team_id: team })).team_id, team);
      expectError(await t.post('/v1/projects', { name: 'x', team_id: NIL_UUID }, m), 404, 'teams.not_found');
      expectError(await t.post('/v1/projects', { name: 'x', team_id: team }, a), 404, 'teams.not_found');
      const count = await t.ctx.db.selectFrom('projects').select('id').where('name', '=', 'x').execute();
      assert.equal(count.length, 0);
    });
  });

  describe('GET /v1/projects and GET /v1/projects/{id}', () => {
    it('lists visible projects newest first, paged, filtered by team', async () => {
      const ws = await workspaceWithRoles(t);
      const team = await createTeam(t, ws.ws, [ws.member]);
      const m = inAccount(ws.member, ws.ws);
      const made: string[] = [];
      for (let i = 0; i < 23; i++) made.push((await createProject(t, m, { visibility: i % 2 ? 'shared' : 'private', team_id: i % 3 ? null : team })).id);
      const newest = [...made].reverse();
      const page1 = await t.get('/v1/projects', m);
      assert.equal(page1.status, 200);
      assert.deepEqual(ids(page1.body), newest.slice(0, 20));
      assert.deepEqual(ids((await t.get(`/v1/projects?before=${page1.body[19].id}`, m)).body), newest.slice(20));
      assert.deepEqual(ids((await t.get('/v1/projects?limit=2', m)).body), newest.slice(0, 2));
      const inTeam = made.filter((_, i) => i % 3 === 0).reverse();
      assert.deepEqual(ids((await t.get(`/v1/projects?team_id=${team}&limit=200`, m)).body), inTeam);
      assert.deepEqual(ids((await t.get(`/v1/projects?team_id=${team}&limit=1&before=${inTeam[0]}`, m)).body), [inTeam[1]]);
      // The other member sees only the shared ones outside the team.
      const sharedNoTeam = made.filter((_, i) => i % 2 === 1 && i % 3 !== 0).reverse();
      assert.deepEqual(ids((await t.get('/v1/projects?limit=200', inAccount(ws.other, ws.ws))).body), sharedNoTeam);
      // A deleted project still works as a cursor but drops out of the list.
      await t.del(`/v1/projects/${newest[1]}`, m);
      assert.deepEqual(ids((await t.get(`/v1/projects?limit=2&before=${newest[1]}`, m)).body), newest.slice(2, 4));
      assert.ok(!ids((await t.get('/v1/projects?limit=200', m)).body).includes(newest[1]));
    });

    it('rejects bad queries', async () => {
      for (const limit of ['0', '201', 'ten']) expectFieldError(await t.get(`/v1/projects?limit=${limit}`, a), 'limit');
      expectFieldError(await t.get('/v1/projects?before=abc', a), 'before');
      expectFieldError(await t.get(`/v1/projects?before=${NIL_UUID}`, a), 'before');
      const bobs = await createProject(t, b, { visibility: 'shared' });
      expectFieldError(await t.get(`/v1/projects?before=${bobs.id}`, a), 'before');
      expectFieldError(await t.get('/v1/projects?team_id=abc', a), 'team_id');
      expectError(await t.get(`/v1/projects?team_id=${NIL_UUID}`, a), 404, 'teams.not_found');
      const ws = await createWorkspace(t, bob);
      const bobsTeam = await createTeam(t, ws, [bob]);
      expectError(await t.get(`/v1/projects?team_id=${bobsTeam}`, a), 404, 'teams.not_found');
    });

    it('GET one: 404 for malformed, unknown, foreign and deleted projects', async () => {
      const p = await createProject(t, a);
      expectError(await t.get('/v1/projects/nope', a), 404, 'projects.not_found');
      expectError(await t.get(`/v1/projects/${NIL_UUID}`, a), 404, 'projects.not_found');
      expectError(await t.get(`/v1/projects/${p.id}`, b), 404, 'projects.not_found');
      assert.equal((await t.get(`/v1/projects/${p.id.toUpperCase()}`, a)).status, 200);
    });
  });

  describe('visibility and editing (§1.4)', () => {
    it('private: creator only; shared: every member; shared with a team: its members plus owners/admins', async () => {
      const ws = await workspaceWithRoles(t);
      const outsider = await registerUser(t);
      await addMember(t, ws.ws, outsider, 'member');
      const team = await createTeam(t, ws.ws, [ws.other]);
      const as = (u: TestUser) => inAccount(u, ws.ws);
      const m = as(ws.member);
      const projects = {
        private: await createProject(t, m),
        shared: await createProject(t, m, { visibility: 'shared' }),
        // Created by a member outside its team: the creator still sees it (decided).
        team: await createProject(t, m, { visibility: 'shared', team_id: team }),
        privateWithTeam: await createProject(t, m, { visibility: 'private', team_id: team }),
      };
      type K = keyof typeof projects;
      const viewers: Array<[string, TestUser, K[]]> = [
        ['creator', ws.member, ['private', 'shared', 'team', 'privateWithTeam']],
        ['team member', ws.other, ['shared', 'team']],
        ['member outside the team', outsider, ['shared']],
        ['admin', ws.admin, ['shared', 'team']],
        ['owner', ws.owner, ['shared', 'team']],
        ['platform admin acting in the account', padmin, ['shared', 'team']],
      ];
      for (const [label, viewer, visible] of viewers) {
        const listed = ids((await t.get('/v1/projects?limit=200', as(viewer))).body);
        for (const key of Object.keys(projects) as K[]) {
          const id = projects[key].id;
          const expected = visible.includes(key);
          assert.equal(listed.includes(id), expected, `${label} lists ${key}`);
          for (const path of [`/v1/projects/${id}`, `/v1/projects/${id}/workspace`, `/v1/projects/${id}/workspace/files`]) {
            const res = await t.get(path, as(viewer));
            if (expected) assert.equal(res.status, 200, `${label} ${path}`);
            else expectError(res, 404, 'projects.not_found');
          }
          const file = await t.get(`/v1/projects/${id}/workspace/file?path=/a.txt`, as(viewer));
          expectError(file, 404, expected ? 'workspace_files.not_found' : 'projects.not_found');
        }
      }
      // Bob, in his own account, sees none of them.
      for (const p of Object.values(projects)) {
        for (const res of [
          await t.get(`/v1/projects/${p.id}`, b),
          await t.patch(`/v1/projects/${p.id}`, { name: 'x' }, b),
          await t.del(`/v1/projects/${p.id}`, b),
          await t.get(`/v1/projects/${p.id}/workspace`, b),
          await t.get(`/v1/projects/${p.id}/workspace/files`, b),
          await t.get(`/v1/projects/${p.id}/workspace/file?path=/x`, b),
          await t.get(`/v1/threads?project_id=${p.id}`, b),
          await t.post('/v1/threads', { project_id: p.id }, b),
        ]) {
          expectError(res, 404, 'projects.not_found');
        }
      }
      const bobsList = ids((await t.get('/v1/projects?limit=200', b)).body);
      assert.ok(Object.values(projects).every((p) => !bobsList.includes(p.id)));

      // Editing: creator, or owner/admin who can see it; a member who sees it → 403.
      expectError(await t.patch(`/v1/projects/${projects.shared.id}`, { name: 'x' }, as(ws.other)), 403, 'auth.forbidden');
      expectError(await t.del(`/v1/projects/${projects.team.id}`, as(ws.other)), 403, 'auth.forbidden');
      expectError(await t.patch(`/v1/projects/${projects.team.id}`, { name: 'x' }, as(outsider)), 404, 'projects.not_found');
      expectError(await t.patch(`/v1/projects/${projects.private.id}`, { name: 'x' }, as(ws.owner)), 404, 'projects.not_found');
      expectError(await t.del(`/v1/projects/${projects.private.id}`, as(ws.admin)), 404, 'projects.not_found');
      // A body reference's 404 comes before the 403.
      expectError(await t.patch(`/v1/projects/${projects.shared.id}`, { team_id: NIL_UUID }, as(ws.other)), 404, 'teams.not_found');
      assert.equal((await t.patch(`/v1/projects/${projects.team.id}`, { name: 'by admin' }, as(ws.admin))).body.name, 'by admin');
      assert.equal((await t.patch(`/v1/projects/${projects.shared.id}`, { name: 'by owner' }, as(ws.owner))).body.name, 'by owner');
      assert.equal((await t.del(`/v1/projects/${projects.team.id}`, as(ws.owner))).status, 204);
      const del = await auditRows(t, 'project.delete', projects.team.id);
      assert.equal(del.length, 1);
      assert.equal(del[0].actor_user_id, ws.owner.id);
    });
  });

  describe('PATCH /v1/projects/{id}', () => {
    it('edits name, description, team and visibility; updated_at moves; audited with before/after', async () => {
      const ws = await workspaceWithRoles(t);
      const team = await createTeam(t, ws.ws, [ws.member]);
      const m = inAccount(ws.member, ws.ws);
      const p = await createProject(t, m, { name: 'first', description: 'desc' });
      await sleep(5);
      const res = await t.patch(`/v1/projects/${p.id}`, { name: ' second ', description: null, team_id: team, visibility: 'shared' }, m);
      assert.equal(res.status, 200, res.text);
      assert.equal(res.body.name, 'second');
      assert.equal(res.body.description, null);
      assert.equal(res.body.team_id, team);
      assert.equal(res.body.visibility, 'shared');
      assert.equal(res.body.created_at, p.created_at);
      assert.ok(Date.parse(res.body.updated_at) > Date.parse(p.updated_at as string));
      assert.deepEqual((await t.get(`/v1/projects/${p.id}`, m)).body, res.body);
      const detached = await t.put(`/v1/projects/${p.id}`, { team_id: null }, m);
      assert.equal(detached.status, 200);
      assert.equal(detached.body.team_id, null);
      assert.equal(detached.body.name, 'second');

      const rows = await auditRows(t, 'project.update', p.id);
      assert.equal(rows.length, 2);
      const beforeState = rows[0].before_state as Record<string, unknown>;
      const afterState = rows[0].after_state as Record<string, unknown>;
      assert.equal(beforeState.name, 'first');
      assert.equal(beforeState.description, 'desc');
      assert.equal(afterState.name, 'second');
      assert.equal(afterState.team_id, team);
      assert.equal(afterState.updated_at, res.body.updated_at);
      assert.equal(rows[0].trace_id, res.headers['x-trace-id']);
    });

    it('rejects bad bodies', async () => {
      const p = await createProject(t, a);
      const path = `/v1/projects/${p.id}`;
      expectError(await t.patch(path, {}, a), 400, 'validation.error');
      expectError(await t.patch(path, { other: 1 }, a), 400, 'validation.error');
      expectFieldError(await t.patch(path, { name: null }, a), 'name');
      expectFieldError(await t.patch(path, { name: '  ' }, a), 'name');
      expectFieldError(await t.patch(path, { name: 'n'.repeat(201) }, a), 'name');
      expectFieldError(await t.patch(path, { description: 'd'.repeat(2001) }, a), 'description');
      expectFieldError(await t.patch(path, { visibility: null }, a), 'visibility');
      expectFieldError(await t.patch(path, { visibility: 'hidden' }, a), 'visibility');
      expectFieldError(await t.patch(path, { team_id: 'abc' }, a), 'team_id');
      expectError(await t.patch(path, { team_id: NIL_UUID }, a), 404, 'teams.not_found');
      expectError(await t.patch('/v1/projects/zzz', { name: 'x' }, a), 404, 'projects.not_found');
      expectError(await t.patch(`/v1/projects/${NIL_UUID}`, { name: 'x' }, a), 404, 'projects.not_found');
      assert.equal((await auditRows(t, 'project.update', p.id)).length, 0);
    });
  });

  describe('DELETE /v1/projects/{id}', () => {
    it('soft-deletes and detaches its threads, which become personal to their creators', async () => {
      const ws = await workspaceWithRoles(t);
      const m = inAccount(ws.member, ws.ws);
      const o = inAccount(ws.other, ws.ws);
      const p = await createProject(t, m, { visibility: 'shared' });
      const mine = await createThread(t, m, { project_id: p.id });
      const theirs = await createThread(t, o, { project_id: p.id });
      assert.equal((await t.get(`/v1/threads/${theirs.id}`, m)).status, 200);

      const res = await t.del(`/v1/projects/${p.id}`, m);
      assert.equal(res.status, 204);
      assert.equal(res.text, '');
      for (const r of [
        await t.get(`/v1/projects/${p.id}`, m),
        await t.patch(`/v1/projects/${p.id}`, { name: 'x' }, m),
        await t.del(`/v1/projects/${p.id}`, m),
        await t.get(`/v1/projects/${p.id}/workspace`, m),
        await t.get(`/v1/projects/${p.id}/workspace/files`, m),
        await t.get(`/v1/threads?project_id=${p.id}`, m),
        await t.post('/v1/threads', { project_id: p.id }, m),
        await t.patch(`/v1/threads/${mine.id}`, { project_id: p.id }, m),
      ]) {
        expectError(r, 404, 'projects.not_found');
      }
      assert.ok(!ids((await t.get('/v1/projects?limit=200', m)).body).includes(p.id));
      const mineAfter = (await t.get(`/v1/threads/${mine.id}`, m)).body;
      assert.equal(mineAfter.project_id, null);
      assert.equal(mineAfter.updated_at, mine.updated_at);
      assert.equal((await t.get(`/v1/threads/${theirs.id}`, o)).body.project_id, null);
      expectError(await t.get(`/v1/threads/${theirs.id}`, m), 404, 'threads.not_found');
      expectError(await t.get(`/v1/threads/${mine.id}`, inAccount(ws.owner, ws.ws)), 404, 'threads.not_found');

      const rows = await auditRows(t, 'project.delete', p.id);
      assert.equal(rows.length, 1);
      assert.equal((rows[0].before_state as Record<string, unknown>).id, p.id);
      assert.equal(rows[0].trace_id, res.headers['x-trace-id']);
      expectError(await t.del('/v1/projects/123', m), 404, 'projects.not_found');
    });
  });

  describe('workspace', () => {
    it('GET /workspace is always unavailable', async () => {
      const p = await createProject(t, a);
      const res = await t.get(`/v1/projects/${p.id}/workspace`, a);
      assert.equal(res.status, 200);
      assert.deepEqual(res.body, {
        project_id: p.id,
        workspace_ref: 'ws_' + p.id.replace(/-/g, ''),
        owner_user_id: alice.id,
        status: 'unavailable',
        last_used_at: null,
      });
      expectError(await t.get('/v1/projects/x/workspace', a), 404, 'projects.not_found');
    });

    it('GET /workspace/files lists nothing; paths are validated', async () => {
      const p = await createProject(t, a);
      const base = `/v1/projects/${p.id}/workspace/files`;
      const ref = 'ws_' + p.id.replace(/-/g, '');
      assert.deepEqual((await t.get(base, a)).body, { workspace_ref: ref, path: '/', items: [] });
      assert.deepEqual((await t.get(`${base}?path=${encodeURIComponent('/src/a..b')}`, a)).body, { workspace_ref: ref, path: '/src/a..b', items: [] });
      assert.equal((await t.get(`${base}?path=/${'a'.repeat(1023)}`, a)).status, 200);
      for (const bad of ['', 'relative', '/a/../b', '/..', '/a/..', '/a\\b', '/a\u0000b', '/' + 'a'.repeat(1024)]) {
        expectError(await t.get(`${base}?path=${encodeURIComponent(bad)}`, a), 400, 'workspace_files.invalid_path');
      }
      expectError(await t.get(`/v1/projects/${NIL_UUID}/workspace/files`, a), 404, 'projects.not_found');
    });

    it('GET /workspace/file: path required and validated; no file exists', async () => {
      const p = await createProject(t, a);
      const base = `/v1/projects/${p.id}/workspace/file`;
      expectFieldError(await t.get(base, a), 'path');
      expectError(await t.get(`${base}?path=x`, a), 400, 'workspace_files.invalid_path');
      expectError(await t.get(`${base}?path=${encodeURIComponent('/../etc/passwd')}`, a), 400, 'workspace_files.invalid_path');
      expectError(await t.get(`${base}?path=/README.md`, a), 404, 'workspace_files.not_found');
      expectError(await t.get(`${base}?path=/`, a), 404, 'workspace_files.not_found');
      expectError(await t.get(`/v1/projects/${NIL_UUID}/workspace/file?path=/a`, a), 404, 'projects.not_found');
      expectError(await t.get('/v1/projects/nope/workspace/file?path=/a', a), 404, 'projects.not_found');
    });
  });
});
