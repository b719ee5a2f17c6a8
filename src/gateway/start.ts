// Starting the gateway: as its own process (`arkloop gateway`) or inside `arkloop serve`
// (ARKLOOP_SERVE_GATEWAY=1), where it shares the API's settings and access-log ring.
import type { FastifyInstance } from 'fastify';
import type { Logger } from 'pino';
import type { Config } from '../config.js';
import type { AppContext } from '../app-context.js';
import { openDatabase, type Database } from '../db/database.js';
import { connectRedis } from '../lib/redis.js';
import { resolveSecrets } from '../lib/secrets.js';
import { SettingsService } from '../modules/settings/service.js';
import { MemoryAccessLog, RedisAccessLog, type AccessLogStore } from './access-log.js';
import { MemoryBucketStore, RedisBucketStore, type BucketStore } from './buckets.js';
import { buildGateway, type Gateway } from './server.js';
import { envSettingReader } from './settings.js';

export interface RunningGateway {
  gateway: Gateway;
  /** host:port it listens on. */
  address: string;
  stop(): Promise<void>;
}

async function bucketStore(config: Config, log: Logger): Promise<BucketStore> {
  return config.redisUrl ? new RedisBucketStore(await connectRedis(config.redisUrl, log, 'gateway rate limits'), log) : new MemoryBucketStore();
}

async function listen(gateway: Gateway, config: Config, cleanup: () => Promise<void>): Promise<RunningGateway> {
  await gateway.app.listen({ host: config.gatewayHost, port: config.gatewayPort, backlog: config.listenBacklog });
  const a = gateway.app.server.address();
  const address = a && typeof a === 'object' ? `${a.address.includes(':') ? `[${a.address}]` : a.address}:${a.port}` : String(a);
  return {
    gateway,
    address,
    stop: async () => {
      await gateway.close();
      await cleanup();
    },
  };
}

/**
 * The gateway inside `arkloop serve`, in front of this process's API at `apiPort`: requests go
 * to the API's router in this process (`local`); the address is kept for the health probe.
 */
export async function startInProcessGateway(ctx: AppContext, api: FastifyInstance, apiPort: number): Promise<RunningGateway> {
  const { config } = ctx;
  const host = ['0.0.0.0', '::', ''].includes(config.apiHost) ? '127.0.0.1' : config.apiHost;
  const buckets = await bucketStore(config, ctx.log);
  const gateway = await buildGateway({
    log: ctx.log,
    upstreams: [`http://${host.includes(':') ? `[${host}]` : host}:${apiPort}`],
    jwtKey: ctx.jwtKey,
    trustIncomingTraceId: config.gatewayTrustIncomingTraceId,
    readSetting: async (key) => (await ctx.settings.resolve(key)).value,
    configRefreshMs: config.gatewayConfigRefreshMs,
    buckets,
    accessLog: ctx.accessLog,
    upstream: { probeIntervalMs: config.gatewayHealthIntervalMs },
    local: api.routing,
  });
  return listen(gateway, config, () => buckets.close());
}

/** `arkloop gateway`: its own process; the database (when shared) only for the gateway.* settings. */
export async function startStandaloneGateway(config: Config, log: Logger): Promise<RunningGateway> {
  let database: Database | null = null;
  let settings: SettingsService | null = null;
  if (config.databaseUrl) {
    database = await openDatabase({ databaseUrl: config.databaseUrl, directUrl: config.databaseDirectUrl, dataDir: null, log, poolSize: 2 });
    settings = new SettingsService(database.db, config.env, null);
    await settings.preload();
    await settings.listen(database);
  }
  const accessLog: AccessLogStore = config.redisUrl ? new RedisAccessLog(config.redisUrl, log) : new MemoryAccessLog();
  if (!config.redisUrl) log.warn('ARKLOOP_REDIS_URL is not set: the access log stays in this process, and GET /v1/admin/access-log cannot read it');
  const buckets = await bucketStore(config, log);
  const s = settings;
  const gateway = await buildGateway({
    log,
    upstreams: config.gatewayUpstreams,
    jwtKey: new TextEncoder().encode(resolveSecrets(config).jwtSecret),
    trustIncomingTraceId: config.gatewayTrustIncomingTraceId,
    readSetting: s ? async (key) => (await s.resolve(key)).value : envSettingReader(config.env),
    beforeConfigRead: s ? () => s.refresh() : undefined,
    configRefreshMs: config.gatewayConfigRefreshMs,
    buckets,
    accessLog,
    upstream: { probeIntervalMs: config.gatewayHealthIntervalMs },
  });
  return listen(gateway, config, async () => {
    await buckets.close();
    await accessLog.close();
    await settings?.close();
    await database?.close();
  });
}
