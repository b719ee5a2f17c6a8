// Account invitations (api.md §11.16–§11.20). Only the token's hash is stored; the status
// is computed from accepted_at and expires_at.
import { sql, type Kysely, type Selectable } from 'kysely';
import type { DB, InvitationsTable } from '../../db/schema.js';
import { newId } from '../../lib/ids.js';

export type InvitationRow = Selectable<InvitationsTable>;
export type InvitationStatus = 'pending' | 'accepted' | 'expired';

export const INVITATION_TTL_MS = 7 * 24 * 3600 * 1000;

export function invitationStatus(inv: InvitationRow, now = new Date()): InvitationStatus {
  if (inv.accepted_at) return 'accepted';
  return inv.expires_at.getTime() <= now.getTime() ? 'expired' : 'pending';
}

export async function insertInvitation(
  db: Kysely<DB>,
  i: { accountId: string; invitedBy: string; email: string; role: 'admin' | 'member'; tokenHash: string; expiresAt: Date },
): Promise<InvitationRow> {
  return db
    .insertInto('invitations')
    .values({
      id: newId(),
      account_id: i.accountId,
      invited_by_user_id: i.invitedBy,
      email: i.email,
      role: i.role,
      token_hash: i.tokenHash,
      expires_at: i.expiresAt,
    })
    .returningAll()
    .executeTakeFirstOrThrow();
}

/** A pending (not accepted, not expired) invitation for this email in the account? */
export async function pendingInvitationExists(db: Kysely<DB>, accountId: string, email: string, now = new Date()): Promise<boolean> {
  const row = await db
    .selectFrom('invitations')
    .select('id')
    .where('account_id', '=', accountId)
    .where(sql`lower(email)`, '=', email.toLowerCase())
    .where('accepted_at', 'is', null)
    .where('expires_at', '>', now)
    .executeTakeFirst();
  return !!row;
}

/** Newest first; every invitation (the list is not paginated). */
export async function listInvitations(db: Kysely<DB>, accountId: string, status: InvitationStatus | undefined, now = new Date()) {
  let q = db.selectFrom('invitations').selectAll().where('account_id', '=', accountId);
  if (status === 'accepted') q = q.where('accepted_at', 'is not', null);
  if (status === 'pending') q = q.where('accepted_at', 'is', null).where('expires_at', '>', now);
  if (status === 'expired') q = q.where('accepted_at', 'is', null).where('expires_at', '<=', now);
  return q.orderBy('created_at', 'desc').orderBy('id', 'desc').execute();
}

export async function findInvitationByTokenHash(db: Kysely<DB>, tokenHash: string, lock = false): Promise<InvitationRow | undefined> {
  let q = db.selectFrom('invitations').selectAll().where('token_hash', '=', tokenHash);
  if (lock) q = q.forUpdate();
  return q.executeTakeFirst();
}

export async function findInvitationById(db: Kysely<DB>, id: string): Promise<InvitationRow | undefined> {
  return db.selectFrom('invitations').selectAll().where('id', '=', id).executeTakeFirst();
}

export async function markInvitationAccepted(db: Kysely<DB>, id: string, userId: string): Promise<InvitationRow> {
  return db
    .updateTable('invitations')
    .set({ accepted_at: new Date(), accepted_by_user_id: userId })
    .where('id', '=', id)
    .returningAll()
    .executeTakeFirstOrThrow();
}

export async function deleteInvitation(db: Kysely<DB>, accountId: string, id: string): Promise<void> {
  await db.deleteFrom('invitations').where('account_id', '=', accountId).where('id', '=', id).execute();
}

export function shapeInvitation(inv: InvitationRow, now = new Date()) {
  return {
    id: inv.id,
    account_id: inv.account_id,
    invited_by_user_id: inv.invited_by_user_id,
    email: inv.email,
    role: inv.role,
    status: invitationStatus(inv, now),
    expires_at: inv.expires_at.toISOString(),
    accepted_at: inv.accepted_at ? inv.accepted_at.toISOString() : null,
    created_at: inv.created_at.toISOString(),
  };
}
