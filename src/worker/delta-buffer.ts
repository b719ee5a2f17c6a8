// Message deltas are batched: each stays its own event with its own seq, but the deltas that
// arrive within a few milliseconds are appended by one statement. Anything else the worker
// appends flushes the buffer first, so event order is the order things happened.
import type { AppContext } from '../http/context.js';

export class DeltaBuffer {
  private pending: Array<{ type: string; data: Record<string, unknown> }> = [];
  private timer: NodeJS.Timeout | null = null;
  private chain: Promise<void> = Promise.resolve();
  private failure: unknown = null;

  constructor(
    private readonly ctx: AppContext,
    private readonly runId: string,
    private readonly maxDelayMs = 5,
  ) {}

  add(data: Record<string, unknown>): void {
    if (this.failure) throw this.failure;
    this.pending.push({ type: 'message.delta', data });
    this.timer ??= setTimeout(() => void this.flush().catch(() => undefined), this.maxDelayMs);
  }

  /** Appends what is buffered; rethrows a failure of any earlier flush. */
  flush(): Promise<void> {
    if (this.timer) {
      clearTimeout(this.timer);
      this.timer = null;
    }
    this.chain = this.chain.then(async () => {
      if (this.failure) return;
      const batch = this.pending.splice(0);
      if (!batch.length) return;
      try {
        await this.ctx.engine.appendMany(this.ctx.db, this.runId, batch, { outputEmitted: true });
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
  async flushWith(events: Array<{ type: string; data: Record<string, unknown> }>, opts?: { outputEmitted?: boolean }): Promise<void> {
    if (this.timer) {
      clearTimeout(this.timer);
      this.timer = null;
    }
    await this.chain;
    if (this.failure) throw this.failure;
    const batch = [...this.pending.splice(0), ...events];
    if (!batch.length) return;
    const marksOutput = opts?.outputEmitted || batch.some((e) => e.type === 'message.delta');
    await this.ctx.engine.appendMany(this.ctx.db, this.runId, batch, { outputEmitted: marksOutput });
  }

  /** Drops what is buffered (the run ended without its worker). */
  discard(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    this.pending = [];
  }
}
