// Fixtures for the accounts, teams and invitations tests: workspaces with members in given
// roles, built through the public API (invite + accept), and audit rows read directly.
import assert from 'node:assert/strict';
import { registerUser, uniq, type TestApp, type TestUser } from './app.js';

export interface Workspace {
  id: string;
  slug: string;
  name: string;
}

export async function createWorkspace(t: TestApp, owner: TestUser, name = 'Workspace ' + uniq('')): Promise<Workspace> {
  const slug = uniq('ws-').toLowerCase();
  const res = await t.post('/v1/accounts', { slug, name }, { token: owner.token });
  assert.equal(res.status, 201, res.text);
  return { id: res.body.id, slug, name };
}

/** Invites `user` into the account with `role` and accepts; `owner` must be able to invite. */
export async function joinAccount(t: TestApp, inviter: TestUser, accountId: string, user: TestUser, role: 'admin' | 'member' | 'owner'): Promise<void> {
  const inv = await t.post(`/v1/accounts/${accountId}/invitations`, { email: user.email, role: role === 'owner' ? 'admin' : role }, { token: inviter.token });
  assert.equal(inv.status, 201, inv.text);
  const acc = await t.post(`/v1/account-invitations/${inv.body.token}/accept`, undefined, { token: user.token });
  assert.equal(acc.status, 200, acc.text);
  if (role === 'owner') {
    const up = await t.patch(`/v1/accounts/${accountId}/members/${user.id}`, { role: 'owner' }, { token: inviter.token });
    assert.equal(up.status, 200, up.text);
  }
}

/** A workspace owned by a new user, with a new admin and a new member. */
export async function workspaceWithRoles(t: TestApp) {
  const owner = await registerUser(t);
  const admin = await registerUser(t);
  const member = await registerUser(t);
  const ws = await createWorkspace(t, owner);
  await joinAccount(t, owner, ws.id, admin, 'admin');
  await joinAccount(t, owner, ws.id, member, 'member');
  return { owner, admin, member, ws };
}

export function inAccount(user: TestUser, accountId: string) {
  return { token: user.token, headers: { 'x-account-id': accountId } };
}

export async function auditRows(t: TestApp, action: string, orgId: string) {
  return t.ctx.db
    .selectFrom('audit_logs')
    .selectAll()
    .where('action', '=', action)
    .where('org_id', '=', orgId)
    .orderBy('created_at')
    .orderBy('id')
    .execute();
}

export const NIL_UUID = '00000000-0000-4000-8000-000000000000';
