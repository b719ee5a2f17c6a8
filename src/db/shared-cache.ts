// Read-through caches that every process drops together: a module caches what it reads on hot
// paths (an account's routable providers, later its entitlements, IP rules, flags) and calls
// `invalidate` after a change commits; the change is applied here at once and NOTIFYed so every
// other process drops the same entries. Missed notifications (the LISTEN connection was away)
// clear everything, and a TTL bounds staleness if a notification is lost some other way.
//
// Hand-written on purpose: it is the database's own LISTEN/NOTIFY plumbing (database.ts) plus a
// Map; the libraries that cache (lru-cache and the like) do not know about other processes.
// All caches share one channel, so a process holds one LISTEN however many caches it has.
import type { Logger } from 'pino';
import type { Database } from './database.js';
import { envValue } from '../config/env.js';
import { SingleFlight } from '../lib/shared-reads.js';

const CHANNEL = 'arkloop_cache';
/** Invalidates every key of a cache. */
export const ALL_KEYS = '*';

interface Entry<V> {
  value: V;
  expiresAt: number;
}

export class SharedCache<V> {
  private readonly entries = new Map<string, Entry<V>>();
  private readonly inflight = new SingleFlight<V>();
  // Bumped by every invalidation, so a load that raced with one is not cached.
  private readonly generations = new Map<string, number>();
  private allGeneration = 0;

  constructor(
    readonly name: string,
    private readonly ttlMs: number,
    private readonly publish: (name: string, key: string) => Promise<void>,
  ) {}

  /** The cached value of `key`, else what `load` returns (concurrent misses share one load). */
  async get(key: string, load: () => Promise<V>): Promise<V> {
    const hit = this.entries.get(key);
    if (hit && hit.expiresAt > Date.now()) return hit.value;
    const gen = this.generations.get(key) ?? 0;
    const all = this.allGeneration;
    return this.inflight.run(key, () =>
      load().then((value) => {
        if ((this.generations.get(key) ?? 0) === gen && this.allGeneration === all) this.entries.set(key, { value, expiresAt: Date.now() + this.ttlMs });
        return value;
      }),
    );
  }

  /** Drops `key` (or ALL_KEYS) here and in every other process. Call after the change committed. */
  async invalidate(key: string): Promise<void> {
    this.drop(key);
    await this.publish(this.name, key);
  }

  /** Drops `key` (or ALL_KEYS) in this process only. */
  drop(key: string): void {
    // In-flight loads may have read the old state: they finish for their callers but are not kept.
    if (key === ALL_KEYS) {
      this.allGeneration++;
      this.entries.clear();
      this.inflight.forget();
      return;
    }
    this.generations.set(key, (this.generations.get(key) ?? 0) + 1);
    this.entries.delete(key);
    this.inflight.forget(key);
  }
}

/** A cache TTL in seconds from the environment variable `variable` (integer 0–86400), else `fallback`. */
export function ttlSecondsFromEnv(env: Readonly<Record<string, string | undefined>>, log: Logger, variable: string, fallback: number): number {
  const raw = envValue(env, variable);
  if (raw === undefined) return fallback;
  const n = Number(raw);
  if (!Number.isInteger(n) || n < 0 || n > 86_400) {
    log.warn({ value: raw }, `${variable} must be an integer 0–86400; using ${fallback}`);
    return fallback;
  }
  return n;
}

export class SharedCaches {
  private readonly caches = new Map<string, SharedCache<unknown>>();
  private unlisten: (() => Promise<void>) | null = null;
  private offReconnect: (() => void) | null = null;

  private constructor(
    private readonly database: Database,
    private readonly log: Logger,
  ) {}

  static async start(database: Database, log: Logger): Promise<SharedCaches> {
    const caches = new SharedCaches(database, log);
    try {
      caches.unlisten = await database.listen(CHANNEL, (payload) => caches.apply(payload));
    } catch (err) {
      // Without a listener, other processes' changes reach this one after the TTL.
      log.warn({ err: (err as Error).message }, 'shared caches: change listener not started');
    }
    caches.offReconnect = database.onReconnect(() => {
      for (const c of caches.caches.values()) c.drop(ALL_KEYS);
    });
    return caches;
  }

  /** The cache called `name` (created on first use; the TTL of the first call holds). */
  cache<V>(name: string, ttlMs: number): SharedCache<V> {
    let c = this.caches.get(name);
    if (!c) {
      c = new SharedCache<unknown>(name, ttlMs, (n, key) => this.publish(n, key));
      this.caches.set(name, c);
    }
    return c as SharedCache<V>;
  }

  private async publish(name: string, key: string): Promise<void> {
    try {
      await this.database.notify(CHANNEL, `${name}\n${key}`);
    } catch (err) {
      // The change is committed; other processes catch up within the TTL.
      this.log.warn({ err: (err as Error).message, cache: name }, 'shared caches: change not published');
    }
  }

  private apply(payload: string): void {
    const i = payload.indexOf('\n');
    if (i < 0) return;
    this.caches.get(payload.slice(0, i))?.drop(payload.slice(i + 1));
  }

  async close(): Promise<void> {
    this.offReconnect?.();
    await this.unlisten?.().catch(() => undefined);
  }
}
