import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { registerUser, startTestApp, uniq, type TestApp, type TestUser } from './helpers/app.js';
import { expectAuthRequired, expectError, expectFieldError } from './helpers/assert.js';
import { auditRows, createWorkspace, inAccount, workspaceWithRoles } from './helpers/accounts-fixtures.js';
import { startSmtpCapture } from './helpers/smtp.js';
import { hashToken } from '../src/lib/crypto.js';
import { newId } from '../src/lib/ids.js';

const ISO = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$/;
const DAY = 24 * 3600 * 1000;

async function invite(t: TestApp, by: TestUser, accountId: string, email: string, role: 'admin' | 'member' = 'member') {
  const res = await t.post(`/v1/accounts/${accountId}/invitations`, { email, role }, { token: by.token });
  assert.equal(res.status, 201, res.text);
  return res.body as { id: string; token: string; email: string; role: string };
}

async function expireInvitation(t: TestApp, id: string): Promise<void> {
  await t.ctx.db.updateTable('invitations').set({ expires_at: new Date(Date.now() - 1000) }).where('id', '=', id).execute();
}

describe('invitations (§11.16–§11.20)', () => {
  let t: TestApp;
  let platformAdmin: TestUser;
  before(async () => {
    t = await startTestApp();
    platformAdmin = await registerUser(t);
  });
  after(async () => { await t.close(); });

  describe('POST /v1/accounts/{account_id}/invitations', () => {
    it('creates an invitation with a one-time token, stored hashed, expiring in 7 days', async () => {
      const { admin, ws } = await workspaceWithRoles(t);
      const email = `${uniq('inv')}@example.com`;
      const started = Date.now();
      const res = await t.post(`/v1/accounts/${ws.id}/invitations`, { email: `  ${email} `, role: 'admin', extra: 1 }, { token: admin.token });
      assert.equal(res.status, 201, res.text);
      assert.deepEqual(Object.keys(res.body).sort(), [
        'accepted_at', 'account_id', 'created_at', 'email', 'expires_at', 'id', 'invited_by_user_id', 'role', 'status', 'token',
      ]);
      assert.equal(res.body.account_id, ws.id);
      assert.equal(res.body.invited_by_user_id, admin.id);
      assert.equal(res.body.email, email);
      assert.equal(res.body.role, 'admin');
      assert.equal(res.body.status, 'pending');
      assert.equal(res.body.accepted_at, null);
      assert.match(res.body.created_at, ISO);
      assert.match(res.body.expires_at, ISO);
      const expires = Date.parse(res.body.expires_at);
      assert.ok(expires >= started + 7 * DAY - 1000 && expires <= Date.now() + 7 * DAY + 1000, res.body.expires_at);
      assert.match(res.body.token, /^[A-Za-z0-9_-]{43}$/);
      const row = await t.ctx.db.selectFrom('invitations').selectAll().where('id', '=', res.body.id).executeTakeFirstOrThrow();
      assert.equal(row.token_hash, hashToken(res.body.token));
      assert.notEqual(row.token_hash, res.body.token);

      const rows = (await auditRows(t, 'invitation.create', ws.id)).filter((r) => r.target_id === res.body.id);
      assert.equal(rows.length, 1);
      assert.equal(rows[0].target_type, 'invitation');
      assert.equal(rows[0].target_id, res.body.id);
      assert.equal(rows[0].actor_user_id, admin.id);
      assert.ok(!JSON.stringify(rows[0]).includes(res.body.token), 'the token never reaches the audit log');
    });

    it('notifies an existing user with that email', async () => {
      const { owner, ws } = await workspaceWithRoles(t);
      const invitee = await registerUser(t);
      const inv = await invite(t, owner, ws.id, invitee.email.toUpperCase(), 'member');
      const notes = await t.ctx.db.selectFrom('notifications').selectAll().where('user_id', '=', invitee.id).execute();
      assert.equal(notes.length, 1);
      assert.equal(notes[0].type, 'account.invitation');
      assert.equal(notes[0].org_id, ws.id);
      assert.equal(notes[0].read_at, null);
      assert.deepEqual(notes[0].payload, { invitation_id: inv.id, account_id: ws.id, account_name: ws.name, role: 'member', token: inv.token });
      // nobody has this address: no notification at all
      const before = await t.ctx.db.selectFrom('notifications').select('id').execute();
      await invite(t, owner, ws.id, `${uniq('nobody')}@example.com`);
      const afterRows = await t.ctx.db.selectFrom('notifications').select('id').execute();
      assert.equal(afterRows.length, before.length);
    });

    it('errors: personal account, already member, pending invitation exists', async () => {
      const { owner, member, ws } = await workspaceWithRoles(t);
      expectError(
        await t.post(`/v1/accounts/${owner.personalAccountId}/invitations`, { email: 'x@example.com', role: 'member' }, { token: owner.token }),
        400,
        'accounts.personal_account',
      );
      expectError(await t.post(`/v1/accounts/${ws.id}/invitations`, { email: member.email.toUpperCase(), role: 'member' }, { token: owner.token }), 409, 'accounts.already_member');
      expectError(await t.post(`/v1/accounts/${ws.id}/invitations`, { email: owner.email, role: 'admin' }, { token: owner.token }), 409, 'accounts.already_member');
      const email = `${uniq('dup')}@example.com`;
      const first = await invite(t, owner, ws.id, email);
      expectError(await t.post(`/v1/accounts/${ws.id}/invitations`, { email: email.toUpperCase(), role: 'admin' }, { token: owner.token }), 409, 'invitations.exists');
      // an expired invitation does not block a new one; another account is independent
      await expireInvitation(t, first.id);
      assert.equal((await t.post(`/v1/accounts/${ws.id}/invitations`, { email, role: 'member' }, { token: owner.token })).status, 201);
      const ws2 = await createWorkspace(t, owner);
      assert.equal((await t.post(`/v1/accounts/${ws2.id}/invitations`, { email, role: 'member' }, { token: owner.token })).status, 201);
    });

    it('validates email and role', async () => {
      const { owner, ws } = await workspaceWithRoles(t);
      const url = `/v1/accounts/${ws.id}/invitations`;
      const o = { token: owner.token };
      expectFieldError(await t.post(url, { role: 'member' }, o), 'email');
      expectFieldError(await t.post(url, { email: 'not-an-email', role: 'member' }, o), 'email');
      expectFieldError(await t.post(url, { email: `${'a'.repeat(250)}@example.com`, role: 'member' }, o), 'email');
      expectFieldError(await t.post(url, { email: 5, role: 'member' }, o), 'email');
      expectFieldError(await t.post(url, { email: 'a@example.com' }, o), 'role');
      expectFieldError(await t.post(url, { email: 'a@example.com', role: 'owner' }, o), 'role');
      expectFieldError(await t.post(url, { email: 'a@example.com', role: 'MEMBER' }, o), 'role');
      expectFieldError(await t.post(url, { email: 'a@example.com', role: null }, o), 'role');
    });

    it('needs account.members.manage; strangers get 404', async () => {
      const { member, ws } = await workspaceWithRoles(t);
      const stranger = await registerUser(t);
      const body = { email: 'a@example.com', role: 'member' };
      expectError(await t.post(`/v1/accounts/${ws.id}/invitations`, body, { token: member.token }), 403, 'auth.forbidden');
      expectError(await t.post(`/v1/accounts/${ws.id}/invitations`, {}, { token: member.token }), 403, 'auth.forbidden');
      expectError(await t.get(`/v1/accounts/${ws.id}/invitations`, { token: member.token }), 403, 'auth.forbidden');
      expectError(await t.post(`/v1/accounts/${ws.id}/invitations`, body, { token: stranger.token }), 404, 'accounts.not_found');
      expectError(await t.get(`/v1/accounts/${ws.id}/invitations`, { token: stranger.token }), 404, 'accounts.not_found');
      expectError(await t.post('/v1/accounts/not-a-uuid/invitations', body, { token: stranger.token }), 404, 'accounts.not_found');
      await expectAuthRequired(t, 'POST', `/v1/accounts/${ws.id}/invitations`, body);
      await expectAuthRequired(t, 'GET', `/v1/accounts/${ws.id}/invitations`);
    });

    it('works through the /v1/orgs alias', async () => {
      const { owner, ws } = await workspaceWithRoles(t);
      const res = await t.post(`/v1/orgs/${ws.id}/invitations`, { email: `${uniq('alias')}@example.com`, role: 'member' }, { token: owner.token });
      assert.equal(res.status, 201);
    });
  });

  describe('GET /v1/accounts/{account_id}/invitations', () => {
    it('lists newest first without tokens, filtered by computed status', async () => {
      const { owner, ws } = await workspaceWithRoles(t);
      const invitee = await registerUser(t);
      const a = await invite(t, owner, ws.id, `${uniq('a')}@example.com`);
      const b = await invite(t, owner, ws.id, invitee.email, 'admin');
      const c = await invite(t, owner, ws.id, `${uniq('c')}@example.com`);
      await expireInvitation(t, a.id);
      await t.post(`/v1/account-invitations/${b.token}/accept`, undefined, { token: invitee.token });

      // (the fixture's two accepted invitations of the admin and the member are older)
      const mine = (list: any[]) => list.filter((i) => [a.id, b.id, c.id].includes(i.id));
      const all = await t.get(`/v1/accounts/${ws.id}/invitations`, { token: owner.token });
      assert.equal(all.status, 200);
      assert.equal(all.body.length, 5);
      assert.deepEqual(all.body.slice(0, 3).map((i: any) => [i.id, i.status]), [[c.id, 'pending'], [b.id, 'accepted'], [a.id, 'expired']]);
      assert.deepEqual(all.body.slice(3).map((i: any) => i.status), ['accepted', 'accepted']);
      const created = all.body.map((i: any) => i.created_at);
      assert.deepEqual([...created].sort().reverse(), created);
      for (const i of all.body) assert.equal(i.token, undefined);
      assert.match(all.body[1].accepted_at, ISO);

      for (const [status, ids, total] of [['pending', [c.id], 1], ['accepted', [b.id], 3], ['expired', [a.id], 1]] as const) {
        const res = await t.get(`/v1/accounts/${ws.id}/invitations?status=${status}`, { token: owner.token });
        assert.equal(res.status, 200);
        assert.equal(res.body.length, total);
        assert.ok(res.body.every((i: any) => i.status === status));
        assert.deepEqual(mine(res.body).map((i: any) => i.id), ids);
      }
      expectFieldError(await t.get(`/v1/accounts/${ws.id}/invitations?status=revoked`, { token: owner.token }), 'status');
      // not paginated: limit is ignored
      const many = await t.get(`/v1/accounts/${ws.id}/invitations?limit=1`, { token: owner.token });
      assert.equal(many.body.length, 5);
    });

    it('a personal account has none', async () => {
      const u = await registerUser(t);
      const res = await t.get(`/v1/accounts/${u.personalAccountId}/invitations`, { token: u.token });
      assert.equal(res.status, 200);
      assert.deepEqual(res.body, []);
    });
  });

  describe('GET /v1/account-invitations/{token}', () => {
    it('previews an invitation anonymously', async () => {
      const { owner, ws } = await workspaceWithRoles(t);
      const inv = await invite(t, owner, ws.id, `${uniq('p')}@example.com`, 'admin');
      const res = await t.get(`/v1/account-invitations/${inv.token}`);
      assert.equal(res.status, 200);
      assert.deepEqual(Object.keys(res.body).sort(), ['account_id', 'account_name', 'email', 'expires_at', 'role', 'status']);
      assert.equal(res.body.account_id, ws.id);
      assert.equal(res.body.account_name, ws.name);
      assert.equal(res.body.email, inv.email);
      assert.equal(res.body.role, 'admin');
      assert.equal(res.body.status, 'pending');
      const alias = await t.get(`/v1/org-invitations/${inv.token}`);
      assert.deepEqual(alias.body, res.body);
      await expireInvitation(t, inv.id);
      assert.equal((await t.get(`/v1/account-invitations/${inv.token}`)).body.status, 'expired');
    });

    it('unknown tokens are 404 invitations.not_found', async () => {
      expectError(await t.get('/v1/account-invitations/not-a-real-token'), 404, 'invitations.not_found');
      expectError(await t.get(`/v1/account-invitations/${newId()}`), 404, 'invitations.not_found');
    });
  });

  describe('POST /v1/account-invitations/{token}/accept', () => {
    it('joins the account with the invited role, audits, and GET /v1/me reflects it', async () => {
      const { owner, ws } = await workspaceWithRoles(t);
      const invitee = await registerUser(t);
      const inv = await invite(t, owner, ws.id, invitee.email.toUpperCase(), 'admin');
      const res = await t.post(`/v1/account-invitations/${inv.token}/accept`, undefined, { token: invitee.token });
      assert.equal(res.status, 200, res.text);
      assert.deepEqual(res.body, { ok: true, account_id: ws.id });
      const me = await t.get('/v1/me', inAccount(invitee, ws.id));
      assert.equal(me.status, 200);
      assert.equal(me.body.role, 'admin');
      assert.equal(me.body.org_id, ws.id);
      const accounts = await t.get('/v1/accounts/me', { token: invitee.token });
      assert.deepEqual(accounts.body.map((a: any) => [a.id, a.role]), [[invitee.personalAccountId, 'owner'], [ws.id, 'admin']]);
      const preview = await t.get(`/v1/account-invitations/${inv.token}`);
      assert.equal(preview.body.status, 'accepted');
      const rows = (await auditRows(t, 'invitation.accept', ws.id)).filter((r) => r.target_id === inv.id);
      assert.equal(rows.length, 1);
      assert.equal(rows[0].actor_user_id, invitee.id);
      assert.equal(rows[0].target_id, inv.id);
      expectError(await t.post(`/v1/account-invitations/${inv.token}/accept`, undefined, { token: invitee.token }), 409, 'invitations.already_accepted');
    });

    it('works through the /v1/org-invitations alias', async () => {
      const { owner, ws } = await workspaceWithRoles(t);
      const invitee = await registerUser(t);
      const inv = await invite(t, owner, ws.id, invitee.email);
      const res = await t.post(`/v1/org-invitations/${inv.token}/accept`, {}, { token: invitee.token });
      assert.equal(res.status, 200, res.text);
    });

    it('errors: unknown, email mismatch, expired, already member', async () => {
      const { owner, member, ws } = await workspaceWithRoles(t);
      const invitee = await registerUser(t);
      const someoneElse = await registerUser(t);
      expectError(await t.post('/v1/account-invitations/nope/accept', undefined, { token: invitee.token }), 404, 'invitations.not_found');

      const inv = await invite(t, owner, ws.id, invitee.email);
      expectError(await t.post(`/v1/account-invitations/${inv.token}/accept`, undefined, { token: someoneElse.token }), 403, 'invitations.email_mismatch');
      await expireInvitation(t, inv.id);
      expectError(await t.post(`/v1/account-invitations/${inv.token}/accept`, undefined, { token: invitee.token }), 409, 'invitations.expired');

      // a pending invitation whose invitee meanwhile became a member
      const inv2 = await invite(t, owner, ws.id, invitee.email);
      await t.ctx.db.insertInto('account_memberships').values({ account_id: ws.id, user_id: invitee.id, role: 'member' }).execute();
      expectError(await t.post(`/v1/account-invitations/${inv2.token}/accept`, undefined, { token: invitee.token }), 409, 'accounts.already_member');
      assert.ok(member);
      await expectAuthRequired(t, 'POST', `/v1/account-invitations/${inv2.token}/accept`);
    });
  });

  describe('DELETE /v1/account-invitations/{invitation_id}', () => {
    it('revokes: the token stops working; audited', async () => {
      const { owner, admin, ws } = await workspaceWithRoles(t);
      const invitee = await registerUser(t);
      const inv = await invite(t, owner, ws.id, invitee.email);
      const res = await t.del(`/v1/account-invitations/${inv.id}`, { token: admin.token });
      assert.equal(res.status, 204);
      assert.equal(res.text, '');
      expectError(await t.get(`/v1/account-invitations/${inv.token}`), 404, 'invitations.not_found');
      expectError(await t.post(`/v1/account-invitations/${inv.token}/accept`, undefined, { token: invitee.token }), 404, 'invitations.not_found');
      expectError(await t.del(`/v1/account-invitations/${inv.id}`, { token: admin.token }), 404, 'invitations.not_found');
      const rows = await auditRows(t, 'invitation.revoke', ws.id);
      assert.equal(rows.length, 1);
      assert.equal(rows[0].target_id, inv.id);
      assert.equal(rows[0].actor_user_id, admin.id);
      // a revoked invitation no longer blocks a new one
      assert.equal((await t.post(`/v1/accounts/${ws.id}/invitations`, { email: invitee.email, role: 'member' }, { token: owner.token })).status, 201);
    });

    it('deleting an accepted invitation only removes the record', async () => {
      const { owner, ws } = await workspaceWithRoles(t);
      const invitee = await registerUser(t);
      const inv = await invite(t, owner, ws.id, invitee.email);
      await t.post(`/v1/account-invitations/${inv.token}/accept`, undefined, { token: invitee.token });
      assert.equal((await t.del(`/v1/account-invitations/${inv.id}`, { token: owner.token })).status, 204);
      const me = await t.get('/v1/me', inAccount(invitee, ws.id));
      assert.equal(me.body.role, 'member');
    });

    it('acts in the invitation’s account: 404 for outsiders, 403 for members without the point', async () => {
      const { owner, member, ws } = await workspaceWithRoles(t);
      const stranger = await registerUser(t);
      const inv = await invite(t, owner, ws.id, `${uniq('d')}@example.com`);
      expectError(await t.del(`/v1/account-invitations/${inv.id}`, { token: stranger.token }), 404, 'invitations.not_found');
      expectError(await t.del(`/v1/account-invitations/${inv.id}`, { token: member.token }), 403, 'auth.forbidden');
      expectError(await t.del('/v1/account-invitations/not-a-uuid', { token: owner.token }), 404, 'invitations.not_found');
      expectError(await t.del(`/v1/account-invitations/${newId()}`, { token: owner.token }), 404, 'invitations.not_found');
      // X-Account-Id of another account does not matter
      assert.equal((await t.del(`/v1/account-invitations/${inv.id}`, inAccount(owner, owner.personalAccountId))).status, 204);
      await expectAuthRequired(t, 'DELETE', `/v1/account-invitations/${inv.id}`);
    });

    it('a platform admin may revoke in any account', async () => {
      const { owner, ws } = await workspaceWithRoles(t);
      const inv = await invite(t, owner, ws.id, `${uniq('pa')}@example.com`);
      assert.equal((await t.del(`/v1/account-invitations/${inv.id}`, { token: platformAdmin.token })).status, 204);
      const rows = await auditRows(t, 'invitation.revoke', ws.id);
      assert.equal(rows[0].actor_user_id, platformAdmin.id);
    });
  });
});

describe('invitation mail', () => {
  it('sends the link <app base url>/invitations/<token> when email is configured', async () => {
    const smtp = await startSmtpCapture();
    const t = await startTestApp({ ...smtp.env(), ARKLOOP_APP_BASE_URL: 'https://app.arkloop.test/' }, { worker: true }); // mail goes out through email.send jobs
    try {
      await registerUser(t);
      const owner = await registerUser(t);
      const ws = await createWorkspace(t, owner, 'Mail Co');
      const email = `${uniq('mail')}@example.com`;
      const inv = await invite(t, owner, ws.id, email);
      const mail = await smtp.waitForTo(email);
      assert.ok(mail.text.includes(`https://app.arkloop.test/invitations/${inv.token}`), mail.text);
      assert.match(mail.subject, /Mail Co/);
    } finally {
      await t.close();
      await smtp.close();
    }
  });
});
