// Usage statistics over usage records (api.md §4.3–§4.5, reused by account usage §11.8).
import { sql, type Kysely } from 'kysely';
import type { DB } from '../../db/schema.js';
import { fieldError } from '../../http/errors.js';
import { T, Uuid } from '../../http/schemas.js';

export const UsageQuery = T.Object({
  year: T.Optional(T.Integer({ minimum: 2000, maximum: 2100 })),
  month: T.Optional(T.Integer({ minimum: 1, maximum: 12 })),
});

export const DailyQuery = T.Object({
  start: T.String({ format: 'date' }),
  end: T.String({ format: 'date' }),
});

export const UsageSummarySchema = T.Object({
  org_id: Uuid(),
  year: T.Integer(),
  month: T.Integer(),
  total_input_tokens: T.Integer(),
  total_output_tokens: T.Integer(),
  total_cost_usd: T.Number(),
  record_count: T.Integer(),
});
export const UsageDaySchema = T.Object({
  date: T.String(),
  input_tokens: T.Integer(),
  output_tokens: T.Integer(),
  cost_usd: T.Number(),
  record_count: T.Integer(),
});
export const UsageModelSchema = T.Object({
  model: T.String(),
  input_tokens: T.Integer(),
  output_tokens: T.Integer(),
  cost_usd: T.Number(),
  record_count: T.Integer(),
});

export function monthOf(q: { year?: number; month?: number }): { year: number; month: number } {
  const now = new Date();
  return { year: q.year ?? now.getUTCFullYear(), month: q.month ?? now.getUTCMonth() + 1 };
}

export function dayRange(q: { start: string; end: string }): { start: Date; end: Date } {
  const start = new Date(`${q.start}T00:00:00.000Z`);
  const end = new Date(`${q.end}T00:00:00.000Z`);
  if (Number.isNaN(start.getTime())) throw fieldError('start', 'must be a date YYYY-MM-DD');
  if (Number.isNaN(end.getTime())) throw fieldError('end', 'must be a date YYYY-MM-DD');
  if (start > end) throw fieldError('end', 'must not be before start');
  if ((end.getTime() - start.getTime()) / 86400000 > 366) throw fieldError('end', 'span must be at most 366 days');
  return { start, end: new Date(end.getTime() + 86400000) };
}

function aggregates() {
  return [
    sql<number>`sum(input_tokens)::bigint`.as('input_tokens'),
    sql<number>`sum(output_tokens)::bigint`.as('output_tokens'),
    sql<number>`sum(cost_usd)::numeric`.as('cost_usd'),
    sql<number>`count(*)::int`.as('record_count'),
  ];
}

function numeric<R extends { input_tokens: number; output_tokens: number; cost_usd: number }>(rows: R[]): R[] {
  return rows.map((r) => ({ ...r, input_tokens: Number(r.input_tokens), output_tokens: Number(r.output_tokens), cost_usd: Number(r.cost_usd) }));
}

function monthBounds(year: number, month: number): [Date, Date] {
  return [new Date(Date.UTC(year, month - 1, 1)), new Date(Date.UTC(year, month, 1))];
}

/** `userId` null = every record of the account. */
export async function usageSummary(db: Kysely<DB>, orgId: string, userId: string | null, year: number, month: number) {
  const [from, to] = monthBounds(year, month);
  let q = db
    .selectFrom('usage_records')
    .select([
      sql<number>`coalesce(sum(input_tokens), 0)::bigint`.as('in'),
      sql<number>`coalesce(sum(output_tokens), 0)::bigint`.as('out'),
      sql<number>`coalesce(sum(cost_usd), 0)::numeric`.as('cost'),
      sql<number>`count(*)::int`.as('n'),
    ])
    .where('org_id', '=', orgId)
    .where('created_at', '>=', from)
    .where('created_at', '<', to);
  if (userId) q = q.where('user_id', '=', userId);
  const r = await q.executeTakeFirstOrThrow();
  return {
    org_id: orgId,
    year,
    month,
    total_input_tokens: Number(r.in),
    total_output_tokens: Number(r.out),
    total_cost_usd: Number(r.cost),
    record_count: r.n,
  };
}

export async function usageDaily(db: Kysely<DB>, orgId: string, userId: string | null, from: Date, to: Date) {
  let q = db
    .selectFrom('usage_records')
    .select([
      sql<string>`to_char(created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD')`.as('date'),
      ...aggregates(),
    ])
    .where('org_id', '=', orgId)
    .where('created_at', '>=', from)
    .where('created_at', '<', to);
  if (userId) q = q.where('user_id', '=', userId);
  return numeric(await q.groupBy(sql`1`).orderBy(sql`1`).execute());
}

export async function usageByModel(db: Kysely<DB>, orgId: string, userId: string | null, year: number, month: number) {
  const [from, to] = monthBounds(year, month);
  let q = db
    .selectFrom('usage_records')
    .select([
      'model',
      ...aggregates(),
    ])
    .where('org_id', '=', orgId)
    .where('created_at', '>=', from)
    .where('created_at', '<', to);
  if (userId) q = q.where('user_id', '=', userId);
  return numeric(await q.groupBy('model').orderBy(sql`sum(cost_usd)`, 'desc').orderBy('model').execute());
}
