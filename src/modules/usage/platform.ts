// Platform-wide usage (api.md §16.5–16.7) over the same usage records as the account and user
// views, read through a rollup so a year of records answers in milliseconds:
//   - usage_daily holds the sums per (UTC day, account, model) of every day before
//     usage_rollup_state.rolled_until;
//   - days from rolled_until on are read from usage_records themselves.
// Each read is one statement (one snapshot) and the rollup moves rows and the watermark in one
// transaction, so a record is counted exactly once whatever the rollup's progress. Only days
// that ended more than a day ago are rolled, so no transaction still open can add to them.
import { sql, type Kysely, type RawBuilder } from 'kysely';
import { rollUpClosedDays, rolledUntil } from '../../db/daily-rollup.js';
import type { DB } from '../../db/schema.js';

/** Rolls every closed day not rolled yet into usage_daily; returns how many rollup rows it wrote. */
export function rollUpUsage(db: Kysely<DB>): Promise<number> {
  return rollUpClosedDays(db, 'usage_rollup_state', (inWindow) => sql`
    INSERT INTO usage_daily (day, org_id, model, input_tokens, output_tokens, cost_usd, record_count)
    SELECT (u.created_at AT TIME ZONE 'UTC')::date, u.org_id, u.model, sum(u.input_tokens), sum(u.output_tokens), sum(u.cost_usd), count(*)
    FROM usage_records u
    WHERE ${inWindow(sql`u.created_at`)}
    GROUP BY 1, 2, 3`);
}

/**
 * The usage rows of [from, to) (UTC days, `to` exclusive) as one derived table with columns
 * (day date, org_id, model, input_tokens, output_tokens, cost_usd, record_count): rolled days
 * from usage_daily, the rest from usage_records grouped the same way.
 */
function usageRows(from: string, to: string): RawBuilder<unknown> {
  const w = rolledUntil('usage_rollup_state');
  return sql`(
    SELECT d.day, d.org_id, d.model, d.input_tokens, d.output_tokens, d.cost_usd, d.record_count
    FROM usage_daily d
    WHERE d.day >= ${from}::date AND d.day < ${to}::date AND d.day < coalesce(${w}, '-infinity'::date)
    UNION ALL
    SELECT (u.created_at AT TIME ZONE 'UTC')::date, u.org_id, u.model,
           sum(u.input_tokens), sum(u.output_tokens), sum(u.cost_usd), count(*)
    FROM usage_records u
    WHERE u.created_at >= (greatest(${from}::date, coalesce(${w}, '-infinity'::date)))::timestamp AT TIME ZONE 'UTC'
      AND u.created_at < (${to}::date)::timestamp AT TIME ZONE 'UTC'
    GROUP BY 1, 2, 3
  ) rows`;
}

const dayString = (d: Date) => d.toISOString().slice(0, 10);
const monthRange = (year: number, month: number): [string, string] => [dayString(new Date(Date.UTC(year, month - 1, 1))), dayString(new Date(Date.UTC(year, month, 1)))];

const sums = sql`coalesce(sum(input_tokens), 0)::bigint AS input_tokens, coalesce(sum(output_tokens), 0)::bigint AS output_tokens,
  coalesce(sum(cost_usd), 0)::numeric AS cost_usd, coalesce(sum(record_count), 0)::bigint AS record_count`;

interface Sums {
  input_tokens: number | string;
  output_tokens: number | string;
  cost_usd: number | string;
  record_count: number | string;
}
const numbers = (r: Sums) => ({ input_tokens: Number(r.input_tokens), output_tokens: Number(r.output_tokens), cost_usd: Number(r.cost_usd), record_count: Number(r.record_count) });

/** Days of [from, to) with records, ascending (`to` exclusive). */
export async function platformUsageDaily(db: Kysely<DB>, from: Date, to: Date) {
  const res = await sql<Sums & { date: string }>`SELECT to_char(day, 'YYYY-MM-DD') AS date, ${sums} FROM ${usageRows(dayString(from), dayString(to))} GROUP BY day ORDER BY day`.execute(db);
  return res.rows.map((r) => ({ date: r.date, ...numbers(r) }));
}

export async function platformUsageSummary(db: Kysely<DB>, year: number, month: number) {
  const [from, to] = monthRange(year, month);
  const res = await sql<Sums & { active_orgs: number | string }>`SELECT ${sums}, count(DISTINCT org_id) AS active_orgs FROM ${usageRows(from, to)}`.execute(db);
  const r = numbers(res.rows[0]);
  return {
    year,
    month,
    total_input_tokens: r.input_tokens,
    total_output_tokens: r.output_tokens,
    total_cost_usd: r.cost_usd,
    record_count: r.record_count,
    active_orgs: Number(res.rows[0].active_orgs),
  };
}

export async function platformUsageByModel(db: Kysely<DB>, year: number, month: number) {
  const [from, to] = monthRange(year, month);
  const res = await sql<Sums & { model: string }>`SELECT model, ${sums} FROM ${usageRows(from, to)} GROUP BY model ORDER BY sum(cost_usd) DESC, model`.execute(db);
  return res.rows.map((r) => ({ model: r.model, ...numbers(r) }));
}

/** Token and cost totals of every usage record ever (the admin dashboard). */
export async function platformUsageTotals(db: Kysely<DB>, now: Date) {
  const to = dayString(new Date(now.getTime() + 86_400_000));
  const res = await sql<Sums>`SELECT ${sums} FROM ${usageRows('1970-01-01', to)}`.execute(db);
  return numbers(res.rows[0]);
}
