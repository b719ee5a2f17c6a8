// Usage records: one per model call (api.md §27.7), read by the usage endpoints.
import { sql, type Kysely, type RawBuilder } from 'kysely';
import type { DB } from '../../db/schema.js';
import { newId } from '../../lib/ids.js';

export interface UsageRecord {
  orgId: string;
  userId: string;
  runId: string;
  threadId: string;
  providerName: string;
  providerKind: string;
  model: string;
  inputTokens: number;
  outputTokens: number;
  cacheReadTokens: number;
  cacheWriteTokens: number;
  costUsd: number;
  /** The model's multiplier (§12.6); 1 for environment, ad hoc and stub routes. */
  multiplier?: number;
}

/** An INSERT of usage records (at least one). */
export function usageInsertSql(records: UsageRecord[]): RawBuilder<unknown> {
  const rows = records.map(
    (u) => sql`(${newId()}::uuid, ${u.orgId}::uuid, ${u.userId}::uuid, ${u.runId}::uuid, ${u.threadId}::uuid, ${u.providerName}, ${u.providerKind}, ${u.model},
              ${u.inputTokens}::bigint, ${u.outputTokens}::bigint, ${u.cacheReadTokens}::bigint, ${u.cacheWriteTokens}::bigint, ${u.costUsd}::numeric, ${u.multiplier ?? 1}::float8)`,
  );
  return sql`INSERT INTO usage_records (id, org_id, user_id, run_id, thread_id, provider_name, provider_kind, model,
                                 input_tokens, output_tokens, cache_read_tokens, cache_write_tokens, cost_usd, multiplier)
      VALUES ${sql.join(rows)}`;
}

/**
 * Records one model call: its usage record, and the run's last-call model (RunListItem
 * `model`), in one statement — the worker writes this once per model turn that does not
 * end the run (the last one rides with the terminal statement).
 */
export async function recordModelCall(db: Kysely<DB>, u: UsageRecord): Promise<void> {
  await sql`
    WITH usage AS (${usageInsertSql([u])})
    UPDATE runs SET model = ${u.model}, provider_kind = ${u.providerKind}, credential_name = ${u.providerName} WHERE id = ${u.runId}`.execute(db);
}

export interface UsageTotals {
  inputTokens: number;
  outputTokens: number;
  cacheReadTokens: number;
  cacheWriteTokens: number;
  costUsd: number;
  /** Σ(call cost × model multiplier): what credits are computed from (§27.7). */
  weightedCostUsd: number;
}

export const NO_USAGE: UsageTotals = Object.freeze({ inputTokens: 0, outputTokens: 0, cacheReadTokens: 0, cacheWriteTokens: 0, costUsd: 0, weightedCostUsd: 0 });

/** The sums over a run's usage records, as one json value (for composing into a read). */
export function runUsageTotalsSql(runId: RawBuilder<unknown>): RawBuilder<unknown> {
  return sql`(SELECT json_build_object('i', coalesce(sum(u.input_tokens), 0), 'o', coalesce(sum(u.output_tokens), 0),
      'cr', coalesce(sum(u.cache_read_tokens), 0), 'cw', coalesce(sum(u.cache_write_tokens), 0), 'c', coalesce(sum(u.cost_usd), 0), 'w', coalesce(sum(u.cost_usd * u.multiplier::numeric), 0))
      FROM usage_records u WHERE u.run_id = ${runId})`;
}

/** Parses a value of runUsageTotalsSql. */
export function usageTotalsOf(v: unknown): UsageTotals {
  const t = (v ?? {}) as Record<string, unknown>;
  return { inputTokens: Number(t.i ?? 0), outputTokens: Number(t.o ?? 0), cacheReadTokens: Number(t.cr ?? 0), cacheWriteTokens: Number(t.cw ?? 0), costUsd: Number(t.c ?? 0), weightedCostUsd: Number(t.w ?? 0) };
}

/** A run's usage totals over its records (every job of the run). */
export async function runUsageTotals(db: Kysely<DB>, runId: string): Promise<UsageTotals> {
  const res = await sql<{ t: unknown }>`SELECT ${runUsageTotalsSql(sql`${runId}::uuid`)} AS t`.execute(db);
  return usageTotalsOf(res.rows[0]?.t);
}

/** `a` plus the records' usage. */
export function addUsage(a: UsageTotals, records: UsageRecord[]): UsageTotals {
  const t = { ...a };
  for (const u of records) {
    t.inputTokens += u.inputTokens;
    t.outputTokens += u.outputTokens;
    t.cacheReadTokens += u.cacheReadTokens;
    t.cacheWriteTokens += u.cacheWriteTokens;
    t.costUsd += u.costUsd;
    t.weightedCostUsd += u.costUsd * (u.multiplier ?? 1);
  }
  // At the column's scale (numeric(20,10)), so float sums do not tip a credit ceiling.
  t.costUsd = Math.round(t.costUsd * 1e10) / 1e10;
  t.weightedCostUsd = Math.round(t.weightedCostUsd * 1e10) / 1e10;
  return t;
}

/** Input + output tokens of an account (`orgId`, an SQL expression) this UTC month (quota.tokens_per_month). */
/** Weighted USD cost (cost × model multiplier) of the usage records of the runs `runIds` selects. */
export function weightedCostOfRunsSql(runIds: RawBuilder<unknown>): RawBuilder<number> {
  return sql<number>`(SELECT coalesce(sum(u.cost_usd * u.multiplier::numeric), 0) FROM usage_records u WHERE u.run_id IN (${runIds}))`;
}

export function monthTokensSql(orgId: RawBuilder<unknown>): RawBuilder<number> {
  return sql<number>`(SELECT coalesce(sum(u.input_tokens + u.output_tokens), 0)::bigint FROM usage_records u
      WHERE u.org_id = ${orgId} AND u.created_at >= date_trunc('month', now() AT TIME ZONE 'UTC') AT TIME ZONE 'UTC')`;
}

export async function monthTokens(db: Kysely<DB>, orgId: string): Promise<number> {
  const res = await sql<{ n: number }>`SELECT ${monthTokensSql(sql`${orgId}::uuid`)} AS n`.execute(db);
  return Number(res.rows[0].n);
}

/** The usage records of one run, oldest first (api.md §21.6 `usage_records`). */
export async function runUsageRecords(db: Kysely<DB>, runId: string) {
  return db
    .selectFrom('usage_records')
    .select(['provider_name', 'provider_kind', 'model', 'input_tokens', 'output_tokens', 'cache_read_tokens', 'cache_write_tokens', 'cost_usd', 'created_at'])
    .where('run_id', '=', runId)
    .orderBy('created_at')
    .orderBy('id')
    .execute();
}
