// The end of a run (api.md §26.1, §27.7, §27.8) in one statement: the terminal status with
// usage totals and credits, the events still buffered and the terminal event, the last model
// call's usage record, the assistant message, the thread's active run cleared (and its title
// set), and the run's pending jobs closed — all or nothing. Only a run that costs credits
// takes a transaction, for the ledger rows, or one whose account has webhook endpoints, for
// the deliveries of its end (written in that same transaction: the outbox of §20).
import { sql } from 'kysely';
import type { AppContext } from '../../app-context.js';
import { newId } from '../../lib/ids.js';
import { eventCtes, eventsOf, type NewEvent } from '../../engine/events.js';
import { closeRunJobsSql } from '../../engine/jobs.js';
import type { RunTx } from '../../engine/engine.js';
import { changeCredits } from '../credits/store.js';
import { assistantMessageInsertSql } from '../messages/store.js';
import { releaseThreadAfterRunSql } from '../threads/store.js';
import { creditPolicy, creditsFor, type CreditPolicy } from './credit-policy.js';
import { shapeMessage } from '../messages/routes.js';
import { messageById } from '../messages/store.js';
import { enqueueWebhookEvents, webhookSubscribers, type SubscribedEndpoint, type WebhookEvent, type WebhookEventType } from '../webhooks/outbox.js';
import { runById, shapeRunDetail } from './store.js';
import { addUsage, runUsageTotals, usageInsertSql, type UsageRecord, type UsageTotals } from '../usage/store.js';

export { creditPolicy, type CreditPolicy };

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
  /** Events to append before the terminal one (what the worker still had buffered). */
  events?: NewEvent[];
  /** Model calls not recorded yet: their usage records are written whatever happened to the run. */
  usage?: UsageRecord[];
  /** The totals of the run's usage records already written (read when absent). */
  priorTotals?: UsageTotals;
  /** Read beforehand by callers that finish inside their own transaction (see creditPolicy). */
  creditPolicy?: CreditPolicy;
  /** Likewise the account's webhook endpoints for the end of a run (runEndSubscribers). */
  webhookEndpoints?: readonly SubscribedEndpoint[];
}

const RUN_END_TYPES: readonly WebhookEventType[] = ['run.completed', 'run.failed', 'run.cancelled', 'message.created'];

/** The account's webhook endpoints that hear about the end of a run (read before a transaction). */
export function runEndSubscribers(ctx: AppContext, orgId: string): Promise<SubscribedEndpoint[]> {
  return webhookSubscribers(ctx, orgId, RUN_END_TYPES);
}

/** The webhook events of a run's end, read inside its terminal transaction (§20.1). */
async function enqueueRunEndWebhooks(ctx: AppContext, t: RunTx, f: FinishInput, type: WebhookEventType, messageId: string | null, endpoints: readonly SubscribedEndpoint[]) {
  const run = await runById(t.db, f.runId);
  const events: WebhookEvent[] = [];
  if (messageId) {
    const message = await messageById(t.db, messageId);
    if (message) events.push({ type: 'message.created', data: shapeMessage(message) });
  }
  if (run) events.push({ type, data: shapeRunDetail(run) });
  await enqueueWebhookEvents(ctx, t, f.orgId, endpoints, events);
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

/**
 * Finishes a run unless it already ended; returns false when another writer finished it
 * first. With `tx`, inside that transaction (then pass `f.creditPolicy`, read before it).
 */
export async function finishRun(ctx: AppContext, f: FinishInput, tx?: RunTx): Promise<boolean> {
  const creditRules = f.creditPolicy ?? (await creditPolicy(ctx));
  const endpoints = f.webhookEndpoints ?? (tx ? [] : await runEndSubscribers(ctx, f.orgId));
  const usage = f.usage ?? [];
  const totals = addUsage(f.priorTotals ?? (await runUsageTotals(tx?.db ?? ctx.db, f.runId)), usage);
  const credits = creditsFor(creditRules, totals.inputTokens + totals.outputTokens, totals.weightedCostUsd);
  const now = new Date();
  const messageId = f.text.length > 0 ? newId() : null;
  const o = f.outcome;
  const terminal: NewEvent =
    o.status === 'completed'
      ? {
          type: 'run.completed',
          data: {
            message_id: messageId,
            usage: {
              input_tokens: totals.inputTokens,
              output_tokens: totals.outputTokens,
              cache_read_tokens: totals.cacheReadTokens,
              cache_write_tokens: totals.cacheWriteTokens,
            },
            total_cost_usd: totals.costUsd,
            credits_used: credits,
            duration_ms: now.getTime() - f.createdAt.getTime(),
          },
        }
      : o.status === 'failed'
        ? { type: 'run.failed', data: { error_class: o.errorClass, message: o.message, retryable: o.retryable, details: o.details ?? {}, message_id: messageId } }
        : { type: 'run.cancelled', data: { reason: o.reason, cancelled_by_user_id: o.cancelledBy, message_id: messageId } };
  const events = [...(f.events ?? []), terminal];
  const ev = eventCtes(f.runId, 'r', events, ctx.engine.viaNotify);
  const lastCall = usage.at(-1);
  const statement = sql<{ finished: number; thread_title: string | null; ev_rows: unknown }>`
    WITH r AS (
      UPDATE runs SET status = ${o.status}, last_seq = last_seq + ${events.length}, updated_at = now(),
             model = ${f.model}, provider_kind = coalesce(${lastCall?.providerKind ?? null}, provider_kind),
             credential_name = coalesce(${lastCall?.providerName ?? null}, credential_name),
             total_input_tokens = ${totals.inputTokens}, total_output_tokens = ${totals.outputTokens},
             total_cache_read_tokens = ${totals.cacheReadTokens}, total_cache_write_tokens = ${totals.cacheWriteTokens},
             total_cost_usd = ${totals.costUsd}, credits_used = ${credits}, running_since = NULL, waiting_since = NULL,
             completed_at = ${o.status === 'completed' ? now : null}, failed_at = ${o.status === 'failed' ? now : null},
             cancelled_at = ${o.status === 'cancelled' ? now : null},
             error_class = ${o.status === 'failed' ? o.errorClass : null}, error_message = ${o.status === 'failed' ? o.message.slice(0, 2000) : null}
       WHERE id = ${f.runId} AND status IN ('running', 'waiting_for_input')
      RETURNING last_seq, thread_id
    ),
    ${usage.length ? sql`usage AS (${usageInsertSql(usage)}),` : sql``}
    ${messageId ? sql`msg AS (${assistantMessageInsertSql({ id: messageId, orgId: f.orgId, threadId: f.threadId, content: f.text, runId: f.runId }, 'r')}),` : sql``}
    th AS (${releaseThreadAfterRunSql(f.runId, 'r')}),
    closed AS (${closeRunJobsSql(f.runId)}),
    ${ev.ctes}
    SELECT (SELECT count(*)::int FROM r) AS finished, (SELECT title FROM th) AS thread_title, ${ev.columns}`;
  // The run's concurrent-run slot (slots.ts), given back once its end is committed.
  const release = () => ctx.runSlots?.release(f.orgId, f.runId);
  const inTx = async (t: RunTx) => {
    const row = (await statement.execute(t.db)).rows[0];
    t.wrote(eventsOf(row), 0);
    if (row.finished === 0) return false;
    t.afterCommit(release);
    if (credits > 0) {
      await changeCredits(t.db, { orgId: f.orgId, amount: -credits, referenceType: 'run_usage', referenceId: f.runId, threadTitle: row.thread_title });
    }
    if (endpoints.length) await enqueueRunEndWebhooks(ctx, t, f, terminal.type as WebhookEventType, messageId, endpoints);
    return true;
  };
  if (tx) return inTx(tx);
  if (credits > 0 || endpoints.length) return ctx.engine.transaction(ctx.db, inTx);
  const row = (await statement.execute(ctx.db)).rows[0];
  ctx.engine.wrote(eventsOf(row), 0);
  if (row.finished > 0) release();
  return row.finished > 0;
}
