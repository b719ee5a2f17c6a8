// Platform-wide views of invite codes and referrals for admins (api.md §21.14–21.18).
import { sql, type Kysely, type RawBuilder } from 'kysely';
import type { DB } from '../../db/schema.js';
import { likePattern } from '../threads/store.js';
import type { InviteCodeRow } from './store.js';

/** Max referral levels below the user in a tree (§21.18). */
export const REFERRAL_TREE_DEPTH = 10;

export type AdminInviteCodeRow = InviteCodeRow & { user_login: string; user_email: string | null };

/** Invite code `alias` matches `q` (its code, its owner's login or email), or there is no q. */
function inviteCodeMatches(alias: string, q: string | null): RawBuilder<boolean> {
  if (!q) return sql<boolean>`true`;
  const c = sql.raw(alias);
  const p = likePattern(q);
  return sql<boolean>`(${c}.code ILIKE ${p} ESCAPE '!' OR EXISTS (
    SELECT 1 FROM users qu WHERE qu.id = ${c}.user_id AND (qu.login ILIKE ${p} ESCAPE '!' OR qu.email ILIKE ${p} ESCAPE '!')))`;
}

function inviteCodesWithOwner(db: Kysely<DB>) {
  return db
    .selectFrom('invite_codes as ic')
    .innerJoin('users as u', 'u.id', 'ic.user_id')
    .selectAll('ic')
    .select(['u.login as user_login', 'u.email as user_email']);
}

/** A page of every invite code, newest first; a cursor that is no item of the list gives an empty page. */
export async function listInviteCodes(db: Kysely<DB>, f: { q: string | null; limit: number; cursor: string | null }): Promise<AdminInviteCodeRow[]> {
  let query = inviteCodesWithOwner(db).where(inviteCodeMatches('ic', f.q));
  if (f.cursor) {
    query = query.where(sql<boolean>`(ic.created_at, ic.id) < (SELECT c.created_at, c.id FROM invite_codes c WHERE c.id = ${f.cursor} AND ${inviteCodeMatches('c', f.q)})`);
  }
  return query.orderBy('ic.created_at', 'desc').orderBy('ic.id', 'desc').limit(f.limit).execute();
}

export async function isInviteCodeCursor(db: Kysely<DB>, id: string, q: string | null): Promise<boolean> {
  const res = await sql`SELECT 1 FROM invite_codes c WHERE c.id = ${id} AND ${inviteCodeMatches('c', q)}`.execute(db);
  return res.rows.length > 0;
}

/** One invite code with its owner; `lock` holds it for the caller's transaction. */
export async function findInviteCode(db: Kysely<DB>, id: string, lock = false): Promise<AdminInviteCodeRow | undefined> {
  const query = inviteCodesWithOwner(db).where('ic.id', '=', id);
  return (lock ? query.forUpdate('ic') : query).executeTakeFirst();
}

export async function updateInviteCode(db: Kysely<DB>, id: string, patch: { max_uses?: number; is_active?: boolean }): Promise<void> {
  await db.updateTable('invite_codes').set(patch).where('id', '=', id).execute();
}

export interface ReferralRow {
  id: string;
  inviter_user_id: string;
  inviter_login: string;
  invitee_user_id: string;
  invitee_login: string;
  invite_code_id: string;
  code: string;
  created_at: Date | string;
}

/** A page of referrals (of one inviter, when given), newest first; a cursor that is no item of the list gives an empty page. */
export async function listReferrals(db: Kysely<DB>, f: { inviterUserId: string | null; limit: number; cursor: string | null }): Promise<ReferralRow[]> {
  const ofInviter = (alias: string) => (f.inviterUserId ? sql` AND ${sql.raw(alias)}.inviter_user_id = ${f.inviterUserId}` : sql``);
  const cursor = f.cursor
    ? sql` AND (r.created_at, r.id) < (SELECT c.created_at, c.id FROM referrals c WHERE c.id = ${f.cursor}${ofInviter('c')})`
    : sql``;
  const res = await sql<ReferralRow>`
    SELECT r.id, r.inviter_user_id, iu.login AS inviter_login, r.invitee_user_id, eu.login AS invitee_login,
           r.invite_code_id, ic.code, r.created_at
      FROM referrals r
      JOIN users iu ON iu.id = r.inviter_user_id
      JOIN users eu ON eu.id = r.invitee_user_id
      JOIN invite_codes ic ON ic.id = r.invite_code_id
     WHERE true${ofInviter('r')}${cursor}
     ORDER BY r.created_at DESC, r.id DESC
     LIMIT ${f.limit}`.execute(db);
  return res.rows;
}

export async function isReferralCursor(db: Kysely<DB>, id: string, inviterUserId: string | null): Promise<boolean> {
  let query = db.selectFrom('referrals').select('id').where('id', '=', id);
  if (inviterUserId) query = query.where('inviter_user_id', '=', inviterUserId);
  return (await query.executeTakeFirst()) !== undefined;
}

export interface ReferralNodeRow {
  user_id: string;
  login: string;
  inviter_id: string | null;
  depth: number;
  created_at: Date | string;
}

/**
 * The user (depth 0, with their own inviter) and everyone they invited, recursively, down to
 * REFERRAL_TREE_DEPTH levels, in breadth-first order: by level, and within a level in the order
 * a queue would reach them (by the path of referral ids, which are time-ordered). Empty when
 * the user does not exist or was deleted.
 */
export async function referralTree(db: Kysely<DB>, userId: string): Promise<ReferralNodeRow[]> {
  const res = await sql<ReferralNodeRow>`
    WITH RECURSIVE tree (user_id, inviter_id, depth, path) AS (
      SELECT u.id, (SELECT r.inviter_user_id FROM referrals r WHERE r.invitee_user_id = u.id), 0, ARRAY[]::uuid[]
        FROM users u
       WHERE u.id = ${userId} AND u.status <> 'deleted'
      UNION ALL
      SELECT r.invitee_user_id, r.inviter_user_id, t.depth + 1, t.path || r.id
        FROM tree t
        JOIN referrals r ON r.inviter_user_id = t.user_id
       WHERE t.depth < ${REFERRAL_TREE_DEPTH}
    )
    SELECT t.user_id, u.login, t.inviter_id, t.depth, u.created_at
      FROM tree t
      JOIN users u ON u.id = t.user_id
     ORDER BY t.depth, t.path`.execute(db);
  return res.rows;
}
