// The one storage module: PostgreSQL (node-postgres pool) or embedded PGlite behind the
// same Kysely instance. Nothing above this file knows which engine runs.
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync } from 'node:fs';
import path from 'node:path';
import { Worker } from 'node:worker_threads';
import { Kysely, PostgresDialect, sql } from 'kysely';
import pg from 'pg';
import type { DB } from './schema.js';
import { PglitePool } from './pglite-pool.js';

export type Engine = 'pglite' | 'postgres';

export interface Database {
  readonly db: Kysely<DB>;
  readonly engine: Engine;
  /** Subscribe to a NOTIFY channel; returns an unsubscribe function. */
  listen(channel: string, onPayload: (payload: string) => void): Promise<() => Promise<void>>;
  notify(channel: string, payload: string): Promise<void>;
  /** Called after the LISTEN connection was lost and re-established (notifications may have been missed). */
  onReconnect(cb: () => void): () => void;
  /** Resolves when the database answers within `timeoutMs`. */
  ping(timeoutMs: number): Promise<void>;
  close(): Promise<void>;
  /**
   * Runs `fn` inside one transaction on a dedicated session that also accepts
   * multi-statement scripts (migrations). Commits when `fn` resolves.
   */
  withScriptTransaction<T>(fn: (s: ScriptSession) => Promise<T>): Promise<T>;
}

export interface ScriptSession {
  query<R = Record<string, unknown>>(text: string, params?: unknown[]): Promise<R[]>;
  exec(script: string): Promise<void>;
}

const INT8 = 20;
const NUMERIC = 1700;

// int8 counts fit in a JS number for this domain; numeric (costs) as number too.
pg.types.setTypeParser(INT8, (v: string) => Number(v));
pg.types.setTypeParser(NUMERIC, (v: string) => Number(v));

export interface DatabaseOptions {
  databaseUrl: string | null;
  directUrl?: string | null;
  /** PGlite data directory; null = in memory. */
  dataDir: string | null;
  poolSize?: number;
}

function withTimeout<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const t = setTimeout(() => reject(new Error(`${what} timed out after ${ms} ms`)), ms);
    p.then(
      (v) => { clearTimeout(t); resolve(v); },
      (e) => { clearTimeout(t); reject(e); },
    );
  });
}

export async function openDatabase(opts: DatabaseOptions): Promise<Database> {
  return opts.databaseUrl ? openPostgres(opts) : openPglite(opts.dataDir);
}

// Statements with parameters run as named prepared statements, so PostgreSQL parses and plans
// each distinct text once per connection instead of on every execution (the hot endpoints
// are one statement each; planning was a large share of their database time). Distinct
// texts are bounded by the code, and the cap below keeps a connection's cache bounded even
// if some text embedded values.
const MAX_PREPARED_PER_CONNECTION = 1000;
const preparedNames = new Map<string, string>();

function statementName(text: string): string {
  let name = preparedNames.get(text);
  if (!name) {
    name = 'ark_' + createHash('sha1').update(text).digest('hex').slice(0, 24);
    if (preparedNames.size < 10_000) preparedNames.set(text, name);
  }
  return name;
}

type PoolClientWithCache = pg.PoolClient & { arkPrepared?: Set<string> };

function usePreparedStatements(client: PoolClientWithCache): void {
  if (client.arkPrepared) return;
  const prepared = (client.arkPrepared = new Set<string>());
  const original = client.query.bind(client) as (...args: unknown[]) => unknown;
  (client as { query: unknown }).query = (text: unknown, values?: unknown, cb?: unknown) => {
    if (typeof text === 'string' && Array.isArray(values) && cb === undefined) {
      const name = statementName(text);
      if (prepared.has(name) || prepared.size < MAX_PREPARED_PER_CONNECTION) {
        prepared.add(name);
        return original({ name, text, values });
      }
    }
    return original(text, values, cb);
  };
}

async function openPostgres(opts: DatabaseOptions): Promise<Database> {
  const pool = new pg.Pool({
    connectionString: opts.databaseUrl!,
    max: opts.poolSize ?? 20,
    idleTimeoutMillis: 30_000,
    connectionTimeoutMillis: 5_000,
  });
  pool.on('error', () => {
    /* idle client errors surface on the next query */
  });
  pool.on('connect', (client) => usePreparedStatements(client as PoolClientWithCache));
  const db = new Kysely<DB>({ dialect: new PostgresDialect({ pool }) });
  // One LISTEN connection per process, shared by every channel. If it drops, it is
  // re-established with backoff and every channel re-LISTENed; `onReconnect` callbacks run
  // so subscribers can recover what they may have missed.
  let listener: pg.Client | null = null;
  let listenerReady: Promise<pg.Client> | null = null;
  let closed = false;
  const handlers = new Map<string, Set<(p: string) => void>>();
  const reconnectCallbacks = new Set<() => void>();

  function scheduleReconnect(attempt: number): void {
    if (closed) return;
    const delay = Math.min(5000, 100 * 2 ** attempt);
    setTimeout(() => {
      if (closed || handlers.size === 0) return;
      getListener()
        .then(() => { for (const cb of reconnectCallbacks) cb(); })
        .catch(() => scheduleReconnect(attempt + 1));
    }, delay).unref();
  }

  async function getListener(): Promise<pg.Client> {
    if (listener) return listener;
    if (!listenerReady) {
      listenerReady = (async () => {
        const c = new pg.Client({ connectionString: opts.directUrl ?? opts.databaseUrl! });
        let lost = false;
        const onLost = () => {
          if (lost) return;
          lost = true;
          if (listener === c) listener = null;
          listenerReady = null;
          c.end().catch(() => undefined);
          scheduleReconnect(0);
        };
        c.on('error', onLost);
        c.on('end', onLost);
        c.on('notification', (msg) => {
          const set = handlers.get(msg.channel);
          if (set) for (const fn of set) fn(msg.payload ?? '');
        });
        try {
          await c.connect();
          for (const channel of handlers.keys()) await c.query(`LISTEN ${pg.escapeIdentifier(channel)}`);
        } catch (err) {
          lost = true;
          listenerReady = null;
          c.end().catch(() => undefined);
          throw err;
        }
        listener = c;
        return c;
      })();
    }
    return listenerReady;
  }

  return {
    db,
    engine: 'postgres',
    async listen(channel, onPayload) {
      let set = handlers.get(channel);
      if (!set) {
        set = new Set();
        handlers.set(channel, set);
        try {
          const c = await getListener();
          // A fresh listener already LISTENs to every registered channel.
          await c.query(`LISTEN ${pg.escapeIdentifier(channel)}`);
        } catch {
          // Database not reachable yet: keep the subscription and keep trying to connect.
          scheduleReconnect(1);
        }
      }
      set.add(onPayload);
      return async () => {
        set!.delete(onPayload);
      };
    },
    onReconnect(cb) {
      reconnectCallbacks.add(cb);
      return () => reconnectCallbacks.delete(cb);
    },
    async notify(channel, payload) {
      await sql`SELECT pg_notify(${channel}, ${payload})`.execute(db);
    },
    async ping(timeoutMs) {
      await withTimeout(sql`SELECT 1`.execute(db), timeoutMs, 'database ping');
    },
    async close() {
      closed = true;
      await db.destroy();
      // Kysely ends the pool only if it ever used it; scripts may have used it directly.
      if (!pool.ended) await pool.end().catch(() => undefined);
      if (listener) await listener.end().catch(() => undefined);
    },
    async withScriptTransaction(fn) {
      const client = await pool.connect();
      try {
        await client.query('BEGIN');
        const result = await fn({
          query: async (text, params) => (await client.query(text, params)).rows,
          exec: async (script) => { await client.query(script); },
        });
        await client.query('COMMIT');
        return result;
      } catch (err) {
        await client.query('ROLLBACK').catch(() => undefined);
        throw err;
      } finally {
        client.release();
      }
    },
  };
}

/**
 * initdb for a new data directory, in a worker thread: it grows PGlite's WASM heap by about
 * 0.5 GiB, which would otherwise stay resident for the life of the server; it goes with the
 * thread. (Inline code, so it runs the same from the build and from source.)
 */
async function initPgliteDataDir(pgdata: string): Promise<void> {
  const code = `
    const { parentPort, workerData } = require('node:worker_threads');
    import(workerData.module).then(async ({ PGlite }) => {
      const db = new PGlite(workerData.pgdata);
      await db.waitReady;
      await db.close();
      parentPort.postMessage('ready');
    });`;
  const worker = new Worker(code, { eval: true, workerData: { pgdata, module: import.meta.resolve('@electric-sql/pglite') } });
  await new Promise<void>((resolve, reject) => {
    let ready = false;
    worker.once('message', () => (ready = true));
    worker.once('error', reject);
    worker.once('exit', (code) => (ready ? resolve() : reject(new Error(`initialising the embedded database failed (worker exit ${code})`))));
  });
}

async function openPglite(dataDir: string | null): Promise<Database> {
  const { PGlite } = await import('@electric-sql/pglite');
  if (dataDir) mkdirSync(dataDir, { recursive: true });
  const pgdata = dataDir ? path.join(dataDir, 'pgdata') : undefined;
  if (pgdata && !existsSync(path.join(pgdata, 'PG_VERSION'))) await initPgliteDataDir(pgdata);
  const pglite = new PGlite(pgdata, {
    parsers: { [INT8]: (v: string) => Number(v), [NUMERIC]: (v: string) => Number(v) },
  });
  await pglite.waitReady;
  const pool = new PglitePool(pglite);
  // The pool is a single-session lock; Kysely treats it like a pg.Pool.
  const db = new Kysely<DB>({ dialect: new PostgresDialect({ pool: pool as unknown as pg.Pool }) });
  let closed = false;
  return {
    db,
    engine: 'pglite',
    async listen(channel, onPayload) {
      const unsub = await pglite.listen(channel, onPayload);
      return async () => { await unsub(); };
    },
    async notify(channel, payload) {
      await sql`SELECT pg_notify(${channel}, ${payload})`.execute(db);
    },
    onReconnect() {
      return () => undefined; // in-process: never disconnected
    },
    async ping(timeoutMs) {
      if (closed) throw new Error('database is closed');
      await withTimeout(sql`SELECT 1`.execute(db), timeoutMs, 'database ping');
    },
    async close() {
      if (closed) return;
      closed = true;
      await db.destroy();
      await pglite.close();
    },
    async withScriptTransaction(fn) {
      const client = await pool.connect();
      try {
        return await pglite.transaction(async (tx) =>
          fn({
            query: async (text, params) => (await tx.query(text, params ?? [])).rows as never[],
            exec: async (script) => { await tx.exec(script); },
          }),
        );
      } finally {
        client.release();
      }
    },
  };
}
