// The embedded engine: one PGlite instance in the process, behind Kysely through PglitePool.
import { existsSync, mkdirSync } from 'node:fs';
import path from 'node:path';
import { Worker } from 'node:worker_threads';
import { Kysely, PostgresDialect, sql } from 'kysely';
import type pg from 'pg';
import type { DB } from './schema.js';
import { PglitePool } from './pglite-pool.js';
import { INT8_OID, NUMERIC_OID, withTimeout, type Database } from './database.js';

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

export async function openPglite(dataDir: string | null): Promise<Database> {
  const { PGlite } = await import('@electric-sql/pglite');
  if (dataDir) mkdirSync(dataDir, { recursive: true });
  const pgdata = dataDir ? path.join(dataDir, 'pgdata') : undefined;
  if (pgdata && !existsSync(path.join(pgdata, 'PG_VERSION'))) await initPgliteDataDir(pgdata);
  const pglite = new PGlite(pgdata);
  await pglite.waitReady;
  const pool = new PglitePool(pglite, { [INT8_OID]: (v: string) => Number(v), [NUMERIC_OID]: (v: string) => Number(v) });
  // The pool is a single-session lock; Kysely treats it like a pg.Pool.
  const db = new Kysely<DB>({ dialect: new PostgresDialect({ pool: pool as unknown as pg.Pool }) });
  let closed = false;
  return {
    db,
    kind: 'pglite',
    poolStats: () => pool.stats(),
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
