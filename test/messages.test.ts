// §7 Messages: posting (validation in UTF-8 bytes, idempotency, thread updated_at) and paging
// (newest page, oldest → newest, cursors), through visible threads only.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { registerUser, startTestApp, type ReqOpts, type TestApp, type TestUser } from './helpers/app.js';
import { expectAuthRequired, expectError, expectFieldError } from './helpers/assert.js';
import {
  ISO_MS,
  NIL_UUID,
  createApiKey,
  createProject,
  createThread,
  inAccount,
  postMessage,
  workspaceWithRoles,
} from './helpers/content-fixtures.js';

const MAX = 131072;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('messages', () => {
  let t: TestApp;
  let alice: TestUser;
  let bob: TestUser;
  let a: ReqOpts;
  let b: ReqOpts;

  before(async () => {
    t = await startTestApp();
    await registerUser(t); // the first user is the platform admin
    alice = await registerUser(t);
    bob = await registerUser(t);
    a = { token: alice.token };
    b = { token: bob.token };
  });
  after(async () => { await t.close(); });

  const ids = (rows: Array<{ id: string }>) => rows.map((r) => r.id);

  it('both endpoints require credentials and their permission point', async () => {
    await expectAuthRequired(t, 'POST', `/v1/threads/${NIL_UUID}/messages`, { content: 'x' });
    await expectAuthRequired(t, 'GET', `/v1/threads/${NIL_UUID}/messages`);
    const readOnly = await createApiKey(t, alice, alice.personalAccountId, ['data.threads.read']);
    const th = await createThread(t, a);
    expectError(await t.post(`/v1/threads/${th.id}/messages`, { content: 'x' }, { token: readOnly }), 403, 'auth.forbidden');
    expectError(await t.post(`/v1/threads/${th.id}/messages`, {}, { token: readOnly }), 403, 'auth.forbidden');
    assert.equal((await t.get(`/v1/threads/${th.id}/messages`, { token: readOnly })).status, 200);
    const manageOnly = await createApiKey(t, alice, alice.personalAccountId, ['data.threads.manage']);
    expectError(await t.get(`/v1/threads/${th.id}/messages`, { token: manageOnly }), 403, 'auth.forbidden');
  });

  describe('POST /v1/threads/{id}/messages', () => {
    it('creates a user message with the Message shape and bumps the thread updated_at', async () => {
      const th = await createThread(t, a);
      await sleep(5);
      const res = await t.post(`/v1/threads/${th.id}/messages`, { content: '  Hello, world!  ' }, a);
      assert.equal(res.status, 201, res.text);
      const m = res.body;
      assert.deepEqual(Object.keys(m).sort(), ['content', 'created_at', 'created_by_user_id', 'id', 'org_id', 'role', 'run_id', 'thread_id']);
      assert.equal(m.org_id, alice.personalAccountId);
      assert.equal(m.thread_id, th.id);
      assert.equal(m.created_by_user_id, alice.id);
      assert.equal(m.role, 'user');
      assert.equal(m.content, '  Hello, world!  '); // content is kept as sent
      assert.equal(m.run_id, null);
      assert.match(m.created_at, ISO_MS);
      const after = (await t.get(`/v1/threads/${th.id}`, a)).body;
      assert.equal(after.updated_at, m.created_at);
      assert.ok(Date.parse(after.updated_at) > Date.parse(th.updated_at as string));
      assert.equal(after.created_at, th.created_at);
      // No audit row and no run for a message.
      const audit = await t.ctx.db.selectFrom('audit_logs').select('action').where('target_id', '=', m.id).execute();
      assert.equal(audit.length, 0);
    });

    it('validates content: required string, not blank, at most 131072 UTF-8 bytes', async () => {
      const th = await createThread(t, a);
      const path = `/v1/threads/${th.id}/messages`;
      expectFieldError(await t.post(path, {}, a), 'content');
      expectFieldError(await t.post(path, undefined, a), 'content');
      expectFieldError(await t.post(path, { content: null }, a), 'content');
      expectFieldError(await t.post(path, { content: 42 }, a), 'content');
      expectFieldError(await t.post(path, { content: ['x'] }, a), 'content');
      expectFieldError(await t.post(path, { content: '' }, a), 'content');
      expectFieldError(await t.post(path, { content: ' \n\t ' }, a), 'content');

      assert.equal((await t.post(path, { content: 'a'.repeat(MAX) }, a)).status, 201);
      expectFieldError(await t.post(path, { content: 'a'.repeat(MAX + 1) }, a), 'content');
      // Multi-byte characters count by their UTF-8 bytes, not by characters.
      const two = 'é'; // 2 bytes
      const four = '😀'; // 4 bytes, 2 UTF-16 units, 1 code point
      const okTwo = await t.post(path, { content: two.repeat(MAX / 2) }, a);
      assert.equal(okTwo.status, 201);
      assert.equal(okTwo.body.content, two.repeat(MAX / 2));
      const overTwo = await t.post(path, { content: two.repeat(MAX / 2 + 1) }, a);
      expectFieldError(overTwo, 'content');
      assert.equal(overTwo.body.details.max_bytes, MAX);
      assert.equal((await t.post(path, { content: four.repeat(MAX / 4) }, a)).status, 201);
      expectFieldError(await t.post(path, { content: four.repeat(MAX / 4 + 1) }, a), 'content');
      expectFieldError(await t.post(path, { content: '日'.repeat(43691) }, a), 'content'); // 131073 bytes
      const count = await t.ctx.db.selectFrom('messages').select('id').where('thread_id', '=', th.id).execute();
      assert.equal(count.length, 3);
    });

    it('answers 404 for malformed, unknown, foreign and deleted threads', async () => {
      const th = await createThread(t, a);
      expectError(await t.post('/v1/threads/nope/messages', { content: 'x' }, a), 404, 'threads.not_found');
      expectError(await t.post(`/v1/threads/${NIL_UUID}/messages`, { content: 'x' }, a), 404, 'threads.not_found');
      expectError(await t.post(`/v1/threads/${th.id}/messages`, { content: 'x' }, b), 404, 'threads.not_found');
      await t.del(`/v1/threads/${th.id}`, a);
      expectError(await t.post(`/v1/threads/${th.id}/messages`, { content: 'x' }, a), 404, 'threads.not_found');
      // Validation (400) comes before the thread lookup (404).
      expectFieldError(await t.post(`/v1/threads/${NIL_UUID}/messages`, { content: '' }, a), 'content');
    });

    it('any member who can see a thread may post to it; invisible threads are 404', async () => {
      const ws = await workspaceWithRoles(t);
      const m = inAccount(ws.member, ws.ws);
      const project = await createProject(t, m, { visibility: 'shared' });
      const shared = await createThread(t, m, { project_id: project.id });
      const priv = await createThread(t, m, { project_id: project.id, is_private: true });
      const posted = await postMessage(t, inAccount(ws.other, ws.ws), shared.id, 'from another member');
      assert.equal(posted.created_by_user_id, ws.other.id);
      expectError(await t.post(`/v1/threads/${priv.id}/messages`, { content: 'x' }, inAccount(ws.owner, ws.ws)), 404, 'threads.not_found');
      expectError(await t.get(`/v1/threads/${priv.id}/messages`, inAccount(ws.admin, ws.ws)), 404, 'threads.not_found');
      const listed = await t.get(`/v1/threads/${shared.id}/messages`, inAccount(ws.admin, ws.ws));
      assert.deepEqual(ids(listed.body), [posted.id]);
    });

    it('works with an API key', async () => {
      const key = await createApiKey(t, alice, alice.personalAccountId);
      const th = await createThread(t, a);
      const res = await t.post(`/v1/threads/${th.id}/messages`, { content: 'via key' }, { token: key });
      assert.equal(res.status, 201);
      assert.equal(res.body.created_by_user_id, alice.id);
      assert.deepEqual(ids((await t.get(`/v1/threads/${th.id}/messages`, { token: key })).body), [res.body.id]);
    });

    it('is idempotent with an Idempotency-Key', async () => {
      const th = await createThread(t, a);
      const other = await createThread(t, a);
      const headers = { 'idempotency-key': 'msg-1' };
      const first = await t.post(`/v1/threads/${th.id}/messages`, { content: 'once' }, { ...a, headers });
      assert.equal(first.status, 201);
      const again = await t.post(`/v1/threads/${th.id}/messages`, { content: 'once' }, { ...a, headers });
      assert.equal(again.status, 201);
      assert.equal(again.headers['idempotent-replayed'], 'true');
      assert.deepEqual(again.body, first.body);
      const rows = await t.ctx.db.selectFrom('messages').select('id').where('thread_id', '=', th.id).execute();
      assert.equal(rows.length, 1);
      expectError(await t.post(`/v1/threads/${th.id}/messages`, { content: 'twice' }, { ...a, headers }), 409, 'idempotency.key_reused');
      expectError(await t.post(`/v1/threads/${other.id}/messages`, { content: 'once' }, { ...a, headers }), 409, 'idempotency.key_reused');
      assert.equal((await t.ctx.db.selectFrom('messages').select('id').where('thread_id', '=', other.id).execute()).length, 0);
      // An error answer leaves the key unused.
      const h2 = { 'idempotency-key': 'msg-2' };
      expectError(await t.post(`/v1/threads/${NIL_UUID}/messages`, { content: 'x' }, { ...a, headers: h2 }), 404, 'threads.not_found');
      assert.equal((await t.post(`/v1/threads/${th.id}/messages`, { content: 'x' }, { ...a, headers: h2 })).status, 201);
    });
  });

  describe('GET /v1/threads/{id}/messages', () => {
    let th: { id: string };
    const posted: string[] = [];

    before(async () => {
      th = await createThread(t, a);
      for (let i = 0; i < 55; i++) posted.push((await postMessage(t, a, th.id, `message ${i}`)).id);
    });

    it('returns the newest 50 by default, oldest → newest, and pages back with before = first id', async () => {
      const page1 = await t.get(`/v1/threads/${th.id}/messages`, a);
      assert.equal(page1.status, 200);
      assert.deepEqual(ids(page1.body), posted.slice(5));
      assert.equal(page1.body[0].content, 'message 5');
      const page2 = await t.get(`/v1/threads/${th.id}/messages?before=${page1.body[0].id}`, a);
      assert.deepEqual(ids(page2.body), posted.slice(0, 5));
      const page3 = await t.get(`/v1/threads/${th.id}/messages?before=${posted[0]}`, a);
      assert.deepEqual(page3.body, []);
      assert.deepEqual(ids((await t.get(`/v1/threads/${th.id}/messages?limit=3`, a)).body), posted.slice(52));
      assert.deepEqual(ids((await t.get(`/v1/threads/${th.id}/messages?limit=2&before=${posted[10]}`, a)).body), posted.slice(8, 10));
      assert.deepEqual(ids((await t.get(`/v1/threads/${th.id}/messages?limit=200`, a)).body), posted);
    });

    it('an empty thread has no messages', async () => {
      const empty = await createThread(t, a);
      assert.deepEqual((await t.get(`/v1/threads/${empty.id}/messages`, a)).body, []);
    });

    it('rejects bad limits and cursors', async () => {
      const path = `/v1/threads/${th.id}/messages`;
      for (const limit of ['0', '201', 'x', '-3']) expectFieldError(await t.get(`${path}?limit=${limit}`, a), 'limit');
      expectFieldError(await t.get(`${path}?before=not-an-id`, a), 'before');
      expectFieldError(await t.get(`${path}?before=${NIL_UUID}`, a), 'before');
      // A message of another thread is not an item of this list.
      const other = await createThread(t, a);
      const foreign = await postMessage(t, a, other.id, 'elsewhere');
      expectFieldError(await t.get(`${path}?before=${foreign.id}`, a), 'before');
      // The thread id itself is not a message cursor either.
      expectFieldError(await t.get(`${path}?before=${th.id}`, a), 'before');
    });

    it('answers 404 for malformed, unknown, foreign and deleted threads', async () => {
      expectError(await t.get('/v1/threads/123/messages', a), 404, 'threads.not_found');
      expectError(await t.get(`/v1/threads/${NIL_UUID}/messages`, a), 404, 'threads.not_found');
      expectError(await t.get(`/v1/threads/${th.id}/messages`, b), 404, 'threads.not_found');
      expectError(await t.get(`/v1/threads/${th.id}/messages?before=${posted[3]}`, b), 404, 'threads.not_found');
      const doomed = await createThread(t, a);
      const msg = await postMessage(t, a, doomed.id, 'gone soon');
      await t.del(`/v1/threads/${doomed.id}`, a);
      expectError(await t.get(`/v1/threads/${doomed.id}/messages`, a), 404, 'threads.not_found');
      expectError(await t.get(`/v1/threads/${doomed.id}/messages?before=${msg.id}`, a), 404, 'threads.not_found');
    });
  });
});
