// Credit balances and their ledger. Every change writes a transaction row with the
// balance after it, in the caller's database transaction.
import { sql, type Kysely, type RawBuilder } from 'kysely';
import type { DB } from '../../db/schema.js';
import { newId } from '../../lib/ids.js';

export interface CreditChange {
  orgId: string;
  amount: number;
  referenceType: string;
  referenceId?: string | null;
  note?: string | null;
  threadTitle?: string | null;
}

/** Adds (or, negative, deducts) credits; returns the new balance. */
export async function changeCredits(db: Kysely<DB>, c: CreditChange): Promise<number> {
  const res = await sql<{ balance: number }>`
    INSERT INTO credit_balances (org_id, balance) VALUES (${c.orgId}, ${c.amount})
    ON CONFLICT (org_id) DO UPDATE SET balance = credit_balances.balance + EXCLUDED.balance, updated_at = now()
    RETURNING balance`.execute(db);
  const balance = res.rows[0].balance;
  await db
    .insertInto('credit_transactions')
    .values({
      id: newId(),
      org_id: c.orgId,
      amount: c.amount,
      type: c.amount >= 0 ? 'credit' : 'debit',
      reference_type: c.referenceType,
      reference_id: c.referenceId ?? null,
      note: c.note ?? null,
      thread_title: c.threadTitle ?? null,
      balance_after: balance,
    })
    .execute();
  return balance;
}

export async function creditBalance(db: Kysely<DB>, orgId: string): Promise<number> {
  const res = await sql<{ balance: number }>`SELECT ${creditBalanceSql(sql`${orgId}::uuid`)} AS balance`.execute(db);
  return Number(res.rows[0].balance);
}

/** The credit balance of the account `orgId` (an SQL expression), 0 when it has none. */
export function creditBalanceSql(orgId: RawBuilder<unknown>): RawBuilder<number> {
  return sql<number>`coalesce((SELECT cb.balance FROM credit_balances cb WHERE cb.org_id = ${orgId}), 0)`;
}

export async function listCreditTransactions(db: Kysely<DB>, orgId: string, limit: number, before: { created_at: Date; id: string } | null) {
  let q = db.selectFrom('credit_transactions').selectAll().where('org_id', '=', orgId);
  // Compared with the cursor row itself: a JS Date would cut its microseconds and skip rows.
  if (before) q = q.where(sql<boolean>`(created_at, id) < (SELECT c.created_at, c.id FROM credit_transactions c WHERE c.id = ${before.id})`);
  return q.orderBy('created_at', 'desc').orderBy('id', 'desc').limit(limit).execute();
}

export async function findCreditTransaction(db: Kysely<DB>, orgId: string, id: string) {
  return db.selectFrom('credit_transactions').select(['id', 'created_at']).where('org_id', '=', orgId).where('id', '=', id).executeTakeFirst();
}
