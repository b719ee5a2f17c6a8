// Invite codes and referrals (api.md §4.7, §4.8, registration with a code).
import { sql, type Kysely, type Selectable } from 'kysely';
import type { DB, InviteCodesTable } from '../../db/schema.js';
import { randomFromAlphabet } from '../../lib/crypto.js';
import { newId } from '../../lib/ids.js';

export type InviteCodeRow = Selectable<InviteCodesTable>;
/** The characters of invite and redemption codes: no 0/O, 1/I, so codes survive being read aloud. */
export const CODE_ALPHABET = 'ABCDEFGHJKLMNPQRSTUVWXYZ23456789';

export function normaliseCode(code: string): string {
  return code.replace(/[\s-]/g, '').toUpperCase();
}

/** An active code with uses left, locked for the registering transaction. */
export async function findUsableInviteCode(db: Kysely<DB>, code: string): Promise<InviteCodeRow | undefined> {
  return db
    .selectFrom('invite_codes')
    .selectAll()
    .where('code', '=', normaliseCode(code))
    .where('is_active', '=', true)
    .where((eb) => eb.or([eb('max_uses', '=', 0), eb('use_count', '<', eb.ref('max_uses'))]))
    .forUpdate()
    .executeTakeFirst();
}

export async function recordReferral(db: Kysely<DB>, code: InviteCodeRow, inviteeUserId: string): Promise<void> {
  await db.updateTable('invite_codes').set({ use_count: sql`use_count + 1` }).where('id', '=', code.id).execute();
  await db
    .insertInto('referrals')
    .values({ id: newId(), inviter_user_id: code.user_id, invitee_user_id: inviteeUserId, invite_code_id: code.id })
    .execute();
}

async function insertCode(db: Kysely<DB>, userId: string, maxUses: number): Promise<InviteCodeRow> {
  for (let attempt = 0; ; attempt++) {
    const row = await db
      .insertInto('invite_codes')
      .values({ id: newId(), user_id: userId, code: randomFromAlphabet(8, CODE_ALPHABET), max_uses: maxUses })
      .onConflict((oc) => oc.column('code').doNothing())
      .returningAll()
      .executeTakeFirst();
    if (row) return row;
    if (attempt > 5) throw new Error('could not generate a unique invite code');
  }
}

/**
 * Serialises the creation and reset of one user's codes for the rest of the transaction, so
 * concurrent first calls cannot create two codes (nor a reset race past the active limit).
 */
async function lockUserCodes(trx: Kysely<DB>, userId: string): Promise<void> {
  await sql`SELECT pg_advisory_xact_lock(hashtext(${`invite_codes:${userId}`}))`.execute(trx);
}

/** The user's newest active code, created on first use. Call inside a transaction. */
export async function currentInviteCode(trx: Kysely<DB>, userId: string, maxUses: number): Promise<InviteCodeRow> {
  await lockUserCodes(trx, userId);
  const existing = await trx
    .selectFrom('invite_codes')
    .selectAll()
    .where('user_id', '=', userId)
    .where('is_active', '=', true)
    .orderBy('created_at', 'desc')
    .orderBy('id', 'desc')
    .executeTakeFirst();
  return existing ?? insertCode(trx, userId, maxUses);
}

/** A fresh code; the newest active one is deactivated, and at most `maxActive` stay active. Call inside a transaction. */
export async function resetInviteCode(db: Kysely<DB>, userId: string, maxUses: number, maxActive: number): Promise<InviteCodeRow> {
  await lockUserCodes(db, userId);
  const active = await db
    .selectFrom('invite_codes')
    .select('id')
    .where('user_id', '=', userId)
    .where('is_active', '=', true)
    .orderBy('created_at', 'desc')
    .orderBy('id', 'desc')
    .execute();
  // Deactivate the newest one and any beyond the allowed count (keeping room for the new code).
  const keep = Math.max(0, maxActive - 1);
  const toDeactivate = active.length ? [active[0].id, ...active.slice(1).slice(keep).map((r) => r.id)] : [];
  if (toDeactivate.length) await db.updateTable('invite_codes').set({ is_active: false }).where('id', 'in', toDeactivate).execute();
  return insertCode(db, userId, maxUses);
}

export function shapeInviteCode(c: InviteCodeRow) {
  return {
    id: c.id,
    user_id: c.user_id,
    code: c.code,
    max_uses: c.max_uses,
    use_count: c.use_count,
    is_active: c.is_active,
    created_at: c.created_at.toISOString(),
  };
}
