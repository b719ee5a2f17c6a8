// GET /v1/audit-logs (api.md §22.1): every filter, include=state, total and offset paging,
// tenancy (an account's log for holders of account.audit.read; everything for platform
// admins, platform-level entries included) and validation of every query parameter.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { registerUser, startTestApp, type TestApp, type TestUser } from './helpers/app.js';
import { expectAuthRequired, expectError, expectFieldError } from './helpers/assert.js';
import { createWorkspace, inAccount, joinAccount } from './helpers/accounts-fixtures.js';
import { newId } from '../src/lib/ids.js';

const ENTRY_KEYS = ['action', 'actor_user_id', 'created_at', 'id', 'ip_address', 'metadata', 'org_id', 'target_id', 'target_type', 'trace_id', 'user_agent'];

describe('GET /v1/audit-logs', () => {
  let t: TestApp;
  let admin: TestUser;
  let owner: TestUser;
  let member: TestUser;
  let outsider: TestUser;
  let ws: string;
  let ws2: string;
  let threads: string[];
  let planId: string;
  const asOwner = () => inAccount(owner, ws);
  const list = async (query: string, opts: { token: string; headers?: Record<string, string> } = asOwner()) => {
    const res = await t.get(`/v1/audit-logs${query ? `?${query}` : ''}`, opts);
    assert.equal(res.status, 200, res.text);
    return res.body as { data: any[]; total: number };
  };

  before(async () => {
    t = await startTestApp();
    admin = await registerUser(t);
    [owner, member, outsider] = [await registerUser(t), await registerUser(t), await registerUser(t)];
    ws = (await createWorkspace(t, owner)).id;
    ws2 = (await createWorkspace(t, outsider)).id;
    await joinAccount(t, owner, ws, member, 'member');
    threads = [];
    for (const title of ['one', 'two', 'three']) {
      const res = await t.post('/v1/threads', { title }, { ...asOwner(), headers: { ...asOwner().headers, 'user-agent': 'audit-test/1' } });
      assert.equal(res.status, 201, res.text);
      threads.push(res.body.id);
    }
    assert.equal((await t.patch(`/v1/threads/${threads[0]}`, { title: 'one renamed' }, asOwner())).status, 200);
    assert.equal((await t.post('/v1/projects', { name: 'p', visibility: 'shared' }, inAccount(member, ws))).status, 201);
    assert.equal((await t.post('/v1/threads', { title: 'elsewhere' }, inAccount(outsider, ws2))).status, 201);
    planId = (await t.post('/v1/plans', { name: 'audit-plan', display_name: 'Audit' }, { token: admin.token })).body.id;
  });
  after(async () => t?.close());

  it('an account\'s entries, newest first, with the AuditLog shape and total', async () => {
    const all = await list('');
    // account.create, invitation.create/accept, 3 × thread.create, thread.update, project.create.
    assert.deepEqual(all.data.map((r) => r.action), ['project.create', 'thread.update', 'thread.create', 'thread.create', 'thread.create', 'invitation.accept', 'invitation.create', 'account.create']);
    assert.equal(all.total, 8);
    for (const r of all.data) {
      assert.deepEqual(Object.keys(r).sort(), ENTRY_KEYS);
      assert.equal(r.org_id, ws);
    }
    const created = all.data.filter((r) => r.action === 'thread.create');
    assert.deepEqual(created.map((r) => r.target_id), [...threads].reverse());
    assert.equal(created[0].actor_user_id, owner.id);
    assert.equal(created[0].target_type, 'thread');
    assert.equal(created[0].user_agent, 'audit-test/1');
    assert.match(created[0].trace_id, /^[0-9a-f]{32}$/);
    assert.match(created[0].created_at, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);
    assert.equal(typeof created[0].metadata, 'object');
    // org_id naming the current account is the same list.
    assert.deepEqual(await list(`org_id=${ws}`), all);
  });

  it('filters: action exact and prefix, actor, target type and id, since/until', async () => {
    assert.deepEqual((await list('action=thread.create')).total, 3);
    const prefix = await list('action=thread.*');
    assert.deepEqual(prefix.data.map((r) => r.action), ['thread.update', 'thread.create', 'thread.create', 'thread.create']);
    assert.equal((await list('action=*')).total, 8);
    assert.equal((await list('action=thread')).total, 0); // exact, not a prefix
    assert.equal((await list('action=thread_*')).total, 0); // `_` is no wildcard
    assert.equal((await list('action=thread.create*')).total, 3);
    assert.deepEqual((await list(`actor_user_id=${member.id}`)).data.map((r) => r.action), ['project.create', 'invitation.accept']);
    assert.equal((await list(`actor_user_id=${newId()}`)).total, 0);
    assert.equal((await list('target_type=thread')).total, 4);
    const one = await list(`target_id=${threads[0]}`);
    assert.deepEqual(one.data.map((r) => r.action), ['thread.update', 'thread.create']);
    assert.deepEqual((await list(`target_type=thread&target_id=${threads[0]}&action=thread.update`)).total, 1);
    assert.equal((await list(`target_type=project&target_id=${threads[0]}`)).total, 0);

    const all = (await list('')).data;
    const mid = all[3].created_at; // the 2nd thread.create
    const since = await list(`since=${mid}`);
    assert.ok(since.data.every((r) => r.created_at >= mid));
    assert.ok(since.total >= 4 && since.total < 8);
    const until = await list(`until=${mid}`);
    assert.ok(until.data.every((r) => r.created_at <= mid));
    assert.equal(since.total + until.total - (await list(`since=${mid}&until=${mid}`)).total, 8);
    assert.equal((await list('since=2999-01-01T00:00:00Z')).total, 0);
    assert.equal((await list('until=2000-01-01T00:00:00.000Z')).total, 0);
  });

  it('limit and offset page through the matches; total counts them all', async () => {
    const all = (await list('')).data.map((r) => r.id);
    const p1 = await list('limit=3');
    const p2 = await list('limit=3&offset=3');
    const p3 = await list('limit=3&offset=6');
    assert.deepEqual([...p1.data, ...p2.data, ...p3.data].map((r) => r.id), all);
    assert.deepEqual([p1.total, p2.total, p3.total], [8, 8, 8]);
    assert.deepEqual(await list('offset=100000'), { data: [], total: 8 });
  });

  it('include=state adds before_state and after_state', async () => {
    const [upd] = (await list(`action=thread.update&include=state`)).data;
    assert.deepEqual(Object.keys(upd).sort(), [...ENTRY_KEYS, 'after_state', 'before_state'].sort());
    assert.equal(upd.before_state.title, 'one');
    assert.equal(upd.after_state.title, 'one renamed');
    const [created] = (await list(`action=project.create&include=state`)).data;
    assert.equal(created.before_state, null);
  });

  it('tenancy: another account is a 404; members without account.audit.read and API keys get 403', async () => {
    expectError(await t.get(`/v1/audit-logs?org_id=${ws2}`, asOwner()), 404, 'accounts.not_found');
    expectError(await t.get(`/v1/audit-logs?org_id=${newId()}`, asOwner()), 404, 'accounts.not_found');
    expectError(await t.get('/v1/audit-logs', { token: owner.token, headers: { 'x-account-id': ws2 } }), 404, 'accounts.not_found');
    expectError(await t.get('/v1/audit-logs', inAccount(member, ws)), 403, 'auth.forbidden');
    const key = await t.post('/v1/api-keys', { name: 'audit', scopes: ['account.audit.read'] }, asOwner());
    expectError(await t.get('/v1/audit-logs', { token: key.body.key }), 403, 'auth.forbidden');
    await expectAuthRequired(t, 'GET', '/v1/audit-logs');
    // The outsider sees only their own account's log.
    const theirs = await list('', inAccount(outsider, ws2));
    assert.ok(theirs.data.every((r) => r.org_id === ws2));
    assert.ok(theirs.data.some((r) => r.action === 'thread.create'));
  });

  it('a platform admin sees every account and the platform-level entries, or one account by org_id', async () => {
    const all = await list('limit=200', { token: admin.token });
    const orgs = new Set(all.data.map((r) => r.org_id));
    assert.ok(orgs.has(ws) && orgs.has(ws2) && orgs.has(null));
    assert.equal(all.total, all.data.length);
    const plan = all.data.find((r) => r.action === 'plan.create');
    assert.deepEqual([plan.org_id, plan.target_id, plan.actor_user_id], [null, planId, admin.id]);
    const other = await list(`org_id=${ws2}`, { token: admin.token });
    assert.ok(other.total > 0 && other.data.every((r) => r.org_id === ws2));
    // Whatever account the admin acts in.
    assert.deepEqual((await list(`org_id=${ws2}`, inAccount(admin, ws))).total, other.total);
    expectError(await t.get(`/v1/audit-logs?org_id=${newId()}`, { token: admin.token }), 404, 'accounts.not_found');
    assert.equal((await list('action=plan.*', { token: admin.token })).total, 1);
  });

  it('validates every query parameter', async () => {
    const bad: Array<[string, string]> = [
      ['org_id=nope', 'org_id'],
      ['action=', 'action'],
      ['action=a%25', 'action'],
      ['action=a*b', 'action'],
      ['action=' + 'a'.repeat(129), 'action'],
      ['actor_user_id=123', 'actor_user_id'],
      ['target_type=', 'target_type'],
      ['target_type=' + 'x'.repeat(65), 'target_type'],
      ['target_id=', 'target_id'],
      ['target_id=' + 'x'.repeat(201), 'target_id'],
      ['since=yesterday', 'since'],
      ['until=2024-13-01T00:00:00Z', 'until'],
      ['since=2024-02-01T00:00:00Z&until=2024-01-01T00:00:00Z', 'until'],
      ['limit=0', 'limit'],
      ['limit=201', 'limit'],
      ['limit=1.5', 'limit'],
      ['offset=-1', 'offset'],
      ['offset=100001', 'offset'],
      ['offset=x', 'offset'],
      ['include=states', 'include'],
    ];
    for (const [q, field] of bad) expectFieldError(await t.get(`/v1/audit-logs?${q}`, asOwner()), field);
  });
});
