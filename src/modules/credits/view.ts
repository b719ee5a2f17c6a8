// The CreditsView shape (api.md §2.7) that GET /v1/me/credits and GET /v1/admin/credits share.
import type { Kysely } from 'kysely';
import type { DB } from '../../db/schema.js';
import { badCursor, DateTime, iso, Nullable, T, Uuid } from '../../http/schemas.js';
import { creditBalance, findCreditTransaction, listCreditTransactions } from './store.js';

export const CreditTransactionSchema = T.Object({
  id: Uuid(),
  org_id: Uuid(),
  amount: T.Integer(),
  type: T.Union([T.Literal('credit'), T.Literal('debit')]),
  reference_type: T.String(),
  reference_id: Nullable(T.String()),
  note: Nullable(T.String()),
  thread_title: Nullable(T.String()),
  balance_after: T.Integer(),
  created_at: DateTime(),
});

export const CreditsViewSchema = T.Object({ org_id: Uuid(), balance: T.Integer(), transactions: T.Array(CreditTransactionSchema) });

/** Balance and a page of transactions (newest first) of `orgId`; a cursor naming none of its transactions is a 400. */
export async function creditsView(db: Kysely<DB>, orgId: string, limit: number, cursorId: string | null) {
  const cursor = cursorId ? await findCreditTransaction(db, orgId, cursorId) : null;
  if (cursorId && !cursor) throw badCursor();
  const [balance, rows] = await Promise.all([creditBalance(db, orgId), listCreditTransactions(db, orgId, limit, cursor ?? null)]);
  return {
    org_id: orgId,
    balance,
    transactions: rows.map((r) => ({ ...r, amount: Number(r.amount), balance_after: Number(r.balance_after), created_at: iso(r.created_at) })),
  };
}
