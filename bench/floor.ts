// The RAW FLOOR for the thread CRUD benchmark: the least a server can do to answer
//   POST /v1/threads → GET /v1/threads/{id} → PATCH /v1/threads/{id} → DELETE /v1/threads/{id}
// over the same database driver and the same `threads` table as the app.
//
// Hand-written on purpose: the yardstick must do exactly this cycle's minimal SQL and nothing
// else (no framework, no schema validation, no audit rows, no logging, no session lookup — the
// bearer token is compared to a fixed string held in memory), and no library ships a server
// like that. Everything the app spends above these figures is framework + application work,
// which is what the ratio app/floor in bench/run.ts exposes.
//
// The yardstick the outside checker uses: one PREPARED statement per request (named
// node-postgres queries: parsed once per pooled connection, then bind + execute), the token
// compared in memory, no audit. (Until issue 12 it sent unnamed statements, re-parsed on every
// request like the app's; a prepared floor is the faster, stricter yardstick, so the unnamed one
// was dropped.)
//
// Same as the app: the project's migrations (src/db/migrator.ts) on a fresh database of its
// own, node-postgres `pg.Pool` with the app's pool size (20, src/db/database.ts) for
// PostgreSQL, or an on-disk PGlite with the app's parsers for the embedded engine, UUID v7 ids,
// JSON answers shaped like api.md §2.3 Thread, statuses 201/200/200/204.
//
// Run as a child process (bench/run.ts does it):
//   BENCH_FLOOR_PORT=4321 BENCH_FLOOR_TOKEN=secret BENCH_FLOOR_ENGINE=pglite BENCH_FLOOR_DATA_DIR=/tmp/x \
//     node --import tsx bench/floor.ts
//   (postgres: BENCH_FLOOR_ENGINE=postgres BENCH_FLOOR_DATABASE_URL=postgres://…/fresh_db)
import http from 'node:http';
import path from 'node:path';
import { mkdirSync } from 'node:fs';
import pg from 'pg';
import { v7 as uuidv7 } from 'uuid';
import { openDatabase } from '../src/db/database.js';
import { migrate } from '../src/db/migrator.js';

const UUID_RE = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
const COLUMNS = 'id, org_id, created_by_user_id, title, project_id, is_private, active_run_id, created_at, updated_at';
const INT8 = 20;
const NUMERIC = 1700;

interface Row {
  id: string;
  org_id: string;
  created_by_user_id: string;
  title: string | null;
  project_id: string | null;
  is_private: boolean;
  active_run_id: string | null;
  created_at: Date;
  updated_at: Date;
}

/** The only driver surface the floor needs: one parameterised statement (`name`: prepared once per connection). */
interface Driver {
  query(text: string, params: unknown[], name?: string): Promise<{ rows: Row[]; rowCount: number }>;
  close(): Promise<void>;
}

function env(name: string, def?: string): string {
  const v = process.env[name];
  if (v === undefined || v === '') {
    if (def !== undefined) return def;
    throw new Error(`${name} is required`);
  }
  return v;
}

async function openDriver(engine: string, databaseUrl: string | null, dataDir: string | null, poolSize: number): Promise<Driver> {
  if (engine === 'postgres') {
    // Same settings as openPostgres() in src/db/database.ts.
    const pool = new pg.Pool({ connectionString: databaseUrl!, max: poolSize, idleTimeoutMillis: 30_000, connectionTimeoutMillis: 5_000 });
    pool.on('error', () => undefined);
    return {
      // A named statement is parsed once per connection, then only bound and executed.
      query: async (text, params, name) => {
        const r = await pool.query<Row>(name ? { name, text, values: params } : { text, values: params });
        return { rows: r.rows, rowCount: r.rowCount ?? 0 };
      },
      close: () => pool.end(),
    };
  }
  // Same data layout and parsers as openPglite() in src/db/database.ts. PGlite is one session
  // and queues statements itself; the floor has no transactions, so no extra lock is needed.
  const { PGlite } = await import('@electric-sql/pglite');
  mkdirSync(dataDir!, { recursive: true });
  const db = new PGlite(path.join(dataDir!, 'pgdata'), {
    parsers: { [INT8]: (v: string) => Number(v), [NUMERIC]: (v: string) => Number(v) },
  });
  await db.waitReady;
  return {
    query: async (text, params) => {
      const r = await db.query<Row>(text, params);
      return { rows: r.rows, rowCount: r.affectedRows ?? r.rows.length };
    },
    close: () => db.close(),
  };
}

/** Migrates a fresh database with the project's migrator and creates the one user + account. */
async function prepare(engine: string, databaseUrl: string | null, dataDir: string | null): Promise<{ userId: string; orgId: string }> {
  const database = await openDatabase({ databaseUrl: engine === 'postgres' ? databaseUrl : null, dataDir: engine === 'postgres' ? null : dataDir });
  try {
    await migrate(database);
    const userId = uuidv7();
    const orgId = uuidv7();
    await database.withScriptTransaction(async (s) => {
      await s.query(`INSERT INTO users (id, login, username, email) VALUES ($1, 'floor', 'floor', 'floor@bench.invalid')`, [userId]);
      await s.query(`INSERT INTO accounts (id, slug, name, type, owner_user_id) VALUES ($1, $2, 'floor', 'personal', $3)`, [orgId, `floor-${orgId.slice(0, 8)}`, userId]);
      await s.query(`INSERT INTO account_memberships (account_id, user_id, role) VALUES ($1, $2, 'owner')`, [orgId, userId]);
    });
    return { userId, orgId };
  } finally {
    await database.close();
  }
}

function threadJson(r: Row): string {
  return JSON.stringify({
    id: r.id,
    org_id: r.org_id,
    created_by_user_id: r.created_by_user_id,
    title: r.title,
    project_id: r.project_id,
    is_private: r.is_private,
    active_run_id: r.active_run_id,
    starred: false,
    created_at: r.created_at.toISOString(),
    updated_at: r.updated_at.toISOString(),
  });
}

function send(res: http.ServerResponse, status: number, body: string | null): void {
  if (body === null) {
    res.writeHead(status);
    res.end();
    return;
  }
  res.writeHead(status, { 'content-type': 'application/json; charset=utf-8', 'content-length': Buffer.byteLength(body) });
  res.end(body);
}

function error(res: http.ServerResponse, status: number, code: string): void {
  send(res, status, JSON.stringify({ code, message: code }));
}

function readBody(req: http.IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => resolve(chunks.length === 1 ? chunks[0].toString('utf8') : Buffer.concat(chunks).toString('utf8')));
    req.on('error', reject);
  });
}

/** A title as api.md §6 takes it: string (trimmed, ≤ 200) or null; undefined = absent. */
function titleOf(raw: string): string | null | undefined | Error {
  let body: unknown;
  try {
    body = raw === '' ? {} : JSON.parse(raw);
  } catch {
    return new Error('bad json');
  }
  if (typeof body !== 'object' || body === null) return new Error('bad body');
  const t = (body as { title?: unknown }).title;
  if (t === undefined || t === null) return t;
  if (typeof t !== 'string') return new Error('bad title');
  const trimmed = t.trim();
  return trimmed.length > 200 ? new Error('title too long') : trimmed;
}

async function main(): Promise<void> {
  const port = Number(env('BENCH_FLOOR_PORT'));
  const host = env('BENCH_FLOOR_HOST', '127.0.0.1');
  const engine = env('BENCH_FLOOR_ENGINE', 'pglite');
  if (engine !== 'pglite' && engine !== 'postgres') throw new Error('BENCH_FLOOR_ENGINE must be pglite or postgres');
  const databaseUrl = engine === 'postgres' ? env('BENCH_FLOOR_DATABASE_URL') : null;
  const dataDir = engine === 'pglite' ? env('BENCH_FLOOR_DATA_DIR') : null;
  const poolSize = Number(env('BENCH_FLOOR_POOL_SIZE', '20'));
  const expectedAuth = `Bearer ${env('BENCH_FLOOR_TOKEN')}`;

  const { userId, orgId } = await prepare(engine, databaseUrl, dataDir);
  const db = await openDriver(engine, databaseUrl, dataDir, poolSize);

  const INSERT = `INSERT INTO threads (id, org_id, created_by_user_id, title, is_private) VALUES ($1, $2, $3, $4, $5) RETURNING ${COLUMNS}`;
  const SELECT = `SELECT ${COLUMNS} FROM threads WHERE id = $1 AND org_id = $2 AND deleted_at IS NULL`;
  const UPDATE = `UPDATE threads SET title = $3, updated_at = now() WHERE id = $1 AND org_id = $2 AND deleted_at IS NULL RETURNING ${COLUMNS}`;
  const DELETE = `UPDATE threads SET deleted_at = now() WHERE id = $1 AND org_id = $2 AND deleted_at IS NULL`;

  async function handle(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    const url = req.url ?? '/';
    const method = req.method ?? 'GET';
    if (url === '/readyz' || url === '/healthz') {
      await db.query('SELECT 1', []);
      return send(res, 200, '{"status":"ok"}');
    }
    if (!url.startsWith('/v1/threads')) return error(res, 404, 'not_found');
    if (req.headers.authorization !== expectedAuth) return error(res, 401, 'auth.unauthorized');

    if (url === '/v1/threads') {
      if (method !== 'POST') return error(res, 404, 'not_found');
      const title = titleOf(await readBody(req));
      if (title instanceof Error) return error(res, 400, 'validation.error');
      const r = await db.query(INSERT, [uuidv7(), orgId, userId, title ?? null, false], 'floor_insert');
      return send(res, 201, threadJson(r.rows[0]));
    }
    const id = url.slice('/v1/threads/'.length);
    if (!UUID_RE.test(id)) return error(res, 404, 'threads.not_found');
    switch (method) {
      case 'GET': {
        const r = await db.query(SELECT, [id, orgId], 'floor_select');
        return r.rows.length ? send(res, 200, threadJson(r.rows[0])) : error(res, 404, 'threads.not_found');
      }
      case 'PATCH': {
        const title = titleOf(await readBody(req));
        if (title instanceof Error) return error(res, 400, 'validation.error');
        const r = await db.query(UPDATE, [id, orgId, title ?? null], 'floor_update');
        return r.rows.length ? send(res, 200, threadJson(r.rows[0])) : error(res, 404, 'threads.not_found');
      }
      case 'DELETE': {
        const r = await db.query(DELETE, [id, orgId], 'floor_delete');
        return r.rowCount ? send(res, 204, null) : error(res, 404, 'threads.not_found');
      }
      default:
        return error(res, 404, 'not_found');
    }
  }

  const server = http.createServer((req, res) => {
    handle(req, res).catch((err: Error) => {
      process.stderr.write(`floor: ${err.message}\n`);
      if (!res.headersSent) error(res, 500, 'internal_error');
      else res.destroy();
    });
  });
  // Fastify's defaults, so keep-alive behaves the same on both targets.
  server.keepAliveTimeout = 72_000;
  server.headersTimeout = 73_000;
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => resolve());
  });
  process.stdout.write(`floor listening on ${host}:${port} (${engine})\n`);

  let stopping = false;
  const stop = () => {
    if (stopping) return;
    stopping = true;
    server.closeAllConnections();
    server.close(() => {
      db.close().then(
        () => process.exit(0),
        () => process.exit(1),
      );
    });
    setTimeout(() => process.exit(1), 10_000).unref();
  };
  process.once('SIGTERM', stop);
  process.once('SIGINT', stop);
  // Orphaned (the runner was killed outright): stop rather than linger.
  const parent = process.ppid;
  setInterval(() => {
    if (process.ppid !== parent) stop();
  }, 1_000).unref();
}

main().catch((err: Error) => {
  process.stderr.write(`floor: ${err.stack ?? err.message}\n`);
  process.exit(1);
});
