// The closed-day rollup shared by platform usage (modules/usage/platform.ts) and run activity
// (modules/runs/activity.ts): a state row (id = 1) holds `rolled_until`, the first UTC day not
// rolled yet; rolling writes the sums of every day from there up to yesterday (days that ended
// more than a day ago, so no transaction still open can add to them) and moves the watermark in
// the same transaction, under the state row's lock, so two rollers roll each day once.
import { sql, type Kysely, type RawBuilder } from 'kysely';
import type { DB } from './schema.js';

export type RollupStateTable = 'usage_rollup_state' | 'run_activity_rollup_state';

/**
 * Rolls the closed days not rolled yet. `insertDays(inWindow)` builds the INSERT … SELECT of the
 * rollup rows; `inWindow(column)` is the condition that `column` (a timestamptz) falls in the days
 * to roll. Returns how many rollup rows were written.
 */
export async function rollUpClosedDays(
  db: Kysely<DB>,
  stateTable: RollupStateTable,
  insertDays: (inWindow: (column: RawBuilder<unknown>) => RawBuilder<unknown>) => RawBuilder<unknown>,
): Promise<number> {
  return db.transaction().execute(async (trx) => {
    const state = await sql<{ rolled_until: string | null; target: string }>`
      SELECT to_char(rolled_until, 'YYYY-MM-DD') AS rolled_until, to_char((now() AT TIME ZONE 'UTC')::date - 1, 'YYYY-MM-DD') AS target
      FROM ${sql.table(stateTable)} WHERE id = 1 FOR UPDATE`.execute(trx);
    const { rolled_until: from, target } = state.rows[0];
    if (from !== null && from >= target) return 0;
    const inWindow = (column: RawBuilder<unknown>) =>
      sql`${column} < (${target}::date)::timestamp AT TIME ZONE 'UTC'
        ${from === null ? sql`` : sql`AND ${column} >= (${from}::date)::timestamp AT TIME ZONE 'UTC'`}`;
    const written = await insertDays(inWindow).execute(trx);
    await sql`UPDATE ${sql.table(stateTable)} SET rolled_until = ${target}::date WHERE id = 1`.execute(trx);
    return Number(written.numAffectedRows ?? 0);
  });
}

/** The watermark as a subquery, for reads that union the rollup with the raw rows after it. */
export function rolledUntil(stateTable: RollupStateTable): RawBuilder<unknown> {
  return sql`(SELECT rolled_until FROM ${sql.table(stateTable)} WHERE id = 1)`;
}
