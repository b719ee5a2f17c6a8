// Cancelling a run (api.md §8.5, §26.1): the first request appends `run.cancel_requested`;
// a run no live worker holds is cancelled right here (the API's side of "within 2 s whether
// or not a worker holds it"), a held one by its worker, which sees the event at once.
import type { AppContext } from '../../http/context.js';
import { AppError } from '../../http/errors.js';
import { closeRunJobs, runJobHeld } from '../../engine/jobs.js';
import { recordAudit, type AuditOrigin } from '../audit/store.js';
import { setThreadActiveRun } from '../threads/store.js';

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
  return ctx.engine.transaction(ctx.db, async (tx) => {
    const row = await tx.db.selectFrom('runs').select(['status', 'cancel_requested']).where('id', '=', c.runId).forUpdate().executeTakeFirst();
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
      await finishCancelHere(tx, c.runId, c.threadId, c.reason, c.userId);
    }
    return true;
  });
}

/** Writes the cancel's end for a run no worker holds (also used by the reaper). */
export async function finishCancelHere(
  tx: Parameters<Parameters<AppContext['engine']['transaction']>[1]>[0],
  runId: string,
  threadId: string,
  reason: string,
  userId: string | null,
): Promise<void> {
  await tx.append(runId, 'run.cancelled', { reason, cancelled_by_user_id: userId, message_id: null });
  await tx.db
    .updateTable('runs')
    .set({ status: 'cancelled', cancelled_at: new Date(), running_since: null, waiting_since: null })
    .where('id', '=', runId)
    .execute();
  await setThreadActiveRun(tx.db, threadId, null, runId);
  await closeRunJobs(tx.db, runId);
}

export function invalidState(status: string): AppError {
  return new AppError('runs.invalid_state', `the run is ${status}`, { status });
}
