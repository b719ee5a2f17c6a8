// The MCP runtime of one process (one AppContext): the connection pool, the discovery cache,
// and the tools a run of an account is offered (api.md §27.5).
//
//   mcpTools(ctx, orgId, log)   the account's active configs' tools for a run: discovered with
//                               tools/list, cached per config for ARKLOOP_MCP_CACHE_TTL_SECONDS
//                               (60); a server whose discovery fails is left out (logged)
//   discoverConfigTools(...)    a fresh discovery for GET /v1/mcp-configs/{id}/tools
//   mcpConfigChanged(ctx, row)  after a config is changed or deleted: its cache entry is dropped
//                               and its server stopped here and, through NOTIFY (payload
//                               `<id>@<version ms>` or `<id>@deleted`), in every other process,
//                               so the change applies to the next run anywhere
//   closeMcp(ctx)               stops every server (the context's close path)
//
// Every run reads the account's config rows (one query), and a cached tool list or a running
// server is used only for the exact config version it was made from, so even a missed
// notification never serves a stale configuration; NOTIFY makes the cleanup prompt.
// The runtime is created on first use, so processes that never meet an MCP config never
// listen, load the SDK or start anything.
import type { Logger } from 'pino';
import type { AppContext } from '../app-context.js';
import { ttlSecondsFromEnv } from '../db/shared-cache.js';
import { guardedFetch } from '../lib/ssrf.js';
import { isFeatureEnabled } from '../modules/feature-flags/evaluate.js';
import { activeConfigs, configVersions, serverSpec, type McpConfigRow } from '../modules/mcp-configs/store.js';
import type { Tool } from '../tools/types.js';
import type { McpToolInfo } from './connection.js';
import { McpFailure } from './errors.js';
import { mcpToolName } from './naming.js';
import { McpPool, type LoadedSpec } from './pool.js';
import { SingleFlight } from '../lib/shared-reads.js';

export const MCP_CHANGES_CHANNEL = 'arkloop_mcp_configs';
const DEFAULT_CACHE_TTL_SECONDS = 60;
/** Starting a server (or opening a session) and listing its tools, together (decided). */
export const DISCOVERY_TIMEOUT_MS = 10_000;
/**
 * Starting a server again (or reopening a session) inside a call, before tools/call itself,
 * which then has the config's call_timeout_ms (decided: the deadline is the call's, not the
 * restart's).
 */
export const RESTART_TIMEOUT_MS = 10_000;
/**
 * A failed discovery is not retried for this long by later runs of the same config version
 * (decided): 5 s, or 30 s when it timed out, since each attempt then holds a run's start for
 * DISCOVERY_TIMEOUT_MS.
 */
const FAILED_DISCOVERY_TTL_MS = 5_000;
const TIMED_OUT_DISCOVERY_TTL_MS = 30_000;

interface CacheEntry {
  fingerprint: string;
  tools: McpToolInfo[] | null;
  failure: McpFailure | null;
  expiresAt: number;
}

/** An MCP tool as offered to a run, with where it comes from. */
export interface OfferedMcpTool {
  name: string;
  originalName: string;
  description: string;
  inputSchema: Record<string, unknown>;
}

export class McpRuntime {
  readonly pool: McpPool;
  private readonly cache = new Map<string, CacheEntry>();
  private readonly inflight = new SingleFlight<McpToolInfo[]>();
  private unlisten: (() => Promise<void>) | null = null;
  private offReconnect: (() => void) | null = null;
  private readonly ttlMs: number;

  constructor(private readonly ctx: AppContext) {
    this.ttlMs = cacheTtlSeconds(ctx) * 1000;
    this.pool = new McpPool(ctx.log, () => remoteFetch(ctx));
  }

  async start(): Promise<void> {
    const { database, log } = this.ctx;
    try {
      this.unlisten = await database.listen(MCP_CHANGES_CHANNEL, (payload) => {
        const change = parseChange(payload);
        if (change) this.forget(change.id, change.version);
      });
    } catch (err) {
      // Without a listener, versions still keep runs correct; only cleanup of other processes' changes waits.
      log.warn({ err: (err as Error).message }, 'mcp: change listener not started');
    }
    // Notifications may have been missed while the listener was away: start over.
    this.offReconnect = database.onReconnect(() => {
      this.cache.clear();
      this.reconcile().catch((err: Error) => log.warn({ err: err.message }, 'mcp: servers not reconciled after a listener outage'));
    });
  }

  /** Stops the servers whose config changed or went away while notifications could not arrive. */
  private async reconcile(): Promise<void> {
    const running = this.pool.running();
    const current = await configVersions(this.ctx.db, running.map((r) => r.id));
    for (const r of running) {
      const now = current.get(r.id);
      if (!now) this.forget(r.id, Infinity);
      else if (now.getTime() !== r.version) this.forget(r.id, now.getTime());
    }
  }

  /** Drops what this process holds for a config older than `version` (Infinity: deleted). */
  forget(configId: string, version: number): void {
    this.cache.delete(configId);
    this.pool.forget(configId, version);
  }

  /** The config's tools: from the cache while fresh, else discovered (concurrent callers share one discovery). */
  async tools(spec: LoadedSpec, opts: { refresh?: boolean } = {}): Promise<McpToolInfo[]> {
    const cached = this.cache.get(spec.id);
    if (!opts.refresh && cached && cached.fingerprint === spec.fingerprint && cached.expiresAt > Date.now()) {
      if (cached.failure) throw cached.failure;
      return cached.tools!;
    }
    const key = `${spec.id}\u0000${spec.fingerprint}`;
    return this.inflight.run(key, () => this.discover(spec));
  }

  private async discover(spec: LoadedSpec): Promise<McpToolInfo[]> {
    const started = Date.now();
    try {
      const conn = await this.pool.connection(spec, DISCOVERY_TIMEOUT_MS);
      const tools = await conn.listTools(Math.max(1, DISCOVERY_TIMEOUT_MS - (Date.now() - started)));
      this.cache.set(spec.id, { fingerprint: spec.fingerprint, tools, failure: null, expiresAt: Date.now() + this.ttlMs });
      return tools;
    } catch (err) {
      const failure = err instanceof McpFailure ? err : new McpFailure('mcp.disconnected', `MCP server ${spec.name}: ${(err as Error).message}`);
      // A server that will not start or list is not tried again by every run at once.
      if (failure.errorClass !== 'policy.ssrf_blocked') {
        const ttl = failure.errorClass === 'mcp.timeout' ? TIMED_OUT_DISCOVERY_TTL_MS : FAILED_DISCOVERY_TTL_MS;
        this.cache.set(spec.id, { fingerprint: spec.fingerprint, tools: null, failure, expiresAt: Date.now() + Math.min(this.ttlMs, ttl) });
      }
      if (failure.errorClass === 'mcp.disconnected' || failure.errorClass === 'mcp.timeout') this.pool.stop(spec.id, spec.fingerprint);
      throw failure;
    }
  }

  /** One tools/call through the pool (the server is restarted here when it died). */
  async call(spec: LoadedSpec, toolName: string, args: Record<string, unknown>, signal: AbortSignal): Promise<unknown> {
    const conn = await this.pool.connection(spec, RESTART_TIMEOUT_MS);
    try {
      return await conn.callTool(toolName, args, { timeoutMs: spec.callTimeoutMs, signal });
    } catch (err) {
      // A broken session (HTTP) is replaced on next use, as a dead process already is. A call
      // that timed out is cancelled (notifications/cancelled) but its server kept: other runs'
      // calls may be in flight on it.
      if ((err as McpFailure).errorClass === 'mcp.disconnected') this.pool.stop(spec.id, spec.fingerprint);
      throw err;
    }
  }

  async close(): Promise<void> {
    this.offReconnect?.();
    await this.unlisten?.().catch(() => undefined);
    await this.pool.closeAll();
  }
}

function cacheTtlSeconds(ctx: AppContext): number {
  return ttlSecondsFromEnv(ctx.config.env, ctx.log, 'ARKLOOP_MCP_CACHE_TTL_SECONDS', DEFAULT_CACHE_TTL_SECONDS);
}

/** Remote MCP servers of an account go through the SSRF guard on every request (§27.6), reading the setting each time. */
function remoteFetch(ctx: AppContext): typeof fetch {
  return (async (input: string | URL | Request, init?: RequestInit) => {
    const allowPrivate = await ctx.settings.bool('security.ssrf_allow_private');
    return guardedFetch({ allowPrivate })(input, init);
  }) as typeof fetch;
}

// ---- one runtime per context -----------------------------------------------------------------

const runtimes = new WeakMap<AppContext, Promise<McpRuntime>>();

function runtimeOf(ctx: AppContext): Promise<McpRuntime> {
  let rt = runtimes.get(ctx);
  if (!rt) {
    rt = (async () => {
      const r = new McpRuntime(ctx);
      await r.start();
      return r;
    })();
    runtimes.set(ctx, rt);
  }
  return rt;
}

/** The runtime, only if this context has one already. */
function existingRuntime(ctx: AppContext): Promise<McpRuntime> | undefined {
  return runtimes.get(ctx);
}

const versionOf = (row: McpConfigRow) => new Date(row.updated_at).getTime();

export function loadedSpec(ctx: AppContext, row: McpConfigRow): LoadedSpec {
  return { ...serverSpec(row, ctx.secrets.encryptionKey), version: versionOf(row) };
}

function parseChange(payload: string): { id: string; version: number } | null {
  const m = /^([0-9a-f-]{36})@(\d+|deleted)$/.exec(payload);
  if (!m) return null;
  return { id: m[1], version: m[2] === 'deleted' ? Infinity : Number(m[2]) };
}

/** The names and schemas a config's tools are offered under. */
export function offeredToolsOf(configName: string, tools: McpToolInfo[]): OfferedMcpTool[] {
  return tools.map((t) => ({ name: mcpToolName(configName, t.name), originalName: t.name, description: t.description, inputSchema: t.inputSchema }));
}

/**
 * The MCP tools a run of this account is offered (§27.5): every active config's tools, remote
 * ones only while feature.mcp_remote_enabled holds for the account. Never throws for an MCP
 * failure: a server that cannot be discovered is left out and logged. Two tools that end up
 * with the same name keep the first (configs oldest first).
 */
export async function mcpTools(ctx: AppContext, orgId: string, log: Logger): Promise<Tool[]> {
  const rows = await activeConfigs(ctx.db, orgId);
  if (rows.length === 0) return [];
  const remoteAllowed = rows.some((r) => r.transport !== 'stdio') ? await isFeatureEnabled(ctx, orgId, 'feature.mcp_remote_enabled') : false;
  const usable = rows.filter((r) => r.transport === 'stdio' || remoteAllowed);
  if (usable.length < rows.length) log.info({ skipped: rows.length - usable.length }, 'mcp: remote servers skipped (feature.mcp_remote_enabled is off)');
  if (usable.length === 0) return [];
  const rt = await runtimeOf(ctx);
  const discovered = await Promise.all(
    usable.map(async (row) => {
      try {
        const spec = loadedSpec(ctx, row);
        return { spec, tools: await rt.tools(spec) };
      } catch (err) {
        const e = err as McpFailure;
        log.warn({ mcp_config_id: row.id, mcp_config: row.name, error_class: e.errorClass ?? 'mcp.disconnected', err: e.message }, 'mcp: server left out of this run (discovery failed)');
        return null;
      }
    }),
  );
  const out: Tool[] = [];
  const taken = new Set<string>();
  for (const d of discovered) {
    if (!d) continue;
    const { spec } = d;
    for (const t of offeredToolsOf(spec.name, d.tools)) {
      if (taken.has(t.name)) {
        log.warn({ mcp_config_id: spec.id, tool: t.originalName, name: t.name }, 'mcp: tool left out (another tool has that name)');
        continue;
      }
      taken.add(t.name);
      out.push({
        name: t.name,
        description: t.description,
        inputSchema: t.inputSchema,
        source: 'mcp',
        // The run's own bound: a restart, then tools/call with call_timeout_ms (which answers mcp.timeout itself).
        timeoutMs: RESTART_TIMEOUT_MS + spec.callTimeoutMs,
        run: (args, tctx) => rt.call(spec, t.originalName, args, tctx.signal),
      });
    }
  }
  return out;
}

/** A fresh discovery of one config (the cache is refreshed); throws McpFailure. */
export async function discoverConfigTools(ctx: AppContext, row: McpConfigRow): Promise<OfferedMcpTool[]> {
  const rt = await runtimeOf(ctx);
  const spec = loadedSpec(ctx, row);
  return offeredToolsOf(spec.name, await rt.tools(spec, { refresh: true }));
}

/**
 * A config was changed (`row`: its new version) or deleted (`row` null), after commit: what this
 * process holds for the older version is dropped now, and in every process through NOTIFY.
 */
export async function mcpConfigChanged(ctx: AppContext, configId: string, row: McpConfigRow | null): Promise<void> {
  const version = row ? versionOf(row) : Infinity;
  const rt = existingRuntime(ctx);
  if (rt) (await rt).forget(configId, version);
  try {
    await ctx.database.notify(MCP_CHANGES_CHANNEL, `${configId}@${row ? version : 'deleted'}`);
  } catch (err) {
    ctx.log.warn({ err: (err as Error).message, mcp_config_id: configId }, 'mcp: change notification not sent; other processes pick the change up by version');
  }
}

/** The pid of a config's running stdio server in this process, or null (tests, diagnostics). */
export async function mcpServerPid(ctx: AppContext, configId: string): Promise<number | null> {
  const rt = existingRuntime(ctx);
  return rt ? (await rt).pool.pidOf(configId) : null;
}

/** Stops every MCP server of this context and its listener; the context's close path. */
export async function closeMcp(ctx: AppContext): Promise<void> {
  const rt = existingRuntime(ctx);
  if (!rt) return;
  runtimes.delete(ctx);
  await (await rt).close();
}
