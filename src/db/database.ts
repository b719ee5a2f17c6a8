// The one storage module: PostgreSQL (node-postgres pool) or embedded PGlite behind the
// same Kysely instance. Nothing above this file knows which kind of database runs.
// Each engine's code is in its own file (postgres.ts, pglite.ts), loaded only when used.
import { AsyncLocalStorage } from 'node:async_hooks';
import type { Kysely } from 'kysely';
import type { Logger } from 'pino';
import type { DB } from './schema.js';

export type DatabaseKind = 'pglite' | 'postgres';

export interface Database {
  readonly db: Kysely<DB>;
  readonly kind: DatabaseKind;
  /** Subscribe to a NOTIFY channel; returns an unsubscribe function. */
  listen(channel: string, onPayload: (payload: string) => void): Promise<() => Promise<void>>;
  notify(channel: string, payload: string): Promise<void>;
  /** Called after the LISTEN connection was lost and re-established (notifications may have been missed). */
  onReconnect(cb: () => void): () => void;
  /** Resolves when the database answers within `timeoutMs`. */
  ping(timeoutMs: number): Promise<void>;
  /** Connections of the pool in use / idle, callers waiting for one, and the pool's size (for /metrics). */
  poolStats(): PoolStats;
  close(): Promise<void>;
  /**
   * Runs `fn` inside one transaction on a dedicated session that also accepts
   * multi-statement scripts (migrations). Commits when `fn` resolves.
   */
  withScriptTransaction<T>(fn: (s: ScriptSession) => Promise<T>): Promise<T>;
}

export interface PoolStats {
  inUse: number;
  idle: number;
  waiting: number;
  max: number;
}

export interface ScriptSession {
  query<R = Record<string, unknown>>(text: string, params?: unknown[]): Promise<R[]>;
  exec(script: string): Promise<void>;
}

/** Type OIDs read as JS numbers on both engines: int8 counts fit in a number for this domain, numeric (costs) too. */
export const INT8_OID = 20;
export const NUMERIC_OID = 1700;

export interface DatabaseOptions {
  databaseUrl: string | null;
  directUrl?: string | null;
  /** PGlite data directory; null = in memory. */
  dataDir: string | null;
  poolSize?: number;
  /** Where connection losses and recoveries are reported (warn / info). */
  log?: Pick<Logger, 'warn' | 'info'>;
}

export function withTimeout<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const t = setTimeout(() => reject(new Error(`${what} timed out after ${ms} ms`)), ms);
    p.then(
      (v) => { clearTimeout(t); resolve(v); },
      (e) => { clearTimeout(t); reject(e); },
    );
  });
}

export async function openDatabase(opts: DatabaseOptions): Promise<Database> {
  if (opts.databaseUrl) return (await import('./postgres.js')).openPostgres(opts);
  return (await import('./pglite.js')).openPglite(opts.dataDir);
}

/**
 * A longer retry window for the work running inside it: `deadline()` is the time (ms epoch)
 * until which a statement that never ran, or a connection that could not be opened, is tried
 * again. The worker runs each job in one, bounded by the job's lease, so a run waits out a
 * short outage instead of failing; API requests have none and answer 503 at once.
 */
export const databasePatience = new AsyncLocalStorage<{ deadline: () => number }>();
