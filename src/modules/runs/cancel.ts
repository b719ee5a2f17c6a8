// Cancelling a run (api.md §8.5, §26.1): the first request appends `run.cancel_requested`;
// a run no live worker holds is cancelled right here (the API's side of "within 2 s whether
// or not a worker holds it"), a held one by its worker, which sees the event at once.
import type { AppContext } from '../../app-context.js';
import { AppError } from '../../http/errors.js';
import { runJobHeld } from '../../engine/jobs.js';
import type { RunTx } from '../../engine/engine.js';
import { creditPolicy, finishRun, runEndSubscribers, streamedText, type CreditPolicy } from './finish.js';
import type { SubscribedEndpoint } from '../webhooks/outbox.js';
import { recordAudit, type AuditOrigin } from '../audit/store.js';

const TERMINAL = new Set(['completed', 'failed', 'cancelled']);

export interface CancelRequest {
  runId: string;
  threadId: string;
  orgId: string;
  userId: string;
  reason: 'user' | 'thread_deleted';
  origin: AuditOrigin;
}

/** Returns false when the run had already ended (callers answer 409 or ignore it). */
export async function requestRunCancel(ctx: AppContext, c: CancelRequest): Promise<boolean> {
  const rules = await creditPolicy(ctx); // never read inside the transaction (see creditPolicy)
  const endpoints = await runEndSubscribers(ctx, c.orgId); // likewise
  return ctx.engine.transaction(ctx.db, async (tx) => {
    const row = await tx.db
      .selectFrom('runs')
      .select(['status', 'cancel_requested', 'created_by_user_id', 'created_at', 'model'])
      .where('id', '=', c.runId)
      .forUpdate()
      .executeTakeFirst();
    if (!row || TERMINAL.has(row.status)) return false;
    if (row.cancel_requested) return true;
    await tx.db.updateTable('runs').set({ cancel_requested: true, cancel_reason: c.reason, cancel_requested_by: c.userId }).where('id', '=', c.runId).execute();
    await tx.append(c.runId, 'run.cancel_requested', { requested_by_user_id: c.userId, reason: c.reason });
    await recordAudit(tx.db, c.origin, {
      orgId: c.orgId,
      actorUserId: c.userId,
      action: 'run.cancel',
      targetType: 'run',
      targetId: c.runId,
      metadata: { reason: c.reason },
    });
    if (!(await runJobHeld(tx.db, c.runId))) {
      const run = { id: c.runId, orgId: c.orgId, threadId: c.threadId, creatorId: row.created_by_user_id, createdAt: row.created_at, model: row.model };
      await finishCancelHere(ctx, tx, run, c.reason, c.userId, rules, endpoints);
    }
    return true;
  });
}

/**
 * Ends, inside `tx`, a cancelled run no worker holds (also used by the reaper): the text it
 * streamed before is kept as its message (§27.8), like any other end of a run.
 */
export async function finishCancelHere(
  ctx: AppContext,
  tx: RunTx,
  run: { id: string; orgId: string; threadId: string; creatorId: string; createdAt: Date; model: string | null },
  reason: string,
  userId: string | null,
  rules: CreditPolicy,
  webhookEndpoints: readonly SubscribedEndpoint[],
): Promise<void> {
  await finishRun(
    ctx,
    {
      runId: run.id,
      orgId: run.orgId,
      threadId: run.threadId,
      userId: run.creatorId,
      createdAt: run.createdAt,
      text: await streamedText(tx.db, run.id),
      model: run.model,
      outcome: { status: 'cancelled', reason, cancelledBy: userId },
      creditPolicy: rules,
      webhookEndpoints,
    },
    tx,
  );
}

export function invalidState(status: string): AppError {
  return new AppError('runs.invalid_state', `the run is ${status}`, { status });
}
