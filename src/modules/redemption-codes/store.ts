// Redemption codes and their redemptions (api.md §4.9, §21.19–21.21). Only this module touches
// the redemption_codes and redemptions tables; redeeming (me/redeem.ts) calls these functions.
import { sql, type Kysely, type RawBuilder, type Selectable } from 'kysely';
import type { DB, RedemptionCodesTable } from '../../db/schema.js';
import { randomFromAlphabet } from '../../lib/crypto.js';
import { newId } from '../../lib/ids.js';
import { CODE_ALPHABET } from '../referrals/store.js';
import { likePattern } from '../threads/store.js';

export type RedemptionCodeRow = Selectable<RedemptionCodesTable>;

/** `XXXX-XXXX-XXXX-XXXX` from the code alphabet: 80 random bits. */
export function generateRedemptionCode(): string {
  return randomFromAlphabet(16, CODE_ALPHABET).replace(/(.{4})(?!$)/g, '$1-');
}

export interface NewRedemptionCodes {
  count: number;
  type: string;
  value: string;
  maxUses: number;
  expiresAt: Date | null;
  batchId: string;
  createdByUserId: string;
}

/**
 * Inserts `count` fresh codes in one statement (call inside the caller's transaction). A code
 * that collides with an existing one is skipped and replaced by another draw, so the batch
 * always holds exactly `count` codes. Returned in creation order.
 */
export async function insertRedemptionCodes(db: Kysely<DB>, c: NewRedemptionCodes): Promise<RedemptionCodeRow[]> {
  const rows: RedemptionCodeRow[] = [];
  for (let attempt = 0; rows.length < c.count; attempt++) {
    if (attempt > 5) throw new Error('could not generate unique redemption codes');
    const codes = new Set<string>();
    while (codes.size < c.count - rows.length) codes.add(generateRedemptionCode());
    const values = [...codes].map((code) => ({
      id: newId(),
      code,
      type: c.type,
      value: c.value,
      max_uses: c.maxUses,
      expires_at: c.expiresAt,
      batch_id: c.batchId,
      created_by_user_id: c.createdByUserId,
    }));
    rows.push(...(await db.insertInto('redemption_codes').values(values).onConflict((oc) => oc.column('code').doNothing()).returningAll().execute()));
  }
  return rows.sort((a, b) => (a.id < b.id ? -1 : 1));
}

export interface RedemptionCodeFilter {
  /** Substring of the code; dashes are ignored on both sides. */
  q: string | null;
  type: string | null;
  batchId: string | null;
}

/** Code `alias` passes the filter. */
function codeMatches(alias: string, f: RedemptionCodeFilter): RawBuilder<boolean> {
  const c = sql.raw(alias);
  const q = f.q ? f.q.replace(/-/g, '') : '';
  return sql<boolean>`(true${q ? sql` AND replace(${c}.code, '-', '') ILIKE ${likePattern(q)} ESCAPE '!'` : sql``}${
    f.type ? sql` AND ${c}.type = ${f.type}` : sql``}${f.batchId ? sql` AND ${c}.batch_id = ${f.batchId}` : sql``})`;
}

/** A page of codes, newest first; a cursor that is no item of the filtered list gives an empty page. */
export async function listRedemptionCodes(
  db: Kysely<DB>,
  f: RedemptionCodeFilter & { limit: number; cursor: string | null },
): Promise<RedemptionCodeRow[]> {
  let query = db.selectFrom('redemption_codes as rc').selectAll('rc').where(codeMatches('rc', f));
  if (f.cursor) {
    query = query.where(sql<boolean>`(rc.created_at, rc.id) < (SELECT c.created_at, c.id FROM redemption_codes c WHERE c.id = ${f.cursor} AND ${codeMatches('c', f)})`);
  }
  return query.orderBy('rc.created_at', 'desc').orderBy('rc.id', 'desc').limit(f.limit).execute();
}

export async function isRedemptionCodeCursor(db: Kysely<DB>, id: string, f: RedemptionCodeFilter): Promise<boolean> {
  const res = await sql`SELECT 1 FROM redemption_codes c WHERE c.id = ${id} AND ${codeMatches('c', f)}`.execute(db);
  return res.rows.length > 0;
}

/** One code by id; `lock` holds it for the caller's transaction. */
export async function findRedemptionCode(db: Kysely<DB>, id: string, lock = false): Promise<RedemptionCodeRow | undefined> {
  const query = db.selectFrom('redemption_codes').selectAll().where('id', '=', id);
  return (lock ? query.forUpdate() : query).executeTakeFirst();
}

export async function setRedemptionCodeActive(db: Kysely<DB>, id: string, isActive: boolean): Promise<RedemptionCodeRow> {
  return db.updateTable('redemption_codes').set({ is_active: isActive }).where('id', '=', id).returningAll().executeTakeFirstOrThrow();
}

/**
 * The active code whose normalised text (upper case, no dashes or spaces) is `normalised`,
 * locked until the caller's transaction ends: concurrent redemptions of one code queue here,
 * so each sees the use count the previous one left.
 */
export async function lockActiveCodeByText(db: Kysely<DB>, normalised: string): Promise<RedemptionCodeRow | undefined> {
  return db
    .selectFrom('redemption_codes')
    .selectAll()
    .where(sql`upper(replace(replace(code, '-', ''), ' ', ''))`, '=', normalised)
    .where('is_active', '=', true)
    .forUpdate()
    .executeTakeFirst();
}

/** Records that `userId` redeemed the code into `orgId`; false when that user already had. */
export async function insertRedemption(db: Kysely<DB>, r: { codeId: string; userId: string; orgId: string }): Promise<boolean> {
  const inserted = await db
    .insertInto('redemptions')
    .values({ id: newId(), redemption_code_id: r.codeId, user_id: r.userId, org_id: r.orgId })
    .onConflict((oc) => oc.columns(['redemption_code_id', 'user_id']).doNothing())
    .returning('id')
    .executeTakeFirst();
  return inserted !== undefined;
}

export async function countRedemptionUse(db: Kysely<DB>, codeId: string): Promise<void> {
  await db.updateTable('redemption_codes').set({ use_count: sql`use_count + 1` }).where('id', '=', codeId).execute();
}
