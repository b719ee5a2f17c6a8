// The job loop of a worker: leases jobs into lanes, runs each with an abort signal, renews
// leases by heartbeat, and wakes on the engine's signal (NOTIFY or in process) with polling as
// a backstop. Jobs whose lease this worker lost are aborted. It also takes jobs written already
// leased to it by its own process (local dispatch, see LocalSlot).
//
// Lanes keep kinds of work from taking each other's slots: runs have their own concurrency, and
// background jobs (webhook deliveries, mail, fan-out) theirs, so receivers that never answer
// cannot hold a run back. The background lane is leased fairly between concurrency keys (one
// webhook endpoint each, see leaseKeyedJobs): a key holds at most `keyConcurrency` slots in
// the whole system and the queue is shared round-robin, so one slow endpoint never delays
// another.
import { randomUUID } from 'node:crypto';
import type { Logger } from 'pino';
import type { AppContext } from '../app-context.js';
import type { LocalDispatcher, LocalSlot } from '../engine/engine.js';
import { completeJob, failJob, heartbeatJobs, leaseJobs, leaseKeyedJobs, requeueJob, type JobRow } from '../engine/jobs.js';
import { isConnectionError, untilAvailable } from '../db/connection-errors.js';
import { databasePatience } from '../db/database.js';
import { executeRun } from './run-executor.js';
import { reapRuns } from './reaper.js';
import { rollUpUsage } from '../modules/usage/platform.js';
import { scheduleRunEventsPurge } from '../modules/runs/retention.js';
import { deliverWebhook } from '../modules/webhooks/deliver.js';
import { broadcastFanoutJob } from '../modules/notifications/fanout.js';
import { sendEmailJob } from '../mail/email-job.js';
import { jobLeaseDelay, jobsExecuted, secondsSince } from '../metrics/instruments.js';

const ROLLUP_INTERVAL_MS = 10 * 60_000;

/** Resolves true when the handler's own writes already removed its job. */
export type JobHandler = (ctx: AppContext, job: JobRow, signal: AbortSignal, log: Logger, preload?: unknown) => Promise<boolean | void>;

const HANDLERS: Record<string, JobHandler> = {
  'run.execute': executeRun,
  'webhook.deliver': deliverWebhook,
  'broadcast.fanout': broadcastFanoutJob,
  'email.send': sendEmailJob,
};

/** Job types of the runs lane; every other handled type is a background job. */
const RUN_LANE_TYPES = new Set(['run.execute']);

interface Lane {
  name: 'runs' | 'background';
  /** The handled types of this lane that this worker takes. */
  types: string[];
  concurrency: number;
  /** Keyed, fair leasing with this many live leases per key (background lane). */
  perKey: number | null;
  running: number;
  /** Slots promised to jobs being written leased to this worker (local dispatch). */
  reserved: number;
  mayHaveJobs: boolean;
}

export interface WorkerOptions {
  /** Runs executed at once. */
  concurrency: number;
  /** Background jobs executed at once, and at once per concurrency key (webhook endpoint). */
  backgroundConcurrency: number;
  keyConcurrency: number;
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
  private readonly running = new Map<string, { job: JobRow; lane: Lane; abort: AbortController; done: Promise<void>; leaseUntil: number }>();
  private stopped = false;
  private readonly lanes: Lane[];
  private wake: (() => void) | null = null;
  private loopDone: Promise<void> | null = null;
  private heartbeatTimer: NodeJS.Timeout | null = null;
  private reaperTimer: NodeJS.Timeout | null = null;
  private rollupTimer: NodeJS.Timeout | null = null;
  private stopPurge: (() => void) | null = null;
  private unsubscribe: (() => void) | null = null;
  private readonly log: Logger;
  private leaseFailures = 0;

  constructor(
    private readonly ctx: AppContext,
    private readonly opts: WorkerOptions,
  ) {
    this.log = ctx.log.child({ worker: this.id });
    const taken = Object.keys(HANDLERS).filter((t) => !opts.types || opts.types.includes(t));
    const lane = (name: Lane['name'], types: string[], concurrency: number, perKey: number | null): Lane =>
      ({ name, types, concurrency, perKey, running: 0, reserved: 0, mayHaveJobs: true });
    this.lanes = [
      lane('runs', taken.filter((t) => RUN_LANE_TYPES.has(t)), opts.concurrency, null),
      lane('background', taken.filter((t) => !RUN_LANE_TYPES.has(t)), opts.backgroundConcurrency, opts.keyConcurrency),
    ].filter((l) => l.types.length > 0);
  }

  private laneOf(type: string): Lane | undefined {
    return this.lanes.find((l) => l.types.includes(type));
  }

  private wakeAll(): void {
    for (const l of this.lanes) l.mayHaveJobs = true;
    this.wake?.();
  }

  start(): void {
    this.unsubscribe = this.ctx.engine.onJobsAvailable((type) => {
      const lane = type ? this.laneOf(type) : undefined;
      if (!type) return this.wakeAll();
      if (!lane) return; // a type this worker does not take
      lane.mayHaveJobs = true;
      this.wake?.();
    });
    this.heartbeatTimer = setInterval(() => void this.heartbeat(), this.opts.heartbeatSeconds * 1000);
    this.heartbeatTimer.unref();
    this.reaperTimer = setInterval(() => {
      reapRuns(this.ctx, this.log).catch((err: Error) => this.log.warn({ err: err.message }, 'reaper failed'));
      // Slots a dead process still holds, or runs Redis lost, are put right here (modules/runs/slots.ts).
      this.ctx.runSlots?.repair().catch((err: Error) => this.log.warn({ err: err.message }, 'concurrent-run slot repair failed'));
    }, this.opts.reaperSeconds * 1000);
    this.reaperTimer.unref();
    // Closed days of usage go into the rollup the admin views read (modules/usage/platform.ts).
    const rollUp = () => void rollUpUsage(this.ctx.db).catch((err: Error) => this.log.warn({ err: err.message }, 'usage rollup failed'));
    rollUp();
    this.rollupTimer = setInterval(rollUp, ROLLUP_INTERVAL_MS);
    this.rollupTimer.unref();
    this.stopPurge = scheduleRunEventsPurge(this.ctx, this.log);
    this.ctx.engine.setLocalDispatcher(this);
    this.loopDone = this.loop();
  }

  reserve(type: string): LocalSlot | null {
    const lane = this.laneOf(type);
    if (this.stopped || !lane) return null;
    if (lane.running + lane.reserved >= lane.concurrency) return null;
    lane.reserved++;
    let settled = false;
    const settle = () => {
      if (settled) return false;
      settled = true;
      lane.reserved--;
      return true;
    };
    return {
      workerId: this.id,
      leaseSeconds: this.opts.leaseSeconds,
      start: (job, preload) => {
        if (!settle()) return;
        // Stopped meanwhile: the lease expires and another worker (or this one's successor) takes it.
        if (!this.stopped) this.runJob(job, lane, preload);
      },
      release: () => {
        if (settle()) this.wake?.();
      },
    };
  }

  private async loop(): Promise<void> {
    while (!this.stopped) {
      // Lease only when jobs may be waiting (woken by a new job, a full batch last time, or
      // the poll): a slot that frees up does not by itself cost a query.
      let leasedSome = false;
      let failed = false;
      for (const lane of this.lanes) {
        const free = lane.concurrency - lane.running - lane.reserved;
        if (free <= 0 || !lane.mayHaveJobs) continue;
        lane.mayHaveJobs = false;
        let leased: JobRow[] = [];
        try {
          leased = lane.perKey
            ? await leaseKeyedJobs(this.ctx.db, this.id, lane.types, free, this.opts.leaseSeconds, lane.perKey, this.ctx.clock.nowMs() - Date.now())
            : await leaseJobs(this.ctx.db, this.id, lane.types, free, this.opts.leaseSeconds);
          this.leaseFailures = 0;
        } catch (err) {
          // The database is away: try again with backoff (and at once when the engine's
          // listener reconnects), not only at the next poll.
          if (this.leaseFailures++ === 0) this.log.warn({ err: (err as Error).message }, 'leasing jobs failed; retrying');
          lane.mayHaveJobs = true;
          failed = true;
          break;
        }
        if (this.stopped) {
          // Stopped while the lease was in flight: hand the jobs straight back.
          await Promise.all(leased.map((job) => requeueJob(this.ctx.db, this.id, job.id).catch(() => undefined)));
          return;
        }
        const leasedAt = Date.now();
        for (const job of leased) {
          jobLeaseDelay.observe({ type: job.type }, secondsSince(job.run_at, leasedAt));
          this.runJob(job, lane);
        }
        if (leased.length > 0 && leased.length === free) lane.mayHaveJobs = true;
        leasedSome = true;
      }
      if (failed) {
        await this.pause(Math.min(100 * 2 ** this.leaseFailures, 2000));
        for (const l of this.lanes) l.mayHaveJobs = true;
        continue;
      }
      if (leasedSome) continue;
      await new Promise<void>((resolve) => {
        const t = setTimeout(() => {
          for (const l of this.lanes) l.mayHaveJobs = true;
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

  private runJob(job: JobRow, lane: Lane | undefined = this.laneOf(job.type), preload?: unknown): void {
    const handler = HANDLERS[job.type];
    const abort = new AbortController();
    const log = this.log.child({ job_id: job.id, job_type: job.type });
    let outcome = 'completed';
    const done = (async () => {
      try {
        if (!handler) throw new Error(`no handler for job type ${job.type}`);
        // A short database outage is waited out while the lease surely holds (see databasePatience).
        const deadline = () => (this.running.get(job.id)?.leaseUntil ?? 0) - this.opts.heartbeatSeconds * 1000;
        const removed = await databasePatience.run({ deadline }, () => handler(this.ctx, job, abort.signal, log, preload));
        if (removed !== true) await completeJob(this.ctx.db, this.id, job.id);
      } catch (err) {
        outcome = abort.signal.aborted ? 'aborted' : isConnectionError(err) ? 'requeued' : 'failed';
        if (abort.signal.aborted) return; // shutdown or lost lease: another worker retries
        if (isConnectionError(err)) {
          // Interrupted by a database outage: hand the job back as soon as the database
          // answers (within its lease; after that the lease lapses and any worker takes it).
          log.warn({ err: (err as Error).message }, 'job interrupted by a database outage; handing it back');
          await untilAvailable(() => requeueJob(this.ctx.db, this.id, job.id), {
            stop: () => this.stopped,
            maxMs: this.opts.leaseSeconds * 1000,
          }).catch(() => undefined);
          if (lane) lane.mayHaveJobs = true;
          return;
        }
        log.error({ err: (err as Error).message }, 'job failed');
        await failJob(this.ctx.db, this.id, job, (err as Error).message).catch(() => undefined);
      } finally {
        jobsExecuted.inc({ type: job.type, outcome });
        this.running.delete(job.id);
        if (lane) {
          lane.running--;
          // A finished keyed job may let its key's next job through the per-key cap.
          if (lane.perKey) lane.mayHaveJobs = true;
        }
        this.wake?.();
      }
    })();
    if (lane) lane.running++;
    this.running.set(job.id, { job, lane: lane!, abort, done, leaseUntil: Date.now() + this.opts.leaseSeconds * 1000 });
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
    this.stopPurge?.();
    for (const r of this.running.values()) r.abort.abort(new Error('worker stopping'));
    await Promise.all([...this.running.values()].map((r) => r.done));
    await this.loopDone;
  }
}
