// Accounts and memberships: the SQL of the accounts module.
import { sql, type Kysely, type Selectable } from 'kysely';
import type { AccountRole, AccountsTable, DB } from '../../db/schema.js';
import { newId } from '../../lib/ids.js';

export type AccountRow = Selectable<AccountsTable>;

export function personalSlug(userId: string): string {
  return 'u-' + userId.replace(/-/g, '').slice(0, 12);
}

export async function createPersonalAccount(db: Kysely<DB>, user: { id: string; login: string }): Promise<AccountRow> {
  const account = await db
    .insertInto('accounts')
    .values({ id: newId(), slug: personalSlug(user.id), name: user.login, type: 'personal', owner_user_id: user.id })
    .returningAll()
    .executeTakeFirstOrThrow();
  await db.insertInto('account_memberships').values({ account_id: account.id, user_id: user.id, role: 'owner' }).execute();
  return account;
}

export async function createWorkspaceAccount(db: Kysely<DB>, a: { slug: string; name: string; ownerUserId: string }): Promise<AccountRow> {
  const account = await db
    .insertInto('accounts')
    .values({ id: newId(), slug: a.slug, name: a.name, type: 'workspace', owner_user_id: null })
    .returningAll()
    .executeTakeFirstOrThrow();
  await db.insertInto('account_memberships').values({ account_id: account.id, user_id: a.ownerUserId, role: 'owner' }).execute();
  return account;
}

export async function findPersonalAccount(db: Kysely<DB>, userId: string): Promise<AccountRow | undefined> {
  return db.selectFrom('accounts').selectAll().where('type', '=', 'personal').where('owner_user_id', '=', userId).executeTakeFirst();
}

export async function findAccount(db: Kysely<DB>, id: string): Promise<AccountRow | undefined> {
  return db.selectFrom('accounts').selectAll().where('id', '=', id).executeTakeFirst();
}

/** Which of `ids` name accounts of this installation. */
export async function existingAccountIds(db: Kysely<DB>, ids: string[]): Promise<Set<string>> {
  if (!ids.length) return new Set();
  const rows = await db.selectFrom('accounts').select('id').where('id', 'in', ids).execute();
  return new Set(rows.map((r) => r.id));
}

export async function slugTaken(db: Kysely<DB>, slug: string, exceptId?: string): Promise<boolean> {
  let q = db.selectFrom('accounts').select('id').where('slug', '=', slug);
  if (exceptId) q = q.where('id', '!=', exceptId);
  return !!(await q.executeTakeFirst());
}

export async function membershipRole(db: Kysely<DB>, accountId: string, userId: string): Promise<AccountRole | null> {
  const row = await db
    .selectFrom('account_memberships')
    .select('role')
    .where('account_id', '=', accountId)
    .where('user_id', '=', userId)
    .executeTakeFirst();
  return row?.role ?? null;
}

/** Accounts of a user with their role: personal first, then by name. */
export async function listUserAccounts(db: Kysely<DB>, userId: string) {
  return db
    .selectFrom('account_memberships as m')
    .innerJoin('accounts as a', 'a.id', 'm.account_id')
    .selectAll('a')
    .select(['m.role', 'm.created_at as joined_at'])
    .where('m.user_id', '=', userId)
    .orderBy(sql`(a.type = 'personal')`, 'desc')
    .orderBy(sql`lower(a.name)`)
    .orderBy('a.id')
    .execute();
}

export function shapeAccount(a: AccountRow, role?: AccountRole) {
  return {
    id: a.id,
    slug: a.slug,
    name: a.name,
    type: a.type,
    created_at: a.created_at.toISOString(),
    updated_at: a.updated_at.toISOString(),
    ...(role ? { role } : {}),
  };
}

/** Is the user an owner/admin of the account (for "creator, or owner/admin" rules)? */
export function isManagerRole(role: AccountRole): boolean {
  return role === 'owner' || role === 'admin';
}

/** Team ids the user belongs to in an account (for project visibility). */
export async function userTeamIds(db: Kysely<DB>, accountId: string, userId: string): Promise<string[]> {
  const rows = await db
    .selectFrom('team_members')
    .select('team_id')
    .where('account_id', '=', accountId)
    .where('user_id', '=', userId)
    .execute();
  return rows.map((r) => r.team_id);
}

export async function findTeam(db: Kysely<DB>, accountId: string, teamId: string) {
  return db.selectFrom('teams').selectAll().where('account_id', '=', accountId).where('id', '=', teamId).executeTakeFirst();
}

/** Personal-account slugs (`u-` + 12 hex digits) are reserved for personal accounts. */
export function isPersonalSlugForm(slug: string): boolean {
  return /^u-[0-9a-f]{12}$/.test(slug);
}

export async function updateAccount(db: Kysely<DB>, id: string, patch: { name?: string; slug?: string }): Promise<AccountRow> {
  return db
    .updateTable('accounts')
    .set({ ...patch, updated_at: new Date() })
    .where('id', '=', id)
    .returningAll()
    .executeTakeFirstOrThrow();
}
