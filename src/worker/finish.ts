// The terminal transaction of a run (api.md §26.1, §27.7, §27.8): assistant message, usage
// totals, credit deduction, status and timestamps, the terminal event, and the thread's
// active run cleared — all or nothing.
import { sql } from 'kysely';
import type { AppContext } from '../http/context.js';
import { newId } from '../lib/ids.js';
import { changeCredits } from '../modules/credits/store.js';
import { setThreadActiveRun } from '../modules/threads/store.js';
import { closeRunJobs } from '../engine/jobs.js';

export interface RunTotals {
  inputTokens: number;
  outputTokens: number;
  cacheReadTokens: number;
  cacheWriteTokens: number;
  costUsd: number;
  /** Σ(call cost × model multiplier), for credits. */
  weightedCostUsd: number;
}

export type Outcome =
  | { status: 'completed' }
  | { status: 'failed'; errorClass: string; message: string; retryable: boolean; details?: Record<string, unknown> }
  | { status: 'cancelled'; reason: string; cancelledBy: string | null };

export interface FinishInput {
  runId: string;
  orgId: string;
  threadId: string;
  userId: string;
  createdAt: Date;
  text: string;
  model: string | null;
  outcome: Outcome;
}

/** The run's totals over its usage records (every job of the run, resumes included). */
async function runTotals(db: AppContext['db'], runId: string): Promise<RunTotals> {
  const res = await sql<{ i: number; o: number; cr: number; cw: number; c: number }>`
    SELECT coalesce(sum(input_tokens), 0)::bigint AS i, coalesce(sum(output_tokens), 0)::bigint AS o,
           coalesce(sum(cache_read_tokens), 0)::bigint AS cr, coalesce(sum(cache_write_tokens), 0)::bigint AS cw,
           coalesce(sum(cost_usd), 0)::numeric AS c
      FROM usage_records WHERE run_id = ${runId}`.execute(db);
  const r = res.rows[0];
  const cost = Number(r.c);
  // Model multipliers come with configured models (LLM providers); until then they are 1.
  return { inputTokens: Number(r.i), outputTokens: Number(r.o), cacheReadTokens: Number(r.cr), cacheWriteTokens: Number(r.cw), costUsd: cost, weightedCostUsd: cost };
}

/** The assistant text a run streamed so far (from its events), for finishers other than its worker. */
export async function streamedText(db: AppContext['db'], runId: string): Promise<string> {
  const res = await sql<{ t: string | null }>`
    SELECT string_agg(data->>'content_delta', '' ORDER BY seq) AS t FROM run_events
     WHERE run_id = ${runId} AND type = 'message.delta' AND (data->>'channel') IS NULL`.execute(db);
  return res.rows[0]?.t ?? '';
}

const RETRYABLE = /^(provider\.(rate_limited|unavailable|timeout|stream_interrupted)|internal\.|run\.timeout$)/;

export function isRetryableClass(errorClass: string): boolean {
  return RETRYABLE.test(errorClass);
}

interface DeductionTier {
  up_to_tokens?: number;
  multiplier: number;
}

interface CreditPolicy {
  policy: { tiers?: DeductionTier[] };
  perUsd: number;
}

/**
 * Read before the terminal transaction, never inside it: settings go through ctx.db, and on
 * the embedded engine (one connection) a query outside the open transaction waits for it to
 * end — a deadlock whenever the settings cache is cold.
 */
async function creditPolicy(ctx: AppContext): Promise<CreditPolicy> {
  const policy = (await ctx.settings.get<{ tiers?: DeductionTier[] }>('credit.deduction_policy')) ?? {};
  const perUsd = await ctx.settings.int('credit.per_usd');
  return { policy, perUsd };
}

function creditsFor({ policy, perUsd }: CreditPolicy, totals: RunTotals): number {
  const tokens = totals.inputTokens + totals.outputTokens;
  const tier = (policy.tiers ?? []).find((t) => t.up_to_tokens === undefined || t.up_to_tokens >= tokens);
  const m = tier ? tier.multiplier : 1;
  return Math.ceil(totals.weightedCostUsd * perUsd * m);
}

/** Finishes a run unless it already ended; returns false when another writer finished it first. */
export async function finishRun(ctx: AppContext, f: FinishInput): Promise<boolean> {
  const creditRules = await creditPolicy(ctx);
  return ctx.engine.transaction(ctx.db, async (tx) => {
    const run = await tx.db.selectFrom('runs').select(['status']).where('id', '=', f.runId).forUpdate().executeTakeFirst();
    if (!run || ['completed', 'failed', 'cancelled'].includes(run.status)) return false;
    const totals = await runTotals(tx.db, f.runId);
    const credits = creditsFor(creditRules, totals);
    const now = new Date();
    let messageId: string | null = null;
    if (f.text.length > 0) {
      messageId = newId();
      await tx.db
        .insertInto('messages')
        .values({ id: messageId, org_id: f.orgId, thread_id: f.threadId, created_by_user_id: null, role: 'assistant', content: f.text, run_id: f.runId })
        .execute();
    }
    // A thread without a title gets the first line of its first user message (§27.8).
    await sql`
      UPDATE threads t SET title = left(regexp_replace(split_part(m.content, E'\\n', 1), '\\s+', ' ', 'g'), 60), updated_at = now()
        FROM (SELECT content FROM messages WHERE thread_id = ${f.threadId} AND role = 'user' ORDER BY created_at, id LIMIT 1) m
       WHERE t.id = ${f.threadId} AND t.title IS NULL AND btrim(m.content) <> ''`.execute(tx.db);
    if (credits > 0) {
      const title = await tx.db.selectFrom('threads').select('title').where('id', '=', f.threadId).executeTakeFirst();
      await changeCredits(tx.db, { orgId: f.orgId, amount: -credits, referenceType: 'run_usage', referenceId: f.runId, threadTitle: title?.title ?? null });
    }
    const o = f.outcome;
    const usage = {
      input_tokens: totals.inputTokens,
      output_tokens: totals.outputTokens,
      cache_read_tokens: totals.cacheReadTokens,
      cache_write_tokens: totals.cacheWriteTokens,
    };
    if (o.status === 'completed') {
      await tx.append(f.runId, 'run.completed', {
        message_id: messageId,
        usage,
        total_cost_usd: totals.costUsd,
        credits_used: credits,
        duration_ms: now.getTime() - f.createdAt.getTime(),
      });
    } else if (o.status === 'failed') {
      await tx.append(f.runId, 'run.failed', {
        error_class: o.errorClass,
        message: o.message,
        retryable: o.retryable,
        details: o.details ?? {},
        message_id: messageId,
      });
    } else {
      await tx.append(f.runId, 'run.cancelled', { reason: o.reason, cancelled_by_user_id: o.cancelledBy, message_id: messageId });
    }
    // The terminal event first: appends are refused once the status is terminal.
    await tx.db
      .updateTable('runs')
      .set({
        status: o.status,
        model: f.model,
        total_input_tokens: totals.inputTokens,
        total_output_tokens: totals.outputTokens,
        total_cache_read_tokens: totals.cacheReadTokens,
        total_cache_write_tokens: totals.cacheWriteTokens,
        total_cost_usd: totals.costUsd,
        credits_used: credits,
        running_since: null,
        waiting_since: null,
        ...(o.status === 'completed' ? { completed_at: now } : {}),
        ...(o.status === 'failed' ? { failed_at: now, error_class: o.errorClass, error_message: o.message.slice(0, 2000) } : {}),
        ...(o.status === 'cancelled' ? { cancelled_at: now } : {}),
      })
      .where('id', '=', f.runId)
      .execute();
    await setThreadActiveRun(tx.db, f.threadId, null, f.runId);
    await closeRunJobs(tx.db, f.runId);
    return true;
  });
}
