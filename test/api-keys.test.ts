// API keys (api.md §5) and authentication with them (§1.2).
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { registerUser, type TestUser } from './helpers/app.js';
import { expectAuthRequired, expectError, expectFieldError } from './helpers/assert.js';
import {
  addMember,
  auditRows,
  createWorkspace,
  removeMember,
  setRole,
  setUserStatus,
  startIdentityApp,
  type IdentityApp,
} from './helpers/identity-app.js';

const KEY_RE = /^al_[A-Za-z0-9]{40}$/;
const UUID_RE = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
const ISO_RE = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$/;
const MEMBER_POINTS = [
  'data.threads.read',
  'data.threads.manage',
  'data.runs.read',
  'data.runs.manage',
  'data.projects.read',
  'data.projects.manage',
  'data.personas.read',
  'data.api_keys.manage',
  'account.members.read',
];

describe('API keys', () => {
  let t: IdentityApp;
  let root: TestUser; // first user: platform admin
  let owner: TestUser;
  let member: TestUser;
  let wsAdmin: TestUser;
  let other: TestUser;
  let ws: string;

  const ws_ = () => ({ 'x-account-id': ws });
  const createKey = async (u: TestUser, body: Record<string, unknown> = { name: 'k' }, headers: Record<string, string> = {}) => {
    const res = await t.post('/v1/api-keys', body, { token: u.token, headers });
    assert.equal(res.status, 201, res.text);
    return res.body as { id: string; key: string; key_prefix: string; org_id: string; user_id: string };
  };

  before(async () => {
    t = await startIdentityApp({}, { probes: true });
    root = await registerUser(t);
    owner = await registerUser(t);
    member = await registerUser(t);
    wsAdmin = await registerUser(t);
    other = await registerUser(t);
    ws = await createWorkspace(t, owner.id, 'Acme');
    await addMember(t, ws, member.id, 'member');
    await addMember(t, ws, wsAdmin.id, 'admin');
  });
  after(async () => {
    await t.close();
  });

  describe('POST /v1/api-keys', () => {
    it('creates a key shown once, stored only as a hash', async () => {
      const res = await t.post('/v1/api-keys', { name: '  CI key  ' }, { token: owner.token });
      assert.equal(res.status, 201, res.text);
      const k = res.body;
      assert.deepEqual(Object.keys(k).sort(), ['created_at', 'id', 'key', 'key_prefix', 'last_used_at', 'name', 'org_id', 'revoked_at', 'scopes', 'user_id']);
      assert.match(k.id, UUID_RE);
      assert.match(k.key, KEY_RE);
      assert.equal(k.key_prefix, k.key.slice(0, 7));
      assert.equal(k.name, 'CI key');
      assert.deepEqual(k.scopes, []);
      assert.equal(k.org_id, owner.personalAccountId);
      assert.equal(k.user_id, owner.id);
      assert.equal(k.revoked_at, null);
      assert.equal(k.last_used_at, null);
      assert.match(k.created_at, ISO_RE);

      const row = await t.ctx.db.selectFrom('api_keys').selectAll().where('id', '=', k.id).executeTakeFirstOrThrow();
      assert.equal(row.key_hash, createHash('sha256').update(k.key).digest('hex'));
      assert.equal(row.key_prefix, k.key_prefix);
      assert.ok(!JSON.stringify(row).includes(k.key), 'the secret itself is never stored');

      // Listing never shows the secret or its hash again.
      const list = await t.get('/v1/api-keys', { token: owner.token });
      assert.equal(list.status, 200);
      const listed = list.body.find((x: { id: string }) => x.id === k.id);
      assert.ok(listed);
      assert.equal(listed.key, undefined);
      assert.ok(!list.text.includes(k.key));
      assert.ok(!list.text.includes(row.key_hash));
      assert.ok(!res.text.includes(row.key_hash));
    });

    it('every key is different', async () => {
      const a = await createKey(owner);
      const b = await createKey(owner);
      assert.notEqual(a.key, b.key);
      assert.notEqual(a.id, b.id);
    });

    it('binds the key to the current account (X-Account-Id)', async () => {
      const k = await createKey(member, { name: 'ws key' }, ws_());
      assert.equal(k.org_id, ws);
      const probe = await t.get('/v1/_probe/read', { token: k.key });
      assert.equal(probe.status, 200, probe.text);
      assert.equal(probe.body.org_id, ws);
      assert.equal(probe.body.role, 'member');
    });

    it('accepts permission points as scopes (null and [] mean inherit; duplicates collapse)', async () => {
      const scoped = await t.post('/v1/api-keys', { name: 's', scopes: ['data.threads.read', 'data.runs.read', 'data.threads.read'] }, { token: owner.token });
      assert.equal(scoped.status, 201, scoped.text);
      assert.deepEqual(scoped.body.scopes, ['data.threads.read', 'data.runs.read']);
      const nul = await t.post('/v1/api-keys', { name: 'n', scopes: null }, { token: owner.token });
      assert.equal(nul.status, 201, nul.text);
      assert.deepEqual(nul.body.scopes, []);
      const empty = await t.post('/v1/api-keys', { name: 'e', scopes: [] }, { token: owner.token });
      assert.deepEqual(empty.body.scopes, []);
    });

    it('validates the body', async () => {
      const post = (body: unknown) => t.post('/v1/api-keys', body, { token: owner.token });
      expectFieldError(await post({}), 'name');
      expectFieldError(await post({ name: '' }), 'name');
      expectFieldError(await post({ name: '    ' }), 'name');
      expectFieldError(await post({ name: 'x'.repeat(101) }), 'name');
      expectFieldError(await post({ name: 42 }), 'name');
      expectFieldError(await post({ name: null }), 'name');
      expectFieldError(await post({ name: 'k', scopes: 'data.threads.read' }), 'scopes');
      expectFieldError(await post({ name: 'k', scopes: [1] }), 'scopes');
      expectFieldError(await post({ name: 'k', scopes: ['data.threads.read', 'data.everything'] }), 'scopes.1');
      expectFieldError(await post({ name: 'k', scopes: ['platform.admin'] }), 'scopes');
      expectFieldError(await post({ name: 'k', scopes: ['DATA.THREADS.READ'] }), 'scopes');
      expectFieldError(await post({ name: 'k', scopes: Array(101).fill('data.threads.read') }), 'scopes');
      expectError(await t.post('/v1/api-keys', undefined, { token: owner.token, raw: '{"name":', headers: { 'content-type': 'application/json' } }), 422, 'validation.error');
      expectError(await t.post('/v1/api-keys', undefined, { token: owner.token, raw: '["k"]', headers: { 'content-type': 'application/json' } }), 422, 'validation.error');
      expectError(await t.post('/v1/api-keys', undefined, { token: owner.token, raw: 'name=k', headers: { 'content-type': 'application/x-www-form-urlencoded' } }), 422, 'validation.error');
      // Unknown fields are ignored.
      const extra = await post({ name: 'extra', unknown: true });
      assert.equal(extra.status, 201, extra.text);
      assert.equal(extra.body.unknown, undefined);
    });

    it('allows 50 unrevoked keys per user per account', async () => {
      const u = await registerUser(t);
      for (let i = 0; i < 50; i++) await createKey(u, { name: `k${i}` });
      const over = await t.post('/v1/api-keys', { name: 'one too many' }, { token: u.token });
      expectError(over, 409, 'api_keys.limit_reached');
      // Another account of the same user has its own allowance.
      const w = await createWorkspace(t, u.id);
      await createKey(u, { name: 'elsewhere' }, { 'x-account-id': w });
      // Revoked keys do not count.
      const list = await t.get('/v1/api-keys', { token: u.token });
      assert.equal(list.body.length, 50);
      assert.equal((await t.del(`/v1/api-keys/${list.body[10].id}`, { token: u.token })).status, 204);
      await createKey(u, { name: 'after revoke' });
      expectError(await t.post('/v1/api-keys', { name: 'again too many' }, { token: u.token }), 409, 'api_keys.limit_reached');
    });

    it('never lets concurrent creations pass the limit', async () => {
      const u = await registerUser(t);
      for (let i = 0; i < 47; i++) await createKey(u, { name: `k${i}` });
      const results = await Promise.all(Array.from({ length: 6 }, (_, i) => t.post('/v1/api-keys', { name: `race${i}` }, { token: u.token })));
      assert.equal(results.filter((r) => r.status === 201).length, 3);
      for (const r of results.filter((x) => x.status !== 201)) expectError(r, 409, 'api_keys.limit_reached');
      const n = await t.ctx.db.selectFrom('api_keys').select((eb) => eb.fn.countAll<number>().as('n')).where('user_id', '=', u.id).executeTakeFirstOrThrow();
      assert.equal(Number(n.n), 50);
    });

    it('a key cannot mint keys; other credentials are refused', async () => {
      const k = await createKey(owner);
      expectError(await t.post('/v1/api-keys', { name: 'child' }, { token: k.key }), 403, 'auth.forbidden');
      await expectAuthRequired(t, 'POST', '/v1/api-keys', { name: 'x' });
    });

    it('a platform admin acting in an account they do not belong to cannot create a key there', async () => {
      const res = await t.post('/v1/api-keys', { name: 'admin key' }, { token: root.token, headers: { 'x-account-id': owner.personalAccountId } });
      expectError(res, 403, 'auth.forbidden');
    });

    it('X-Account-Id: malformed → 400, an account the caller is not in → 404', async () => {
      expectFieldError(await t.post('/v1/api-keys', { name: 'k' }, { token: owner.token, headers: { 'x-account-id': 'nope' } }), 'X-Account-Id');
      expectError(
        await t.post('/v1/api-keys', { name: 'k' }, { token: other.token, headers: { 'x-account-id': ws } }),
        404,
        'accounts.not_found',
      );
    });

    it('writes an api_key.create audit row without secrets', async () => {
      const res = await t.post('/v1/api-keys', { name: 'audited', scopes: ['data.runs.read'] }, { token: owner.token, headers: { 'user-agent': 'audit-test/1.0' } });
      const rows = await auditRows(t, { action: 'api_key.create', targetId: res.body.id });
      assert.equal(rows.length, 1);
      const row = rows[0];
      assert.equal(row.org_id, owner.personalAccountId);
      assert.equal(row.actor_user_id, owner.id);
      assert.equal(row.target_type, 'api_key');
      assert.equal(row.trace_id, res.headers['x-trace-id']);
      assert.equal(row.ip_address, t.ip);
      assert.equal(row.user_agent, 'audit-test/1.0');
      assert.deepEqual((row.metadata as Record<string, unknown>).scopes, ['data.runs.read']);
      const text = JSON.stringify(row);
      assert.ok(!text.includes(res.body.key));
      assert.ok(!text.includes(createHash('sha256').update(res.body.key).digest('hex')));
    });
  });

  describe('GET /v1/api-keys', () => {
    it('lists the caller’s keys of the current account, newest first, revoked included', async () => {
      const u = await registerUser(t);
      const a = await createKey(u, { name: 'a' });
      const b = await createKey(u, { name: 'b' });
      const c = await createKey(u, { name: 'c' }, { 'x-account-id': u.personalAccountId });
      assert.equal((await t.del(`/v1/api-keys/${b.id}`, { token: u.token })).status, 204);
      const res = await t.get('/v1/api-keys', { token: u.token });
      assert.equal(res.status, 200);
      assert.deepEqual(res.body.map((k: { id: string }) => k.id), [c.id, b.id, a.id]);
      const revoked = res.body[1];
      assert.match(revoked.revoked_at, ISO_RE);
      for (const k of res.body) {
        assert.deepEqual(Object.keys(k).sort(), ['created_at', 'id', 'key_prefix', 'last_used_at', 'name', 'org_id', 'revoked_at', 'scopes', 'user_id']);
      }
    });

    it('is not paginated: limit and before are ignored', async () => {
      const res = await t.get('/v1/api-keys?limit=1', { token: owner.token });
      assert.equal(res.status, 200);
      assert.ok(res.body.length > 1);
    });

    it('all=true lists every key of the account for owners and admins; members get 403', async () => {
      const m = await createKey(member, { name: 'member key' }, ws_());
      const a = await createKey(wsAdmin, { name: 'admin key' }, ws_());
      const o = await createKey(owner, { name: 'owner key' }, ws_());
      for (const u of [owner, wsAdmin]) {
        for (const flag of ['true', '1']) {
          const res = await t.get(`/v1/api-keys?all=${flag}`, { token: u.token, headers: ws_() });
          assert.equal(res.status, 200, res.text);
          const ids = res.body.map((k: { id: string }) => k.id);
          for (const id of [m.id, a.id, o.id]) assert.ok(ids.includes(id));
          assert.ok(res.body.every((k: { org_id: string }) => k.org_id === ws));
        }
      }
      expectError(await t.get('/v1/api-keys?all=true', { token: member.token, headers: ws_() }), 403, 'auth.forbidden');
      // A member sees only their own keys.
      const mine = await t.get('/v1/api-keys?all=false', { token: member.token, headers: ws_() });
      assert.equal(mine.status, 200);
      assert.ok(mine.body.length >= 1);
      assert.ok(mine.body.every((k: { user_id: string }) => k.user_id === member.id));
      // A platform admin acting in the account holds owner permissions there.
      const adminView = await t.get('/v1/api-keys?all=true', { token: root.token, headers: ws_() });
      assert.equal(adminView.status, 200, adminView.text);
      assert.ok(adminView.body.some((k: { id: string }) => k.id === m.id));
    });

    it('rejects a bad boolean and other credentials', async () => {
      expectFieldError(await t.get('/v1/api-keys?all=yes', { token: owner.token }), 'all');
      await expectAuthRequired(t, 'GET', '/v1/api-keys');
      const k = await createKey(owner);
      expectError(await t.get('/v1/api-keys', { token: k.key }), 403, 'auth.forbidden');
    });
  });

  describe('DELETE /v1/api-keys/{id}', () => {
    it('revokes the key at once; revoking twice is a 204 with a single audit row', async () => {
      const k = await createKey(owner, { name: 'to revoke' });
      assert.equal((await t.get('/v1/_probe/read', { token: k.key })).status, 200);
      const res = await t.del(`/v1/api-keys/${k.id}`, { token: owner.token });
      assert.equal(res.status, 204);
      assert.equal(res.text, '');
      expectError(await t.get('/v1/_probe/read', { token: k.key }), 401, 'auth.unauthorized');
      // A revoked key is an invalid credential everywhere: 401, not the 403 of a user-only route.
      expectError(await t.get('/v1/me', { token: k.key }), 401, 'auth.unauthorized');
      assert.equal((await t.del(`/v1/api-keys/${k.id}`, { token: owner.token })).status, 204);
      const rows = await auditRows(t, { action: 'api_key.revoke', targetId: k.id });
      assert.equal(rows.length, 1);
      assert.equal(rows[0].actor_user_id, owner.id);
      assert.equal(rows[0].org_id, owner.personalAccountId);
      assert.equal(rows[0].target_type, 'api_key');
      assert.ok(!JSON.stringify(rows[0]).includes(k.key));
    });

    it('owners and admins revoke any key of the account; a member only their own', async () => {
      const ownerKey = await createKey(owner, { name: 'o' }, ws_());
      const memberKey = await createKey(member, { name: 'm' }, ws_());
      const memberKey2 = await createKey(member, { name: 'm2' }, ws_());
      // A member naming another user's key: 404, as if it did not exist.
      expectError(await t.del(`/v1/api-keys/${ownerKey.id}`, { token: member.token, headers: ws_() }), 404, 'api_keys.not_found');
      assert.equal((await t.get('/v1/_probe/read', { token: ownerKey.key })).status, 200);
      assert.equal((await t.del(`/v1/api-keys/${memberKey.id}`, { token: member.token, headers: ws_() })).status, 204);
      assert.equal((await t.del(`/v1/api-keys/${memberKey2.id}`, { token: wsAdmin.token, headers: ws_() })).status, 204);
      assert.equal((await t.del(`/v1/api-keys/${ownerKey.id}`, { token: wsAdmin.token, headers: ws_() })).status, 204);
      for (const k of [ownerKey, memberKey, memberKey2]) expectError(await t.get('/v1/_probe/read', { token: k.key }), 401, 'auth.unauthorized');
      const rows = await auditRows(t, { action: 'api_key.revoke', targetId: memberKey2.id });
      assert.equal(rows[0].actor_user_id, wsAdmin.id);
    });

    it('keys of another account, unknown ids and non-UUID ids answer 404', async () => {
      const k = await createKey(owner, { name: 'personal' });
      expectError(await t.del(`/v1/api-keys/${k.id}`, { token: other.token }), 404, 'api_keys.not_found');
      // The owner acting in another account does not find it either.
      expectError(await t.del(`/v1/api-keys/${k.id}`, { token: owner.token, headers: ws_() }), 404, 'api_keys.not_found');
      expectError(await t.del('/v1/api-keys/01890000-0000-7000-8000-00000000abcd', { token: owner.token }), 404, 'api_keys.not_found');
      expectError(await t.del('/v1/api-keys/not-a-uuid', { token: owner.token }), 404, 'api_keys.not_found');
      assert.equal((await t.get('/v1/_probe/read', { token: k.key })).status, 200);
    });

    it('needs an access token', async () => {
      await expectAuthRequired(t, 'DELETE', '/v1/api-keys/01890000-0000-7000-8000-00000000abcd');
      const k = await createKey(owner);
      expectError(await t.del(`/v1/api-keys/${k.id}`, { token: k.key }), 403, 'auth.forbidden');
      assert.equal((await t.get('/v1/_probe/read', { token: k.key })).status, 200);
    });
  });

  describe('authenticating with an API key', () => {
    it('acts as its creator in its account with the creator’s role permissions', async () => {
      const k = await createKey(owner, { name: 'full' });
      const res = await t.get('/v1/_probe/read', { token: k.key });
      assert.equal(res.status, 200, res.text);
      assert.equal(res.body.kind, 'api_key');
      assert.equal(res.body.user_id, owner.id);
      assert.equal(res.body.api_key_id, k.id);
      assert.equal(res.body.org_id, owner.personalAccountId);
      assert.equal(res.body.role, 'owner');
      assert.ok(res.body.permissions.includes('data.secrets'));
      assert.equal((await t.get('/v1/_probe/secrets', { token: k.key })).status, 200);
      // Also as `Bearer` in any letter case.
      const lower = await t.get('/v1/_probe/read', { headers: { authorization: `bearer ${k.key}` } });
      assert.equal(lower.status, 200);
    });

    it('scopes narrow the permissions: a missing point is a 403', async () => {
      const k = await createKey(owner, { name: 'read only', scopes: ['data.threads.read'] });
      const res = await t.get('/v1/_probe/read', { token: k.key });
      assert.equal(res.status, 200);
      assert.deepEqual(res.body.permissions, ['data.threads.read']);
      expectError(await t.get('/v1/_probe/secrets', { token: k.key }), 403, 'auth.forbidden');
      const noRead = await createKey(owner, { name: 'runs only', scopes: ['data.runs.read'] });
      expectError(await t.get('/v1/_probe/read', { token: noRead.key }), 403, 'auth.forbidden');
    });

    it('scopes never exceed the creator’s role (intersection)', async () => {
      const unscoped = await createKey(member, { name: 'member' }, ws_());
      const probe = await t.get('/v1/_probe/read', { token: unscoped.key });
      assert.deepEqual(probe.body.permissions, MEMBER_POINTS);
      expectError(await t.get('/v1/_probe/secrets', { token: unscoped.key }), 403, 'auth.forbidden');
      const wishful = await createKey(member, { name: 'wishful', scopes: ['data.secrets', 'data.threads.read'] }, ws_());
      assert.deepEqual((await t.get('/v1/_probe/read', { token: wishful.key })).body.permissions, ['data.threads.read']);
      expectError(await t.get('/v1/_probe/secrets', { token: wishful.key }), 403, 'auth.forbidden');
    });

    it('follows the creator’s current role', async () => {
      const u = await registerUser(t);
      await addMember(t, ws, u.id, 'admin');
      const k = await createKey(u, { name: 'k' }, ws_());
      assert.equal((await t.get('/v1/_probe/secrets', { token: k.key })).status, 200);
      await setRole(t, ws, u.id, 'member');
      expectError(await t.get('/v1/_probe/secrets', { token: k.key }), 403, 'auth.forbidden');
    });

    it('X-Account-Id naming any other account is a 403, existing or not', async () => {
      const k = await createKey(owner, { name: 'bound' });
      assert.equal((await t.get('/v1/_probe/read', { token: k.key, headers: { 'x-account-id': owner.personalAccountId } })).status, 200);
      // The creator belongs to ws, but the key does not act there.
      expectError(await t.get('/v1/_probe/read', { token: k.key, headers: ws_() }), 403, 'auth.forbidden');
      expectError(await t.get('/v1/_probe/read', { token: k.key, headers: { 'x-account-id': other.personalAccountId } }), 403, 'auth.forbidden');
      expectError(
        await t.get('/v1/_probe/read', { token: k.key, headers: { 'x-account-id': '01890000-0000-7000-8000-00000000dead' } }),
        403,
        'auth.forbidden',
      );
      expectFieldError(await t.get('/v1/_probe/read', { token: k.key, headers: { 'x-account-id': 'bad' } }), 'X-Account-Id');
    });

    it('is refused once the creator is no longer a member of the key’s account', async () => {
      const u = await registerUser(t);
      await addMember(t, ws, u.id, 'member');
      const k = await createKey(u, { name: 'leaver' }, ws_());
      const personal = await createKey(u, { name: 'personal' });
      assert.equal((await t.get('/v1/_probe/read', { token: k.key })).status, 200);
      await removeMember(t, ws, u.id);
      expectError(await t.get('/v1/_probe/read', { token: k.key }), 401, 'auth.unauthorized');
      expectError(await t.get('/v1/me', { token: k.key }), 401, 'auth.unauthorized');
      // Keys in accounts the user still belongs to keep working.
      assert.equal((await t.get('/v1/_probe/read', { token: personal.key })).status, 200);
    });

    it('is refused when the creator is suspended or deleted', async () => {
      const u = await registerUser(t);
      const k = await createKey(u);
      await setUserStatus(t, u.id, 'suspended');
      expectError(await t.get('/v1/_probe/read', { token: k.key }), 401, 'auth.unauthorized');
      await setUserStatus(t, u.id, 'active');
      assert.equal((await t.get('/v1/_probe/read', { token: k.key })).status, 200);
      await setUserStatus(t, u.id, 'deleted');
      expectError(await t.get('/v1/_probe/read', { token: k.key }), 401, 'auth.unauthorized');
    });

    it('unknown, truncated and altered keys are refused', async () => {
      const k = await createKey(owner);
      const altered = k.key.slice(0, -1) + (k.key.endsWith('a') ? 'b' : 'a');
      for (const bad of [altered, k.key.slice(0, -1), k.key + 'x', k.key_prefix, 'al_', k.key.toUpperCase()]) {
        expectError(await t.get('/v1/_probe/read', { token: bad }), 401, 'auth.unauthorized');
      }
      await expectAuthRequired(t, 'GET', '/v1/_probe/read');
    });

    it('is a 403 on user-only endpoints', async () => {
      const k = await createKey(owner);
      for (const [method, path, body] of [
        ['GET', '/v1/me'],
        ['GET', '/v1/auth/me'],
        ['PATCH', '/v1/me', { username: 'x' }],
        ['GET', '/v1/me/credits'],
        ['GET', '/v1/me/usage'],
        ['GET', '/v1/me/invite-code'],
        ['POST', '/v1/me/redeem', { code: 'X' }],
        ['GET', '/v1/me/feature-flags'],
        ['POST', '/v1/api-keys', { name: 'x' }],
        ['GET', '/v1/api-keys'],
        ['POST', '/v1/auth/logout'],
        ['POST', '/v1/auth/email/verify/send'],
      ] as Array<[string, string, unknown?]>) {
        const res = await t.request(method, path, body, { token: k.key });
        expectError(res, 403, 'auth.forbidden');
      }
    });

    it('keeps last_used_at, written at most once a minute', async () => {
      const k = await createKey(owner, { name: 'usage' });
      const lastUsed = async () =>
        (await t.ctx.db.selectFrom('api_keys').select('last_used_at').where('id', '=', k.id).executeTakeFirstOrThrow()).last_used_at;
      assert.equal(await lastUsed(), null);
      const before = Date.now();
      assert.equal((await t.get('/v1/_probe/read', { token: k.key })).status, 200);
      const first = await lastUsed();
      assert.ok(first && first.getTime() >= before - 1000, 'set by the first use');
      const listed = (await t.get('/v1/api-keys', { token: owner.token })).body.find((x: { id: string }) => x.id === k.id);
      assert.equal(listed.last_used_at, first!.toISOString());
      // Within the minute nothing is written.
      await new Promise((r) => setTimeout(r, 20));
      await t.get('/v1/_probe/read', { token: k.key });
      assert.equal((await lastUsed())!.getTime(), first!.getTime());
      // Older than a minute: the next use writes again.
      const old = new Date(Date.now() - 120_000);
      await t.ctx.db.updateTable('api_keys').set({ last_used_at: old }).where('id', '=', k.id).execute();
      await t.ctx.credentials.changed(owner.id);
      await t.get('/v1/_probe/read', { token: k.key });
      assert.ok((await lastUsed())!.getTime() > old.getTime() + 60_000);
    });
  });
});
