// One per process: receives every run event once (the LISTEN connection on PostgreSQL, or
// in-process publication on the embedded engine) and fans it out to the local subscribers
// of that run, so thousands of streams cost no extra queries or connections. Ordering and
// gap filling are the subscriber's job (see RunEventCursor): a subscriber that sees a seq
// jump reads the missing events from the table once.
import type { Kysely } from 'kysely';
import type { Logger } from 'pino';
import type { Database } from '../db/database.js';
import type { DB } from '../db/schema.js';
import { RUN_EVENTS_CHANNEL, listRunEvents, parseEventPayload, type RunEvent } from './events.js';
import { untilAvailable } from '../db/connection-errors.js';
import { eventBusLag, secondsSince } from '../metrics/instruments.js';

export type RunEventListener = (event: RunEvent) => void;

export class RunEventHub {
  private readonly topics = new Map<string, Set<RunEventListener>>();
  private unlisten: (() => Promise<void>) | null = null;
  private readonly reconnectListeners = new Set<() => void>();

  constructor(
    private readonly db: Kysely<DB>,
    private readonly log: Logger,
  ) {}

  /** Starts receiving from the database's NOTIFY channel (PostgreSQL). */
  async listen(database: Database): Promise<void> {
    this.unlisten = await database.listen(RUN_EVENTS_CHANNEL, (payload) => this.onPayload(payload));
    // Notifications may have been missed while disconnected: every subscriber re-reads.
    database.onReconnect(() => {
      for (const cb of this.reconnectListeners) cb();
    });
  }

  /** In-process publication (embedded engine), after the event's transaction commits. */
  publish(event: RunEvent): void {
    eventBusLag.observe(secondsSince(event.ts));
    const listeners = this.topics.get(event.run_id);
    if (listeners) for (const l of listeners) l(event);
  }

  private onPayload(payload: string): void {
    const parsed = parseEventPayload(payload);
    if (!parsed) return;
    if ('event' in parsed) {
      this.publish(parsed.event);
      return;
    }
    if (!this.topics.has(parsed.runId)) return;
    // Too large to travel inline: one read serves every local subscriber.
    untilAvailable(() => listRunEvents(this.db, parsed.runId, parsed.seq - 1, 1), { stop: () => !this.topics.has(parsed.runId) }).then(
      (events) => events.forEach((e) => this.publish(e)),
      (err: Error) => this.log.warn({ err: err.message, run_id: parsed.runId }, 'run event read failed'),
    );
  }

  subscribe(runId: string, listener: RunEventListener, onReconnect?: () => void): () => void {
    let set = this.topics.get(runId);
    if (!set) this.topics.set(runId, (set = new Set()));
    set.add(listener);
    if (onReconnect) this.reconnectListeners.add(onReconnect);
    return () => {
      const s = this.topics.get(runId);
      if (s) {
        s.delete(listener);
        if (s.size === 0) this.topics.delete(runId);
      }
      if (onReconnect) this.reconnectListeners.delete(onReconnect);
    };
  }

  /** Open subscriptions (for /metrics). */
  get subscriptions(): number {
    let n = 0;
    for (const s of this.topics.values()) n += s.size;
    return n;
  }

  async close(): Promise<void> {
    this.topics.clear();
    this.reconnectListeners.clear();
    if (this.unlisten) await this.unlisten();
  }
}

/**
 * Delivers a run's events strictly in seq order from `afterSeq + 1`, whatever order they
 * arrive in: live events that jump ahead trigger a read of the missing ones from the table.
 * Reads and live events go through one queue, so an event that arrives while a read is in
 * flight is judged after that read (not taken for a gap).
 */
export class RunEventCursor {
  private chain: Promise<void> = Promise.resolve();
  private closed = false;

  constructor(
    private readonly db: Kysely<DB>,
    private readonly runId: string,
    public lastSeq: number,
    private readonly emit: (event: RunEvent) => void,
    private readonly batch = 500,
    /** A read failed: the cursor is closed, what it delivered so far stands. */
    private readonly onError: (err: Error) => void = () => undefined,
  ) {}

  private enqueue(step: () => Promise<void> | void): Promise<void> {
    const next = this.chain.then(step);
    this.chain = next.catch((err: Error) => {
      if (this.closed) return;
      this.closed = true;
      this.onError(err);
    });
    return next;
  }

  private async readNewer(): Promise<void> {
    for (;;) {
      if (this.closed) return;
      // A database outage is waited out: the stream stays open and resumes from the table.
      const events = await untilAvailable(() => listRunEvents(this.db, this.runId, this.lastSeq, this.batch), { stop: () => this.closed });
      for (const e of events) this.take(e);
      if (events.length < this.batch) return;
    }
  }

  /** Reads and emits everything newer than lastSeq from the table (replay, gap, reconnect). */
  catchUp(): Promise<void> {
    return this.enqueue(() => this.readNewer());
  }

  /**
   * Emits `first` (events after lastSeq, read elsewhere with a page size of `batch`), then
   * reads on if that page was full. Live events offered meanwhile wait behind it.
   */
  catchUpFrom(first: Promise<RunEvent[]>): Promise<void> {
    return this.enqueue(async () => {
      const events = await first;
      for (const e of events) this.take(e);
      if (events.length >= this.batch) await this.readNewer();
    });
  }

  offer(event: RunEvent): void {
    if (this.closed || event.seq <= this.lastSeq) return;
    this.enqueue(() => {
      if (this.closed || event.seq <= this.lastSeq) return;
      if (event.seq === this.lastSeq + 1) return this.take(event);
      return this.readNewer();
    }).catch(() => undefined);
  }

  private take(event: RunEvent): void {
    if (this.closed || event.seq !== this.lastSeq + 1) return;
    this.lastSeq = event.seq;
    this.emit(event);
  }

  close(): void {
    this.closed = true;
  }
}
