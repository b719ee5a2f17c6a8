// The PostgreSQL engine: a node-postgres pool behind Kysely, with the LISTEN connection,
// prepared statements and the retry of statements that never ran (see database.ts).
import { createHash } from 'node:crypto';
import { Kysely, PostgresDialect, sql } from 'kysely';
import pg from 'pg';
import type { DB } from './schema.js';
import { isConnectionError, neverExecuted } from './connection-errors.js';
import { INT8_OID, NUMERIC_OID, databasePatience, withTimeout, type Database, type DatabaseOptions } from './database.js';

pg.types.setTypeParser(INT8_OID, (v: string) => Number(v));
pg.types.setTypeParser(NUMERIC_OID, (v: string) => Number(v));

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

type PoolClientWithCache = pg.PoolClient & { arkPrepared?: Set<string>; arkInTransaction?: boolean };

const TX_BEGIN = /^\s*(begin|start\s+transaction)\b/i;
const TX_END = /^\s*(commit|end|abort|rollback(?!\s+to\b))\b/i;
/** How long a statement that provably never ran is retried (connection refused or shut down). */
const RETRY_WINDOW_MS = 1000;

function retryDeadline(failedAt: number): number {
  return Math.max(failedAt + RETRY_WINDOW_MS, databasePatience.getStore()?.deadline() ?? 0);
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

/**
 * Wraps a pooled client's query: parameterised statements become named prepared statements
 * (see above), and a statement outside a transaction that provably never ran because its
 * connection was shut down or refused (a database restart, `pg_terminate_backend`, a
 * failover) is sent again on another connection of the pool, a few times within about a
 * second. Inside a transaction nothing is retried: the transaction is gone, and the caller
 * gets the error (the API answers 503).
 */
function wrapClient(client: PoolClientWithCache, pool: pg.Pool): void {
  if (client.arkPrepared) return;
  const prepared = (client.arkPrepared = new Set<string>());
  const original = client.query.bind(client) as (...args: unknown[]) => Promise<unknown>;
  const send = (c: (...args: unknown[]) => Promise<unknown>, set: Set<string>, text: string, values: unknown[]) => {
    const name = statementName(text);
    if (set.has(name) || set.size < MAX_PREPARED_PER_CONNECTION) {
      set.add(name);
      return c({ name, text, values });
    }
    return c(text, values);
  };
  const retryElsewhere = async (text: string, values: unknown[] | undefined, first: unknown): Promise<unknown> => {
    let last = first;
    const deadline = retryDeadline(Date.now());
    for (let delay = 0; Date.now() + delay <= deadline; delay = Math.min(Math.max(100, delay * 2), 2000)) {
      await sleep(delay);
      let other: PoolClientWithCache;
      try {
        other = (await pool.connect()) as PoolClientWithCache;
      } catch (err) {
        if (!neverExecuted(err)) throw err;
        last = err;
        continue;
      }
      let failed: unknown = null;
      try {
        return Array.isArray(values) ? await other.query(text, values) : await other.query(text);
      } catch (err) {
        failed = err;
        if (!neverExecuted(err)) throw err;
        last = err;
      } finally {
        other.release(failed && isConnectionError(failed) ? (failed as Error) : undefined);
      }
    }
    throw last;
  };
  (client as { query: unknown }).query = (text: unknown, values?: unknown, cb?: unknown) => {
    if (typeof text !== 'string' || cb !== undefined || (values !== undefined && !Array.isArray(values))) return original(text, values, cb);
    if (TX_BEGIN.test(text)) client.arkInTransaction = true;
    else if (TX_END.test(text)) client.arkInTransaction = false;
    const inTransaction = client.arkInTransaction === true && !TX_BEGIN.test(text);
    const p = Array.isArray(values) ? send(original, prepared, text, values) : original(text);
    return p.catch((err: unknown) => {
      if (inTransaction || !neverExecuted(err)) throw err;
      client.arkInTransaction = false;
      return retryElsewhere(text, values as unknown[] | undefined, err);
    });
  };
}

export async function openPostgres(opts: DatabaseOptions): Promise<Database> {
  const pool = new pg.Pool({
    connectionString: opts.databaseUrl!,
    max: opts.poolSize ?? 20,
    idleTimeoutMillis: 30_000,
    connectionTimeoutMillis: 5_000,
    keepAlive: true,
  });
  const log = opts.log;
  // A broken connection must never take the process down: every client of the pool keeps an
  // 'error' listener for its whole life (pg-pool listens only while a client is idle, and a
  // client whose server goes away while it is checked out would otherwise emit an unhandled
  // 'error'). The statement in flight gets the error too; the pool drops the client.
  pool.on('error', () => {
    /* an idle client broke: the pool has removed it */
  });
  pool.on('connect', (client) => {
    client.on('error', () => undefined);
    wrapClient(client as PoolClientWithCache, pool);
  });
  // Opening a connection inside a patience window (a worker's job) is retried within it too.
  const connect = pool.connect.bind(pool) as () => Promise<pg.PoolClient>;
  (pool as { connect: unknown }).connect = (cb?: unknown) => {
    if (cb !== undefined) return (connect as (cb: unknown) => void)(cb);
    if (!databasePatience.getStore()) return connect();
    return (async () => {
      const failedAt = Date.now();
      for (let delay = 100; ; delay = Math.min(delay * 2, 2000)) {
        try {
          return await connect();
        } catch (err) {
          if (!neverExecuted(err) || Date.now() + delay > retryDeadline(failedAt)) throw err;
        }
        await sleep(delay);
      }
    })();
  };
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
        .then(() => {
          log?.info({ attempts: attempt + 1 }, 'database listener connection re-established');
          for (const cb of reconnectCallbacks) cb();
        })
        .catch(() => scheduleReconnect(attempt + 1));
    }, delay).unref();
  }

  async function getListener(): Promise<pg.Client> {
    if (listener) return listener;
    if (!listenerReady) {
      listenerReady = (async () => {
        const c = new pg.Client({ connectionString: opts.directUrl ?? opts.databaseUrl!, keepAlive: true, connectionTimeoutMillis: 5_000 });
        let lost = false;
        const onLost = (err?: Error) => {
          if (lost) return;
          lost = true;
          const wasListening = listener === c;
          if (wasListening) listener = null;
          listenerReady = null;
          c.end().catch(() => undefined);
          if (wasListening && !closed) log?.warn({ err: err?.message }, 'database listener connection lost; reconnecting');
          scheduleReconnect(0);
        };
        c.on('error', (err) => onLost(err));
        c.on('end', () => onLost());
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
    kind: 'postgres',
    poolStats() {
      return { inUse: pool.totalCount - pool.idleCount, idle: pool.idleCount, waiting: pool.waitingCount, max: opts.poolSize ?? 20 };
    },
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
