// The `broadcast.fanout` job (api.md §19.4, §26.7): pending → sending, then one batch after
// another (each its own statement, see writeFanoutBatch) until nobody is left → sent. The
// position is saved with each batch, so a job taken over after a crash or a lost lease
// continues where the last committed batch ended. A job that exhausts its attempts marks the
// broadcast failed.
import type { Logger } from 'pino';
import type { AppContext } from '../../app-context.js';
import type { JobRow } from '../../engine/jobs.js';
import { findBroadcast, finishSending, startSending, writeFanoutBatch } from './broadcasts-store.js';

export interface FanoutOptions {
  batchSize: number;
  /** Called after each committed batch (tests use it to stop a job half-way). */
  afterBatch?: (covered: number) => void;
}

/** Runs a broadcast's fan-out to the end, or until `signal` aborts between two batches. */
export async function fanOutBroadcast(ctx: AppContext, broadcastId: string, signal: AbortSignal, opts: FanoutOptions): Promise<void> {
  if (!(await startSending(ctx.db, broadcastId))) return; // deleted or already finished
  const b = await findBroadcast(ctx.db, broadcastId);
  if (!b) return;
  let pos = { targetId: b.target_id, after: b.fanout_after };
  for (;;) {
    signal.throwIfAborted();
    const next = await writeFanoutBatch(ctx.db, broadcastId, pos, opts.batchSize);
    if (next === null) return; // deleted meanwhile (its notifications are withdrawn), or taken over
    opts.afterBatch?.(next.covered);
    if (next.covered < opts.batchSize || next.after === null) break;
    pos = { ...pos, after: next.after };
    // Embedded PGlite runs a statement on this thread: let waiting requests in between batches.
    await new Promise((resolve) => setImmediate(resolve));
  }
  await finishSending(ctx.db, broadcastId, 'sent');
}

/**
 * Users per batch: a few thousand on PostgreSQL (a batch is ~0.1 s of one connection); fewer on
 * embedded PGlite, whose statements block the process's event loop while they run.
 */
export function fanoutBatchSize(ctx: AppContext): number {
  return ctx.config.broadcastBatchSize ?? (ctx.database.kind === 'postgres' ? 5000 : 1000);
}

/** The worker's handler of `broadcast.fanout` jobs (payload `{v: 1, broadcast_id}`). */
export async function broadcastFanoutJob(ctx: AppContext, job: JobRow, signal: AbortSignal, log: Logger): Promise<void> {
  const broadcastId = (job.payload as { broadcast_id?: unknown }).broadcast_id;
  if (typeof broadcastId !== 'string') {
    log.error({ payload: job.payload }, 'broadcast.fanout job without broadcast_id; dropped');
    return;
  }
  try {
    await fanOutBroadcast(ctx, broadcastId, signal, { batchSize: fanoutBatchSize(ctx) });
  } catch (err) {
    // The last attempt: the broadcast will not be completed by anyone.
    if (!signal.aborted && job.attempts >= job.max_attempts) await finishSending(ctx.db, broadcastId, 'failed').catch(() => undefined);
    throw err;
  }
}
