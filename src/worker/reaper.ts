// Every worker checks every 10 s for runs nobody will finish (api.md §26.6): runs over the
// run timeout (time in `running`; waiting excluded), runs waiting for input too long,
// cancels of runs no worker holds, and active runs whose execution job is gone. Expired
// job leases need nothing here: the next lease query takes them over.
import { sql } from 'kysely';
import type { Logger } from 'pino';
import type { AppContext } from '../app-context.js';
import { finishCancelHere } from '../modules/runs/cancel.js';
import { creditPolicy, finishRun, isRetryableClass, runEndSubscribers, streamedText } from '../modules/runs/finish.js';

interface Stale {
  id: string;
  org_id: string;
  thread_id: string;
  created_by_user_id: string;
  created_at: Date;
  model: string | null;
  cancel_reason: string | null;
  cancel_requested_by: string | null;
  why: 'timeout' | 'input_timeout' | 'cancel' | 'orphaned';
}

// A worker is executing the run right now (a cancel must then be left to it).
const jobAlive = sql`EXISTS (SELECT 1 FROM jobs j WHERE j.type = 'run.execute' AND j.payload @> jsonb_build_object('run_id', r.id::text)
  AND (j.state = 'queued' OR (j.state = 'leased' AND j.lease_expires_at > now())))`;
// The run still has a job some worker will take (an expired lease is re-leased by the next
// worker, which decides between re-executing and internal.worker_lost, §26.6).
const jobPending = sql`EXISTS (SELECT 1 FROM jobs j WHERE j.type = 'run.execute' AND j.payload @> jsonb_build_object('run_id', r.id::text)
  AND j.state IN ('queued', 'leased'))`;

export async function reapRuns(ctx: AppContext, log: Logger): Promise<number> {
  const runMs = Math.round(ctx.config.runTimeoutMinutes * 60_000);
  const inputMs = Math.round(ctx.config.runInputTimeoutMinutes * 60_000);
  const res = await sql<Stale>`
    SELECT r.id, r.org_id, r.thread_id, r.created_by_user_id, r.created_at, r.model, r.cancel_reason, r.cancel_requested_by,
           CASE
             WHEN r.cancel_requested AND NOT (${jobAlive}) THEN 'cancel'
             WHEN r.status = 'running' AND r.running_ms + coalesce(extract(epoch FROM now() - r.running_since) * 1000, 0) > ${runMs} THEN 'timeout'
             WHEN r.status = 'waiting_for_input' AND r.waiting_since < now() - make_interval(secs => ${inputMs / 1000}) THEN 'input_timeout'
             WHEN r.status = 'running' AND NOT (${jobPending}) THEN 'orphaned'
           END AS why
      FROM runs r
     WHERE r.status IN ('running', 'waiting_for_input')
       AND (
         (r.cancel_requested AND NOT (${jobAlive}))
         OR (r.status = 'running' AND r.running_ms + coalesce(extract(epoch FROM now() - r.running_since) * 1000, 0) > ${runMs})
         OR (r.status = 'waiting_for_input' AND r.waiting_since < now() - make_interval(secs => ${inputMs / 1000}))
         OR (r.status = 'running' AND NOT (${jobPending}))
       )
     LIMIT 100`.execute(ctx.db);
  for (const r of res.rows) {
    try {
      if (r.why === 'cancel') {
        const rules = await creditPolicy(ctx);
        const endpoints = await runEndSubscribers(ctx, r.org_id);
        await ctx.engine.transaction(ctx.db, async (tx) => {
          const row = await tx.db.selectFrom('runs').select('status').where('id', '=', r.id).forUpdate().executeTakeFirst();
          if (row && (row.status === 'running' || row.status === 'waiting_for_input')) {
            const run = { id: r.id, orgId: r.org_id, threadId: r.thread_id, creatorId: r.created_by_user_id, createdAt: r.created_at, model: r.model };
            await finishCancelHere(ctx, tx, run, r.cancel_reason ?? 'user', r.cancel_requested_by, rules, endpoints);
          }
        });
        continue;
      }
      const errorClass = r.why === 'timeout' ? 'run.timeout' : r.why === 'input_timeout' ? 'run.input_timeout' : 'internal.error';
      const message =
        r.why === 'timeout' ? 'the run exceeded its time limit' : r.why === 'input_timeout' ? 'no input arrived in time' : 'the run lost its execution job';
      await finishRun(ctx, {
        runId: r.id,
        orgId: r.org_id,
        threadId: r.thread_id,
        userId: r.created_by_user_id,
        createdAt: r.created_at,
        text: await streamedText(ctx.db, r.id),
        model: r.model,
        outcome: { status: 'failed', errorClass, message, retryable: isRetryableClass(errorClass) },
      });
    } catch (err) {
      log.warn({ err: (err as Error).message, run_id: r.id }, 'reaping a run failed');
    }
  }
  return res.rows.length;
}
