// Account members: memberships joined with their users (api.md §11.5–§11.7).
import { sql, type Kysely, type RawBuilder } from 'kysely';
import type { AccountRole, DB } from '../../db/schema.js';

export interface MemberRow {
  account_id: string;
  user_id: string;
  login: string;
  username: string;
  email: string | null;
  role: AccountRole;
  created_at: Date;
}

function membersQuery(db: Kysely<DB>, accountId: string) {
  return db
    .selectFrom('account_memberships as m')
    .innerJoin('users as u', 'u.id', 'm.user_id')
    .select(['m.account_id', 'm.user_id', 'u.login', 'u.username', 'u.email', 'm.role', 'm.created_at'])
    .where('m.account_id', '=', accountId);
}

/** Oldest first. */
export async function listMembers(db: Kysely<DB>, accountId: string): Promise<MemberRow[]> {
  return membersQuery(db, accountId).orderBy('m.created_at').orderBy('m.user_id').execute();
}

export async function findMember(db: Kysely<DB>, accountId: string, userId: string): Promise<MemberRow | undefined> {
  return membersQuery(db, accountId).where('m.user_id', '=', userId).executeTakeFirst();
}

/** Is a user with this email (case-insensitive) a member of the account? */
export async function emailIsMember(db: Kysely<DB>, accountId: string, email: string): Promise<boolean> {
  const row = await membersQuery(db, accountId)
    .where(sql`lower(u.email)`, '=', email.toLowerCase())
    .executeTakeFirst();
  return !!row;
}

/**
 * Locks the account's owner memberships and counts them, so two concurrent demotions cannot
 * both pass the last-owner check.
 */
export async function lockOwnerCount(db: Kysely<DB>, accountId: string): Promise<number> {
  const rows = await db
    .selectFrom('account_memberships')
    .select('user_id')
    .where('account_id', '=', accountId)
    .where('role', '=', 'owner')
    .forUpdate()
    .execute();
  return rows.length;
}

export async function setMemberRole(db: Kysely<DB>, accountId: string, userId: string, role: AccountRole): Promise<void> {
  await db.updateTable('account_memberships').set({ role }).where('account_id', '=', accountId).where('user_id', '=', userId).execute();
}

export async function addMember(db: Kysely<DB>, accountId: string, userId: string, role: AccountRole): Promise<void> {
  await db.insertInto('account_memberships').values({ account_id: accountId, user_id: userId, role }).execute();
}

/** Removes the membership and the user's places in the account's teams. */
export async function removeMember(db: Kysely<DB>, accountId: string, userId: string): Promise<void> {
  await db.deleteFrom('team_members').where('account_id', '=', accountId).where('user_id', '=', userId).execute();
  await db.deleteFrom('account_memberships').where('account_id', '=', accountId).where('user_id', '=', userId).execute();
}

export function shapeMember(m: MemberRow) {
  return {
    account_id: m.account_id,
    user_id: m.user_id,
    login: m.login,
    username: m.username,
    email: m.email,
    role: m.role,
    created_at: m.created_at.toISOString(),
  };
}

/** The member role of a user in an account (SQL expressions), null when not a member. */
export function memberRoleSql(accountId: RawBuilder<unknown>, userId: RawBuilder<unknown>): RawBuilder<AccountRole | null> {
  return sql<AccountRole | null>`(SELECT am.role FROM account_memberships am WHERE am.account_id = ${accountId} AND am.user_id = ${userId})`;
}

/**
 * Workspaces where `userId` is the only owner while other members remain: removing the user
 * would leave them without an owner (api.md §21.5 `accounts.last_owner`). Locks the owner rows.
 */
export async function soleOwnedWorkspacesWithMembers(db: Kysely<DB>, userId: string): Promise<string[]> {
  const res = await sql<{ account_id: string }>`
    SELECT m.account_id FROM account_memberships m JOIN accounts a ON a.id = m.account_id
     WHERE m.user_id = ${userId} AND m.role = 'owner' AND a.type = 'workspace'
       AND NOT EXISTS (SELECT 1 FROM account_memberships o WHERE o.account_id = m.account_id AND o.role = 'owner' AND o.user_id <> ${userId})
       AND EXISTS (SELECT 1 FROM account_memberships x WHERE x.account_id = m.account_id AND x.user_id <> ${userId})
     ORDER BY m.account_id
       FOR UPDATE OF m`.execute(db);
  return res.rows.map((r) => r.account_id);
}

/** Removes every membership (and team place) of a user. */
export async function removeUserMemberships(db: Kysely<DB>, userId: string): Promise<void> {
  await db.deleteFrom('team_members').where('user_id', '=', userId).execute();
  await db.deleteFrom('account_memberships').where('user_id', '=', userId).execute();
}
