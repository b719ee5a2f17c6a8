// A short-lived in-process cache of resolved credentials, so a request costs one database
// round trip (its own work) instead of two. Correctness does not rest on the TTL: every
// change that can refuse or alter a credential (logout, session revocation, key revocation,
// membership or role change, user status) calls `credentialsChanged`, which invalidates
// here at once and in every other process through NOTIFY. An invalidation
// counter keeps a read that raced an invalidation from being cached.
import type { Database } from '../../db/database.js';
import { SingleFlight } from '../../lib/shared-reads.js';

const CHANNEL = 'arkloop_credentials';

interface Entry<T> {
  value: T;
  userId: string;
  expiresAt: number;
}

export class CredentialCache<T> {
  private readonly entries = new Map<string, Entry<T>>();
  private readonly keysByUser = new Map<string, Set<string>>();
  /** Loads under way; every invalidation forgets them (they may have read the old state). */
  private readonly flights = new SingleFlight<unknown>();
  /** Bumped by every invalidation: a read that overlapped one is not cached. */
  private invalidations = 0;

  constructor(
    private readonly ttlMs = 5_000,
    private readonly maxEntries = 100_000,
  ) {}

  get(key: string): T | undefined {
    const e = this.entries.get(key);
    if (!e) return undefined;
    if (e.expiresAt <= Date.now()) {
      this.delete(key, e.userId);
      return undefined;
    }
    return e.value;
  }

  /**
   * Concurrent misses of `key` share one `load` (a burst of requests with the same new token
   * verifies and reads it once), unless an invalidation happened since that load started: a
   * caller never gets a credential read before a change it could have seen.
   */
  shared<R>(key: string, load: () => Promise<R>): Promise<R> {
    return this.flights.run(key, load) as Promise<R>;
  }

  /** A token to pass to `set`, taken before the database read. */
  generation(): number {
    return this.invalidations;
  }

  set(key: string, userId: string, value: T, generation: number, maxAgeMs = this.ttlMs): void {
    if (generation !== this.invalidations || maxAgeMs <= 0) return;
    if (this.entries.size >= this.maxEntries) this.clear();
    this.entries.set(key, { value, userId, expiresAt: Date.now() + Math.min(this.ttlMs, maxAgeMs) });
    let keys = this.keysByUser.get(userId);
    if (!keys) this.keysByUser.set(userId, (keys = new Set()));
    keys.add(key);
  }

  private delete(key: string, userId: string): void {
    this.entries.delete(key);
    const keys = this.keysByUser.get(userId);
    if (keys) {
      keys.delete(key);
      if (keys.size === 0) this.keysByUser.delete(userId);
    }
  }

  invalidateUser(userId: string): void {
    this.invalidations++;
    this.flights.forget();
    const keys = this.keysByUser.get(userId);
    if (!keys) return;
    for (const k of keys) this.entries.delete(k);
    this.keysByUser.delete(userId);
  }

  clear(): void {
    this.invalidations++;
    this.flights.forget();
    this.entries.clear();
    this.keysByUser.clear();
  }
}

export interface CredentialInvalidator {
  /** A user's sessions, keys, memberships or status changed; `'*'` = anything (e.g. an account rename). */
  changed(userId: string | '*'): Promise<void>;
  close(): Promise<void>;
}

export async function createInvalidator(database: Database, cache: CredentialCache<unknown>): Promise<CredentialInvalidator> {
  const apply = (id: string) => (id === '*' ? cache.clear() : cache.invalidateUser(id));
  // Without a listener (database down at start) invalidation stays local until it is back.
  const unlisten = await database.listen(CHANNEL, apply).catch(() => async () => undefined);
  return {
    async changed(userId) {
      apply(userId);
      await database.notify(CHANNEL, userId);
    },
    close: unlisten,
  };
}
