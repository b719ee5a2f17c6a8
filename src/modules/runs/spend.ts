// The in-run spend stop (api.md §27.2): before every model call after a run's first, the
// account's balance less what its unfinished runs have spent so far, and the month's tokens
// (which already count this run's recorded calls). Counting every unfinished run of the
// account, not only this one, is what bounds the overshoot of concurrent runs to one model
// call each (decided): their calls are deducted only at each run's terminal statement.
import { sql, type Kysely } from 'kysely';
import type { DB } from '../../db/schema.js';
import { creditBalanceSql } from '../credits/store.js';
import { monthTokensSql, weightedCostOfRunsSql } from '../usage/store.js';

export interface SpendState {
  balance: number;
  /** Weighted USD cost of the account's running and waiting runs (this one included). */
  inFlightUsd: number;
  /** null when not asked for (no monthly token quota). */
  monthTokens: number | null;
}

export async function spendState(db: Kysely<DB>, orgId: string, withMonthTokens: boolean): Promise<SpendState> {
  const org = sql`${orgId}::uuid`;
  const unfinished = sql`SELECT r.id FROM runs r WHERE r.org_id = ${org} AND r.status IN ('running', 'waiting_for_input')`;
  const res = await sql<{ balance: number; inflight: number | string; month_tokens: number | string | null }>`
    SELECT ${creditBalanceSql(org)} AS balance, ${weightedCostOfRunsSql(unfinished)} AS inflight,
           ${withMonthTokens ? monthTokensSql(org) : sql`NULL`} AS month_tokens`.execute(db);
  const row = res.rows[0];
  return { balance: Number(row.balance), inFlightUsd: Number(row.inflight), monthTokens: row.month_tokens === null ? null : Number(row.month_tokens) };
}

/** Credits spent so far by unfinished runs: ⌈weighted USD × credit.per_usd⌉ (the tier multiplier applies only at the end). */
export function creditsInFlight(s: SpendState, perUsd: number): number {
  // The epsilon keeps a sum like 0.1 + 0.2 from rounding up to one credit too many.
  return Math.ceil(s.inFlightUsd * perUsd - 1e-9);
}
