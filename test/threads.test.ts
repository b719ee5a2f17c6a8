// §6 Threads: shapes, validation, visibility and editing rights (§1.4), lists and cursors,
// stars, search, idempotent creation, API keys, audit rows.
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
  inAccount,
  postMessage,
  workspaceWithRoles,
} from './helpers/content-fixtures.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('threads', () => {
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
        ['POST', '/v1/threads', {}],
        ['GET', '/v1/threads'],
        ['GET', '/v1/threads/search?q=x'],
        ['GET', '/v1/threads/starred'],
        ['GET', `/v1/threads/${id}`],
        ['PATCH', `/v1/threads/${id}`, { title: 'x' }],
        ['DELETE', `/v1/threads/${id}`],
        ['POST', `/v1/threads/${id}/star`],
        ['DELETE', `/v1/threads/${id}/star`],
      ] as Array<[string, string, unknown?]>) {
        await expectAuthRequired(t, method, path, body);
      }
    });

    it('API keys work, act in their account, and are limited by their scopes', async () => {
      const key = await createApiKey(t, alice, alice.personalAccountId);
      const created = await createThread(t, { token: key }, { title: 'by key' });
      assert.equal(created.created_by_user_id, alice.id);
      assert.equal(created.org_id, alice.personalAccountId);
      assert.equal((await t.get(`/v1/threads/${created.id}`, { token: key })).status, 200);
      assert.ok(ids((await t.get('/v1/threads', a)).body).includes(created.id));
      const patched = await t.patch(`/v1/threads/${created.id}`, { title: 'renamed' }, { token: key });
      assert.equal(patched.body.title, 'renamed');
      assert.equal((await t.post(`/v1/threads/${created.id}/star`, undefined, { token: key })).status, 204);
      assert.equal((await t.get('/v1/threads/starred', { token: key })).body[0].id, created.id);
      assert.equal((await t.get('/v1/threads/search?q=renamed', { token: key })).body[0].id, created.id);
      assert.equal((await t.del(`/v1/threads/${created.id}`, { token: key })).status, 204);

      // X-Account-Id naming another account → 403, whatever that account is.
      expectError(await t.get('/v1/threads', { token: key, headers: { 'x-account-id': bob.personalAccountId } }), 403, 'auth.forbidden');

      // A read-only key: reads work, writes are 403 — before validation of the body.
      const readOnly = await createApiKey(t, alice, alice.personalAccountId, ['data.threads.read']);
      assert.equal((await t.get('/v1/threads', { token: readOnly })).status, 200);
      expectError(await t.post('/v1/threads', { title: 'x' }, { token: readOnly }), 403, 'auth.forbidden');
      expectError(await t.post('/v1/threads', { title: 42 }, { token: readOnly }), 403, 'auth.forbidden');
      expectError(await t.patch(`/v1/threads/not-a-uuid`, { title: 'x' }, { token: readOnly }), 403, 'auth.forbidden');
      expectError(await t.post(`/v1/threads/${NIL_UUID}/star`, undefined, { token: readOnly }), 403, 'auth.forbidden');
      const writeOnly = await createApiKey(t, alice, alice.personalAccountId, ['data.threads.manage']);
      expectError(await t.get('/v1/threads', { token: writeOnly }), 403, 'auth.forbidden');
      expectError(await t.get(`/v1/threads/${NIL_UUID}`, { token: writeOnly }), 403, 'auth.forbidden');
    });
  });

  describe('POST /v1/threads', () => {
    it('creates a thread with the Thread shape', async () => {
      const res = await t.post('/v1/threads', { title: '  Hello  ' }, a);
      assert.equal(res.status, 201);
      const th = res.body;
      assert.deepEqual(Object.keys(th).sort(), [
        'active_run_id', 'created_at', 'created_by_user_id', 'id', 'is_private', 'org_id', 'project_id', 'starred', 'title', 'updated_at',
      ]);
      assert.match(th.id, /^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[0-9a-f]{4}-[0-9a-f]{12}$/);
      assert.equal(th.org_id, alice.personalAccountId);
      assert.equal(th.created_by_user_id, alice.id);
      assert.equal(th.title, 'Hello');
      assert.equal(th.project_id, null);
      assert.equal(th.is_private, false);
      assert.equal(th.active_run_id, null);
      assert.equal(th.starred, false);
      assert.match(th.created_at, ISO_MS);
      assert.equal(th.updated_at, th.created_at);
      assert.deepEqual((await t.get(`/v1/threads/${th.id}`, a)).body, th);
    });

    it('every field is optional; null is the same as absent; unknown fields are ignored', async () => {
      for (const body of [undefined, {}, { title: null, is_private: null, project_id: null }, { whatever: 1 }]) {
        const res = await t.post('/v1/threads', body, a);
        assert.equal(res.status, 201, res.text);
        assert.equal(res.body.title, null);
        assert.equal(res.body.is_private, false);
        assert.equal(res.body.project_id, null);
      }
      const priv = await createThread(t, a, { is_private: true, title: 'x'.repeat(200) });
      assert.equal(priv.is_private, true);
      assert.equal(priv.title, 'x'.repeat(200));
      const unicode = await createThread(t, a, { title: '日'.repeat(200) });
      assert.equal(unicode.title, '日'.repeat(200));
    });

    it('rejects bad fields', async () => {
      expectFieldError(await t.post('/v1/threads', { title: 42 }, a), 'title');
      expectFieldError(await t.post('/v1/threads', { title: 'x'.repeat(201) }, a), 'title');
      expectFieldError(await t.post('/v1/threads', { title: '   ' }, a), 'title');
      expectFieldError(await t.post('/v1/threads', { is_private: 'yes' }, a), 'is_private');
      expectFieldError(await t.post('/v1/threads', { is_private: 1 }, a), 'is_private');
      expectFieldError(await t.post('/v1/threads', { project_id: 'nope' }, a), 'project_id');
      expectFieldError(await t.post('/v1/threads', { project_id: 5 }, a), 'project_id');
      expectError(await t.post('/v1/threads', undefined, { ...a, raw: '{bad', headers: { 'content-type': 'application/json' } }), 422, 'validation.error');
    });

    it('project_id must name a visible project of the current account', async () => {
      expectError(await t.post('/v1/threads', { project_id: NIL_UUID }, a), 404, 'projects.not_found');
      const bobs = await createProject(t, b, { visibility: 'shared' });
      expectError(await t.post('/v1/threads', { project_id: bobs.id }, a), 404, 'projects.not_found');
      const mine = await createProject(t, a);
      const th = await createThread(t, a, { project_id: mine.id.toUpperCase() });
      assert.equal(th.project_id, mine.id);
      assert.equal((await t.del(`/v1/projects/${mine.id}`, a)).status, 204);
      expectError(await t.post('/v1/threads', { project_id: mine.id }, a), 404, 'projects.not_found');
    });

    it('writes thread.create in the same statement', async () => {
      const res = await t.post('/v1/threads', { title: 'audited', is_private: true }, a);
      const rows = await auditRows(t, 'thread.create', res.body.id);
      assert.equal(rows.length, 1);
      const row = rows[0];
      assert.equal(row.org_id, alice.personalAccountId);
      assert.equal(row.actor_user_id, alice.id);
      assert.equal(row.target_type, 'thread');
      assert.equal(row.trace_id, res.headers['x-trace-id']);
      assert.deepEqual(row.metadata, { title: 'audited', project_id: null, is_private: true });
      assert.equal(row.after_state, null);
    });

    it('is idempotent with an Idempotency-Key', async () => {
      const key = { 'idempotency-key': 'thread-create-1' };
      const first = await t.post('/v1/threads', { title: 'once' }, { ...a, headers: key });
      assert.equal(first.status, 201);
      assert.equal(first.headers['idempotent-replayed'], undefined);
      const again = await t.post('/v1/threads', { title: 'once' }, { ...a, headers: key });
      assert.equal(again.status, 201);
      assert.equal(again.headers['idempotent-replayed'], 'true');
      assert.deepEqual(again.body, first.body);
      const rows = await t.ctx.db.selectFrom('threads').select('id').where('title', '=', 'once').execute();
      assert.equal(rows.length, 1);
      assert.equal((await auditRows(t, 'thread.create', first.body.id)).length, 1);
      expectError(await t.post('/v1/threads', { title: 'different' }, { ...a, headers: key }), 409, 'idempotency.key_reused');
      // Keys are per caller: the same key for another user creates their own thread.
      const other = await t.post('/v1/threads', { title: 'once' }, { ...b, headers: key });
      assert.equal(other.status, 201);
      assert.notEqual(other.body.id, first.body.id);
      expectFieldError(await t.post('/v1/threads', {}, { ...a, headers: { 'idempotency-key': 'x'.repeat(256) } }), 'Idempotency-Key');
      // An error answer leaves the key unused.
      const k2 = { 'idempotency-key': 'thread-create-2' };
      expectError(await t.post('/v1/threads', { project_id: NIL_UUID }, { ...a, headers: k2 }), 404, 'projects.not_found');
      assert.equal((await t.post('/v1/threads', { title: 'later' }, { ...a, headers: k2 })).status, 201);
    });
  });

  describe('GET /v1/threads/{id}', () => {
    it('answers 404 for unknown, malformed, foreign and deleted threads', async () => {
      const th = await createThread(t, a);
      expectError(await t.get(`/v1/threads/${NIL_UUID}`, a), 404, 'threads.not_found');
      expectError(await t.get('/v1/threads/not-a-uuid', a), 404, 'threads.not_found');
      expectError(await t.get(`/v1/threads/${th.id}`, b), 404, 'threads.not_found');
      assert.equal((await t.get(`/v1/threads/${th.id.toUpperCase()}`, a)).status, 200);
      await t.del(`/v1/threads/${th.id}`, a);
      expectError(await t.get(`/v1/threads/${th.id}`, a), 404, 'threads.not_found');
    });
  });

  describe('PATCH /v1/threads/{id}', () => {
    it('edits title, project and privacy; updated_at moves', async () => {
      const project = await createProject(t, a);
      const th = await createThread(t, a, { title: 'before' });
      await sleep(5);
      const res = await t.patch(`/v1/threads/${th.id}`, { title: '  after  ', project_id: project.id, is_private: true }, a);
      assert.equal(res.status, 200, res.text);
      assert.equal(res.body.title, 'after');
      assert.equal(res.body.project_id, project.id);
      assert.equal(res.body.is_private, true);
      assert.equal(res.body.created_at, th.created_at);
      assert.ok(Date.parse(res.body.updated_at) > Date.parse(th.updated_at as string));
      assert.match(res.body.updated_at, ISO_MS);

      const cleared = await t.patch(`/v1/threads/${th.id}`, { title: null, project_id: null }, a);
      assert.equal(cleared.body.title, null);
      assert.equal(cleared.body.project_id, null);
      assert.equal(cleared.body.is_private, true);
      const put = await t.put(`/v1/threads/${th.id}`, { is_private: false }, a);
      assert.equal(put.status, 200);
      assert.equal(put.body.is_private, false);
      assert.deepEqual((await t.get(`/v1/threads/${th.id}`, a)).body, put.body);
    });

    it('keeps the caller star in the answer', async () => {
      const th = await createThread(t, a);
      await t.post(`/v1/threads/${th.id}/star`, undefined, a);
      assert.equal((await t.patch(`/v1/threads/${th.id}`, { title: 's' }, a)).body.starred, true);
    });

    it('rejects bad bodies', async () => {
      const th = await createThread(t, a);
      expectError(await t.patch(`/v1/threads/${th.id}`, {}, a), 400, 'validation.error');
      expectError(await t.patch(`/v1/threads/${th.id}`, { unknown: 1 }, a), 400, 'validation.error');
      expectError(await t.patch(`/v1/threads/${th.id}`, undefined, a), 400, 'validation.error');
      expectFieldError(await t.patch(`/v1/threads/${th.id}`, { title: 'x'.repeat(201) }, a), 'title');
      expectFieldError(await t.patch(`/v1/threads/${th.id}`, { title: '  ' }, a), 'title');
      expectFieldError(await t.patch(`/v1/threads/${th.id}`, { title: 1 }, a), 'title');
      expectFieldError(await t.patch(`/v1/threads/${th.id}`, { is_private: null }, a), 'is_private');
      expectFieldError(await t.patch(`/v1/threads/${th.id}`, { is_private: 'true' }, a), 'is_private');
      expectFieldError(await t.patch(`/v1/threads/${th.id}`, { project_id: 'x' }, a), 'project_id');
      expectError(await t.patch('/v1/threads/nope', { title: 'x' }, a), 404, 'threads.not_found');
      expectError(await t.patch(`/v1/threads/${NIL_UUID}`, { title: 'x' }, a), 404, 'threads.not_found');
      expectError(await t.patch(`/v1/threads/${th.id}`, { project_id: NIL_UUID }, a), 404, 'projects.not_found');
      const bobs = await createProject(t, b, { visibility: 'shared' });
      expectError(await t.patch(`/v1/threads/${th.id}`, { project_id: bobs.id }, a), 404, 'projects.not_found');
      // Nothing changed and nothing was audited.
      assert.equal((await auditRows(t, 'thread.update', th.id)).length, 0);
      assert.equal((await t.get(`/v1/threads/${th.id}`, a)).body.updated_at, th.updated_at);
    });

    it('writes thread.update with before and after state', async () => {
      const th = await createThread(t, a, { title: 'v1' });
      const res = await t.patch(`/v1/threads/${th.id}`, { title: 'v2' }, a);
      const rows = await auditRows(t, 'thread.update', th.id);
      assert.equal(rows.length, 1);
      assert.equal(rows[0].actor_user_id, alice.id);
      assert.equal(rows[0].trace_id, res.headers['x-trace-id']);
      const beforeState = rows[0].before_state as Record<string, unknown>;
      const afterState = rows[0].after_state as Record<string, unknown>;
      assert.equal(beforeState.title, 'v1');
      assert.equal(afterState.title, 'v2');
      assert.equal(beforeState.updated_at, th.updated_at);
      assert.equal(afterState.updated_at, res.body.updated_at);
    });
  });

  describe('concurrent edits', () => {
    it('every update succeeds and the audit before/after states form one exact chain', async () => {
      const th = await createThread(t, a, { title: 'start' });
      const titles = Array.from({ length: 30 }, (_, i) => `concurrent ${i}`);
      const results = await Promise.all(titles.map((title) => t.patch(`/v1/threads/${th.id}`, { title }, a)));
      for (const r of results) assert.equal(r.status, 200, r.text);
      const rows = await auditRows(t, 'thread.update', th.id);
      assert.equal(rows.length, titles.length);
      const next = new Map<string, string>();
      for (const row of rows) {
        const from = (row.before_state as { title: string }).title;
        assert.ok(!next.has(from), `two updates started from ${from}`);
        next.set(from, (row.after_state as { title: string }).title);
      }
      let cur = 'start';
      for (let i = 0; i < titles.length; i++) cur = next.get(cur)!;
      assert.equal((await t.get(`/v1/threads/${th.id}`, a)).body.title, cur);
      // A delete racing with edits: the edits after it answer 404, nothing is written twice.
      const th2 = await createThread(t, a, { title: 'race' });
      const mixed = await Promise.all([
        t.patch(`/v1/threads/${th2.id}`, { title: 'r1' }, a),
        t.del(`/v1/threads/${th2.id}`, a),
        t.patch(`/v1/threads/${th2.id}`, { title: 'r2' }, a),
        t.del(`/v1/threads/${th2.id}`, a),
      ]);
      assert.deepEqual(mixed.filter((r) => r.status === 204).length, 1);
      assert.ok(mixed.every((r) => [200, 204, 404].includes(r.status)), mixed.map((r) => r.status).join());
      assert.equal((await auditRows(t, 'thread.delete', th2.id)).length, 1);
    });
  });

  describe('DELETE /v1/threads/{id}', () => {
    it('soft-deletes: 404 everywhere afterwards, out of every list, audited', async () => {
      const th = await createThread(t, a, { title: 'doomed-thread' });
      await postMessage(t, a, th.id, 'doomed message');
      await t.post(`/v1/threads/${th.id}/star`, undefined, a);
      const res = await t.del(`/v1/threads/${th.id}`, a);
      assert.equal(res.status, 204);
      assert.equal(res.text, '');
      expectError(await t.get(`/v1/threads/${th.id}`, a), 404, 'threads.not_found');
      expectError(await t.patch(`/v1/threads/${th.id}`, { title: 'x' }, a), 404, 'threads.not_found');
      expectError(await t.del(`/v1/threads/${th.id}`, a), 404, 'threads.not_found');
      expectError(await t.post(`/v1/threads/${th.id}/star`, undefined, a), 404, 'threads.not_found');
      expectError(await t.del(`/v1/threads/${th.id}/star`, a), 404, 'threads.not_found');
      expectError(await t.get(`/v1/threads/${th.id}/messages`, a), 404, 'threads.not_found');
      expectError(await t.post(`/v1/threads/${th.id}/messages`, { content: 'x' }, a), 404, 'threads.not_found');
      assert.ok(!ids((await t.get('/v1/threads?limit=200', a)).body).includes(th.id));
      assert.ok(!ids((await t.get('/v1/threads/starred', a)).body).includes(th.id));
      assert.deepEqual((await t.get('/v1/threads/search?q=doomed', a)).body, []);
      const rows = await auditRows(t, 'thread.delete', th.id);
      assert.equal(rows.length, 1);
      assert.equal((rows[0].before_state as Record<string, unknown>).title, 'doomed-thread');
      assert.equal(rows[0].actor_user_id, alice.id);
      expectError(await t.del('/v1/threads/xyz', a), 404, 'threads.not_found');
    });
  });

  describe('stars', () => {
    it('star and unstar are idempotent 204s and per caller', async () => {
      const ws = await workspaceWithRoles(t);
      const project = await createProject(t, inAccount(ws.member, ws.ws), { visibility: 'shared' });
      const th = await createThread(t, inAccount(ws.member, ws.ws), { project_id: project.id });
      const m = inAccount(ws.member, ws.ws);
      const o = inAccount(ws.other, ws.ws);
      for (let i = 0; i < 2; i++) {
        const res = await t.post(`/v1/threads/${th.id}/star`, undefined, m);
        assert.equal(res.status, 204);
        assert.equal(res.text, '');
      }
      assert.equal((await t.get(`/v1/threads/${th.id}`, m)).body.starred, true);
      assert.equal((await t.get(`/v1/threads/${th.id}`, o)).body.starred, false);
      assert.equal((await t.post(`/v1/threads/${th.id}/star`, undefined, o)).status, 204);
      for (let i = 0; i < 2; i++) assert.equal((await t.del(`/v1/threads/${th.id}/star`, m)).status, 204);
      assert.equal((await t.get(`/v1/threads/${th.id}`, m)).body.starred, false);
      assert.equal((await t.get(`/v1/threads/${th.id}`, o)).body.starred, true);
      expectError(await t.post(`/v1/threads/${th.id}/star`, undefined, b), 404, 'threads.not_found');
      expectError(await t.post(`/v1/threads/${NIL_UUID}/star`, undefined, m), 404, 'threads.not_found');
      expectError(await t.post('/v1/threads/bad/star', undefined, m), 404, 'threads.not_found');
      expectError(await t.del('/v1/threads/bad/star', m), 404, 'threads.not_found');
    });
  });

  describe('lists', () => {
    let user: TestUser;
    let u: ReqOpts;
    const made: string[] = [];

    before(async () => {
      user = await registerUser(t);
      u = { token: user.token };
      for (let i = 0; i < 25; i++) made.push((await createThread(t, u, { title: `list thread ${i}` })).id);
    });

    it('GET /v1/threads: own threads, newest first, default limit 20, paged by before', async () => {
      const first = await t.get('/v1/threads', u);
      assert.equal(first.status, 200);
      assert.deepEqual(ids(first.body), [...made].reverse().slice(0, 20));
      const second = await t.get(`/v1/threads?before=${first.body[19].id}`, u);
      assert.deepEqual(ids(second.body), [...made].reverse().slice(20));
      const small = await t.get('/v1/threads?limit=3', u);
      assert.deepEqual(ids(small.body), [...made].reverse().slice(0, 3));
      assert.equal((await t.get('/v1/threads?limit=200', u)).body.length, 25);
      assert.deepEqual((await t.get(`/v1/threads?before=${made[0]}`, u)).body, []);
      // Someone else's threads are not in it, even visible ones.
      assert.ok(!ids((await t.get('/v1/threads?limit=200', a)).body).some((id: string) => made.includes(id)));
    });

    it('a soft-deleted thread still works as a cursor', async () => {
      const extra = [];
      for (let i = 0; i < 3; i++) extra.push((await createThread(t, u, { title: `cursor ${i}` })).id);
      await t.del(`/v1/threads/${extra[1]}`, u);
      const res = await t.get(`/v1/threads?before=${extra[1]}&limit=2`, u);
      assert.deepEqual(ids(res.body), [extra[0], made[24]]);
      for (const id of [extra[0], extra[2]]) await t.del(`/v1/threads/${id}`, u);
    });

    it('bad limits, cursors and project ids are 400s', async () => {
      for (const limit of ['0', '201', '-1', 'abc', '2.5']) expectFieldError(await t.get(`/v1/threads?limit=${limit}`, u), 'limit');
      expectFieldError(await t.get('/v1/threads?before=nope', u), 'before');
      expectFieldError(await t.get(`/v1/threads?before=${NIL_UUID}`, u), 'before');
      const foreign = await createThread(t, a);
      expectFieldError(await t.get(`/v1/threads?before=${foreign.id}`, u), 'before');
      expectFieldError(await t.get('/v1/threads?project_id=nope', u), 'project_id');
      for (const path of ['/v1/threads/starred', '/v1/threads/search?q=x&']) {
        const sep = path.includes('?') ? '' : '?';
        expectFieldError(await t.get(`${path}${sep}limit=0`, u), 'limit');
        expectFieldError(await t.get(`${path}${sep}limit=201`, u), 'limit');
        expectFieldError(await t.get(`${path}${sep}before=zzz`, u), 'before');
        expectFieldError(await t.get(`${path}${sep}before=${NIL_UUID}`, u), 'before');
      }
    });

    it('with project_id: the visible threads of that project; 404 for an invisible project', async () => {
      const ws = await workspaceWithRoles(t);
      const m = inAccount(ws.member, ws.ws);
      const o = inAccount(ws.other, ws.ws);
      const shared = await createProject(t, m, { visibility: 'shared' });
      const t1 = await createThread(t, m, { project_id: shared.id });
      const t2 = await createThread(t, o, { project_id: shared.id });
      const tPriv = await createThread(t, o, { project_id: shared.id, is_private: true });
      await createThread(t, m); // no project
      assert.deepEqual(ids((await t.get(`/v1/threads?project_id=${shared.id}`, m)).body), [t2.id, t1.id]);
      assert.deepEqual(ids((await t.get(`/v1/threads?project_id=${shared.id}`, o)).body), [tPriv.id, t2.id, t1.id]);
      assert.deepEqual(ids((await t.get(`/v1/threads?project_id=${shared.id}&limit=1&before=${t2.id}`, m)).body), [t1.id]);
      // The other member's private thread is not an item of the member's list.
      expectFieldError(await t.get(`/v1/threads?project_id=${shared.id}&before=${tPriv.id}`, m), 'before');
      const priv = await createProject(t, m);
      expectError(await t.get(`/v1/threads?project_id=${priv.id}`, o), 404, 'projects.not_found');
      expectError(await t.get(`/v1/threads?project_id=${NIL_UUID}`, m), 404, 'projects.not_found');
      expectError(await t.get(`/v1/threads?project_id=${shared.id}`, a), 404, 'projects.not_found');
      assert.deepEqual((await t.get(`/v1/threads?project_id=${priv.id}`, m)).body, []);
    });

    it('GET /v1/threads/starred: starred threads the caller can still see, newest thread first', async () => {
      const ws = await workspaceWithRoles(t);
      const m = inAccount(ws.member, ws.ws);
      const o = inAccount(ws.other, ws.ws);
      const project = await createProject(t, m, { visibility: 'shared' });
      const th = [];
      for (let i = 0; i < 4; i++) th.push(await createThread(t, m, { project_id: project.id }));
      // Starred in a different order than created.
      for (const i of [2, 0, 3, 1]) await t.post(`/v1/threads/${th[i].id}/star`, undefined, o);
      assert.deepEqual(ids((await t.get('/v1/threads/starred', o)).body), [th[3].id, th[2].id, th[1].id, th[0].id]);
      const starred = (await t.get('/v1/threads/starred', o)).body;
      assert.ok(starred.every((x: { starred: boolean }) => x.starred));
      assert.deepEqual(ids((await t.get(`/v1/threads/starred?limit=2&before=${th[2].id}`, o)).body), [th[1].id, th[0].id]);
      // Made private by its creator: no longer visible, so out of the list.
      await t.patch(`/v1/threads/${th[3].id}`, { is_private: true }, m);
      await t.del(`/v1/threads/${th[1].id}`, m);
      assert.deepEqual(ids((await t.get('/v1/threads/starred', o)).body), [th[2].id, th[0].id]);
      // A deleted starred thread still works as a cursor; one never starred does not.
      assert.deepEqual(ids((await t.get(`/v1/threads/starred?before=${th[1].id}`, o)).body), [th[0].id]);
      expectFieldError(await t.get(`/v1/threads/starred?before=${th[0].id}`, m), 'before');
      assert.deepEqual((await t.get('/v1/threads/starred', m)).body, []);
      // Stars do not leak into another account.
      assert.deepEqual((await t.get('/v1/threads/starred', { token: ws.other.token })).body, []);
    });
  });

  describe('GET /v1/threads/search', () => {
    it('finds visible threads by title or message content, case-insensitively, % and _ literal', async () => {
      const ws = await workspaceWithRoles(t);
      const m = inAccount(ws.member, ws.ws);
      const o = inAccount(ws.other, ws.ws);
      const project = await createProject(t, m, { visibility: 'shared' });
      const byTitle = await createThread(t, m, { title: 'Quarterly ZEBRA report', project_id: project.id });
      const byMessage = await createThread(t, m, { title: 'nothing here', project_id: project.id });
      await postMessage(t, m, byMessage.id, 'the zebra crossed');
      const personal = await createThread(t, m, { title: 'my zebra notes' });
      const privateOne = await createThread(t, m, { title: 'secret zebra', project_id: project.id, is_private: true });
      const percent = await createThread(t, m, { title: '100% done_now' });
      await createThread(t, m, { title: '100 x done-now' });

      assert.deepEqual(ids((await t.get('/v1/threads/search?q=zebra', m)).body), [privateOne.id, personal.id, byMessage.id, byTitle.id]);
      assert.deepEqual(ids((await t.get('/v1/threads/search?q=ZeBrA', o)).body), [byMessage.id, byTitle.id]);
      assert.deepEqual(ids((await t.get(`/v1/threads/search?q=${encodeURIComponent('100%')}`, m)).body), [percent.id]);
      assert.deepEqual(ids((await t.get(`/v1/threads/search?q=${encodeURIComponent('e_n')}`, m)).body), [percent.id]);
      assert.deepEqual((await t.get(`/v1/threads/search?q=${encodeURIComponent('%')}`, o)).body, []);
      assert.deepEqual(ids((await t.get(`/v1/threads/search?q=zebra&limit=1&before=${personal.id}`, m)).body), [byMessage.id]);
      // Another account sees nothing.
      assert.deepEqual((await t.get('/v1/threads/search?q=zebra', a)).body, []);
      // A thread that does not match is not a cursor of this list.
      expectFieldError(await t.get(`/v1/threads/search?q=zebra&before=${percent.id}`, m), 'before');
    });

    it('validates q', async () => {
      expectFieldError(await t.get('/v1/threads/search', a), 'q');
      expectFieldError(await t.get('/v1/threads/search?q=', a), 'q');
      expectFieldError(await t.get(`/v1/threads/search?q=${'x'.repeat(201)}`, a), 'q');
      assert.equal((await t.get(`/v1/threads/search?q=${'x'.repeat(200)}`, a)).status, 200);
    });
  });

  describe('visibility and editing (§1.4)', () => {
    it('follows the matrix of project visibility, privacy, creator and role', async () => {
      const ws = await workspaceWithRoles(t);
      const outsider = await registerUser(t); // member of the workspace, outside the team
      await addMember(t, ws.ws, outsider, 'member');
      const team = await createTeam(t, ws.ws, [ws.member, ws.other]);
      const as = (u: TestUser) => inAccount(u, ws.ws);
      const m = as(ws.member);

      const projects = {
        private: await createProject(t, m),
        shared: await createProject(t, m, { visibility: 'shared' }),
        team: await createProject(t, m, { visibility: 'shared', team_id: team }),
      };
      const threads = {
        none: await createThread(t, m),
        privateProject: await createThread(t, m, { project_id: projects.private.id }),
        shared: await createThread(t, m, { project_id: projects.shared.id }),
        sharedPrivate: await createThread(t, m, { project_id: projects.shared.id, is_private: true }),
        team: await createThread(t, m, { project_id: projects.team.id }),
        teamPrivate: await createThread(t, m, { project_id: projects.team.id, is_private: true }),
      };
      type K = keyof typeof threads;
      const viewers: Array<[string, TestUser, K[]]> = [
        ['creator', ws.member, ['none', 'privateProject', 'shared', 'sharedPrivate', 'team', 'teamPrivate']],
        ['team member', ws.other, ['shared', 'team']],
        ['member outside the team', outsider, ['shared']],
        ['admin', ws.admin, ['shared', 'team']],
        ['owner', ws.owner, ['shared', 'team']],
        ['platform admin acting in the account', padmin, ['shared', 'team']],
        ['user of another account', bob, []],
      ];
      for (const [label, viewer, visible] of viewers) {
        for (const key of Object.keys(threads) as K[]) {
          const res = await t.get(`/v1/threads/${threads[key].id}`, as(viewer));
          if (label === 'user of another account') {
            expectError(res, 404, 'accounts.not_found');
            continue;
          }
          assert.equal(res.status, visible.includes(key) ? 200 : 404, `${label} GET ${key}: ${res.status}`);
          if (res.status === 404) expectError(res, 404, 'threads.not_found');
          const msgs = await t.get(`/v1/threads/${threads[key].id}/messages`, as(viewer));
          assert.equal(msgs.status, visible.includes(key) ? 200 : 404, `${label} messages ${key}`);
        }
      }
      // Bob with his own credentials (no X-Account-Id) sees none of them.
      for (const th of Object.values(threads)) expectError(await t.get(`/v1/threads/${th.id}`, b), 404, 'threads.not_found');

      // Editing: the creator or an owner/admin who can see it; others who see it → 403.
      expectError(await t.patch(`/v1/threads/${threads.shared.id}`, { title: 'x' }, as(ws.other)), 403, 'auth.forbidden');
      expectError(await t.del(`/v1/threads/${threads.shared.id}`, as(outsider)), 403, 'auth.forbidden');
      expectError(await t.patch(`/v1/threads/${threads.team.id}`, { title: 'x' }, as(outsider)), 404, 'threads.not_found');
      expectError(await t.patch(`/v1/threads/${threads.sharedPrivate.id}`, { title: 'x' }, as(ws.owner)), 404, 'threads.not_found');
      expectError(await t.del(`/v1/threads/${threads.privateProject.id}`, as(ws.admin)), 404, 'threads.not_found');
      // 404 of a body reference comes before the 403 of the rights.
      expectError(await t.patch(`/v1/threads/${threads.shared.id}`, { project_id: NIL_UUID }, as(ws.other)), 404, 'projects.not_found');
      assert.equal((await t.patch(`/v1/threads/${threads.team.id}`, { title: 'by admin' }, as(ws.admin))).body.title, 'by admin');
      assert.equal((await t.patch(`/v1/threads/${threads.shared.id}`, { title: 'by owner' }, as(ws.owner))).body.title, 'by owner');
      assert.equal((await t.patch(`/v1/threads/${threads.shared.id}`, { title: 'by padmin' }, as(padmin))).status, 200);
      const padminAudit = await auditRows(t, 'thread.update', threads.shared.id);
      assert.deepEqual(padminAudit[padminAudit.length - 1].metadata, { acting_as_platform_admin: true });
      // A member who can see a thread may star it (manage point), though not edit it.
      assert.equal((await t.post(`/v1/threads/${threads.team.id}/star`, undefined, as(ws.other))).status, 204);
      expectError(await t.post(`/v1/threads/${threads.team.id}/star`, undefined, as(outsider)), 404, 'threads.not_found');
      assert.equal((await t.del(`/v1/threads/${threads.team.id}`, as(ws.owner))).status, 204);
      assert.equal((await t.del(`/v1/threads/${threads.none.id}`, m)).status, 204);

      // A shared project made private: others' threads in it become visible to their creators only.
      const otherThread = await createThread(t, as(ws.other), { project_id: projects.shared.id });
      await t.patch(`/v1/projects/${projects.shared.id}`, { visibility: 'private' }, m);
      expectError(await t.get(`/v1/threads/${threads.shared.id}`, as(ws.owner)), 404, 'threads.not_found');
      expectError(await t.get(`/v1/threads/${otherThread.id}`, m), 404, 'threads.not_found');
      assert.equal((await t.get(`/v1/threads/${otherThread.id}`, as(ws.other))).status, 200);
      // Moving a thread into a project needs that project to be visible to the editor.
      expectError(await t.patch(`/v1/threads/${otherThread.id}`, { project_id: projects.private.id }, as(ws.other)), 404, 'projects.not_found');
    });

    it('another account never sees a thread, on any endpoint', async () => {
      const th = await createThread(t, a, { title: 'alice only' });
      await postMessage(t, a, th.id, 'alice message');
      for (const res of [
        await t.get(`/v1/threads/${th.id}`, b),
        await t.patch(`/v1/threads/${th.id}`, { title: 'x' }, b),
        await t.del(`/v1/threads/${th.id}`, b),
        await t.post(`/v1/threads/${th.id}/star`, undefined, b),
        await t.del(`/v1/threads/${th.id}/star`, b),
        await t.get(`/v1/threads/${th.id}/messages`, b),
        await t.post(`/v1/threads/${th.id}/messages`, { content: 'x' }, b),
      ]) {
        expectError(res, 404, 'threads.not_found');
      }
      assert.deepEqual((await t.get('/v1/threads/search?q=alice', b)).body, []);
      // Still intact for alice.
      assert.equal((await t.get(`/v1/threads/${th.id}`, a)).body.title, 'alice only');
    });
  });
});
