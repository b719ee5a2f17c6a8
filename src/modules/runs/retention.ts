// Run event retention (api.md §29 ARKLOOP_RUN_EVENTS_RETENTION_MONTHS): the events of runs that
// ended (completed, failed, cancelled) more than N months ago on the app clock are deleted, in
// batches, by a periodic worker task; 0 keeps them forever. (Runs record their end on the
// system clock; the app clock is the system clock outside tests.)
//
// What a purged run answers: the run row stays (status, usage, credits, last_seq), only its
// event log goes. GET /v1/runs/{id}/events therefore still answers 200: JSON gives `data: []`
// with the run's `last_seq` and terminal `status` (a reader sees that events 1..last_seq are no
// longer kept), and the SSE form sends nothing and ends at once, as for any terminal run whose
// events a client has already read. Answering 404 would wrongly say the run does not exist.
import { sql } from 'kysely';
import type { Logger } from 'pino';
import type { AppContext } from '../../app-context.js';

const PURGE_INTERVAL_MS = 60 * 60_000;
const BATCH = 5_000;

/** The instant before which a terminal run's events may go: `months` calendar months back (UTC). */
export function retentionCutoff(now: Date, months: number): Date {
  const d = new Date(now.getTime());
  d.setUTCMonth(d.getUTCMonth() - months);
  return d;
}

/** Deletes expired events in batches of BATCH rows; returns how many went. */
export async function purgeRunEvents(ctx: AppContext, batch = BATCH): Promise<number> {
  const months = ctx.config.runEventsRetentionMonths;
  if (months <= 0) return 0;
  const cutoff = retentionCutoff(ctx.clock.now(), months);
  let total = 0;
  for (;;) {
    // SKIP LOCKED: several workers may purge at once without waiting on (or deadlocking over) each other's rows.
    const res = await sql`
      DELETE FROM run_events WHERE (run_id, seq) IN (
        SELECT e.run_id, e.seq FROM run_events e JOIN runs r ON r.id = e.run_id
        WHERE r.status IN ('completed', 'failed', 'cancelled')
          AND coalesce(r.completed_at, r.failed_at, r.cancelled_at) < ${cutoff}
        LIMIT ${batch} FOR UPDATE OF e SKIP LOCKED)`.execute(ctx.db);
    const n = Number(res.numAffectedRows ?? 0);
    total += n;
    if (n < batch) return total;
  }
}

/** Purges at start and then hourly; returns the stop function. */
export function scheduleRunEventsPurge(ctx: AppContext, log: Logger): () => void {
  const tick = () => void purgeRunEvents(ctx)
    .then((n) => { if (n > 0) log.info({ deleted: n }, 'run events past retention purged'); })
    .catch((err: Error) => log.warn({ err: err.message }, 'run events purge failed'));
  tick();
  const timer = setInterval(tick, PURGE_INTERVAL_MS);
  timer.unref();
  return () => clearInterval(timer);
}
