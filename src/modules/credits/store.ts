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
      // Taken after the balance row's lock, so newest-first order is the order balances changed
      // in (now() would be the transaction's start: a row that waited for the lock would sort
      // before the one it waited for, its balance_after out of sequence).
      created_at: sql`clock_timestamp()`,
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

/**
 * Adds `amount` to every account's balance in one statement, with one transaction row each
 * (§16.3). Rows are locked in account order, so two bulk operations cannot deadlock; a
 * concurrent single change of one account waits for, or is waited on by, its row. Returns how
 * many accounts it changed.
 */
export async function adjustAllBalances(db: Kysely<DB>, amount: number, referenceType: string, note: string | null): Promise<number> {
  const res = await sql<{ n: number | string }>`
    WITH changed AS (
      INSERT INTO credit_balances (org_id, balance)
      SELECT a.id, ${amount}::bigint FROM accounts a ORDER BY a.id
      ON CONFLICT (org_id) DO UPDATE SET balance = credit_balances.balance + EXCLUDED.balance, updated_at = now()
      RETURNING org_id, balance
    ), rows AS (
      INSERT INTO credit_transactions (id, org_id, amount, type, reference_type, note, balance_after, created_at)
      SELECT gen_random_uuid(), org_id, ${amount}::bigint, ${amount >= 0 ? 'credit' : 'debit'}, ${referenceType}, ${note}, balance, clock_timestamp() FROM changed
      RETURNING 1
    )
    SELECT count(*) AS n FROM rows`.execute(db);
  return Number(res.rows[0].n);
}

/**
 * Sets every non-zero balance to 0 through a transaction row of −balance (§16.4). The balances
 * are read under their row locks, in account order, so a change that commits meanwhile is
 * either before the reset (and zeroed by it) or after it.
 */
export async function resetAllBalances(db: Kysely<DB>, referenceType: string, note: string | null): Promise<number> {
  const res = await sql<{ n: number | string }>`
    WITH old AS (
      SELECT org_id, balance FROM credit_balances WHERE balance <> 0 ORDER BY org_id FOR UPDATE
    ), zeroed AS (
      UPDATE credit_balances cb SET balance = 0, updated_at = now() FROM old WHERE cb.org_id = old.org_id
      RETURNING cb.org_id, old.balance AS before
    ), rows AS (
      INSERT INTO credit_transactions (id, org_id, amount, type, reference_type, note, balance_after, created_at)
      SELECT gen_random_uuid(), org_id, -before, CASE WHEN before < 0 THEN 'credit' ELSE 'debit' END, ${referenceType}, ${note}, 0, clock_timestamp() FROM zeroed
      RETURNING 1
    )
    SELECT count(*) AS n FROM rows`.execute(db);
  return Number(res.rows[0].n);
}
