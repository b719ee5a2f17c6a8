// Fixed-window counters for the API-side rate limits (api.md §1.8): in memory for one
// process, or in Redis (ARKLOOP_REDIS_URL) so several processes share them. Redis errors
// fail open: the request is allowed and the failure logged.
import type { Logger } from 'pino';
import { connectRedis } from './redis.js';

export interface WindowState {
  count: number;
  /** Seconds until the window resets. */
  resetIn: number;
}

export interface CounterStore {
  /** Adds 1 to the counter of `key` in its current window and returns the new state. */
  incr(key: string, windowSec: number): Promise<WindowState>;
  get(key: string, windowSec: number): Promise<WindowState>;
  reset(key: string): Promise<void>;
  close(): Promise<void>;
}

export class MemoryCounterStore implements CounterStore {
  private readonly windows = new Map<string, { count: number; resetAt: number }>();
  private sweepAt = 0;

  private current(key: string, windowSec: number, now: number) {
    let w = this.windows.get(key);
    if (!w || w.resetAt <= now) {
      w = { count: 0, resetAt: now + windowSec * 1000 };
      this.windows.set(key, w);
    }
    return w;
  }

  private sweep(now: number) {
    if (now < this.sweepAt) return;
    this.sweepAt = now + 60_000;
    for (const [k, w] of this.windows) if (w.resetAt <= now) this.windows.delete(k);
  }

  async incr(key: string, windowSec: number): Promise<WindowState> {
    const now = Date.now();
    this.sweep(now);
    const w = this.current(key, windowSec, now);
    w.count++;
    return { count: w.count, resetIn: (w.resetAt - now) / 1000 };
  }

  async get(key: string, windowSec: number): Promise<WindowState> {
    const now = Date.now();
    const w = this.windows.get(key);
    if (!w || w.resetAt <= now) return { count: 0, resetIn: windowSec };
    return { count: w.count, resetIn: (w.resetAt - now) / 1000 };
  }

  async reset(key: string): Promise<void> {
    this.windows.delete(key);
  }

  async close(): Promise<void> {}
}

export class RedisCounterStore implements CounterStore {
  private constructor(
    private readonly redis: import('ioredis').Redis,
    private readonly log: Logger,
  ) {}

  static async connect(url: string, log: Logger): Promise<RedisCounterStore> {
    return new RedisCounterStore(await connectRedis(url, log, 'rate limits'), log);
  }

  async incr(key: string, windowSec: number): Promise<WindowState> {
    try {
      const k = `arkloop:rl:${key}`;
      const res = await this.redis.multi().incr(k).pexpire(k, windowSec * 1000, 'NX').pttl(k).exec();
      const count = Number(res?.[0]?.[1] ?? 0);
      const ttl = Number(res?.[2]?.[1] ?? windowSec * 1000);
      return { count, resetIn: Math.max(ttl, 0) / 1000 };
    } catch (err) {
      this.log.warn({ err: (err as Error).message }, 'rate limit counter unavailable; allowing');
      return { count: 0, resetIn: windowSec };
    }
  }

  async get(key: string, windowSec: number): Promise<WindowState> {
    try {
      const k = `arkloop:rl:${key}`;
      const [count, ttl] = await Promise.all([this.redis.get(k), this.redis.pttl(k)]);
      return { count: Number(count ?? 0), resetIn: ttl > 0 ? ttl / 1000 : windowSec };
    } catch (err) {
      this.log.warn({ err: (err as Error).message }, 'rate limit counter unavailable; allowing');
      return { count: 0, resetIn: windowSec };
    }
  }

  async reset(key: string): Promise<void> {
    await this.redis.del(`arkloop:rl:${key}`).catch(() => undefined);
  }

  async close(): Promise<void> {
    this.redis.disconnect();
  }
}
