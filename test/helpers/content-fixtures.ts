// Fixtures for the threads, messages and projects tests: workspaces, memberships, teams and
// API keys written straight into the database (independent of the accounts endpoints), and
// small request helpers.
import assert from 'node:assert/strict';
import { createWorkspaceAccount } from '../../src/modules/accounts/store.js';
import { hashToken, randomFromAlphabet } from '../../src/lib/crypto.js';
import { newId } from '../../src/lib/ids.js';
import { registerUser, uniq, type ReqOpts, type TestApp, type TestUser } from './app.js';

export const NIL_UUID = '00000000-0000-4000-8000-000000000000';

export type Role = 'owner' | 'admin' | 'member';

export async function createWorkspace(t: TestApp, owner: TestUser): Promise<string> {
  const slug = uniq('ws-').toLowerCase();
  const account = await createWorkspaceAccount(t.ctx.db, { slug, name: slug, ownerUserId: owner.id });
  return account.id;
}

export async function addMember(t: TestApp, accountId: string, user: TestUser, role: Role): Promise<void> {
  await t.ctx.db.insertInto('account_memberships').values({ account_id: accountId, user_id: user.id, role }).execute();
}

export async function createTeam(t: TestApp, accountId: string, members: TestUser[]): Promise<string> {
  const id = newId();
  await t.ctx.db.insertInto('teams').values({ id, account_id: accountId, name: uniq('team') }).execute();
  for (const m of members) {
    await t.ctx.db.insertInto('team_members').values({ team_id: id, user_id: m.id, account_id: accountId, role: 'member' }).execute();
  }
  return id;
}

/** A workspace with an owner, an admin and two plain members (all new users). */
export async function workspaceWithRoles(t: TestApp) {
  const owner = await registerUser(t);
  const admin = await registerUser(t);
  const member = await registerUser(t);
  const other = await registerUser(t);
  const ws = await createWorkspace(t, owner);
  await addMember(t, ws, admin, 'admin');
  await addMember(t, ws, member, 'member');
  await addMember(t, ws, other, 'member');
  return { ws, owner, admin, member, other };
}

/** Request options acting in `accountId`. */
export function inAccount(user: TestUser, accountId: string, extra: Record<string, string> = {}): ReqOpts {
  return { token: user.token, headers: { 'x-account-id': accountId, ...extra } };
}

/** An API key of `user` in `accountId` (the full secret), inserted directly. */
export async function createApiKey(t: TestApp, user: TestUser, accountId: string, scopes: string[] = []): Promise<string> {
  const key = 'al_' + randomFromAlphabet(40);
  await t.ctx.db
    .insertInto('api_keys')
    .values({
      id: newId(),
      org_id: accountId,
      user_id: user.id,
      name: 'test key',
      key_prefix: key.slice(0, 7),
      key_hash: hashToken(key),
      scopes: JSON.stringify(scopes),
    })
    .execute();
  return key;
}

export async function auditRows(t: TestApp, action: string, targetId: string) {
  return t.ctx.db
    .selectFrom('audit_logs')
    .selectAll()
    .where('action', '=', action)
    .where('target_id', '=', targetId)
    .orderBy('created_at')
    .orderBy('id')
    .execute();
}

export async function createThread(t: TestApp, opts: ReqOpts, body: Record<string, unknown> = {}) {
  const res = await t.post('/v1/threads', body, opts);
  assert.equal(res.status, 201, res.text);
  return res.body as { id: string; [k: string]: unknown };
}

export async function createProject(t: TestApp, opts: ReqOpts, body: Record<string, unknown> = {}) {
  const res = await t.post('/v1/projects', { name: uniq('project'), ...body }, opts);
  assert.equal(res.status, 201, res.text);
  return res.body as { id: string; [k: string]: unknown };
}

export async function postMessage(t: TestApp, opts: ReqOpts, threadId: string, content: string) {
  const res = await t.post(`/v1/threads/${threadId}/messages`, { content }, opts);
  assert.equal(res.status, 201, res.text);
  return res.body as { id: string; [k: string]: unknown };
}

export const ISO_MS = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$/;
