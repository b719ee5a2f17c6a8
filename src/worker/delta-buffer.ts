// The worker's write buffer for a run's events. Message deltas are batched: each stays its
// own event with its own seq, but what arrives within a few milliseconds is appended by one
// statement. Events that may wait (a segment's start) are queued to ride with the deltas
// that follow them; anything else flushes the buffer first, so event order is the order
// things happened. Whatever is still buffered when the run ends is taken by the terminal
// statement (a short answer is then written in one statement with its end).
import type { AppContext } from '../app-context.js';
import type { NewEvent } from '../engine/events.js';

export class DeltaBuffer {
  private pending: NewEvent[] = [];
  private timer: NodeJS.Timeout | null = null;
  private chain: Promise<void> = Promise.resolve();
  private failure: unknown = null;

  constructor(
    private readonly ctx: AppContext,
    private readonly runId: string,
    private readonly maxDelayMs = 5,
  ) {}

  add(data: Record<string, unknown>): void {
    this.queue([{ type: 'message.delta', data }]);
  }

  /** Buffers events, written at the latest `maxDelayMs` from now. */
  queue(events: NewEvent[]): void {
    if (this.failure) throw this.failure;
    this.pending.push(...events);
    this.timer ??= setTimeout(() => void this.flush().catch(() => undefined), this.maxDelayMs);
  }

  /** Appends what is buffered; rethrows a failure of any earlier flush. */
  flush(): Promise<void> {
    this.stopTimer();
    this.chain = this.chain.then(async () => {
      if (this.failure) return;
      const batch = this.pending.splice(0);
      if (!batch.length) return;
      try {
        await this.ctx.engine.appendMany(this.ctx.db, this.runId, batch, { outputEmitted: batch.some((e) => e.type === 'message.delta') });
      } catch (err) {
        this.failure = err;
      }
    });
    return this.chain.then(() => {
      if (this.failure) throw this.failure;
    });
  }

  /**
   * Appends what is buffered followed by `events`, in one statement (the next event rides
   * along with the deltas that precede it).
   */
  async flushWith(events: NewEvent[], opts?: { outputEmitted?: boolean }): Promise<void> {
    this.stopTimer();
    await this.chain;
    if (this.failure) throw this.failure;
    const batch = [...this.pending.splice(0), ...events];
    if (!batch.length) return;
    const marksOutput = opts?.outputEmitted || batch.some((e) => e.type === 'message.delta');
    await this.ctx.engine.appendMany(this.ctx.db, this.runId, batch, { outputEmitted: marksOutput });
  }

  /** Hands over what is buffered (for the terminal statement) once earlier writes are done. */
  async take(): Promise<NewEvent[]> {
    this.stopTimer();
    await this.chain;
    return this.pending.splice(0);
  }

  private stopTimer(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
  }
}
