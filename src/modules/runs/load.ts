// What a worker reads to execute a run, in one statement: the run with its creator's role,
// the account's credit balance (and month tokens under a quota), the conversation the run
// starts from and the usage of its earlier jobs. The run's own events are read only when it
// has more than its `run.started` (a resume, or a run taken over from a lost worker).
import { sql } from 'kysely';
import type { AppContext } from '../../app-context.js';
import { listRunEvents, type RunEvent } from '../../engine/events.js';
import type { LlmMessage } from '../../llm/index.js';
import { creditBalanceSql } from '../credits/store.js';
import { conversationBeforeRunSql } from '../messages/store.js';
import type { NewRun } from './store.js';
import { NO_USAGE, monthTokensSql, runUsageTotalsSql, usageTotalsOf, type UsageTotals } from '../usage/store.js';

export const MAX_HISTORY = 200;

export interface RunRecord {
  id: string;
  org_id: string;
  thread_id: string;
  created_by_user_id: string;
  status: string;
  persona_id: string | null;
  route_id: string | null;
  requested_model: string | null;
  cancel_requested: boolean;
  cancel_reason: string | null;
  cancel_requested_by: string | null;
  output_emitted: boolean;
  created_at: Date;
  last_seq: number;
  role: 'owner' | 'admin' | 'member' | null;
}

export interface LoadedRun {
  run: RunRecord;
  events: RunEvent[];
  balance: number;
  /** Input + output tokens of the account this month; null when no quota applies. */
  monthTokens: number | null;
  history: LlmMessage[];
  priorTotals: UsageTotals;
}

export async function loadRun(ctx: AppContext, runId: string, opts: { monthTokens: boolean }): Promise<LoadedRun | null> {
  const res = await sql<RunRecord & { balance: number; month_tokens: number | null; history: Array<{ role: string; content: string }>; totals: unknown }>`
    SELECT r.id, r.org_id, r.thread_id, r.created_by_user_id, r.status, r.persona_id, r.route_id, r.requested_model,
           r.cancel_requested, r.cancel_reason, r.cancel_requested_by, r.output_emitted, r.created_at, r.last_seq, m.role,
           ${creditBalanceSql(sql`r.org_id`)} AS balance,
           ${opts.monthTokens ? monthTokensSql(sql`r.org_id`) : sql`NULL::bigint`} AS month_tokens,
           ${conversationBeforeRunSql(sql`r.thread_id`, sql`r.created_at`, sql`r.id`, MAX_HISTORY)} AS history,
           ${runUsageTotalsSql(sql`r.id`)} AS totals
      FROM runs r LEFT JOIN account_memberships m ON m.account_id = r.org_id AND m.user_id = r.created_by_user_id
     WHERE r.id = ${runId}`.execute(ctx.db);
  const row = res.rows[0];
  if (!row) return null;
  const { balance, month_tokens, history, totals, ...run } = row;
  return {
    run,
    events: run.last_seq > 1 ? await listRunEvents(ctx.db, runId, 0, 100_000) : [],
    balance: Number(balance),
    monthTokens: month_tokens === null ? null : Number(month_tokens),
    history: history.map((h) => ({ role: h.role, content: h.content }) as LlmMessage),
    priorTotals: usageTotalsOf(totals),
  };
}

/** What loadRun would read for a run that was just created (its creator read it; local dispatch). */
export function newRunPreload(
  r: Omit<NewRun, 'traceId'> & { createdAt: Date; role: RunRecord['role']; balance: number; history: Array<{ role: string; content: string }> },
): LoadedRun {
  return {
    run: {
      id: r.id,
      org_id: r.orgId,
      thread_id: r.threadId,
      created_by_user_id: r.userId,
      status: 'running',
      persona_id: r.personaId,
      route_id: r.routeId,
      requested_model: r.requestedModel,
      cancel_requested: false,
      cancel_reason: null,
      cancel_requested_by: null,
      output_emitted: false,
      created_at: r.createdAt,
      last_seq: 1,
      role: r.role,
    },
    events: [],
    balance: r.balance,
    monthTokens: null,
    history: r.history.map((h) => ({ role: h.role, content: h.content }) as LlmMessage),
    priorTotals: NO_USAGE,
  };
}
