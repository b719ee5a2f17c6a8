// The live MCP connections of this process, one per config: stdio servers stay running and are
// reused by every run (and remote sessions stay open), until their config changes or is
// deleted, the process shuts down, or they die — then the next use starts a new one.
//
// A connection belongs to one version of its config (its fingerprint). A newer version
// replaces it; a run still holding an older version than the one running gets the running one
// refused (mcp.disconnected) instead of flipping the server back. A config forgotten (changed
// or deleted, told by NOTIFY with its new version) is not started again for a run holding an
// older version.
import type { Logger } from 'pino';
import type { McpServerSpec } from '../modules/mcp-configs/store.js';
import { McpConnection } from './connection.js';
import { McpFailure } from './errors.js';

interface Entry {
  fingerprint: string;
  version: number;
  ready: Promise<McpConnection>;
}

/** A server spec as loaded for a run, with its config's version. */
export interface LoadedSpec extends McpServerSpec {
  /** The config's updated_at, ms. */
  version: number;
}

/** How long a forgotten config id is remembered (longer than a run job can last). */
const FORGET_MEMORY_MS = 2 * 60 * 60 * 1000;

export class McpPool {
  private readonly entries = new Map<string, Entry>();
  /** Config id → the version it was changed to (Infinity: deleted), and when that was heard. */
  private readonly forgotten = new Map<string, { version: number; at: number }>();
  private closedFlag = false;

  constructor(
    private readonly log: Logger,
    private readonly fetchFor: (spec: McpServerSpec) => typeof fetch,
  ) {}

  /** The running connection of this config version, started (or restarted) when needed. */
  async connection(spec: LoadedSpec, timeoutMs: number): Promise<McpConnection> {
    for (let attempt = 0; attempt < 3; attempt++) {
      const e = this.entries.get(spec.id);
      if (e && e.fingerprint !== spec.fingerprint) {
        if (spec.version < e.version) throw new McpFailure('mcp.disconnected', `MCP server ${spec.name}: its configuration changed; the new one applies from the next run`);
        this.stop(spec.id);
        continue;
      }
      if (e) {
        try {
          const c = await e.ready;
          if (!c.closed) return c;
        } catch {
          /* the start failed: try again below, unless someone else already did */
        }
        if (this.entries.get(spec.id) === e) this.entries.delete(spec.id);
        continue;
      }
      return this.start(spec, timeoutMs);
    }
    return this.start(spec, timeoutMs);
  }

  private start(spec: LoadedSpec, timeoutMs: number): Promise<McpConnection> {
    if (this.closedFlag) return Promise.reject(new McpFailure('mcp.disconnected', `MCP server ${spec.name}: shutting down`));
    const forgotten = this.forgotten.get(spec.id);
    if (forgotten && spec.version < forgotten.version) {
      return Promise.reject(new McpFailure('mcp.disconnected', `MCP server ${spec.name}: its configuration changed or was deleted; the change applies from the next run`));
    }
    const ready: Promise<McpConnection> = McpConnection.open(spec, {
      log: this.log,
      fetch: this.fetchFor(spec),
      timeoutMs,
      onClosed: () => {
        if (this.entries.get(spec.id)?.ready === ready) this.entries.delete(spec.id);
      },
    });
    const entry: Entry = { fingerprint: spec.fingerprint, version: spec.version, ready };
    this.entries.set(spec.id, entry);
    ready.then(
      (c) => {
        if (c.pid) this.log.info({ mcp_config_id: spec.id, pid: c.pid }, 'mcp server started');
        // Closed before we looked (it died at once), or stopped while starting.
        if (c.closed && this.entries.get(spec.id) === entry) this.entries.delete(spec.id);
        if (this.entries.get(spec.id) !== entry) void c.close();
      },
      () => {
        if (this.entries.get(spec.id) === entry) this.entries.delete(spec.id);
      },
    );
    return ready;
  }

  /**
   * Stops this config's server (if any; only the one of `fingerprint` when given) in the
   * background; the next use starts a new one.
   */
  stop(configId: string, fingerprint?: string): void {
    const e = this.entries.get(configId);
    if (!e || (fingerprint !== undefined && e.fingerprint !== fingerprint)) return;
    this.entries.delete(configId);
    e.ready.then((c) => c.close()).catch(() => undefined);
  }

  /**
   * The config changed to `version` (Infinity: deleted), as NOTIFY tells: its older server is
   * stopped, and no older version is started again.
   */
  forget(configId: string, version: number): void {
    const now = Date.now();
    for (const [id, f] of this.forgotten) if (now - f.at > FORGET_MEMORY_MS) this.forgotten.delete(id);
    const known = this.forgotten.get(configId);
    this.forgotten.set(configId, { version: Math.max(version, known?.version ?? -Infinity), at: now });
    const e = this.entries.get(configId);
    if (e && e.version < version) this.stop(configId);
  }

  /** The config ids with a server here, and the version each runs. */
  running(): Array<{ id: string; version: number }> {
    return [...this.entries].map(([id, e]) => ({ id, version: e.version }));
  }

  /** The pid of this config's running stdio server, or null. */
  async pidOf(configId: string): Promise<number | null> {
    const e = this.entries.get(configId);
    if (!e) return null;
    try {
      const c = await e.ready;
      return c.closed ? null : c.pid;
    } catch {
      return null;
    }
  }

  /** Stops every server and waits for them (shutdown). */
  async closeAll(): Promise<void> {
    this.closedFlag = true;
    const all = [...this.entries.values()];
    this.entries.clear();
    await Promise.all(all.map((e) => e.ready.then((c) => c.close()).catch(() => undefined)));
  }
}
