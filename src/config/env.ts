// The registry of every environment variable the code reads (api.md §29). Code reads them only
// through `envValue`, which refuses a name that is not listed here, so the README table
// generated from this list (`npm run docs:env`) cannot miss one. Settings forced by environment
// (§28.1: ARKLOOP_<KEY> and aliases) come from the settings registry and are listed beside it.
import { SETTINGS, envNameFor } from '../modules/settings/registry.js';

export interface EnvVar {
  name: string;
  /** Older names read when `name` is unset. */
  aliases?: readonly string[];
  /** The default, as text for the table ('—' = unset). */
  default: string;
  meaning: string;
  /** Only tests, benches or local debugging read it: left out of the README table. */
  hidden?: boolean;
}

export const ENV_VARS: readonly EnvVar[] = [
  { name: 'ARKLOOP_API_ADDR', aliases: ['ARKLOOP_API_GO_ADDR'], default: '127.0.0.1:19001', meaning: 'API listen address' },
  { name: 'ARKLOOP_LISTEN_BACKLOG', default: '4096', meaning: 'pending-connection queue of the API and gateway listeners (capped by the kernel\'s `net.core.somaxconn`); a burst of connects beyond it is retried by the clients\' TCP stacks, seconds later' },
  { name: 'ARKLOOP_DATA_DIR', default: './data', meaning: 'embedded database and generated secrets' },
  { name: 'ARKLOOP_DATABASE_URL', default: '—', meaning: 'PostgreSQL URL; unset = embedded database' },
  { name: 'ARKLOOP_DATABASE_DIRECT_URL', default: 'ARKLOOP_DATABASE_URL', meaning: 'direct (unpooled) PostgreSQL URL for LISTEN/NOTIFY when `ARKLOOP_DATABASE_URL` goes through a pooler' },
  { name: 'ARKLOOP_DATABASE_POOL_SIZE', default: '20', meaning: 'PostgreSQL connections per API or worker process (plus one for LISTEN): keep processes × this under the server\'s `max_connections`' },
  { name: 'ARKLOOP_REDIS_URL', default: '—', meaning: 'API rate-limit counters and concurrent-run slots shared by several processes; gateway buckets and access log' },
  { name: 'ARKLOOP_LOAD_DOTENV', default: '0', meaning: '`1` also reads a `.env` file (real environment variables win)' },
  { name: 'ARKLOOP_DOTENV_FILE', default: '.env', meaning: 'the file `ARKLOOP_LOAD_DOTENV=1` reads' },
  { name: 'ARKLOOP_AUTH_JWT_SECRET', default: 'generated (embedded)', meaning: '≥ 32 chars; required with PostgreSQL, the same in every API and gateway process' },
  { name: 'ARKLOOP_ENCRYPTION_KEY', default: 'generated (embedded)', meaning: '64 hex chars; required with PostgreSQL, the same in every process' },
  { name: 'ARKLOOP_AUTH_ACCESS_TOKEN_TTL_SECONDS', default: '900', meaning: 'access token lifetime' },
  { name: 'ARKLOOP_AUTH_REFRESH_TOKEN_TTL_SECONDS', default: '2592000', meaning: 'refresh token lifetime' },
  { name: 'ARKLOOP_BOOTSTRAP_PLATFORM_ADMIN', default: '—', meaning: 'user id, login or email made platform admin' },
  { name: 'ARKLOOP_CORS_ORIGINS', default: '—', meaning: 'comma-separated allowed origins' },
  { name: 'ARKLOOP_LOG_LEVEL', default: 'info', meaning: '`debug`, `info`, `warn`, `error` (JSON lines on stdout)' },
  { name: 'ARKLOOP_APP_BASE_URL', default: 'http://127.0.0.1:19000', meaning: 'public base URL used in links (mails, invitations)' },
  { name: 'ARKLOOP_TRUST_X_FORWARDED_FOR', default: '0', meaning: 'the API takes the client IP the gateway sends' },
  { name: 'ARKLOOP_TRUST_INCOMING_TRACE_ID', default: '0', meaning: 'the API takes the trace id the gateway sends' },
  { name: 'ARKLOOP_SSE_HEARTBEAT_SECONDS', default: '15', meaning: '`: ping` comment lines on idle event streams' },
  { name: 'ARKLOOP_SSE_BATCH_LIMIT', default: '500', meaning: 'events read per batch when an event stream catches up' },
  { name: 'ARKLOOP_RUN_TIMEOUT_MINUTES', default: '5', meaning: 'a run longer than this in `running` fails with `run.timeout`' },
  { name: 'ARKLOOP_RUN_INPUT_TIMEOUT_MINUTES', default: '60', meaning: 'a run waiting for input or approval longer than this fails' },
  { name: 'ARKLOOP_RUN_EVENTS_RETENTION_MONTHS', default: '3', meaning: 'events of terminal runs older than this may be purged; `0` = keep forever' },
  { name: 'ARKLOOP_WORKER_CONCURRENCY', default: '4', meaning: 'runs executed at once per worker process' },
  { name: 'ARKLOOP_WORKER_BACKGROUND_CONCURRENCY', default: '32', meaning: 'background jobs (webhook deliveries, mail, fan-out) at once per worker process, in a lane of their own' },
  { name: 'ARKLOOP_WORKER_KEY_CONCURRENCY', default: '8', meaning: 'deliveries to one webhook endpoint at once, across all workers' },
  { name: 'ARKLOOP_WORKER_POLL_SECONDS', default: '0.25', meaning: 'queue poll interval when no notification arrives' },
  { name: 'ARKLOOP_WORKER_LEASE_SECONDS', default: '30', meaning: 'job lease; a job whose worker stops renewing it is taken again after this' },
  { name: 'ARKLOOP_WORKER_HEARTBEAT_SECONDS', default: '10', meaning: 'lease renewal interval' },
  { name: 'ARKLOOP_WORKER_REAPER_SECONDS', default: '10', meaning: 'interval of the sweep that requeues jobs with expired leases' },
  { name: 'ARKLOOP_WORKER_METRICS_ADDR', default: '— (off)', meaning: '`arkloop worker` serves `/metrics` and `/healthz` on this address (off by default: two workers on one host would collide on a fixed port; under `serve` the API\'s `/metrics` covers the worker)' },
  { name: 'ARKLOOP_WORKER_QUEUE_JOB_TYPES', default: 'all', meaning: 'comma-separated job types this worker takes' },
  { name: 'ARKLOOP_BROADCAST_BATCH_SIZE', default: '5000 (embedded: 1000)', meaning: 'recipients per batch of a broadcast fan-out' },
  { name: 'ARKLOOP_MCP_CACHE_TTL_SECONDS', default: '60', meaning: 'MCP tools/list cache lifetime per configuration' },
  { name: 'ARKLOOP_TOOL_PROVIDER_CACHE_TTL_SECONDS', default: '60', meaning: 'tool provider configuration cache lifetime' },
  { name: 'ARKLOOP_GATEWAY_ADDR', default: '127.0.0.1:19000', meaning: 'gateway listen address' },
  { name: 'ARKLOOP_GATEWAY_PORT', default: '—', meaning: 'sets only the gateway port' },
  { name: 'ARKLOOP_GATEWAY_UPSTREAM', default: 'http://127.0.0.1:19001', meaning: 'API address(es) behind the gateway, comma-separated' },
  { name: 'ARKLOOP_SERVE_GATEWAY', default: '0', meaning: '`arkloop serve` also runs the gateway' },
  { name: 'ARKLOOP_GATEWAY_TRUST_INCOMING_TRACE_ID', default: '0', meaning: 'the gateway keeps a valid incoming `X-Trace-Id`' },
  { name: 'ARKLOOP_GATEWAY_CONFIG_REFRESH_MS', default: '10000', meaning: 're-read interval of the `gateway.*` settings' },
  { name: 'ARKLOOP_GATEWAY_HEALTH_INTERVAL_MS', default: '2000', meaning: '`/readyz` probes of the upstreams; `0` = none' },
  { name: 'ARKLOOP_OPENAI_API_KEY', default: '—', meaning: 'environment model provider: OpenAI' },
  { name: 'ARKLOOP_OPENAI_BASE_URL', default: '—', meaning: 'OpenAI-compatible endpoint' },
  { name: 'ARKLOOP_OPENAI_MODEL', default: 'gpt-4o-mini', meaning: 'model of the OpenAI environment provider' },
  { name: 'ARKLOOP_ANTHROPIC_API_KEY', default: '—', meaning: 'environment model provider: Anthropic' },
  { name: 'ARKLOOP_ANTHROPIC_BASE_URL', default: '—', meaning: 'Anthropic endpoint' },
  { name: 'ARKLOOP_ANTHROPIC_MODEL', default: 'claude-sonnet-4-20250514', meaning: 'model of the Anthropic environment provider' },
  { name: 'ARKLOOP_SERVER', default: 'http://127.0.0.1:19001', meaning: 'CLI client: the server to talk to' },
  { name: 'ARKLOOP_TOKEN', default: '—', meaning: 'CLI client: an API key or access token instead of the stored login' },
  { name: 'ARKLOOP_CONFIG_DIR', default: '$XDG_CONFIG_HOME/arkloop', meaning: 'CLI client: where the login is stored' },
  { name: 'ARKLOOP_LLM_DEBUG_EVENTS', default: '0', meaning: 'write `llm.request` / `llm.response.chunk` events (local use only)' },
  { name: 'ARKLOOP_TEST_DATABASE_URL', default: '—', meaning: 'tests run on this PostgreSQL instead of PGlite', hidden: true },
  { name: 'ARKLOOP_TEST_REDIS_URL', default: '—', meaning: 'tests use this Redis', hidden: true },
  { name: 'ARKLOOP_BENCH_DATABASE_URL', default: '—', meaning: 'benches run on this PostgreSQL', hidden: true },
  { name: 'ARKLOOP_BENCH_REDIS_URL', default: '—', meaning: 'benches use this Redis', hidden: true },
  { name: 'ARKLOOP_FUZZ_SEED', default: 'random', meaning: 'test/fuzz.test.ts: replay a run', hidden: true },
  { name: 'ARKLOOP_FUZZ_REQUESTS', default: '2000', meaning: 'test/fuzz.test.ts: requests per run', hidden: true },
  { name: 'ARKLOOP_CHROMIUM', default: '/usr/bin/chromium', meaning: 'browser tests: the Chromium binary', hidden: true },
];

/** Variables that force a platform setting (§28.1): ARKLOOP_<KEY> and the key's aliases. */
export function settingEnvVars(): { key: string; names: string[]; default: string; meaning: string }[] {
  return [...SETTINGS.values()].map((def) => ({
    key: def.key,
    names: [envNameFor(def.key), ...(def.envAliases ?? [])],
    default: def.sensitive ? '—' : typeof def.default === 'object' ? JSON.stringify(def.default) : String(def.default),
    meaning: def.description,
  }));
}

let known: Set<string> | null = null;

/** Every registered name: variables, their aliases and the setting variables. */
export function knownEnvNames(): ReadonlySet<string> {
  known ??= new Set([...ENV_VARS.flatMap((v) => [v.name, ...(v.aliases ?? [])]), ...settingEnvVars().flatMap((s) => s.names)]);
  return known;
}

/** The value of a registered variable; empty counts as unset. Throws for an unregistered name. */
export function envValue(env: Readonly<Record<string, string | undefined>>, name: string): string | undefined {
  if (!knownEnvNames().has(name)) throw new Error(`${name} is not in the environment registry (src/config/env.ts)`);
  const v = env[name];
  return v === undefined || v === '' ? undefined : v;
}
