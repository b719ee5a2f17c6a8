// Notifications (api.md §19.1–19.3) and admin broadcasts (§19.4–19.7), through HTTP: the inbox's
// filters and paging, mark one / all read, other users' notifications, and broadcasts fanned
// out in batches by the `broadcast.fanout` job — status, sent_count, a job stopped half-way and
// taken over without duplicates, delete withdrawing what it created.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { sql } from 'kysely';
import { registerUser, startTestApp, type TestApp, type TestUser } from './helpers/app.js';
import { adminCast, expectPadminOnly, type AdminCast } from './helpers/admin.js';
import { expectError, expectFieldError } from './helpers/assert.js';
import { createWorkspace, joinAccount } from './helpers/accounts-fixtures.js';
import { createNotification } from '../src/modules/notifications/store.js';
import { fanOutBroadcast } from '../src/modules/notifications/fanout.js';
import { startWorker } from '../src/server.js';
import { newId } from '../src/lib/ids.js';

const BATCH = 40;

/** Inserts `n` active users in one statement (set-based: no registration round trips). */
async function seedUsers(t: TestApp, n: number, status = 'active'): Promise<void> {
  const tag = newId().slice(-12);
  await sql`
    INSERT INTO users (id, login, username, status)
    SELECT arkloop_uuid_v7(), ${'seed' + tag + '-'} || g, ${'seed' + tag + '-'} || g, ${status}
      FROM generate_series(1, ${n}) g`.execute(t.ctx.db);
}

async function activeUsers(t: TestApp): Promise<number> {
  const r = await sql<{ n: number }>`SELECT count(*)::int AS n FROM users WHERE status = 'active'`.execute(t.ctx.db);
  return r.rows[0].n;
}

/** The broadcast's notifications: how many, and how many distinct users. */
async function delivered(t: TestApp, broadcastId: string): Promise<{ rows: number; users: number }> {
  const r = await sql<{ rows: number; users: number }>`
    SELECT count(*)::int AS rows, count(DISTINCT user_id)::int AS users FROM notifications WHERE broadcast_id = ${broadcastId}`.execute(t.ctx.db);
  return r.rows[0];
}

async function waitForStatus(t: TestApp, token: string, id: string, status: string): Promise<any> {
  const deadline = Date.now() + 20_000;
  for (;;) {
    const res = await t.get(`/v1/admin/notifications/broadcasts/${id}`, { token });
    assert.equal(res.status, 200, res.text);
    if (res.body.status === status) return res.body;
    assert.ok(Date.now() < deadline, `broadcast still ${res.body.status} (${res.body.sent_count} sent)`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

describe('notifications: the inbox', () => {
  let t: TestApp;
  let a: TestUser;
  let b: TestUser;
  const ids: string[] = [];

  before(async () => {
    t = await startTestApp();
    a = await registerUser(t);
    b = await registerUser(t);
    for (let i = 0; i < 7; i++) {
      const n = await createNotification(t.ctx.db, { userId: a.id, orgId: i === 0 ? a.personalAccountId : null, type: i % 2 ? 'odd' : 'even', title: `n${i}`, body: `body ${i}`, payload: { i } });
      ids.push(n.id);
    }
    await createNotification(t.ctx.db, { userId: b.id, orgId: null, type: 'even', title: 'for b' });
  });
  after(async () => t?.close());

  it('lists the caller\'s notifications newest first, with the Notification shape', async () => {
    const res = await t.get('/v1/notifications', { token: a.token });
    assert.equal(res.status, 200, res.text);
    assert.deepEqual(res.body.data.map((n: any) => n.id), [...ids].reverse());
    const oldest = res.body.data[6];
    assert.deepEqual(Object.keys(oldest).sort(), ['body', 'created_at', 'id', 'org_id', 'payload', 'read_at', 'title', 'type', 'user_id']);
    assert.deepEqual({ ...oldest, id: 0, created_at: 0 }, { id: 0, created_at: 0, user_id: a.id, org_id: a.personalAccountId, type: 'even', title: 'n0', body: 'body 0', payload: { i: 0 }, read_at: null });
    assert.match(oldest.created_at, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);
  });

  it('filters by type and unread_only; pages with limit and before', async () => {
    const odd = await t.get('/v1/notifications?type=odd', { token: a.token });
    assert.deepEqual(odd.body.data.map((n: any) => n.title), ['n5', 'n3', 'n1']);
    const p1 = await t.get('/v1/notifications?limit=3', { token: a.token });
    assert.deepEqual(p1.body.data.map((n: any) => n.title), ['n6', 'n5', 'n4']);
    const p2 = await t.get(`/v1/notifications?limit=3&before=${p1.body.data[2].id}`, { token: a.token });
    assert.deepEqual(p2.body.data.map((n: any) => n.title), ['n3', 'n2', 'n1']);
    const p3 = await t.get(`/v1/notifications?limit=3&before=${p2.body.data[2].id}`, { token: a.token });
    assert.deepEqual(p3.body.data.map((n: any) => n.title), ['n0']);
    const last = await t.get(`/v1/notifications?before=${ids[0]}`, { token: a.token });
    assert.deepEqual(last.body.data, []);
    const evenPage = await t.get(`/v1/notifications?type=even&limit=1&before=${ids[4]}`, { token: a.token });
    assert.deepEqual(evenPage.body.data.map((n: any) => n.title), ['n2']);
  });

  it('the list is the same whatever the current account', async () => {
    const ws = await createWorkspace(t, a);
    const res = await t.get('/v1/notifications', { token: a.token, headers: { 'x-account-id': ws.id } });
    assert.equal(res.body.data.length, 7);
  });

  it('refuses bad query values', async () => {
    for (const q of ['limit=0', 'limit=201', 'limit=x', 'unread_only=yes', 'before=nope', 'type=']) {
      expectError(await t.get(`/v1/notifications?${q}`, { token: a.token }), 400, 'validation.error');
    }
    // A well-formed id that is not one of the caller's notifications.
    const foreign = (await t.get('/v1/notifications', { token: b.token })).body.data[0].id;
    expectFieldError(await t.get(`/v1/notifications?before=${foreign}`, { token: a.token }), 'before');
    expectFieldError(await t.get(`/v1/notifications?before=${newId()}`, { token: a.token }), 'before');
  });

  it('marks one read (read_at kept when already read); another user\'s or an unknown id is a 404', async () => {
    const id = ids[1];
    const ok = await t.patch(`/v1/notifications/${id}`, undefined, { token: a.token });
    assert.equal(ok.status, 200, ok.text);
    assert.deepEqual(ok.body, { ok: true });
    const first = (await t.get('/v1/notifications?type=odd', { token: a.token })).body.data.find((n: any) => n.id === id).read_at;
    assert.ok(first);
    await new Promise((r) => setTimeout(r, 5));
    assert.equal((await t.put(`/v1/notifications/${id}`, undefined, { token: a.token })).status, 200);
    const again = (await t.get('/v1/notifications?type=odd', { token: a.token })).body.data.find((n: any) => n.id === id).read_at;
    assert.equal(again, first);
    const unread = await t.get('/v1/notifications?unread_only=true', { token: a.token });
    assert.ok(!unread.body.data.some((n: any) => n.id === id));
    assert.equal(unread.body.data.length, 6);

    const bs = (await t.get('/v1/notifications', { token: b.token })).body.data[0].id;
    expectError(await t.patch(`/v1/notifications/${bs}`, undefined, { token: a.token }), 404, 'notifications.not_found');
    expectError(await t.patch(`/v1/notifications/${newId()}`, undefined, { token: a.token }), 404, 'notifications.not_found');
    expectError(await t.patch('/v1/notifications/not-a-uuid', undefined, { token: a.token }), 404, 'notifications.not_found');
    expectError(await t.patch(`/v1/notifications/${id}`, undefined, {}), 401, 'auth.unauthorized');
  });

  it('marks all read, counting only the newly marked; other users are untouched', async () => {
    const res = await t.patch('/v1/notifications', undefined, { token: a.token });
    assert.deepEqual(res.body, { ok: true, count: 6 });
    assert.deepEqual((await t.patch('/v1/notifications', {}, { token: a.token })).body, { ok: true, count: 0 });
    assert.deepEqual((await t.get('/v1/notifications?unread_only=1', { token: a.token })).body.data, []);
    assert.equal((await t.get('/v1/notifications?unread_only=true', { token: b.token })).body.data.length, 1);
  });

  it('API keys are refused (user routes)', async () => {
    const key = (await t.post('/v1/api-keys', { name: 'k' }, { token: a.token })).body.key;
    expectError(await t.get('/v1/notifications', { token: key }), 403, 'auth.forbidden');
    expectError(await t.patch('/v1/notifications', undefined, { token: key }), 403, 'auth.forbidden');
  });
});

describe('broadcasts', () => {
  let t: TestApp;
  let cast: AdminCast;
  let worker: ReturnType<typeof startWorker> | null = null;
  const asAdmin = () => ({ token: cast.admin.token });
  const url = '/v1/admin/notifications/broadcasts';

  before(async () => {
    // No worker at first: the tests decide when fan-outs run.
    t = await startTestApp({ ARKLOOP_BROADCAST_BATCH_SIZE: String(BATCH), ARKLOOP_WORKER_POLL_SECONDS: '0.05' });
    cast = await adminCast(t);
  });
  after(async () => {
    await worker?.stop();
    await t?.close();
  });

  const runWorker = () => {
    worker ??= startWorker(t.ctx);
  };

  it('padmin only', async () => {
    await expectPadminOnly(t, cast, 'POST', url, { type: 'news', title: 't', body: 'b', target: 'all' });
    await expectPadminOnly(t, cast, 'GET', url);
    await expectPadminOnly(t, cast, 'GET', `${url}/${newId()}`);
    await expectPadminOnly(t, cast, 'DELETE', `${url}/${newId()}`);
  });

  it('validates the body', async () => {
    const good = { type: 'news.v1', title: 'Hello', body: 'World', target: 'all' };
    const cases: Array<[Record<string, unknown>, string]> = [
      [{ ...good, type: 'News' }, 'type'],
      [{ ...good, type: 'x'.repeat(65) }, 'type'],
      [{ ...good, type: undefined }, 'type'],
      [{ ...good, title: '   ' }, 'title'],
      [{ ...good, title: 'x'.repeat(201) }, 'title'],
      [{ ...good, body: '' }, 'body'],
      [{ ...good, body: '  \n ' }, 'body'],
      [{ ...good, body: 'x'.repeat(10_001) }, 'body'],
      [{ ...good, target: 'everyone' }, 'target'],
      [{ ...good, target: 42 }, 'target'],
      [{ ...good, target: undefined }, 'target'],
      [{ ...good, payload: [1] }, 'payload'],
      [{ ...good, payload: 'x' }, 'payload'],
      [{ ...good, payload: { big: 'x'.repeat(17_000) } }, 'payload'],
    ];
    for (const [body, field] of cases) expectFieldError(await t.post(url, body, asAdmin()), field);
    expectError(await t.post(url, { ...good, target: newId() }, asAdmin()), 404, 'accounts.not_found');
    expectError(await t.post(url, 'nope', { ...asAdmin(), raw: 'nope', headers: { 'content-type': 'application/json' } }), 422, 'validation.error');
  });

  it('to all: 202 pending, then sent in batches to every active user, once each', async () => {
    await seedUsers(t, 5 * BATCH + 7);
    await seedUsers(t, 3, 'suspended');
    const expected = await activeUsers(t);
    const res = await t.post(url, { type: 'maintenance', title: ' Downtime ', body: 'Sunday 2am', target: 'all', payload: { window: '2h' } }, asAdmin());
    assert.equal(res.status, 202, res.text);
    const b = res.body;
    assert.deepEqual({ ...b, id: 0, created_at: 0 }, {
      id: 0, created_at: 0, type: 'maintenance', title: 'Downtime', body: 'Sunday 2am', target_type: 'all', target_id: null,
      payload: { window: '2h' }, status: 'pending', sent_count: 0, created_by: cast.admin.id, completed_at: null,
    });
    runWorker();
    const done = await waitForStatus(t, cast.admin.token, b.id, 'sent');
    assert.equal(done.sent_count, expected);
    assert.ok(done.completed_at && done.completed_at >= done.created_at);
    assert.deepEqual(await delivered(t, b.id), { rows: expected, users: expected });
    const inbox = await t.get('/v1/notifications', { token: cast.member.token });
    const n = inbox.body.data.find((x: any) => x.payload.broadcast_id === b.id);
    assert.deepEqual({ ...n, id: 0, created_at: 0 }, {
      id: 0, created_at: 0, user_id: cast.member.id, org_id: null, type: 'maintenance', title: 'Downtime', body: 'Sunday 2am',
      payload: { window: '2h', broadcast_id: b.id }, read_at: null,
    });
    const suspended = await sql<{ n: number }>`
      SELECT count(*)::int AS n FROM notifications n JOIN users u ON u.id = n.user_id WHERE n.broadcast_id = ${b.id} AND u.status <> 'active'`.execute(t.ctx.db);
    assert.equal(suspended.rows[0].n, 0);
  });

  it('to an account: only its active members, with org_id the account', async () => {
    const owner = await registerUser(t);
    const other = await registerUser(t);
    const ws = await createWorkspace(t, owner);
    await joinAccount(t, owner, ws.id, cast.member, 'member');
    // More members than a batch, inserted in one statement.
    await sql`
      INSERT INTO account_memberships (account_id, user_id, role)
      SELECT ${ws.id}::uuid, id, 'member' FROM users WHERE login LIKE 'seed%' AND status = 'active' ORDER BY id LIMIT ${BATCH + 3}`.execute(t.ctx.db);
    await sql`INSERT INTO account_memberships (account_id, user_id, role) SELECT ${ws.id}::uuid, id, 'member' FROM users WHERE status = 'suspended'`.execute(t.ctx.db);
    const res = await t.post(url, { type: 'ws.news', title: 'Team', body: 'Hi team', target: ws.id.toUpperCase() }, asAdmin());
    assert.equal(res.status, 202, res.text);
    assert.equal(res.body.target_type, 'org');
    assert.equal(res.body.target_id, ws.id);
    runWorker();
    const done = await waitForStatus(t, cast.admin.token, res.body.id, 'sent');
    assert.equal(done.sent_count, BATCH + 5);
    assert.deepEqual(await delivered(t, res.body.id), { rows: BATCH + 5, users: BATCH + 5 });
    const mine = (await t.get('/v1/notifications?type=ws.news', { token: cast.member.token })).body.data;
    assert.equal(mine.length, 1);
    assert.equal(mine[0].org_id, ws.id);
    assert.deepEqual((await t.get('/v1/notifications?type=ws.news', { token: other.token })).body.data, []);
  });

  it('a fan-out stopped half-way is taken over where it stopped: status sending, then sent, no duplicates', async () => {
    await worker?.stop();
    worker = null;
    const expected = await activeUsers(t);
    const res = await t.post(url, { type: 'restart', title: 'R', body: 'r', target: 'all' }, asAdmin());
    assert.equal(res.status, 202);
    const id = res.body.id;
    // A worker that dies after two committed batches (its abort comes between batches).
    const abort = new AbortController();
    let batches = 0;
    await assert.rejects(
      fanOutBroadcast(t.ctx, id, abort.signal, { batchSize: BATCH, afterBatch: () => { if (++batches === 2) abort.abort(new Error('killed')); } }),
      /killed/,
    );
    const half = (await t.get(`${url}/${id}`, asAdmin())).body;
    assert.equal(half.status, 'sending');
    assert.equal(half.sent_count, 2 * BATCH);
    assert.equal(half.completed_at, null);
    // The job is still queued: a worker takes it and continues.
    runWorker();
    const done = await waitForStatus(t, cast.admin.token, id, 'sent');
    assert.equal(done.sent_count, expected);
    assert.deepEqual(await delivered(t, id), { rows: expected, users: expected });

    // Even a batch written again from an old position inserts nothing twice.
    await sql`UPDATE broadcasts SET status = 'sending', fanout_after = NULL WHERE id = ${id}`.execute(t.ctx.db);
    let again = 0;
    await fanOutBroadcast(t.ctx, id, new AbortController().signal, { batchSize: BATCH, afterBatch: () => again++ });
    assert.ok(again > 5, `${again} batches`);
    assert.equal((await t.get(`${url}/${id}`, asAdmin())).body.sent_count, expected);
    assert.deepEqual(await delivered(t, id), { rows: expected, users: expected });
  });

  it('a fan-out that fails on every attempt ends failed, with what it could not send unsent', async () => {
    runWorker();
    await worker!.stop(); // created while no worker runs, so the test can shorten its job first
    worker = null;
    const res = await t.post(url, { type: 'doomed', title: 'F', body: 'f', target: 'all' }, asAdmin());
    assert.equal(res.status, 202);
    const id = res.body.id;
    // Two attempts instead of five, so the test waits one back-off (1 s), not fifteen.
    await sql`UPDATE jobs SET max_attempts = 2 WHERE type = 'broadcast.fanout' AND payload->>'broadcast_id' = ${id}`.execute(t.ctx.db);
    await sql`CREATE OR REPLACE FUNCTION test_refuse_broadcast() RETURNS trigger LANGUAGE plpgsql AS $$
      BEGIN IF NEW.broadcast_id = ${sql.lit(id)}::uuid THEN RAISE EXCEPTION 'notifications refused'; END IF; RETURN NEW; END $$`.execute(t.ctx.db);
    await sql`CREATE TRIGGER test_refuse_broadcast BEFORE INSERT ON notifications FOR EACH ROW EXECUTE FUNCTION test_refuse_broadcast()`.execute(t.ctx.db);
    try {
      runWorker();
      const failed = await waitForStatus(t, cast.admin.token, id, 'failed');
      assert.equal(failed.sent_count, 0);
      assert.deepEqual(await delivered(t, id), { rows: 0, users: 0 });
      const jobs = await sql<{ state: string; attempts: number; last_error: string }>`
        SELECT state, attempts, last_error FROM jobs WHERE type = 'broadcast.fanout' AND payload->>'broadcast_id' = ${id}`.execute(t.ctx.db);
      assert.deepEqual(jobs.rows.map((j) => [j.state, j.attempts]), [['failed', 2]]);
      assert.match(jobs.rows[0].last_error, /notifications refused/);
    } finally {
      await sql`DROP TRIGGER test_refuse_broadcast ON notifications`.execute(t.ctx.db);
    }
  });

  it('delete: 204, the broadcast is gone and its notifications are withdrawn, also those written afterwards', async () => {
    await worker?.stop();
    worker = null;
    const res = await t.post(url, { type: 'oops', title: 'Oops', body: 'sent by mistake', target: 'all' }, asAdmin());
    const id = res.body.id;
    const abort = new AbortController();
    await assert.rejects(fanOutBroadcast(t.ctx, id, abort.signal, { batchSize: BATCH, afterBatch: () => abort.abort(new Error('stop')) }));
    // The admin and the member are the first users: they got it in the first batch.
    const mine = async () => (await t.get('/v1/notifications?type=oops', { token: cast.member.token })).body.data;
    const [n] = await mine();
    assert.ok(n);
    assert.equal((await t.del(`${url}/${id}`, asAdmin())).status, 204);
    assert.deepEqual(await mine(), []);
    expectError(await t.patch(`/v1/notifications/${n.id}`, undefined, { token: cast.member.token }), 404, 'notifications.not_found');
    // A withdrawn notification is neither counted by mark-all nor listed as unread.
    await t.patch('/v1/notifications', undefined, { token: cast.member.token });
    assert.equal((await t.get('/v1/notifications?unread_only=true', { token: cast.member.token })).body.data.length, 0);
    // The fan-out still holding the job stops at its next batch and writes nothing more…
    const before = await delivered(t, id);
    await fanOutBroadcast(t.ctx, id, new AbortController().signal, { batchSize: BATCH });
    assert.deepEqual(await delivered(t, id), before);
    // …and a batch that committed after the delete is withdrawn too.
    const late = await registerUser(t);
    await sql`INSERT INTO notifications (id, user_id, type, title, body, payload, broadcast_id) VALUES (${newId()}, ${late.id}, 'oops', 'Oops', 'x', '{}', ${id})`.execute(t.ctx.db);
    assert.deepEqual((await t.get('/v1/notifications?type=oops', { token: late.token })).body.data, []);
    // The cursor of a withdrawn notification still pages (soft-deleted items are valid cursors).
    assert.equal((await t.get(`/v1/notifications?before=${n.id}`, { token: cast.member.token })).status, 200);

    expectError(await t.get(`${url}/${id}`, asAdmin()), 404, 'broadcasts.not_found');
    expectError(await t.del(`${url}/${id}`, asAdmin()), 404, 'broadcasts.not_found');
    expectError(await t.del(`${url}/not-a-uuid`, asAdmin()), 404, 'broadcasts.not_found');
    expectError(await t.get(`${url}/${newId()}`, asAdmin()), 404, 'broadcasts.not_found');
    const list = (await t.get(`${url}?limit=200`, asAdmin())).body.data;
    assert.ok(!list.some((x: any) => x.id === id));

    const audit = await t.get(`/v1/audit-logs?action=broadcast.*&target_id=${id}&include=state`, asAdmin());
    assert.deepEqual(audit.body.data.map((r: any) => r.action), ['broadcast.delete', 'broadcast.create']);
    assert.equal(audit.body.data[0].before_state.id, id);
    assert.equal(audit.body.data[0].org_id, null);
    assert.equal(audit.body.data[0].actor_user_id, cast.admin.id);
  });

  it('lists newest first with cursor paging and next_cursor', async () => {
    for (const title of ['one', 'two']) assert.equal((await t.post(url, { type: 'more', title, body: 'b', target: 'all' }, asAdmin())).status, 202);
    const all = (await t.get(`${url}?limit=200`, asAdmin())).body;
    assert.equal(all.next_cursor, null);
    assert.ok(all.data.length >= 5);
    assert.deepEqual(all.data.slice(0, 2).map((x: any) => x.title), ['two', 'one']);
    const p1 = (await t.get(`${url}?limit=2`, asAdmin())).body;
    assert.deepEqual(p1.data.map((x: any) => x.id), all.data.slice(0, 2).map((x: any) => x.id));
    assert.equal(p1.next_cursor, p1.data[1].id);
    const p2 = (await t.get(`${url}?limit=2&cursor=${p1.next_cursor}`, asAdmin())).body;
    assert.deepEqual(p2.data.map((x: any) => x.id), all.data.slice(2, 4).map((x: any) => x.id));
    const alias = (await t.get(`${url}?limit=2&before=${p1.next_cursor}`, asAdmin())).body;
    assert.deepEqual(alias.data, p2.data);
    const lastId = all.data[all.data.length - 1].id;
    assert.deepEqual((await t.get(`${url}?cursor=${lastId}`, asAdmin())).body, { data: [], next_cursor: null });
    expectFieldError(await t.get(`${url}?cursor=${newId()}`, asAdmin()), 'cursor');
    expectFieldError(await t.get(`${url}?before=zzz`, asAdmin()), 'before');
    expectFieldError(await t.get(`${url}?limit=0`, asAdmin()), 'limit');
  });
});
