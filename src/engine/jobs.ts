// The job queue is a table (api.md §26.7): jobs are enqueued in the caller's transaction,
// leased with FOR UPDATE SKIP LOCKED and a lease expiry renewed by heartbeats, retried with
// exponential backoff stored as data. Workers are woken by NOTIFY (PostgreSQL) or an
// in-process signal, with polling as a backstop.
import { sql, type Kysely, type RawBuilder, type Selectable } from 'kysely';
import type { DB, JobsTable } from '../db/schema.js';
import { newId } from '../lib/ids.js';

export const JOBS_CHANNEL = 'arkloop_jobs';

export type JobRow = Selectable<JobsTable>;

export interface NewJob {
  type: string;
  payload: Record<string, unknown>;
  runAt?: Date;
  maxAttempts?: number;
}

/** A job written already leased to a worker of this process (local dispatch, see Engine). */
export interface LocalLease {
  workerId: string;
  leaseSeconds: number;
}

/**
 * The CTEs that insert a job, for composing into a larger statement: one row per row of
 * `source` (a CTE name; null = exactly one job). With `notify`, workers are NOTIFYed in the
 * same statement — unless the job is written leased to a local worker (`lease`), which
 * starts it without asking the queue. The final SELECT must include `columns` (`jobs_inserted`).
 */
export function jobCtes(source: string | null, job: NewJob, notify: boolean, lease: LocalLease | null = null): { ctes: RawBuilder<unknown>; columns: RawBuilder<unknown>; id: string } {
  const id = newId();
  const runAt = job.runAt ?? null;
  const leased = lease
    ? sql`'leased', 1, ${lease.workerId}, now() + make_interval(secs => ${lease.leaseSeconds})`
    : sql`'queued', 0, NULL, NULL`;
  const ctes = sql`job AS (
      INSERT INTO jobs (id, type, payload, run_at, max_attempts, state, attempts, leased_by, lease_expires_at)
      SELECT ${id}, ${job.type}, ${JSON.stringify(job.payload)}::jsonb, coalesce(${runAt}::timestamptz, now()), ${job.maxAttempts ?? 5}, ${leased}
        FROM ${source ? sql.table(source) : sql`(SELECT 1) one`}
      RETURNING id
    )${notify && !lease ? sql`, job_n AS (SELECT pg_notify(${JOBS_CHANNEL}, ${job.type}) FROM job)` : sql``}`;
  const columns = sql`(SELECT count(*)::int FROM job) AS jobs_inserted${notify && !lease ? sql`, (SELECT count(*) FROM job_n) AS jobs_notified` : sql``}`;
  return { ctes, columns, id };
}

/**
 * The CTEs that insert one job of `type` per row of `source`, a CTE with the columns `job_id`
 * uuid, `payload` jsonb and `concurrency_key` text (see leaseKeyedJobs); with `notify`, workers
 * are NOTIFYed once in the same statement. The final SELECT must include `columns`
 * (`jobs_inserted`).
 */
export function jobRowsCtes(source: string, type: string, notify: boolean, maxAttempts: number): { ctes: RawBuilder<unknown>; columns: RawBuilder<unknown> } {
  const ctes = sql`job AS (
      INSERT INTO jobs (id, type, payload, run_at, max_attempts, state, attempts, concurrency_key)
      SELECT s.job_id, ${type}, s.payload, now(), ${maxAttempts}, 'queued', 0, s.concurrency_key FROM ${sql.table(source)} s
      RETURNING id
    )${notify ? sql`, job_n AS (SELECT pg_notify(${JOBS_CHANNEL}, ${type}) FROM (SELECT 1 FROM job LIMIT 1) one)` : sql``}`;
  const columns = sql`(SELECT count(*)::int FROM job) AS jobs_inserted${notify ? sql`, (SELECT count(*) FROM job_n) AS jobs_notified` : sql``}`;
  return { ctes, columns };
}

/** The row of a job written by jobCtes with a local lease (what the local worker starts). */
export function locallyLeasedJob(id: string, job: NewJob, lease: LocalLease, now: Date): JobRow {
  return {
    id,
    type: job.type,
    payload: job.payload,
    state: 'leased',
    run_at: job.runAt ?? now,
    attempts: 1,
    max_attempts: job.maxAttempts ?? 5,
    lease_expires_at: new Date(now.getTime() + lease.leaseSeconds * 1000),
    leased_by: lease.workerId,
    last_error: null,
    created_at: now,
    updated_at: now,
  } as JobRow;
}

/** Inserts a job; `notify` also NOTIFYs workers in the same statement (PostgreSQL). */
export async function enqueueJob(db: Kysely<DB>, job: NewJob, opts: { notify: boolean }): Promise<string> {
  const { ctes, columns, id } = jobCtes(null, job, opts.notify);
  await sql`WITH ${ctes} SELECT ${columns}`.execute(db);
  return id;
}

/** Leases up to `limit` ready jobs (queued and due, or leased with an expired lease). */
export async function leaseJobs(
  db: Kysely<DB>,
  workerId: string,
  types: string[] | null,
  limit: number,
  leaseSeconds: number,
): Promise<JobRow[]> {
  if (limit <= 0) return [];
  const typeFilter = types ? sql`AND type = ANY(${types}::text[])` : sql``;
  const res = await sql<JobRow>`
    UPDATE jobs SET state = 'leased', attempts = attempts + 1, leased_by = ${workerId},
           lease_expires_at = now() + make_interval(secs => ${leaseSeconds}), updated_at = now()
     WHERE id IN (
       SELECT id FROM jobs
        WHERE ((state = 'queued' AND run_at <= now()) OR (state = 'leased' AND lease_expires_at < now()))
          ${typeFilter}
        ORDER BY run_at
        LIMIT ${limit}
        FOR UPDATE SKIP LOCKED)
    RETURNING *`.execute(db);
  return res.rows;
}

/**
 * Leases up to `limit` ready jobs of `types`, sharing them fairly between concurrency keys:
 * jobs with the same `concurrency_key` (e.g. one webhook endpoint) hold at most `perKey`
 * live leases together, and the ready jobs are taken round-robin between keys (the first
 * ready job of every key, then the second, …), so one key's backlog never queues another
 * key behind it. Jobs without a key are capped only by `limit`. Leasing is serialised across
 * workers by a transaction-level advisory lock, so the per-key cap holds with many workers.
 * `clockOffsetMs` moves "now" for due times (run_at) only: the process clock tests advance
 * (0 in production); lease expiry stays on the database's clock.
 */
export async function leaseKeyedJobs(
  db: Kysely<DB>,
  workerId: string,
  types: string[],
  limit: number,
  leaseSeconds: number,
  perKey: number,
  clockOffsetMs = 0,
): Promise<JobRow[]> {
  if (limit <= 0 || types.length === 0) return [];
  const due = sql`now() + make_interval(secs => ${clockOffsetMs / 1000})`;
  return db.transaction().execute(async (trx) => {
    await sql`SELECT pg_advisory_xact_lock(${KEYED_LEASE_LOCK})`.execute(trx);
    const res = await sql<JobRow>`
      WITH live AS (
        SELECT concurrency_key, count(*)::int AS n FROM jobs
         WHERE state = 'leased' AND lease_expires_at >= now() AND concurrency_key IS NOT NULL AND type = ANY(${types}::text[])
         GROUP BY concurrency_key
      ),
      ready AS (
        SELECT j.id, j.run_at, j.concurrency_key,
               CASE WHEN j.concurrency_key IS NULL THEN 1
                    ELSE coalesce(l.n, 0) + row_number() OVER (PARTITION BY j.concurrency_key ORDER BY j.run_at, j.id) END AS slot
          FROM jobs j LEFT JOIN live l ON l.concurrency_key = j.concurrency_key
         WHERE ((j.state = 'queued' AND j.run_at <= ${due}) OR (j.state = 'leased' AND j.lease_expires_at < now()))
           AND j.type = ANY(${types}::text[])
           -- A key already at its cap (a slow receiver's backlog) is left out before the window
           -- function sorts the rest: its queue does not make everyone's lease slower.
           AND (j.concurrency_key IS NULL OR coalesce(l.n, 0) < ${perKey})
      ),
      picked AS (
        SELECT id FROM ready WHERE concurrency_key IS NULL OR slot <= ${perKey} ORDER BY slot, run_at LIMIT ${limit}
      )
      UPDATE jobs SET state = 'leased', attempts = attempts + 1, leased_by = ${workerId},
             lease_expires_at = now() + make_interval(secs => ${leaseSeconds}), updated_at = now()
       WHERE id IN (SELECT id FROM jobs WHERE id IN (SELECT id FROM picked) FOR UPDATE SKIP LOCKED)
      RETURNING *`.execute(trx);
    return res.rows;
  });
}

/** The advisory lock key that serialises keyed leasing (see leaseKeyedJobs). */
const KEYED_LEASE_LOCK = 7244113902;

/** Puts a leased job back in the queue to run at `runAt` (a handler that schedules its own retry). */
export async function rescheduleJob(db: Kysely<DB>, workerId: string, id: string, runAt: Date): Promise<void> {
  await rescheduleJobSql(workerId, id, runAt).execute(db);
}

/** The UPDATE of rescheduleJob, for composing into a handler's own statement. */
export function rescheduleJobSql(workerId: string, id: string, runAt: Date): RawBuilder<unknown> {
  return sql`UPDATE jobs SET state = 'queued', run_at = ${runAt}, lease_expires_at = NULL, leased_by = NULL, updated_at = now()
    WHERE id = ${id} AND leased_by = ${workerId}`;
}

/** The DELETE of completeJob, for composing into a handler's own statement (which then resolves true). */
export function completeJobSql(workerId: string, id: string): RawBuilder<unknown> {
  return sql`DELETE FROM jobs WHERE id = ${id} AND leased_by = ${workerId}`;
}

/** The DELETE of the queued (not running) jobs of a type and key, e.g. an endpoint's deliveries. */
export function dropQueuedJobsSql(type: string, key: string): RawBuilder<unknown> {
  return sql`DELETE FROM jobs WHERE type = ${type} AND concurrency_key = ${key} AND state = 'queued'`;
}

/** Extends the leases this worker still holds; returns the ids it no longer holds. */
export async function heartbeatJobs(db: Kysely<DB>, workerId: string, ids: string[], leaseSeconds: number): Promise<string[]> {
  if (ids.length === 0) return [];
  const res = await sql<{ id: string }>`
    UPDATE jobs SET lease_expires_at = now() + make_interval(secs => ${leaseSeconds}), updated_at = now()
     WHERE id = ANY(${ids}::uuid[]) AND state = 'leased' AND leased_by = ${workerId}
    RETURNING id`.execute(db);
  const held = new Set(res.rows.map((r) => r.id));
  return ids.filter((id) => !held.has(id));
}

/** A finished job is deleted: the queue holds only work to do (and failed jobs to inspect). */
export async function completeJob(db: Kysely<DB>, workerId: string, id: string): Promise<void> {
  await db.deleteFrom('jobs').where('id', '=', id).where('leased_by', '=', workerId).execute();
}

/** Records a failure: retried after `baseDelayMs × 2^(attempts−1)` until max_attempts, then failed. */
export async function failJob(db: Kysely<DB>, workerId: string, job: JobRow, error: string, baseDelayMs = 1000): Promise<void> {
  const exhausted = job.attempts >= job.max_attempts;
  const delay = Math.min(baseDelayMs * 2 ** Math.max(0, job.attempts - 1), 3_600_000);
  await db
    .updateTable('jobs')
    .set({
      state: exhausted ? 'failed' : 'queued',
      run_at: new Date(Date.now() + delay),
      lease_expires_at: null,
      leased_by: null,
      last_error: error.slice(0, 2000),
      updated_at: new Date(),
    })
    .where('id', '=', job.id)
    .where('leased_by', '=', workerId)
    .execute();
}

/**
 * Hands a leased job back to the queue at once, without counting a failure: its handler was
 * interrupted by a database outage, not by the job. The attempt stays counted (a run that
 * already streamed output is then not replayed, §26.6).
 */
export async function requeueJob(db: Kysely<DB>, workerId: string, id: string): Promise<void> {
  await db
    .updateTable('jobs')
    .set({ state: 'queued', run_at: new Date(), lease_expires_at: null, leased_by: null, updated_at: new Date() })
    .where('id', '=', id)
    .where('leased_by', '=', workerId)
    .execute();
}

/** Queue depth by type (for /metrics). */
const runJobFilter = (runId: string) => sql<boolean>`type = 'run.execute' AND payload @> ${JSON.stringify({ run_id: runId })}::jsonb`;

/** Does a worker currently hold (with a live lease) the execution job of this run? */
export async function runJobHeld(db: Kysely<DB>, runId: string): Promise<boolean> {
  const res = await sql<{ id: string }>`
    SELECT id FROM jobs WHERE ${runJobFilter(runId)} AND state = 'leased' AND lease_expires_at > now() LIMIT 1`.execute(db);
  return res.rows.length > 0;
}

/** The DELETE of the pending execution jobs of a run that has ended. */
export function closeRunJobsSql(runId: string): RawBuilder<unknown> {
  return sql`DELETE FROM jobs WHERE ${runJobFilter(runId)} AND state IN ('queued', 'leased')`;
}

