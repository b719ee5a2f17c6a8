// Assembles the application context from configuration, and runs the API until a
// termination signal drains it.
import pino, { type Logger } from 'pino';
import type { FastifyInstance } from 'fastify';
import path from 'node:path';
import type { Config } from './config.js';
import { openDatabase, type Database } from './db/database.js';
import { expectedSchemaVersion, migrate } from './db/migrator.js';
import { buildApp } from './http/app.js';
import type { AppContext } from './app-context.js';
import { MemoryCounterStore, RedisCounterStore, type CounterStore } from './lib/ratelimit.js';
import { resolveSecrets, type Secrets } from './lib/secrets.js';
import { Mailer } from './mail/mailer.js';
import { SettingsService } from './modules/settings/service.js';
import { applyBootstrapAdmin } from './modules/users/store.js';
import { CredentialCache, createInvalidator } from './modules/auth/cache.js';
import { Engine } from './engine/engine.js';
import { Worker } from './worker/worker.js';
import { closeMcp } from './mcp/runtime.js';
import { Clock } from './lib/clock.js';
import { SharedCaches } from './db/shared-cache.js';
import { MemoryAccessLog, RedisAccessLog } from './gateway/access-log.js';
import { startInProcessGateway } from './gateway/start.js';
import { envValue } from './config/env.js';
import { RedisRunSlots } from './modules/runs/slots.js';

export function createLogger(config: Pick<Config, 'logLevel'>): Logger {
  return pino({
    level: config.logLevel,
    base: { service: 'arkloop' },
    timestamp: pino.stdTimeFunctions.isoTime,
    redact: {
      paths: ['req.headers.authorization', 'req.headers.cookie', 'headers.authorization', 'headers.cookie', '*.password', '*.token', '*.key'],
      censor: '[redacted]',
    },
  });
}

export interface ContextOptions {
  config: Config;
  log?: Logger;
  database?: Database;
  secrets?: Secrets;
  /** Apply migrations at start (serve/api do; the test harness migrates itself). */
  migrate?: boolean;
}

export async function createContext(opts: ContextOptions): Promise<AppContext> {
  const { config } = opts;
  const log = opts.log ?? createLogger(config);
  const secrets = opts.secrets ?? resolveSecrets(config);
  const database =
    opts.database ??
    (await openDatabase({
      databaseUrl: config.databaseUrl,
      directUrl: config.databaseDirectUrl,
      dataDir: config.databaseUrl ? null : path.join(config.dataDir),
      log,
      poolSize: config.databasePoolSize,
    }));
  if (opts.migrate) {
    const res = await migrate(database);
    if (res.applied.length) log.info({ applied: res.applied }, 'migrations applied');
  }
  const settings = new SettingsService(database.db, config.env, secrets.encryptionKey);
  await settings.preload();
  await settings.listen(database);
  const counters: CounterStore = config.redisUrl ? await RedisCounterStore.connect(config.redisUrl, log) : new MemoryCounterStore();
  const credentialCache = new CredentialCache<unknown>();
  const credentials = await createInvalidator(database, credentialCache);
  database.onReconnect(() => credentialCache.clear());
  const caches = await SharedCaches.start(database, log);
  const engine = new Engine(database, log);
  await engine.start().catch((err: Error) => log.warn({ err: err.message }, 'event listener not started; retrying in background'));
  const ctx: AppContext = {
    config,
    secrets,
    database,
    db: database.db,
    log,
    settings,
    mailer: new Mailer(settings, log),
    counters,
    jwtKey: new TextEncoder().encode(secrets.jwtSecret),
    schemaVersion: expectedSchemaVersion(),
    credentialCache,
    credentials,
    caches,
    clock: new Clock(),
    engine,
    accessLog: config.redisUrl ? new RedisAccessLog(config.redisUrl, log) : new MemoryAccessLog(),
    runSlots: config.redisUrl ? await RedisRunSlots.connect(config.redisUrl, database.db, log) : null,
  };
  if (config.bootstrapPlatformAdmin) await applyBootstrapAdmin(ctx.db, config.bootstrapPlatformAdmin);
  return ctx;
}

export async function closeContext(ctx: AppContext): Promise<void> {
  await closeMcp(ctx).catch(() => undefined);
  await ctx.engine.close().catch(() => undefined);
  await ctx.credentials.close().catch(() => undefined);
  await ctx.caches.close().catch(() => undefined);
  await ctx.settings.close();
  await ctx.counters.close();
  await ctx.accessLog.close();
  await ctx.runSlots?.close();
  await ctx.database.close();
}

/** Starts the API and returns a function that drains and stops it. */
export function startWorker(ctx: AppContext): Worker {
  const c = ctx.config;
  const worker = new Worker(ctx, {
    concurrency: c.workerConcurrency,
    backgroundConcurrency: c.workerBackgroundConcurrency,
    keyConcurrency: c.workerKeyConcurrency,
    leaseSeconds: c.workerLeaseSeconds,
    heartbeatSeconds: c.workerHeartbeatSeconds,
    pollSeconds: c.workerPollSeconds,
    reaperSeconds: Number(envValue(c.env, 'ARKLOOP_WORKER_REAPER_SECONDS') ?? 10) || 10,
    types: envValue(c.env, 'ARKLOOP_WORKER_QUEUE_JOB_TYPES')?.split(',').map((t) => t.trim()).filter(Boolean) ?? null,
  });
  worker.start();
  return worker;
}

/** Starts the API (and, for `serve`, a worker in the same process); returns how to stop them. */
export async function runApi(
  config: Config,
  opts: { worker: boolean } = { worker: true },
): Promise<{ app: FastifyInstance; ctx: AppContext; stop: () => Promise<void> }> {
  const ctx = await createContext({ config, migrate: true });
  const app = await buildApp(ctx);
  await app.listen({ host: config.apiHost, port: config.apiPort, backlog: config.listenBacklog });
  const worker = opts.worker ? startWorker(ctx) : null;
  const address = app.server.address();
  const gateway = config.serveGateway && address && typeof address === 'object' ? await startInProcessGateway(ctx, app, address.port) : null;
  if (gateway) ctx.log.info({ addr: gateway.address }, 'arkloop gateway listening');
  ctx.log.info(
    { addr: `${config.apiHost}:${config.apiPort}`, database: ctx.database.kind, schema_version: ctx.schemaVersion },
    'arkloop api listening',
  );
  let stopping: Promise<void> | null = null;
  const stop = () =>
    (stopping ??= (async () => {
      ctx.log.info('shutting down: draining requests');
      await gateway?.stop();
      await app.close();
      await worker?.stop();
      await closeContext(ctx);
      ctx.log.info('stopped');
    })());
  return { app, ctx, stop };
}
