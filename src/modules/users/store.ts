// Users: the rows behind logins. Other modules call these functions, never the table.
import { sql, type Kysely, type Selectable } from 'kysely';
import type { DB, UsersTable } from '../../db/schema.js';
import { isUuid } from '../../lib/ids.js';

export type UserRow = Selectable<UsersTable>;

export async function findUserById(db: Kysely<DB>, id: string): Promise<UserRow | undefined> {
  return db.selectFrom('users').selectAll().where('id', '=', id).executeTakeFirst();
}

/** A login or an email, case-insensitively; deleted users are never found. */
export async function findUserByLoginOrEmail(db: Kysely<DB>, login: string): Promise<UserRow | undefined> {
  const v = login.trim().toLowerCase();
  return db
    .selectFrom('users')
    .selectAll()
    .where((eb) => eb.or([eb(sql`lower(login)`, '=', v), eb(sql`lower(email)`, '=', v)]))
    .where('status', '!=', 'deleted')
    .orderBy(sql`(lower(login) = ${v})`, 'desc')
    .executeTakeFirst();
}

export async function findUserByLogin(db: Kysely<DB>, login: string): Promise<UserRow | undefined> {
  return db
    .selectFrom('users')
    .selectAll()
    .where(sql`lower(login)`, '=', login.trim().toLowerCase())
    .where('status', '!=', 'deleted')
    .executeTakeFirst();
}

export async function findUserByEmail(db: Kysely<DB>, email: string): Promise<UserRow | undefined> {
  return db
    .selectFrom('users')
    .selectAll()
    .where(sql`lower(email)`, '=', email.trim().toLowerCase())
    .where('status', '!=', 'deleted')
    .executeTakeFirst();
}

export async function loginTaken(db: Kysely<DB>, login: string): Promise<boolean> {
  const row = await db.selectFrom('users').select('id').where(sql`lower(login)`, '=', login.toLowerCase()).executeTakeFirst();
  return !!row;
}

export async function emailTaken(db: Kysely<DB>, email: string): Promise<boolean> {
  const row = await db.selectFrom('users').select('id').where(sql`lower(email)`, '=', email.toLowerCase()).executeTakeFirst();
  return !!row;
}

export async function countUsers(db: Kysely<DB>): Promise<number> {
  const row = await db.selectFrom('users').select(sql<number>`count(*)::int`.as('n')).executeTakeFirstOrThrow();
  return row.n;
}

export async function insertUser(
  db: Kysely<DB>,
  u: { id: string; login: string; email: string | null; passwordHash: string | null; locale: string; isPlatformAdmin: boolean },
): Promise<UserRow> {
  return db
    .insertInto('users')
    .values({
      id: u.id,
      login: u.login,
      email: u.email,
      password_hash: u.passwordHash,
      username: u.login,
      locale: u.locale,
      is_platform_admin: u.isPlatformAdmin,
    })
    .returningAll()
    .executeTakeFirstOrThrow();
}

export async function updateUser(
  db: Kysely<DB>,
  id: string,
  patch: Partial<Pick<UserRow, 'username' | 'locale' | 'timezone' | 'avatar_url' | 'email_verified' | 'last_login_at'>>,
): Promise<UserRow> {
  return db
    .updateTable('users')
    .set({ ...patch, updated_at: new Date() })
    .where('id', '=', id)
    .returningAll()
    .executeTakeFirstOrThrow();
}

/** Does `ident` (user id, login or email) name this user? */
export function matchesIdentifier(user: Pick<UserRow, 'id' | 'login' | 'email'>, ident: string): boolean {
  const v = ident.trim().toLowerCase();
  return user.id === v || user.login.toLowerCase() === v || (user.email ?? '').toLowerCase() === v;
}

/** ARKLOOP_BOOTSTRAP_PLATFORM_ADMIN: make the named user a platform admin if they exist. */
export async function applyBootstrapAdmin(db: Kysely<DB>, ident: string): Promise<void> {
  const v = ident.trim().toLowerCase();
  await db
    .updateTable('users')
    .set({ is_platform_admin: true })
    .where((eb) =>
      eb.or([
        ...(isUuid(v) ? [eb('id', '=', v)] : []),
        eb(sql`lower(login)`, '=', v),
        eb(sql`lower(email)`, '=', v),
      ]),
    )
    .where('status', '!=', 'deleted')
    .execute();
}
