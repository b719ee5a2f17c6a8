// Test harness: a fresh database per test file (PGlite in memory, or a new database on the
// PostgreSQL server named by ARKLOOP_TEST_DATABASE_URL), the real app, requests via inject.
import { randomBytes } from 'node:crypto';
import pg from 'pg';
import pino from 'pino';
import type { FastifyInstance } from 'fastify';
import { loadConfig } from '../../src/config.js';
import { openDatabase, type Database, type DatabaseKind } from '../../src/db/database.js';
import { migrate } from '../../src/db/migrator.js';
import { buildApp } from '../../src/http/app.js';
import type { AppContext } from '../../src/app-context.js';
import { closeContext, createContext, startWorker } from '../../src/server.js';

export const TEST_PG_URL = process.env.ARKLOOP_TEST_DATABASE_URL || null;
export const databaseKind: DatabaseKind = TEST_PG_URL ? 'postgres' : 'pglite';

export interface TestDatabase {
  database: Database;
  url: string | null;
  drop(): Promise<void>;
}

/** A fresh, migrated database for one test file. */
export async function createTestDatabase(): Promise<TestDatabase> {
  if (!TEST_PG_URL) {
    const database = await openDatabase({ databaseUrl: null, dataDir: null });
    await migrate(database);
    return { database, url: null, drop: async () => database.close() };
  }
  const name = `arkloop_t_${randomBytes(6).toString('hex')}`;
  const admin = new pg.Client({ connectionString: TEST_PG_URL });
  await admin.connect();
  await admin.query(`CREATE DATABASE ${name}`);
  await admin.end();
  const url = new URL(TEST_PG_URL);
  url.pathname = '/' + name;
  const database = await openDatabase({ databaseUrl: url.toString(), dataDir: null, poolSize: 10 });
  await migrate(database);
  return {
    database,
    url: url.toString(),
    drop: async () => {
      await database.close();
      const c = new pg.Client({ connectionString: TEST_PG_URL });
      await c.connect();
      await c.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
      await c.end();
    },
  };
}

export interface Res<T = any> {
  status: number;
  body: T;
  headers: Record<string, string | string[] | undefined>;
  text: string;
}

export interface ReqOpts {
  token?: string;
  headers?: Record<string, string>;
  /** Raw payload (sent as is); otherwise `body` is JSON-encoded. */
  raw?: string | Buffer;
  query?: Record<string, string | number | boolean>;
}

export interface TestApp {
  app: FastifyInstance;
  ctx: AppContext;
  db: TestDatabase;
  request<T = any>(method: string, path: string, body?: unknown, opts?: ReqOpts): Promise<Res<T>>;
  get<T = any>(path: string, opts?: ReqOpts): Promise<Res<T>>;
  post<T = any>(path: string, body?: unknown, opts?: ReqOpts): Promise<Res<T>>;
  patch<T = any>(path: string, body?: unknown, opts?: ReqOpts): Promise<Res<T>>;
  put<T = any>(path: string, body?: unknown, opts?: ReqOpts): Promise<Res<T>>;
  del<T = any>(path: string, opts?: ReqOpts): Promise<Res<T>>;
  close(): Promise<void>;
}

export const TEST_SECRETS = {
  jwtSecret: 'test-jwt-secret-0123456789abcdef0123456789abcdef',
  encryptionKey: '0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef',
};

/**
 * A fresh app on a fresh database; or, with `opts.database`, a second app (a second "process")
 * on an existing one — that database is then not dropped by `close()`.
 */
export async function startTestApp(env: Record<string, string> = {}, opts: { database?: Database; worker?: boolean; log?: pino.Logger } = {}): Promise<TestApp> {
  const db: TestDatabase = opts.database
    ? { database: opts.database, url: null, drop: async () => undefined }
    : await createTestDatabase();
  const config = loadConfig({ ARKLOOP_LOG_LEVEL: process.env.TEST_LOG_LEVEL ?? 'silent', ARKLOOP_DATA_DIR: '/tmp/arkloop-test-unused', ...env });
  const ctx = await createContext({
    config,
    database: db.database,
    secrets: TEST_SECRETS,
    log: opts.log ?? pino({ level: config.logLevel }),
  });
  const app = await buildApp(ctx);
  await app.ready();
  const client = testClient(app, ctx, db);
  if (!opts.worker) return client;
  const worker = startWorker(ctx);
  return { ...client, close: async () => { await worker.stop(); await client.close(); } };
}

/** The request helpers over `app.inject`, with headers every request carries unless it sets them. */
export function testClient(app: FastifyInstance, ctx: AppContext, db: TestDatabase, defaultHeaders: Record<string, string> = {}): TestApp {
  const request = async (method: string, path: string, body?: unknown, opts: ReqOpts = {}): Promise<Res> => {
    const headers: Record<string, string> = { ...defaultHeaders, ...(opts.headers ?? {}) };
    if (opts.token) headers.authorization = `Bearer ${opts.token}`;
    let payload: string | Buffer | undefined;
    if (opts.raw !== undefined) payload = opts.raw;
    else if (body !== undefined) {
      payload = JSON.stringify(body);
      headers['content-type'] ??= 'application/json';
    }
    const res = await app.inject({ method: method as 'GET', url: path, headers, payload, query: opts.query as Record<string, string> });
    let parsed: unknown = undefined;
    if (res.body && String(res.headers['content-type'] ?? '').includes('json')) parsed = JSON.parse(res.body);
    return { status: res.statusCode, body: parsed, headers: res.headers as Res['headers'], text: res.body };
  };
  return {
    app,
    ctx,
    db,
    request,
    get: (p, o) => request('GET', p, undefined, o),
    post: (p, b, o) => request('POST', p, b, o),
    patch: (p, b, o) => request('PATCH', p, b, o),
    put: (p, b, o) => request('PUT', p, b, o),
    del: (p, o) => request('DELETE', p, undefined, o),
    close: async () => {
      await app.close();
      await ctx.credentials.close().catch(() => undefined);
      await ctx.engine.close().catch(() => undefined);
      await ctx.counters.close();
      await ctx.accessLog.close();
      await ctx.runSlots?.close();
      await db.drop();
    },
  };
}

let seq = 0;
export function uniq(prefix = 'u'): string {
  return `${prefix}${Date.now().toString(36)}${(seq++).toString(36)}${randomBytes(2).toString('hex')}`;
}

export interface TestUser {
  id: string;
  login: string;
  email: string;
  password: string;
  token: string;
  refreshCookie: string;
  personalAccountId: string;
}

export function cookieValue(res: Res, name: string): string | null {
  const raw = res.headers['set-cookie'];
  const list = Array.isArray(raw) ? raw : raw ? [raw] : [];
  for (const c of list) {
    const m = new RegExp(`^${name}=([^;]*)`).exec(c);
    if (m) return m[1];
  }
  return null;
}

export async function registerUser(t: TestApp, overrides: Partial<{ login: string; email: string; password: string }> = {}): Promise<TestUser> {
  const login = overrides.login ?? uniq('user');
  const email = overrides.email ?? `${login}@example.com`;
  const password = overrides.password ?? 'correct horse battery';
  const res = await t.post('/v1/auth/register', { login, email, password });
  if (res.status !== 201) throw new Error(`register failed: ${res.status} ${res.text}`);
  const me = await t.get('/v1/me', { token: res.body.access_token });
  return {
    id: res.body.user_id,
    login,
    email,
    password,
    token: res.body.access_token,
    refreshCookie: cookieValue(res, 'arkloop_refresh_token')!,
    personalAccountId: me.body.org_id,
  };
}

export { closeContext };
