// The engine shared by the API and the worker: the run event hub and the job wake-up.
// On PostgreSQL both travel through NOTIFY (written in the same statements as the events
// and jobs, so they are delivered at commit, to every process); on the embedded engine they
// are published in process right after commit.
import type { Kysely } from 'kysely';
import type { Logger } from 'pino';
import type { Database } from '../db/database.js';
import type { DB } from '../db/schema.js';
import { appendRunEvent, appendRunEvents, type RunEvent } from './events.js';
import { RunEventHub } from './hub.js';
import { JOBS_CHANNEL, enqueueJob, locallyLeasedJob, type JobRow, type LocalLease, type NewJob } from './jobs.js';

/** What a transaction of the run engine may do: append events, enqueue jobs. */
export interface RunTx {
  db: Kysely<DB>;
  append(runId: string, type: string, data: Record<string, unknown>, opts?: { outputEmitted?: boolean }): Promise<RunEvent>;
  enqueue(job: NewJob): Promise<string>;
  /** Reports events and jobs a composed statement of this transaction wrote (published at commit). */
  wrote(events: RunEvent[], jobs: number): void;
  /** Runs `fn` once the transaction has committed (not at all if it rolls back). */
  afterCommit(fn: () => void): void;
}

/**
 * A slot of a worker running in this process, reserved for a job about to be written leased
 * to it: the writer starts the job itself after commit instead of waking the queue (no
 * NOTIFY, no lease query, no reload of what the writer already read). The lease protects
 * it like any other: if the process dies, the lease expires and another worker takes it.
 */
export interface LocalSlot extends LocalLease {
  /** Starts the job once its row is committed; `preload` is what the handler would read first. */
  start(job: JobRow, preload?: unknown): void;
  /** The job was not written after all. */
  release(): void;
}

export interface LocalDispatcher {
  reserve(type: string): LocalSlot | null;
}

export class Engine {
  readonly hub: RunEventHub;
  readonly viaNotify: boolean;
  private readonly jobListeners = new Set<(type?: string) => void>();
  private unlistenJobs: (() => Promise<void>) | null = null;
  private localDispatcher: LocalDispatcher | null = null;

  constructor(
    private readonly database: Database,
    private readonly log: Logger,
  ) {
    this.hub = new RunEventHub(database.db, log);
    this.viaNotify = database.kind === 'postgres';
  }

  async start(): Promise<void> {
    if (!this.viaNotify) return;
    await this.hub.listen(this.database);
    // The NOTIFY payload is the job's type: a worker wakes only the lane that takes it.
    this.unlistenJobs = await this.database.listen(JOBS_CHANNEL, (type) => this.wakeWorkers(type || undefined));
    this.database.onReconnect(() => this.wakeWorkers());
  }

  /** Workers register here to be woken when jobs (of `type`, when known) may be ready. */
  onJobsAvailable(fn: (type?: string) => void): () => void {
    this.jobListeners.add(fn);
    return () => this.jobListeners.delete(fn);
  }

  /** The in-process worker registers here (the last one to register is used). */
  setLocalDispatcher(d: LocalDispatcher): void {
    this.localDispatcher = d;
  }

  clearLocalDispatcher(d: LocalDispatcher): void {
    if (this.localDispatcher === d) this.localDispatcher = null;
  }

  /**
   * Writes a job with `write` — leased to a free slot of this process's worker when there is
   * one (then `write` gets that lease, see LocalSlot) — and, once written, starts it on that
   * slot. `taken` tells whether the write took, with the job's id and what its handler would
   * read first; otherwise the slot is given back. Without a free slot the job goes through the
   * queue. Also publishes what the statement wrote (see wrote).
   */
  async writeJob<R extends { events: RunEvent[]; jobs: number }>(
    job: NewJob,
    write: (lease: LocalLease | null) => Promise<R>,
    taken: (written: R) => { jobId: string; at: Date; preload?: unknown } | null,
  ): Promise<R> {
    const slot = this.localDispatcher?.reserve(job.type) ?? null;
    let written: R;
    try {
      written = await write(slot);
    } catch (err) {
      slot?.release();
      throw err;
    }
    const t = taken(written);
    this.wrote(written.events, slot ? 0 : written.jobs);
    if (slot && t) slot.start(locallyLeasedJob(t.jobId, job, slot, t.at), t.preload);
    else slot?.release();
    return written;
  }

  wakeWorkers(type?: string): void {
    for (const fn of this.jobListeners) fn(type);
  }

  /**
   * Runs `fn` in one transaction; its events and jobs are published once it commits. Use the
   * given `tx.db` for every query inside.
   */
  async transaction<T>(db: Kysely<DB>, fn: (tx: RunTx) => Promise<T>): Promise<T> {
    const events: RunEvent[] = [];
    const committed: Array<() => void> = [];
    let jobs = 0;
    const result = await db.transaction().execute((trx) =>
      fn({
        db: trx,
        append: async (runId, type, data, opts) => {
          const e = await appendRunEvent(trx, runId, type, data, { notify: this.viaNotify, outputEmitted: opts?.outputEmitted });
          if (!e) throw new Error(`run ${runId} not found while appending ${type}`);
          events.push(e);
          return e;
        },
        enqueue: async (job) => {
          jobs++;
          return enqueueJob(trx, job, { notify: this.viaNotify });
        },
        wrote: (written, jobCount) => {
          events.push(...written);
          jobs += jobCount;
        },
        afterCommit: (fn) => committed.push(fn),
      }),
    );
    for (const fn of committed) fn();
    if (!this.viaNotify) {
      for (const e of events) this.hub.publish(e);
      if (jobs) this.wakeWorkers();
    }
    return result;
  }

  /**
   * Reports what a composed statement outside any transaction wrote (eventCtes/jobCtes): on
   * PostgreSQL it already NOTIFYed; the embedded engine publishes here.
   */
  wrote(events: RunEvent[], jobs: number): void {
    if (this.viaNotify) return;
    for (const e of events) this.hub.publish(e);
    if (jobs) this.wakeWorkers();
  }

  /** Appends one event outside any transaction (the statement itself is atomic). */
  async append(db: Kysely<DB>, runId: string, type: string, data: Record<string, unknown>, opts?: { outputEmitted?: boolean }): Promise<RunEvent> {
    const e = await appendRunEvent(db, runId, type, data, { notify: this.viaNotify, outputEmitted: opts?.outputEmitted });
    if (!e) throw new Error(`run ${runId} not found while appending ${type}`);
    if (!this.viaNotify) this.hub.publish(e);
    return e;
  }

  /** Appends several events in one statement (consecutive seqs, given order). */
  async appendMany(db: Kysely<DB>, runId: string, events: Array<{ type: string; data: Record<string, unknown> }>, opts?: { outputEmitted?: boolean }): Promise<RunEvent[]> {
    const out = await appendRunEvents(db, runId, events, { notify: this.viaNotify, outputEmitted: opts?.outputEmitted });
    if (out.length !== events.length) throw new Error(`run ${runId} not found (or ended) while appending ${events.length} events`);
    if (!this.viaNotify) for (const e of out) this.hub.publish(e);
    return out;
  }

  async close(): Promise<void> {
    this.jobListeners.clear();
    this.localDispatcher = null;
    await this.hub.close();
    if (this.unlistenJobs) await this.unlistenJobs().catch(() => undefined);
    void this.log;
  }
}
