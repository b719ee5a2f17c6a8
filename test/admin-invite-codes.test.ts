// Invite codes and referrals for platform admins (api.md §21.14–21.18): lists with their
// filters and cursors, one code, changing a code (audit invite_code.update), the referral tree.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { newId } from '../src/lib/ids.js';
import { registerUser, startTestApp, uniq, type TestApp, type TestUser } from './helpers/app.js';
import { expectError, expectFieldError } from './helpers/assert.js';
import { adminCast, expectPadminOnly, type AdminCast } from './helpers/admin.js';
import { auditRows } from './helpers/identity-app.js';

const ISO_RE = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$/;
const INVITE_CODE_KEYS = ['code', 'created_at', 'id', 'is_active', 'max_uses', 'use_count', 'user_email', 'user_id', 'user_login'];
const REFERRAL_KEYS = ['code', 'created_at', 'id', 'invite_code_id', 'invitee_login', 'invitee_user_id', 'inviter_login', 'inviter_user_id'];

describe('admin: invite codes and referrals', () => {
  let t: TestApp;
  let cast: AdminCast;
  let admin: TestUser;

  const asAdmin = () => ({ token: admin.token });
  const inviteCodeOf = async (u: { token: string }) => {
    const res = await t.get('/v1/me/invite-code', { token: u.token });
    assert.equal(res.status, 200, res.text);
    return res.body as { id: string; code: string };
  };
  /** A new user registered with `inviter`'s invite code. */
  const registerInvited = async (inviter: { token: string }) => {
    const { code } = await inviteCodeOf(inviter);
    const login = uniq('inv');
    const res = await t.post('/v1/auth/register', { login, email: `${login}@example.com`, password: 'correct horse battery', invite_code: code });
    assert.equal(res.status, 201, res.text);
    return { id: res.body.user_id as string, login, token: res.body.access_token as string };
  };

  before(async () => {
    t = await startTestApp();
    cast = await adminCast(t);
    admin = cast.admin;
  });
  after(async () => {
    await t?.close();
  });

  describe('who may call', () => {
    const routes = (): Array<[string, string, unknown?]> => [
      ['GET', '/v1/admin/invite-codes'],
      ['GET', `/v1/admin/invite-codes/${newId()}`],
      ['PATCH', `/v1/admin/invite-codes/${newId()}`, { is_active: false }],
      ['PUT', `/v1/admin/invite-codes/${newId()}`, { is_active: false }],
      ['GET', '/v1/admin/referrals'],
      ['GET', `/v1/admin/referrals/tree?user_id=${newId()}`],
    ];

    it('refuses members and API keys (even an admin’s) with 403, and needs an access token', async () => {
      for (const [method, path, body] of routes()) await expectPadminOnly(t, cast, method, path, body);
    });
  });

  describe('GET /v1/admin/invite-codes', () => {
    let owners: TestUser[];
    let codes: Array<{ id: string; code: string }>;

    before(async () => {
      owners = [await registerUser(t), await registerUser(t), await registerUser(t), await registerUser(t)];
      codes = [];
      for (const u of owners) codes.push(await inviteCodeOf(u));
    });

    it('lists every code with its owner, newest first', async () => {
      const res = await t.get('/v1/admin/invite-codes', asAdmin());
      assert.equal(res.status, 200, res.text);
      const mine = res.body.filter((c: { id: string }) => codes.some((x) => x.id === c.id));
      assert.deepEqual(mine.map((c: { id: string }) => c.id), codes.map((c) => c.id).reverse());
      const first = mine[0];
      assert.deepEqual(Object.keys(first).sort(), INVITE_CODE_KEYS);
      assert.equal(first.user_id, owners[3].id);
      assert.equal(first.user_login, owners[3].login);
      assert.equal(first.user_email, owners[3].email);
      assert.equal(first.code, codes[3].code);
      assert.equal(first.max_uses, 0);
      assert.equal(first.use_count, 0);
      assert.equal(first.is_active, true);
      assert.match(first.created_at, ISO_RE);
      for (let i = 1; i < res.body.length; i++) assert.ok(res.body[i - 1].created_at >= res.body[i].created_at);
    });

    it('q matches a substring of the code, the owner’s login or email, case-insensitively', async () => {
      const ids = async (q: string) => ((await t.get('/v1/admin/invite-codes', { ...asAdmin(), query: { q } })).body as Array<{ id: string }>).map((c) => c.id);
      assert.deepEqual(await ids(codes[1].code.slice(2, 7).toLowerCase()), [codes[1].id]);
      assert.deepEqual(await ids(owners[0].login.toUpperCase()), [codes[0].id]);
      assert.deepEqual(await ids(`${owners[2].login}@example`), [codes[2].id]);
      // LIKE wildcards are literal.
      assert.deepEqual(await ids('%'), []);
      assert.deepEqual(await ids('_'), []);
      // An empty q filters nothing.
      assert.ok((await ids('')).length >= 4);
    });

    it('pages with cursor (alias before)', async () => {
      const all = (await t.get('/v1/admin/invite-codes', { ...asAdmin(), query: { limit: 200 } })).body as Array<{ id: string }>;
      assert.ok(all.length >= 4);
      const p1 = await t.get('/v1/admin/invite-codes', { ...asAdmin(), query: { limit: 2 } });
      assert.deepEqual(p1.body.map((c: { id: string }) => c.id), all.slice(0, 2).map((c) => c.id));
      const p2 = await t.get('/v1/admin/invite-codes', { ...asAdmin(), query: { limit: 2, cursor: p1.body[1].id } });
      assert.deepEqual(p2.body.map((c: { id: string }) => c.id), all.slice(2, 4).map((c) => c.id));
      const alias = await t.get('/v1/admin/invite-codes', { ...asAdmin(), query: { limit: 2, before: p1.body[1].id } });
      assert.deepEqual(alias.body, p2.body);
      // The last item as a cursor: an empty page, not an error.
      const last = await t.get('/v1/admin/invite-codes', { ...asAdmin(), query: { cursor: all[all.length - 1].id } });
      assert.equal(last.status, 200);
      assert.deepEqual(last.body, []);
      // A cursor within a filtered list.
      const q = owners[0].login.slice(0, -3);
      const filtered = await t.get('/v1/admin/invite-codes', { ...asAdmin(), query: { q, cursor: codes[0].id } });
      assert.equal(filtered.status, 200, filtered.text);
    });

    it('validates limit, cursor and q', async () => {
      const list = (query: Record<string, string | number>) => t.get('/v1/admin/invite-codes', { ...asAdmin(), query });
      expectFieldError(await list({ limit: 0 }), 'limit');
      expectFieldError(await list({ limit: 201 }), 'limit');
      expectFieldError(await list({ limit: 'ten' }), 'limit');
      expectFieldError(await list({ cursor: 'not-a-uuid' }), 'cursor');
      expectFieldError(await list({ before: 'not-a-uuid' }), 'before');
      expectFieldError(await list({ cursor: newId() }), 'cursor');
      expectFieldError(await list({ before: newId() }), 'before');
      // A code that exists but is not in the filtered list.
      expectFieldError(await list({ q: owners[0].login, cursor: codes[1].id }), 'cursor');
      expectFieldError(await list({ q: 'x'.repeat(201) }), 'q');
    });
  });

  describe('GET /v1/admin/invite-codes/{id}', () => {
    it('answers the code with its owner', async () => {
      const owner = await registerUser(t);
      const code = await inviteCodeOf(owner);
      const res = await t.get(`/v1/admin/invite-codes/${code.id}`, asAdmin());
      assert.equal(res.status, 200, res.text);
      assert.deepEqual(Object.keys(res.body).sort(), INVITE_CODE_KEYS);
      assert.equal(res.body.code, code.code);
      assert.equal(res.body.user_login, owner.login);
      assert.equal(res.body.user_email, owner.email);
      // Upper-case ids are the same id.
      assert.equal((await t.get(`/v1/admin/invite-codes/${code.id.toUpperCase()}`, asAdmin())).body.id, code.id);
    });

    it('404 invite_codes.not_found for an unknown or malformed id', async () => {
      expectError(await t.get(`/v1/admin/invite-codes/${newId()}`, asAdmin()), 404, 'invite_codes.not_found');
      expectError(await t.get('/v1/admin/invite-codes/not-a-uuid', asAdmin()), 404, 'invite_codes.not_found');
    });
  });

  describe('PATCH /v1/admin/invite-codes/{id}', () => {
    it('changes max_uses and is_active, with an audit row holding before and after', async () => {
      const owner = await registerUser(t);
      const code = await inviteCodeOf(owner);
      const res = await t.patch(`/v1/admin/invite-codes/${code.id}`, { max_uses: 5 }, asAdmin());
      assert.equal(res.status, 200, res.text);
      assert.deepEqual(Object.keys(res.body).sort(), INVITE_CODE_KEYS);
      assert.equal(res.body.max_uses, 5);
      assert.equal(res.body.is_active, true);
      assert.equal(res.body.user_login, owner.login);
      const off = await t.put(`/v1/admin/invite-codes/${code.id}`, { is_active: false, max_uses: 0 }, asAdmin());
      assert.equal(off.status, 200, off.text);
      assert.equal(off.body.is_active, false);
      assert.equal(off.body.max_uses, 0);
      assert.deepEqual((await t.get(`/v1/admin/invite-codes/${code.id}`, asAdmin())).body, off.body);

      const audit = await auditRows(t, { action: 'invite_code.update', targetId: code.id });
      assert.equal(audit.length, 2);
      assert.equal(audit[0].actor_user_id, admin.id);
      assert.equal(audit[0].org_id, null);
      assert.equal(audit[0].target_type, 'invite_code');
      assert.deepEqual(audit[0].before_state, { max_uses: 0, is_active: true });
      assert.deepEqual(audit[0].after_state, { max_uses: 5, is_active: true });
      assert.deepEqual(audit[1].before_state, { max_uses: 5, is_active: true });
      assert.deepEqual(audit[1].after_state, { max_uses: 0, is_active: false });

      // Nothing changed: 200, no audit row.
      const same = await t.patch(`/v1/admin/invite-codes/${code.id}`, { is_active: false }, asAdmin());
      assert.equal(same.status, 200);
      assert.deepEqual(same.body, off.body);
      assert.equal((await auditRows(t, { action: 'invite_code.update', targetId: code.id })).length, 2);
    });

    it('a deactivated or used-up code no longer registers anyone', async () => {
      const owner = await registerUser(t);
      const code = await inviteCodeOf(owner);
      const register = (invite_code: string) => {
        const login = uniq('reg');
        return t.post('/v1/auth/register', { login, email: `${login}@example.com`, password: 'correct horse battery', invite_code });
      };
      assert.equal((await t.patch(`/v1/admin/invite-codes/${code.id}`, { max_uses: 1 }, asAdmin())).status, 200);
      assert.equal((await register(code.code)).status, 201);
      expectError(await register(code.code), 400, 'auth.invite_code_invalid');
      const again = await t.patch(`/v1/admin/invite-codes/${code.id}`, { max_uses: 0 }, asAdmin());
      assert.equal(again.body.use_count, 1);
      assert.equal((await register(code.code)).status, 201);
      await t.patch(`/v1/admin/invite-codes/${code.id}`, { is_active: false }, asAdmin());
      expectError(await register(code.code), 400, 'auth.invite_code_invalid');
    });

    it('validates the body', async () => {
      const code = await inviteCodeOf(await registerUser(t));
      const patch = (body: unknown) => t.patch(`/v1/admin/invite-codes/${code.id}`, body, asAdmin());
      expectError(await patch({}), 400, 'validation.error');
      expectError(await patch(undefined), 400, 'validation.error');
      expectFieldError(await patch({ max_uses: -1 }), 'max_uses');
      expectFieldError(await patch({ max_uses: 1.5 }), 'max_uses');
      expectFieldError(await patch({ max_uses: '3' }), 'max_uses');
      expectFieldError(await patch({ max_uses: null }), 'max_uses');
      expectFieldError(await patch({ max_uses: 2 ** 31 }), 'max_uses');
      expectFieldError(await patch({ is_active: 'no' }), 'is_active');
      expectFieldError(await patch({ is_active: null }), 'is_active');
      expectFieldError(await patch({ is_active: true, max_uses: -5 }), 'max_uses');
      assert.equal((await auditRows(t, { action: 'invite_code.update', targetId: code.id })).length, 0);
    });

    it('404 invite_codes.not_found for an unknown or malformed id', async () => {
      expectError(await t.patch(`/v1/admin/invite-codes/${newId()}`, { is_active: false }, asAdmin()), 404, 'invite_codes.not_found');
      expectError(await t.patch('/v1/admin/invite-codes/nope', { is_active: false }, asAdmin()), 404, 'invite_codes.not_found');
    });
  });

  describe('referrals', () => {
    // root invites a, then b; b invites e; a then invites c and d; c invites f.
    let root: TestUser;
    let a: { id: string; login: string; token: string };
    let b: typeof a;
    let c: typeof a;
    let d: typeof a;
    let e: typeof a;
    let f: typeof a;

    before(async () => {
      root = await registerUser(t);
      a = await registerInvited(root);
      b = await registerInvited(root);
      e = await registerInvited(b);
      c = await registerInvited(a);
      d = await registerInvited(a);
      f = await registerInvited(c);
    });

    it('GET /v1/admin/referrals lists them newest first, and by inviter', async () => {
      const res = await t.get('/v1/admin/referrals', asAdmin());
      assert.equal(res.status, 200, res.text);
      assert.deepEqual(res.body.slice(0, 6).map((r: { invitee_user_id: string }) => r.invitee_user_id), [f, d, c, e, b, a].map((u) => u.id));
      const first = res.body[0];
      assert.deepEqual(Object.keys(first).sort(), REFERRAL_KEYS);
      const cCode = await inviteCodeOf(c);
      assert.deepEqual({ ...first, id: undefined, created_at: undefined }, {
        id: undefined,
        created_at: undefined,
        inviter_user_id: c.id,
        inviter_login: c.login,
        invitee_user_id: f.id,
        invitee_login: f.login,
        invite_code_id: cCode.id,
        code: cCode.code,
      });
      assert.match(first.created_at, ISO_RE);

      const ofA = await t.get('/v1/admin/referrals', { ...asAdmin(), query: { inviter_user_id: a.id } });
      assert.deepEqual(ofA.body.map((r: { invitee_user_id: string }) => r.invitee_user_id), [d.id, c.id]);
      const ofNobody = await t.get('/v1/admin/referrals', { ...asAdmin(), query: { inviter_user_id: newId() } });
      assert.deepEqual(ofNobody.body, []);
    });

    it('GET /v1/admin/referrals pages with cursor (alias before) and validates its query', async () => {
      const list = (query: Record<string, string | number>) => t.get('/v1/admin/referrals', { ...asAdmin(), query });
      const all = (await list({ limit: 200 })).body as Array<{ id: string }>;
      const p1 = await list({ limit: 4 });
      const p2 = await list({ limit: 4, cursor: p1.body[3].id });
      assert.deepEqual([...p1.body, ...p2.body].map((r: { id: string }) => r.id), all.slice(0, 8).map((r) => r.id));
      assert.deepEqual((await list({ limit: 4, before: p1.body[3].id })).body, p2.body);
      const ofRoot = (await list({ inviter_user_id: root.id })).body as Array<{ id: string }>;
      assert.deepEqual((await list({ inviter_user_id: root.id, cursor: ofRoot[0].id })).body, [ofRoot[1]]);

      expectFieldError(await list({ limit: 0 }), 'limit');
      expectFieldError(await list({ limit: 201 }), 'limit');
      expectFieldError(await list({ inviter_user_id: 'not-a-uuid' }), 'inviter_user_id');
      expectFieldError(await list({ cursor: 'x' }), 'cursor');
      expectFieldError(await list({ cursor: newId() }), 'cursor');
      // A referral of another inviter is not an item of root's list.
      expectFieldError(await list({ inviter_user_id: root.id, cursor: all[0].id }), 'cursor');
    });

    it('GET /v1/admin/referrals/tree walks breadth-first from the user', async () => {
      const res = await t.get('/v1/admin/referrals/tree', { ...asAdmin(), query: { user_id: root.id } });
      assert.equal(res.status, 200, res.text);
      // e was invited before c and d, but b comes after a, so a's invitees come first.
      assert.deepEqual(
        res.body.map((n: { user_id: string; depth: number; inviter_id: string | null; login: string }) => [n.login, n.depth, n.inviter_id]),
        [
          [root.login, 0, null],
          [a.login, 1, root.id],
          [b.login, 1, root.id],
          [c.login, 2, a.id],
          [d.login, 2, a.id],
          [e.login, 2, b.id],
          [f.login, 3, c.id],
        ],
      );
      assert.deepEqual(Object.keys(res.body[0]).sort(), ['created_at', 'depth', 'inviter_id', 'login', 'user_id']);
      assert.equal(res.body[0].user_id, root.id);
      assert.equal(res.body[0].created_at, (await t.get('/v1/me', { token: root.token })).body.created_at);

      // From an invited user: their own inviter at depth 0.
      const sub = await t.get('/v1/admin/referrals/tree', { ...asAdmin(), query: { user_id: a.id } });
      assert.deepEqual(sub.body.map((n: { user_id: string; depth: number; inviter_id: string | null }) => [n.user_id, n.depth, n.inviter_id]), [
        [a.id, 0, root.id],
        [c.id, 1, a.id],
        [d.id, 1, a.id],
        [f.id, 2, c.id],
      ]);
      // Nobody invited: just the user.
      assert.deepEqual((await t.get('/v1/admin/referrals/tree', { ...asAdmin(), query: { user_id: f.id } })).body.map((n: { user_id: string }) => n.user_id), [f.id]);
    });

    it('GET /v1/admin/referrals/tree stops at depth 10', async () => {
      const chain: Array<{ id: string; token: string }> = [await registerUser(t)];
      for (let i = 0; i < 11; i++) chain.push(await registerInvited(chain[i]));
      const res = await t.get('/v1/admin/referrals/tree', { ...asAdmin(), query: { user_id: chain[0].id } });
      assert.equal(res.status, 200);
      assert.deepEqual(res.body.map((n: { user_id: string }) => n.user_id), chain.slice(0, 11).map((u) => u.id));
      assert.deepEqual(res.body.map((n: { depth: number }) => n.depth), [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
    });

    it('GET /v1/admin/referrals/tree: 404 users.not_found, and user_id is required', async () => {
      const tree = (query: Record<string, string>) => t.get('/v1/admin/referrals/tree', { ...asAdmin(), query });
      expectError(await tree({ user_id: newId() }), 404, 'users.not_found');
      const gone = await registerUser(t);
      await t.ctx.db.updateTable('users').set({ status: 'deleted' }).where('id', '=', gone.id).execute();
      expectError(await tree({ user_id: gone.id }), 404, 'users.not_found');
      expectFieldError(await tree({}), 'user_id');
      expectFieldError(await tree({ user_id: 'not-a-uuid' }), 'user_id');
    });
  });
});
