// Users: the rows behind logins. Other modules call these functions, never the table.
import { sql, type Kysely, type RawBuilder, type Selectable } from 'kysely';
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

// ---- platform admin views and changes (api.md §21.2–21.5) ----

export interface UserListFilter {
  /** Case-insensitive substring of login, username or email. */
  q?: string;
  status?: 'active' | 'suspended';
  /** Id of the last user of the previous page. */
  before: string | null;
  limit: number;
}

const likePattern = (q: string) => `%${q.toLowerCase().replace(/[\\%_]/g, (c) => `\\${c}`)}%`;

/**
 * Users newest first (deleted ones never), walked backwards over users_created_idx: a page
 * reads rows until `limit` match, so an unfiltered page costs `limit` rows; a rare `q` reads
 * more (no trigram index: the embedded engine has no pg_trgm).
 */
export async function listUsers(db: Kysely<DB>, f: UserListFilter): Promise<UserRow[]> {
  let q = db.selectFrom('users').selectAll().where('status', '!=', 'deleted');
  if (f.status) q = q.where('status', '=', f.status);
  if (f.q) {
    const p = likePattern(f.q);
    q = q.where((eb) => eb.or([eb(sql`lower(login)`, 'like', p), eb(sql`lower(username)`, 'like', p), eb(sql`lower(email)`, 'like', p)]));
  }
  // Compared with the cursor row itself: a JS Date would cut its microseconds.
  if (f.before) q = q.where(sql<boolean>`(created_at, id) < (SELECT c.created_at, c.id FROM users c WHERE c.id = ${f.before})`);
  return q.orderBy('created_at', 'desc').orderBy('id', 'desc').limit(f.limit).execute();
}

/** Does the id name a user (deleted ones too: a cursor keeps working)? */
export async function userExists(db: Kysely<DB>, id: string): Promise<boolean> {
  return !!(await db.selectFrom('users').select('id').where('id', '=', id).executeTakeFirst());
}

/** A user that is not deleted, locked for a change. */
export async function lockUser(db: Kysely<DB>, id: string): Promise<UserRow | undefined> {
  return db.selectFrom('users').selectAll().where('id', '=', id).where('status', '!=', 'deleted').forUpdate().executeTakeFirst();
}

/**
 * Serialises every change that can take away the last active platform admin (demotion,
 * suspension, deletion), so two admins demoting each other at once cannot both succeed.
 */
export async function lockPlatformAdmins(db: Kysely<DB>): Promise<void> {
  await sql`SELECT pg_advisory_xact_lock(7244113902)`.execute(db);
}

export async function countActiveAdminsExcept(db: Kysely<DB>, userId: string): Promise<number> {
  const row = await db
    .selectFrom('users')
    .select(sql<number>`count(*)::int`.as('n'))
    .where('is_platform_admin', '=', true)
    .where('status', '=', 'active')
    .where('id', '!=', userId)
    .executeTakeFirstOrThrow();
  return row.n;
}

export type AdminUserPatch = Partial<Pick<UserRow, 'status' | 'username' | 'email' | 'email_verified' | 'locale' | 'timezone' | 'is_platform_admin'>>;

export async function adminUpdateUser(db: Kysely<DB>, id: string, patch: AdminUserPatch): Promise<UserRow> {
  return db.updateTable('users').set({ ...patch, updated_at: new Date() }).where('id', '=', id).returningAll().executeTakeFirstOrThrow();
}

/** Marks a user deleted and frees their login and email (api.md §21.5). */
export async function markUserDeleted(db: Kysely<DB>, id: string): Promise<void> {
  await db
    .updateTable('users')
    .set({ status: 'deleted', login: `deleted.${id}`, email: null, email_verified: false, password_hash: null, is_platform_admin: false, updated_at: new Date() })
    .where('id', '=', id)
    .execute();
}

/**
 * Users that are not deleted: all of them, and those who signed in since `since` or are among
 * `runCreators` (a subquery of user ids with one column).
 */
export async function userFigures(db: Kysely<DB>, since: Date, runCreators: RawBuilder<unknown>): Promise<{ total: number; active: number }> {
  const res = await sql<{ total: string; active: string }>`
    SELECT (SELECT count(*) FROM users WHERE status <> 'deleted') AS total,
           (SELECT count(*) FROM (
              SELECT id FROM users WHERE last_login_at >= ${since} AND status <> 'deleted'
              UNION
              SELECT d.user_id FROM (SELECT DISTINCT user_id FROM (${runCreators}) c (user_id)) d
               WHERE EXISTS (SELECT 1 FROM users u WHERE u.id = d.user_id AND u.status <> 'deleted')
            ) active) AS active`.execute(db);
  return { total: Number(res.rows[0].total), active: Number(res.rows[0].active) };
}
