// The two ends of a pause for input (§26.1, §27.8, §27.5a): the statement that pauses a run
// (for an answer or a tool approval), and on resume, the answer to an ask_user call delivered
// as that call's tool.result.
import { sql } from 'kysely';
import type { AppContext } from '../app-context.js';
import { eventCtes, eventsOf, type NewEvent, type RunEvent } from '../engine/events.js';
import { usageInsertSql, type UsageRecord } from '../modules/usage/store.js';
import type { AwaitedInput } from '../db/schema.js';
import { ASK_USER_TOOL_NAME, askUserResult } from '../tools/builtins.js';
import { runById, shapeRunDetail } from '../modules/runs/store.js';
import { enqueueWebhookEvents, webhookSubscribers } from '../modules/webhooks/outbox.js';

/**
 * On resume after an ask_user pause: the input becomes that call's `tool.result {answer}`
 * (§27.8). Returns true when it appended one.
 */
export async function deliverAskUserAnswer(ctx: AppContext, runId: string, events: RunEvent[]): Promise<boolean> {
  let pending: { id: string; name: string } | null = null;
  let answer: string | null = null;
  const answered = new Set(events.filter((e) => e.type === 'tool.result' || e.type === 'tool.denied').map((e) => String(e.data.tool_call_id)));
  for (const e of events) {
    if (e.type === 'run.waiting_for_input' && e.data.kind === 'tool_approval') {
      pending = null; // an approval is not an ask_user answer (§27.5a)
    } else if (e.type === 'run.waiting_for_input' && e.data.tool_call_id != null && !answered.has(String(e.data.tool_call_id))) {
      pending = { id: String(e.data.tool_call_id), name: ASK_USER_TOOL_NAME };
      answer = null;
    } else if (e.type === 'run.input_provided' && pending) {
      answer = String(e.data.content ?? '');
    }
  }
  if (!pending || answer === null) return false;
  await ctx.engine.append(ctx.db, runId, 'tool.result', { tool_call_id: pending.id, tool_name: pending.name, result: askUserResult(answer), error: null, duration_ms: 0 });
  return true;
}

/** What the run waits for: an answer (ask_user, the stub's ask_input) or an approval (§27.5a). */
export type Wait =
  | { kind: 'input'; prompt: string; toolCallId: string | null }
  | { kind: 'tool_approval'; prompt: string; toolCallId: string; toolName: string; arguments: Record<string, unknown>; argumentsSha256: string };

function waitingEvent(w: Wait): NewEvent {
  return {
    type: 'run.waiting_for_input',
    data:
      w.kind === 'input'
        ? { kind: 'input', prompt: w.prompt, tool_call_id: w.toolCallId }
        : { kind: 'tool_approval', prompt: w.prompt, tool_call_id: w.toolCallId, tool_name: w.toolName, arguments: w.arguments, arguments_sha256: w.argumentsSha256 },
  };
}

function awaited(w: Wait): AwaitedInput {
  return w.kind === 'input' ? { kind: 'input' } : { kind: 'tool_approval', tool_call_id: w.toolCallId, arguments_sha256: w.argumentsSha256 };
}

/**
 * Pauses the run until `POST /v1/runs/{id}/input` (§26.1) in one statement: what is still
 * buffered, `run.waiting_for_input`, the status and what is awaited, and the usage of the turn
 * that asked (written whatever happened to the run). The job ends; a new one resumes. False
 * when the run is no longer running or a cancel is pending (then the caller ends it as cancelled).
 */
export async function pauseForInput(ctx: AppContext, run: { id: string; orgId: string }, wait: Wait, pending: NewEvent[] = [], usage: UsageRecord[] = []): Promise<boolean> {
  const runId = run.id;
  const events = [...pending, waitingEvent(wait)];
  const ev = eventCtes(runId, 's', events, ctx.engine.viaNotify);
  const last = usage.at(-1);
  const statement = sql<{ ev_rows: unknown }>`
    WITH s AS (
      UPDATE runs SET status = 'waiting_for_input', waiting_since = now(), running_since = NULL, updated_at = now(),
             awaiting_input = ${JSON.stringify(awaited(wait))},
             running_ms = running_ms + coalesce((extract(epoch FROM now() - running_since) * 1000)::bigint, 0),
             last_seq = last_seq + ${events.length},
             output_emitted = output_emitted OR ${pending.some((e) => e.type === 'message.delta')}
             ${last ? sql`, model = ${last.model}, provider_kind = ${last.providerKind}, credential_name = ${last.providerName}` : sql``}
       WHERE id = ${runId} AND status = 'running' AND NOT cancel_requested
      RETURNING last_seq
    ),
    ${usage.length ? sql`usage AS (${usageInsertSql(usage)}),` : sql``}
    ${ev.ctes}
    SELECT ${ev.columns}`;
  // With webhook endpoints, `run.waiting_for_input` is delivered from the same transaction (§20.1).
  const endpoints = await webhookSubscribers(ctx, run.orgId, ['run.waiting_for_input']);
  if (endpoints.length) {
    return ctx.engine.transaction(ctx.db, async (tx) => {
      const written = eventsOf((await statement.execute(tx.db)).rows[0]);
      tx.wrote(written, 0);
      if (written.length === 0) return false;
      const detail = await runById(tx.db, runId);
      if (detail) await enqueueWebhookEvents(ctx, tx, run.orgId, endpoints, [{ type: 'run.waiting_for_input', data: shapeRunDetail(detail) }]);
      return true;
    });
  }
  const written = eventsOf((await statement.execute(ctx.db)).rows[0]);
  ctx.engine.wrote(written, 0);
  return written.length > 0;
}
