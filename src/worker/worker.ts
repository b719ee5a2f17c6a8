// The job loop of a worker: leases up to `concurrency` jobs, runs each with an abort signal,
// renews leases by heartbeat, and wakes on the engine's signal (NOTIFY or in process) with
// polling as a backstop. Jobs whose lease this worker lost are aborted. It also takes jobs
// written already leased to it by its own process (local dispatch, see LocalSlot).
import { randomUUID } from 'node:crypto';
import type { Logger } from 'pino';
import type { AppContext } from '../app-context.js';
import type { LocalDispatcher, LocalSlot } from '../engine/engine.js';
import { completeJob, failJob, heartbeatJobs, leaseJobs, requeueJob, type JobRow } from '../engine/jobs.js';
import { isConnectionError, untilAvailable } from '../db/connection-errors.js';
import { databasePatience } from '../db/database.js';
import { executeRun } from './run-executor.js';
import { reapRuns } from './reaper.js';
import { rollUpUsage } from '../modules/usage/platform.js';
import { sendEmailJob } from '../mail/email-job.js';

const ROLLUP_INTERVAL_MS = 10 * 60_000;

/** Resolves true when the handler's own writes already removed its job. */
export type JobHandler = (ctx: AppContext, job: JobRow, signal: AbortSignal, log: Logger, preload?: unknown) => Promise<boolean | void>;

const HANDLERS: Record<string, JobHandler> = {
  'run.execute': executeRun,
  'email.send': sendEmailJob,
};

export interface WorkerOptions {
  concurrency: number;
  leaseSeconds: number;
  heartbeatSeconds: number;
  pollSeconds: number;
  types: string[] | null;
  /** How often this worker looks for runs nobody will finish (10 s). */
  reaperSeconds: number;
}

export class Worker implements LocalDispatcher {
  readonly id = `worker-${randomUUID().slice(0, 8)}`;
  /** `leaseUntil`: when this worker's lease surely ends unless a heartbeat renews it (local clock). */
  private readonly running = new Map<string, { job: JobRow; abort: AbortController; done: Promise<void>; leaseUntil: number }>();
  private stopped = false;
  private mayHaveJobs = true;
  /** Slots promised to jobs being written leased to this worker (local dispatch). */
  private reserved = 0;
  private wake: (() => void) | null = null;
  private loopDone: Promise<void> | null = null;
  private heartbeatTimer: NodeJS.Timeout | null = null;
  private reaperTimer: NodeJS.Timeout | null = null;
  private rollupTimer: NodeJS.Timeout | null = null;
  private unsubscribe: (() => void) | null = null;
  private readonly log: Logger;
  private leaseFailures = 0;

  constructor(
    private readonly ctx: AppContext,
    private readonly opts: WorkerOptions,
  ) {
    this.log = ctx.log.child({ worker: this.id });
  }

  start(): void {
    this.unsubscribe = this.ctx.engine.onJobsAvailable(() => {
      this.mayHaveJobs = true;
      this.wake?.();
    });
    this.heartbeatTimer = setInterval(() => void this.heartbeat(), this.opts.heartbeatSeconds * 1000);
    this.heartbeatTimer.unref();
    this.reaperTimer = setInterval(() => {
      reapRuns(this.ctx, this.log).catch((err: Error) => this.log.warn({ err: err.message }, 'reaper failed'));
    }, this.opts.reaperSeconds * 1000);
    this.reaperTimer.unref();
    // Closed days of usage go into the rollup the admin views read (modules/usage/platform.ts).
    const rollUp = () => void rollUpUsage(this.ctx.db).catch((err: Error) => this.log.warn({ err: err.message }, 'usage rollup failed'));
    rollUp();
    this.rollupTimer = setInterval(rollUp, ROLLUP_INTERVAL_MS);
    this.rollupTimer.unref();
    this.ctx.engine.setLocalDispatcher(this);
    this.loopDone = this.loop();
  }

  reserve(type: string): LocalSlot | null {
    if (this.stopped || !HANDLERS[type] || (this.opts.types && !this.opts.types.includes(type))) return null;
    if (this.running.size + this.reserved >= this.opts.concurrency) return null;
    this.reserved++;
    let settled = false;
    const settle = () => {
      if (settled) return false;
      settled = true;
      this.reserved--;
      return true;
    };
    return {
      workerId: this.id,
      leaseSeconds: this.opts.leaseSeconds,
      start: (job, preload) => {
        if (!settle()) return;
        // Stopped meanwhile: the lease expires and another worker (or this one's successor) takes it.
        if (!this.stopped) this.runJob(job, preload);
      },
      release: () => {
        if (settle()) this.wake?.();
      },
    };
  }

  private async loop(): Promise<void> {
    while (!this.stopped) {
      const free = this.opts.concurrency - this.running.size - this.reserved;
      // Lease only when jobs may be waiting (woken by a new job, a full batch last time, or
      // the poll): a slot that frees up does not by itself cost a query.
      if (free > 0 && this.mayHaveJobs) {
        this.mayHaveJobs = false;
        let leased: JobRow[] = [];
        try {
          leased = await leaseJobs(this.ctx.db, this.id, this.opts.types, free, this.opts.leaseSeconds);
          this.leaseFailures = 0;
        } catch (err) {
          // The database is away: try again with backoff (and at once when the engine's
          // listener reconnects), not only at the next poll.
          if (this.leaseFailures++ === 0) this.log.warn({ err: (err as Error).message }, 'leasing jobs failed; retrying');
          await this.pause(Math.min(100 * 2 ** this.leaseFailures, 2000));
          this.mayHaveJobs = true;
          continue;
        }
        for (const job of leased) this.runJob(job);
        if (leased.length > 0 && leased.length === free) this.mayHaveJobs = true;
        continue;
      }
      await new Promise<void>((resolve) => {
        const t = setTimeout(() => {
          this.mayHaveJobs = true;
          resolve();
        }, this.opts.pollSeconds * 1000);
        this.wake = () => {
          clearTimeout(t);
          resolve();
        };
      });
      this.wake = null;
    }
  }

  /** Waits `ms`, or less when woken (a new job, the listener back, stop). */
  private pause(ms: number): Promise<void> {
    return new Promise<void>((resolve) => {
      const t = setTimeout(resolve, ms);
      this.wake = () => {
        clearTimeout(t);
        resolve();
      };
    }).finally(() => (this.wake = null));
  }

  private runJob(job: JobRow, preload?: unknown): void {
    const handler = HANDLERS[job.type];
    const abort = new AbortController();
    const log = this.log.child({ job_id: job.id, job_type: job.type });
    const done = (async () => {
      try {
        if (!handler) throw new Error(`no handler for job type ${job.type}`);
        // A short database outage is waited out while the lease surely holds (see databasePatience).
        const deadline = () => (this.running.get(job.id)?.leaseUntil ?? 0) - this.opts.heartbeatSeconds * 1000;
        const removed = await databasePatience.run({ deadline }, () => handler(this.ctx, job, abort.signal, log, preload));
        if (removed !== true) await completeJob(this.ctx.db, this.id, job.id);
      } catch (err) {
        if (abort.signal.aborted) return; // shutdown or lost lease: another worker retries
        if (isConnectionError(err)) {
          // Interrupted by a database outage: hand the job back as soon as the database
          // answers (within its lease; after that the lease lapses and any worker takes it).
          log.warn({ err: (err as Error).message }, 'job interrupted by a database outage; handing it back');
          await untilAvailable(() => requeueJob(this.ctx.db, this.id, job.id), {
            stop: () => this.stopped,
            maxMs: this.opts.leaseSeconds * 1000,
          }).catch(() => undefined);
          this.mayHaveJobs = true;
          return;
        }
        log.error({ err: (err as Error).message }, 'job failed');
        await failJob(this.ctx.db, this.id, job, (err as Error).message).catch(() => undefined);
      } finally {
        this.running.delete(job.id);
        this.wake?.();
      }
    })();
    this.running.set(job.id, { job, abort, done, leaseUntil: Date.now() + this.opts.leaseSeconds * 1000 });
  }

  private async heartbeat(): Promise<void> {
    const ids = [...this.running.keys()];
    if (!ids.length) return;
    const sentAt = Date.now();
    try {
      const lost = await heartbeatJobs(this.ctx.db, this.id, ids, this.opts.leaseSeconds);
      for (const id of lost) this.running.get(id)?.abort.abort(new Error('lease lost'));
      for (const id of ids) {
        const r = this.running.get(id);
        if (r && !lost.includes(id)) r.leaseUntil = sentAt + this.opts.leaseSeconds * 1000;
      }
    } catch (err) {
      this.log.warn({ err: (err as Error).message }, 'heartbeat failed');
      // Not renewed in time (the database was away): the lease may already belong to another
      // worker, so this one lets go rather than write beside it.
      for (const r of this.running.values()) {
        if (Date.now() >= r.leaseUntil) r.abort.abort(new Error('lease lapsed'));
      }
    }
  }

  /** Stops leasing, aborts running jobs (their leases expire for another worker) and waits. */
  async stop(): Promise<void> {
    this.stopped = true;
    this.ctx.engine.clearLocalDispatcher(this);
    this.wake?.();
    this.unsubscribe?.();
    if (this.heartbeatTimer) clearInterval(this.heartbeatTimer);
    if (this.reaperTimer) clearInterval(this.reaperTimer);
    if (this.rollupTimer) clearInterval(this.rollupTimer);
    for (const r of this.running.values()) r.abort.abort(new Error('worker stopping'));
    await Promise.all([...this.running.values()].map((r) => r.done));
    await this.loopDone;
  }
}
