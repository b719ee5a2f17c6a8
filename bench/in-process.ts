// The app as `arkloop api` builds it, in the bench's own process, on a fresh PGlite (in memory)
// or a fresh PostgreSQL database, driven through Fastify's inject: the API's own cost without
// sockets. Shared by the in-process benches (admin.ts, billing.ts, ip-flags.ts, webhooks.ts).
import { randomBytes } from 'node:crypto';
import pino from 'pino';
import { loadConfig } from '../src/config.js';
import { openDatabase } from '../src/db/database.js';
import { migrate } from '../src/db/migrator.js';
import { buildApp } from '../src/http/app.js';
import { createContext, closeContext, startWorker } from '../src/server.js';
import { createDatabase, pgReachable, type Cleanup } from './servers.js';

export const BENCH_PG = process.env.ARKLOOP_BENCH_DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres';

/** `env`: extra ARKLOOP_* settings; `worker`: also run a worker in the process, as `arkloop serve` does. */
export async function startInProcessApp(engine: string, cleanup: Cleanup, dbPrefix: string, opts: { env?: Record<string, string>; worker?: boolean } = {}) {
  let databaseUrl: string | null = null;
  if (engine === 'postgres') {
    if (!(await pgReachable(BENCH_PG))) throw new Error(`PostgreSQL at ${BENCH_PG} does not answer`);
    databaseUrl = (await createDatabase(cleanup, BENCH_PG, `${dbPrefix}_${randomBytes(4).toString('hex')}`)).url;
  }
  const database = await openDatabase({ databaseUrl, dataDir: null, poolSize: 20 });
  await migrate(database);
  const config = loadConfig({ ARKLOOP_LOG_LEVEL: 'warn', ARKLOOP_DATA_DIR: '/tmp/arkloop-bench-unused', ...opts.env });
  const ctx = await createContext({
    config,
    database,
    secrets: { jwtSecret: randomBytes(32).toString('hex'), encryptionKey: randomBytes(32) } as never,
    log: pino({ level: 'warn' }),
  });
  const app = await buildApp(ctx);
  await app.ready();
  const worker = opts.worker ? startWorker(ctx) : null;
  cleanup.add('close app', async () => {
    await worker?.stop();
    await app.close();
    await closeContext(ctx);
    await database.close();
  });
  const call = async (method: string, url: string, token: string, body?: unknown) => {
    const res = await app.inject({ method: method as 'GET', url, payload: body as object, headers: { authorization: `Bearer ${token}` } });
    return { status: res.statusCode, body: res.body ? JSON.parse(res.body) : null };
  };
  const register = async (login: string) => {
    const res = await app.inject({ method: 'POST', url: '/v1/auth/register', payload: { login, email: `${login}@example.com`, password: 'bench password 1' } });
    return JSON.parse(res.body).access_token as string;
  };
  return { app, ctx, call, register };
}
