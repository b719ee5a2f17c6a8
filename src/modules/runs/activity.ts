// Run activity for the admin dashboard (api.md §21.1), read through a daily rollup the way
// platform usage is (modules/usage/platform.ts):
//   - run_activity_daily counts runs per (UTC day, account, creator) for every day before
//     run_activity_rollup_state.rolled_until;
//   - later days are read from runs themselves (runs_created_idx), at most about two days.
// The rollup runs when the dashboard is read (closed days only, under a row lock, so two
// readers roll each day once), and each figure is read in one statement over both parts.
import { sql, type Kysely } from 'kysely';
import { rollUpClosedDays, rolledUntil } from '../../db/daily-rollup.js';
import type { DB } from '../../db/schema.js';

/** Rolls every closed day (ended more than a day ago) not rolled yet; returns the rows written. */
export function rollUpRunActivity(db: Kysely<DB>): Promise<number> {
  return rollUpClosedDays(db, 'run_activity_rollup_state', (inWindow) => sql`
    INSERT INTO run_activity_daily (day, org_id, user_id, run_count)
    SELECT (r.created_at AT TIME ZONE 'UTC')::date, r.org_id, r.created_by_user_id, count(*)
    FROM runs r
    WHERE ${inWindow(sql`r.created_at`)}
    GROUP BY 1, 2, 3`);
}

const W = rolledUntil('run_activity_rollup_state');
const wStart = sql`(coalesce(${W}, '-infinity'::date))::timestamp AT TIME ZONE 'UTC'`;

/** `today` and `sinceDay` are UTC dates `YYYY-MM-DD`; everything from `sinceDay` on counts as recent. */
export async function runActivity(db: Kysely<DB>, today: string, sinceDay: string): Promise<{ totalRuns: number; runsToday: number; activeOrgs: number }> {
  const res = await sql<{ total: string; today: string; orgs: string }>`
    SELECT
      (SELECT coalesce(sum(run_count), 0) FROM run_activity_daily WHERE day < coalesce(${W}, '-infinity'::date))
        + (SELECT count(*) FROM runs WHERE created_at >= ${wStart}) AS total,
      (SELECT count(*) FROM runs WHERE created_at >= (${today}::date)::timestamp AT TIME ZONE 'UTC') AS today,
      (SELECT count(DISTINCT org_id) FROM (
         SELECT org_id FROM run_activity_daily WHERE day >= ${sinceDay}::date AND day < coalesce(${W}, '-infinity'::date)
         UNION ALL
         SELECT org_id FROM runs WHERE created_at >= greatest((${sinceDay}::date)::timestamp AT TIME ZONE 'UTC', ${wStart})
       ) recent) AS orgs`.execute(db);
  const r = res.rows[0];
  return { totalRuns: Number(r.total), runsToday: Number(r.today), activeOrgs: Number(r.orgs) };
}

/** The creators of a run since `sinceDay` (UTC date), as a subquery to compose into the active-user count. */
export function runCreatorsSinceSql(sinceDay: string) {
  return sql`SELECT user_id FROM run_activity_daily WHERE day >= ${sinceDay}::date AND day < coalesce(${W}, '-infinity'::date)
    UNION SELECT created_by_user_id FROM runs WHERE created_at >= greatest((${sinceDay}::date)::timestamp AT TIME ZONE 'UTC', ${wStart})`;
}
