// Process configuration: ARKLOOP_* environment variables parsed once into a frozen, typed
// object. A wrong value stops the process with a message naming the variable.
import { envValue } from './config/env.js';
import { readFileSync, existsSync } from 'node:fs';
import path from 'node:path';
import { parseSettingsEnv } from './modules/settings/service.js';

import { ConfigError } from './lib/config-error.js';

export { ConfigError };

export type LogLevel = 'debug' | 'info' | 'warn' | 'error' | 'silent';

export interface Config {
  apiHost: string;
  apiPort: number;
  /** listen(2) backlog of the API and gateway sockets (the kernel caps it at net.core.somaxconn). */
  listenBacklog: number;
  dataDir: string;
  databaseUrl: string | null;
  databaseDirectUrl: string | null;
  /** PostgreSQL connections per process (ARKLOOP_DATABASE_POOL_SIZE). */
  databasePoolSize: number;
  redisUrl: string | null;
  jwtSecret: string | null; // null: generated into the data dir (embedded only)
  accessTokenTtlSeconds: number;
  refreshTokenTtlSeconds: number;
  encryptionKey: string | null; // 64 hex chars; null: generated into the data dir (embedded only)
  bootstrapPlatformAdmin: string | null;
  trustIncomingTraceId: boolean;
  trustXForwardedFor: boolean;
  corsOrigins: string[];
  logLevel: LogLevel;
  appBaseUrl: string;
  sseHeartbeatSeconds: number;
  sseBatchLimit: number;
  runTimeoutMinutes: number;
  runInputTimeoutMinutes: number;
  /** Events of runs that ended longer ago are purged by the worker; 0 = keep forever. */
  runEventsRetentionMonths: number;
  workerConcurrency: number;
  workerPollSeconds: number;
  workerLeaseSeconds: number;
  workerHeartbeatSeconds: number;
  /** Background lane (webhook deliveries, mail, fan-out): jobs at once, and at once per key (one webhook endpoint). */
  workerBackgroundConcurrency: number;
  workerKeyConcurrency: number;
  /** Users notified per statement of a broadcast fan-out (api.md §19.4); null: the engine's default. */
  broadcastBatchSize: number | null;
  /** `arkloop gateway` (api.md §30): listen address, the API address(es) behind it. */
  gatewayHost: string;
  gatewayPort: number;
  gatewayUpstreams: string[];
  /** `arkloop serve` also runs the gateway in its process. */
  serveGateway: boolean;
  gatewayTrustIncomingTraceId: boolean;
  /** Re-read interval of the gateway.* settings (10 s; shorter in tests). */
  gatewayConfigRefreshMs: number;
  /** Interval of the gateway's /readyz probes of its upstreams. */
  gatewayHealthIntervalMs: number;
  /** `arkloop worker`'s /metrics and /healthz listener (ARKLOOP_WORKER_METRICS_ADDR); null = none (the default). */
  workerMetricsAddr: { host: string; port: number } | null;
  /** Every ARKLOOP_* variable as read, for settings forced by environment (§28.1). */
  env: Readonly<Record<string, string>>;
}

type Env = Record<string, string | undefined>;

function str(env: Env, name: string): string | undefined {
  return envValue(env, name);
}

function int(env: Env, name: string, def: number, min: number, max: number): number {
  const raw = str(env, name);
  if (raw === undefined) return def;
  if (!/^-?\d+$/.test(raw.trim())) throw new ConfigError(`${name} must be an integer, got "${raw}"`);
  const n = Number(raw);
  if (n < min || n > max) throw new ConfigError(`${name} must be between ${min} and ${max}, got ${n}`);
  return n;
}

function num(env: Env, name: string, def: number, min: number, max: number): number {
  const raw = str(env, name);
  if (raw === undefined) return def;
  const n = Number(raw);
  if (!Number.isFinite(n) || n < min || n > max) {
    throw new ConfigError(`${name} must be a number between ${min} and ${max}, got "${raw}"`);
  }
  return n;
}

function bool(env: Env, name: string): boolean {
  const raw = str(env, name);
  if (raw === undefined) return false;
  if (['1', 'true', 'yes', 'on'].includes(raw.toLowerCase())) return true;
  if (['0', 'false', 'no', 'off'].includes(raw.toLowerCase())) return false;
  throw new ConfigError(`${name} must be 0 or 1, got "${raw}"`);
}

function url(env: Env, name: string, protocols: string[]): string | undefined {
  const raw = str(env, name);
  if (raw === undefined) return undefined;
  let parsed: URL;
  try {
    parsed = new URL(raw);
  } catch {
    throw new ConfigError(`${name} must be a URL, got "${redactUrl(raw)}"`);
  }
  if (!protocols.includes(parsed.protocol)) {
    throw new ConfigError(`${name} must use ${protocols.join(' or ')}`);
  }
  return raw;
}

function redactUrl(raw: string): string {
  return raw.replace(/\/\/([^@/]*)@/, '//***@');
}

function addr(raw: string, name: string): { host: string; port: number } {
  const m = /^(?:\[([^\]]+)\]|([^:]*)):(\d{1,5})$/.exec(raw.trim());
  if (!m) throw new ConfigError(`${name} must be host:port, got "${raw}"`);
  const port = Number(m[3]);
  if (port < 0 || port > 65535) throw new ConfigError(`${name} port must be 0-65535, got ${port}`);
  return { host: m[1] ?? (m[2] || '127.0.0.1'), port };
}

/** Reads `.env` when ARKLOOP_LOAD_DOTENV=1; real environment variables win over the file. */
export function loadDotenv(env: Env): Env {
  if (str(env, 'ARKLOOP_LOAD_DOTENV') !== '1') return env;
  const file = path.resolve(str(env, 'ARKLOOP_DOTENV_FILE') ?? '.env');
  if (!existsSync(file)) return env;
  const merged: Env = {};
  for (const line of readFileSync(file, 'utf8').split(/\r?\n/)) {
    const m = /^\s*(?:export\s+)?([A-Za-z_][A-Za-z0-9_]*)\s*=\s*(.*?)\s*$/.exec(line);
    if (!m || line.trim().startsWith('#')) continue;
    let value = m[2];
    if (/^(['"]).*\1$/.test(value)) value = value.slice(1, -1);
    merged[m[1]] = value;
  }
  return { ...merged, ...env };
}

export function loadConfig(rawEnv: Env = process.env): Config {
  const env = loadDotenv(rawEnv);
  const api = addr(str(env, 'ARKLOOP_API_ADDR') ?? str(env, 'ARKLOOP_API_GO_ADDR') ?? '127.0.0.1:19001', 'ARKLOOP_API_ADDR');
  const databaseUrl = url(env, 'ARKLOOP_DATABASE_URL', ['postgres:', 'postgresql:']) ?? null;
  const jwtSecret = str(env, 'ARKLOOP_AUTH_JWT_SECRET') ?? null;
  if (jwtSecret !== null && jwtSecret.length < 32) {
    throw new ConfigError('ARKLOOP_AUTH_JWT_SECRET must be at least 32 characters');
  }
  if (jwtSecret === null && databaseUrl !== null) {
    throw new ConfigError('ARKLOOP_AUTH_JWT_SECRET is required when ARKLOOP_DATABASE_URL is set');
  }
  const encryptionKey = str(env, 'ARKLOOP_ENCRYPTION_KEY') ?? null;
  if (encryptionKey !== null && !/^[0-9a-fA-F]{64}$/.test(encryptionKey)) {
    throw new ConfigError('ARKLOOP_ENCRYPTION_KEY must be 64 hex characters');
  }
  if (encryptionKey === null && databaseUrl !== null) {
    throw new ConfigError('ARKLOOP_ENCRYPTION_KEY is required when ARKLOOP_DATABASE_URL is set');
  }
  const logLevel = (str(env, 'ARKLOOP_LOG_LEVEL') ?? 'info') as LogLevel;
  if (!['debug', 'info', 'warn', 'error', 'silent'].includes(logLevel)) {
    throw new ConfigError(`ARKLOOP_LOG_LEVEL must be debug, info, warn or error, got "${logLevel}"`);
  }
  const corsOrigins = (str(env, 'ARKLOOP_CORS_ORIGINS') ?? '')
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean);
  for (const origin of corsOrigins) {
    if (origin !== '*' && !/^https?:\/\/[^/\s]+$/.test(origin)) {
      throw new ConfigError(`ARKLOOP_CORS_ORIGINS has an invalid origin "${origin}"`);
    }
  }
  const gateway = addr(str(env, 'ARKLOOP_GATEWAY_ADDR') ?? '127.0.0.1:19000', 'ARKLOOP_GATEWAY_ADDR');
  if (str(env, 'ARKLOOP_GATEWAY_PORT') !== undefined) gateway.port = int(env, 'ARKLOOP_GATEWAY_PORT', 19000, 0, 65535);
  const gatewayUpstreams = (str(env, 'ARKLOOP_GATEWAY_UPSTREAM') ?? 'http://127.0.0.1:19001').split(',').map((s) => s.trim()).filter(Boolean);
  for (const u of gatewayUpstreams) {
    if (!/^https?:\/\/[^/\s]+\/?$/.test(u)) throw new ConfigError(`ARKLOOP_GATEWAY_UPSTREAM must be comma-separated http(s)://host:port addresses, got "${u}"`);
  }
  if (gatewayUpstreams.length === 0) throw new ConfigError('ARKLOOP_GATEWAY_UPSTREAM names no address');
  // Settings forced by environment are validated now, before anything starts.
  parseSettingsEnv(env);
  const arkloopEnv: Record<string, string> = {};
  for (const [k, v] of Object.entries(env)) {
    if (k.startsWith('ARKLOOP_') && v !== undefined && v !== '') arkloopEnv[k] = v;
  }
  return Object.freeze({
    apiHost: api.host,
    listenBacklog: int(env, 'ARKLOOP_LISTEN_BACKLOG', 4096, 1, 1_000_000),
    apiPort: api.port,
    dataDir: path.resolve(str(env, 'ARKLOOP_DATA_DIR') ?? './data'),
    databaseUrl,
    databaseDirectUrl: url(env, 'ARKLOOP_DATABASE_DIRECT_URL', ['postgres:', 'postgresql:']) ?? databaseUrl,
    databasePoolSize: int(env, 'ARKLOOP_DATABASE_POOL_SIZE', 20, 1, 1000),
    redisUrl: url(env, 'ARKLOOP_REDIS_URL', ['redis:', 'rediss:']) ?? null,
    jwtSecret,
    accessTokenTtlSeconds: int(env, 'ARKLOOP_AUTH_ACCESS_TOKEN_TTL_SECONDS', 900, 10, 86400 * 7),
    refreshTokenTtlSeconds: int(env, 'ARKLOOP_AUTH_REFRESH_TOKEN_TTL_SECONDS', 2592000, 60, 86400 * 400),
    encryptionKey,
    bootstrapPlatformAdmin: str(env, 'ARKLOOP_BOOTSTRAP_PLATFORM_ADMIN') ?? null,
    trustIncomingTraceId: bool(env, 'ARKLOOP_TRUST_INCOMING_TRACE_ID'),
    trustXForwardedFor: bool(env, 'ARKLOOP_TRUST_X_FORWARDED_FOR'),
    corsOrigins,
    logLevel,
    appBaseUrl: url(env, 'ARKLOOP_APP_BASE_URL', ['http:', 'https:']) ?? 'http://127.0.0.1:19000',
    sseHeartbeatSeconds: num(env, 'ARKLOOP_SSE_HEARTBEAT_SECONDS', 15, 0.05, 3600),
    sseBatchLimit: int(env, 'ARKLOOP_SSE_BATCH_LIMIT', 500, 1, 10000),
    runTimeoutMinutes: num(env, 'ARKLOOP_RUN_TIMEOUT_MINUTES', 5, 0.01, 10080),
    runInputTimeoutMinutes: num(env, 'ARKLOOP_RUN_INPUT_TIMEOUT_MINUTES', 60, 0.01, 10080),
    runEventsRetentionMonths: int(env, 'ARKLOOP_RUN_EVENTS_RETENTION_MONTHS', 3, 0, 1200),
    workerConcurrency: int(env, 'ARKLOOP_WORKER_CONCURRENCY', 4, 1, 1024),
    workerPollSeconds: num(env, 'ARKLOOP_WORKER_POLL_SECONDS', 0.25, 0.01, 3600),
    workerLeaseSeconds: num(env, 'ARKLOOP_WORKER_LEASE_SECONDS', 30, 1, 3600),
    workerHeartbeatSeconds: num(env, 'ARKLOOP_WORKER_HEARTBEAT_SECONDS', 10, 0.1, 3600),
    workerBackgroundConcurrency: int(env, 'ARKLOOP_WORKER_BACKGROUND_CONCURRENCY', 32, 1, 1024),
    workerKeyConcurrency: int(env, 'ARKLOOP_WORKER_KEY_CONCURRENCY', 8, 1, 1024),
    broadcastBatchSize: str(env, 'ARKLOOP_BROADCAST_BATCH_SIZE') ? int(env, 'ARKLOOP_BROADCAST_BATCH_SIZE', 5000, 1, 100_000) : null,
    gatewayHost: gateway.host,
    gatewayPort: gateway.port,
    gatewayUpstreams,
    serveGateway: bool(env, 'ARKLOOP_SERVE_GATEWAY'),
    gatewayTrustIncomingTraceId: bool(env, 'ARKLOOP_GATEWAY_TRUST_INCOMING_TRACE_ID'),
    gatewayConfigRefreshMs: int(env, 'ARKLOOP_GATEWAY_CONFIG_REFRESH_MS', 10_000, 50, 3_600_000),
    gatewayHealthIntervalMs: int(env, 'ARKLOOP_GATEWAY_HEALTH_INTERVAL_MS', 2_000, 0, 3_600_000),
    // The worker's own /metrics listener (off unless set).
    workerMetricsAddr: str(env, 'ARKLOOP_WORKER_METRICS_ADDR') ? addr(str(env, 'ARKLOOP_WORKER_METRICS_ADDR')!, 'ARKLOOP_WORKER_METRICS_ADDR') : null,
    env: Object.freeze(arkloopEnv),
  });
}
