// One live connection to one MCP server (one config version), over the official
// @modelcontextprotocol/sdk client: a stdio child process, a streamable HTTP session or an SSE
// stream. It lists tools and calls them with deadlines, maps every failure to an MCP error
// class (errors.ts), and notices when the transport closes (the pool then starts a new one on
// next use).
//
// Written around the SDK rather than inside it where the SDK has no option:
//   - environment: StdioClientTransport always merges a few of the parent's variables (HOME,
//     PATH, …; DEFAULT_INHERITED_ENV_VARS) under the env it is given. A config's server gets
//     only its configured env (the whole parent environment with inherit_parent_env), so those
//     names are passed as undefined unless configured, and child_process leaves them out.
//   - stderr is piped and logged line by line, bounded (line length, lines per minute), so a
//     server writing without end costs nothing but the reads; stdout is bounded by the SDK's
//     read buffer (a message over the limit closes the connection), and a stream of garbage
//     lines closes it too.
//   - the child process and its pipes are unref'd, so an idle server never keeps a process
//     alive; every child still running when the process exits is killed (process 'exit').
//   - requests go through `Client.request` with the result schema instead of
//     `Client.callTool`, so an answer the SDK cannot read is told apart (mcp.protocol_error)
//     from an error the server sent (mcp.rpc_error).
// The SDK is loaded on first use: a process that never talks to an MCP server never loads it.
import type { ChildProcess } from 'node:child_process';
import type { Logger } from 'pino';
import type { Client } from '@modelcontextprotocol/sdk/client/index.js';
import type { Transport } from '@modelcontextprotocol/sdk/shared/transport.js';
import type { McpServerSpec } from '../modules/mcp-configs/store.js';
import { McpFailure, classifyMcpError } from './errors.js';
import { toolCallResult, type RawCallResult } from './result.js';

/** A tool as the server lists it. */
export interface McpToolInfo {
  name: string;
  description: string;
  inputSchema: Record<string, unknown>;
}

export interface ConnectOptions {
  log: Logger;
  /** The fetch remote transports use (the SSRF guard, §27.6). */
  fetch: typeof fetch;
  /** Deadline for starting the transport and the initialize handshake. */
  timeoutMs: number;
  /** Called once when the connection closes, for whatever reason. */
  onClosed?: () => void;
}

/** Most tools taken from one server; more would only bloat every model request. */
export const MAX_TOOLS_PER_SERVER = 256;
const MAX_LIST_PAGES = 20;
const MAX_DESCRIPTION = 4000;
/**
 * A stdout message larger than this closes the connection (the SDK's read buffer, which copies
 * its whole content on every chunk: kept small enough that a flood costs little).
 */
const MAX_MESSAGE_BYTES = 4 * 1024 * 1024;
/** More unreadable messages than this within GARBAGE_WINDOW_MS close the connection. */
const MAX_GARBAGE = 50;
const GARBAGE_WINDOW_MS = 10_000;
const STDERR_LINE_MAX = 500;
const STDERR_LINES_PER_MINUTE = 30;

type Sdk = {
  Client: typeof import('@modelcontextprotocol/sdk/client/index.js').Client;
  types: typeof import('@modelcontextprotocol/sdk/types.js');
};
let sdkLoading: Promise<Sdk> | null = null;
function loadSdk(): Promise<Sdk> {
  return (sdkLoading ??= Promise.all([import('@modelcontextprotocol/sdk/client/index.js'), import('@modelcontextprotocol/sdk/types.js')]).then(([c, types]) => ({ Client: c.Client, types })));
}

// ---- child processes still running, killed when this process exits ------------------------

const liveChildren = new Set<ChildProcess>();
let exitHookInstalled = false;
function trackChild(child: ChildProcess): void {
  if (!exitHookInstalled) {
    exitHookInstalled = true;
    process.once('exit', () => {
      for (const c of liveChildren) {
        try {
          c.kill('SIGKILL');
        } catch {
          /* already gone */
        }
      }
    });
  }
  liveChildren.add(child);
  child.once('exit', () => liveChildren.delete(child));
}

/** The env a stdio server is started with (see the header). */
export function childEnv(spec: Pick<McpServerSpec, 'env' | 'inheritParentEnv'>, sdkDefaults: readonly string[]): Record<string, string> {
  const env: Record<string, string | undefined> = {};
  for (const k of sdkDefaults) env[k] = undefined;
  if (spec.inheritParentEnv) Object.assign(env, process.env);
  Object.assign(env, spec.env);
  return env as Record<string, string>;
}

/** Logs a child's stderr line by line, at most STDERR_LINES_PER_MINUTE lines a minute, each cut short. */
function stderrLogger(log: Logger): (chunk: Buffer | string) => void {
  let partial = '';
  let windowStart = Date.now();
  let lines = 0;
  let dropped = 0;
  const emit = (line: string) => {
    const now = Date.now();
    if (now - windowStart >= 60_000) {
      if (dropped) log.warn({ dropped }, 'mcp server stderr: lines dropped');
      windowStart = now;
      lines = 0;
      dropped = 0;
    }
    if (lines >= STDERR_LINES_PER_MINUTE) {
      dropped++;
      return;
    }
    lines++;
    log.info({ line: line.length > STDERR_LINE_MAX ? line.slice(0, STDERR_LINE_MAX) + '…' : line }, 'mcp server stderr');
  };
  return (chunk) => {
    partial += typeof chunk === 'string' ? chunk : chunk.toString('utf8');
    let nl: number;
    while ((nl = partial.indexOf('\n')) >= 0) {
      const line = partial.slice(0, nl).replace(/\r$/, '');
      partial = partial.slice(nl + 1);
      if (line.trim()) emit(line);
    }
    // A line without end is logged in pieces rather than buffered without bound.
    if (partial.length > STDERR_LINE_MAX * 4) {
      emit(partial);
      partial = '';
    }
  };
}

/** Rejects with `onTimeout()` when `p` has not settled within `ms`. */
function withDeadline<T>(p: Promise<T>, ms: number, onTimeout: () => Error): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const t = setTimeout(() => reject(onTimeout()), ms);
    p.then(
      (v) => {
        clearTimeout(t);
        resolve(v);
      },
      (e) => {
        clearTimeout(t);
        reject(e);
      },
    );
  });
}

function isParseFailure(err: Error): boolean {
  return err.name === 'ZodError' || err.name === '$ZodError' || err instanceof SyntaxError;
}

export class McpConnection {
  private closedFlag = false;
  private lastProtocolError: { at: number; message: string } | null = null;
  private garbage: number[] = [];

  private constructor(
    readonly spec: McpServerSpec,
    private readonly sdk: Sdk,
    private readonly client: Client,
    private readonly transport: Transport,
    /** The child's pid (stdio), else null. */
    readonly pid: number | null,
    private readonly log: Logger,
  ) {}

  get closed(): boolean {
    return this.closedFlag;
  }

  /** Starts the server (stdio) or opens the session (remote) and runs the initialize handshake. */
  static async open(spec: McpServerSpec, opts: ConnectOptions): Promise<McpConnection> {
    const sdk = await loadSdk();
    const log = opts.log.child({ mcp_config_id: spec.id, mcp_transport: spec.transport });
    const transport = await createTransport(spec, opts, log);
    const client = new sdk.Client({ name: 'arkloop', version: '1' }, { capabilities: {} });
    let conn: McpConnection | null = null;
    let closedEarly = false;
    client.onclose = () => {
      if (conn) conn.markClosed();
      else closedEarly = true;
      opts.onClosed?.();
    };
    const early = { malformed: null as string | null };
    client.onerror = (err) => {
      if (conn) conn.onError(err);
      else if (isParseFailure(err)) early.malformed = err.message;
    };
    try {
      await withDeadline(
        client.connect(transport, { timeout: opts.timeoutMs }),
        opts.timeoutMs,
        () => new McpFailure('mcp.timeout', `MCP server ${spec.name}: no answer to initialize within ${opts.timeoutMs} ms`),
      );
    } catch (err) {
      // Stopped in the background (a stdio server gets its grace period): the caller is not held.
      void stopQuietly(client, transport);
      const failure = classifyMcpError(err, `MCP server ${spec.name}`, { closed: closedEarly });
      if (failure.errorClass === 'mcp.timeout' && early.malformed) {
        throw new McpFailure('mcp.protocol_error', `MCP server ${spec.name}: malformed message from the server (${early.malformed.replace(/\s+/g, ' ').slice(0, 300)})`);
      }
      throw failure;
    }
    const child = (transport as unknown as { _process?: ChildProcess })._process;
    if (child) {
      // See the header: never keep the process alive for an idle server; kill it at exit.
      trackChild(child);
      child.unref();
      for (const s of [child.stdin, child.stdout, child.stderr]) (s as { unref?: () => void } | null)?.unref?.();
    }
    conn = new McpConnection(spec, sdk, client, transport, child?.pid ?? null, log);
    if (closedEarly) conn.markClosed();
    return conn;
  }

  private markClosed(): void {
    if (this.closedFlag) return;
    this.closedFlag = true;
    this.log.info({ pid: this.pid }, 'mcp server connection closed');
  }

  private onError(err: Error): void {
    if (this.closedFlag) return;
    if (!isParseFailure(err)) {
      this.log.debug({ err: err.message.slice(0, 300) }, 'mcp transport error');
      return;
    }
    const now = Date.now();
    this.lastProtocolError = { at: now, message: err.message };
    this.garbage = this.garbage.filter((t) => now - t < GARBAGE_WINDOW_MS);
    this.garbage.push(now);
    if (this.garbage.length === 1) this.log.warn({ err: err.message.slice(0, 300) }, 'mcp server sent a malformed message');
    if (this.garbage.length > MAX_GARBAGE) {
      this.log.warn({ count: this.garbage.length }, 'mcp server keeps sending malformed messages; closing the connection');
      void this.close();
    }
  }

  /** A malformed message seen since `since`, if any. */
  private protocolErrorSince(since: number): string | null {
    return this.lastProtocolError && this.lastProtocolError.at >= since ? this.lastProtocolError.message : null;
  }

  private failure(err: unknown, what: string, since: number): McpFailure {
    return classifyMcpError(err, what, { closed: this.closedFlag, protocolError: this.protocolErrorSince(since) });
  }

  /** tools/list, every page (bounded), within `timeoutMs` in total. */
  async listTools(timeoutMs: number): Promise<McpToolInfo[]> {
    const started = Date.now();
    const what = `MCP server ${this.spec.name}: tools/list`;
    if (this.closedFlag) throw new McpFailure('mcp.disconnected', `${what}: the server connection closed`);
    const out: McpToolInfo[] = [];
    let cursor: string | undefined;
    try {
      for (let page = 0; page < MAX_LIST_PAGES && out.length < MAX_TOOLS_PER_SERVER; page++) {
        const left = timeoutMs - (Date.now() - started);
        if (left <= 0) throw new McpFailure('mcp.timeout', `${what}: no answer in time`);
        const res = await withDeadline(
          this.client.request({ method: 'tools/list', params: cursor ? { cursor } : {} }, this.sdk.types.ListToolsResultSchema, { timeout: left }),
          left + 50,
          () => new McpFailure('mcp.timeout', `${what}: no answer in time`),
        );
        for (const t of res.tools) {
          const { $schema: _ignored, ...schema } = (t.inputSchema ?? { type: 'object' }) as Record<string, unknown>;
          const description = t.description ?? t.title ?? '';
          out.push({ name: t.name, description: description.length > MAX_DESCRIPTION ? description.slice(0, MAX_DESCRIPTION) + '…' : description, inputSchema: schema });
        }
        cursor = res.nextCursor;
        if (!cursor) break;
      }
    } catch (err) {
      throw this.failure(err, what, started);
    }
    if (out.length > MAX_TOOLS_PER_SERVER) this.log.warn({ listed: out.length, kept: MAX_TOOLS_PER_SERVER }, 'mcp server lists more tools than are offered');
    return out.slice(0, MAX_TOOLS_PER_SERVER);
  }

  /**
   * tools/call: the result (structuredContent, else the text of the content items), or an
   * McpFailure — mcp.tool_error when the tool reported isError, its content as the result.
   */
  async callTool(name: string, args: Record<string, unknown>, opts: { timeoutMs: number; signal?: AbortSignal }): Promise<unknown> {
    const started = Date.now();
    const what = `${name}`;
    if (this.closedFlag) throw new McpFailure('mcp.disconnected', `${what}: the server connection closed`);
    let res: RawCallResult;
    try {
      res = await withDeadline(
        this.client.request({ method: 'tools/call', params: { name, arguments: args } }, this.sdk.types.CallToolResultSchema, { timeout: opts.timeoutMs, signal: opts.signal }),
        opts.timeoutMs + 50,
        () => new McpFailure('mcp.timeout', `${what}: no answer within ${opts.timeoutMs} ms`),
      );
    } catch (err) {
      const failure = this.failure(err, what, started);
      if (failure.errorClass === 'mcp.timeout') throw new McpFailure('mcp.timeout', `${what}: no answer within ${opts.timeoutMs} ms`);
      throw failure;
    }
    const result = toolCallResult(res);
    if (res.isError) throw new McpFailure('mcp.tool_error', `${what}: ${result.errorText}`, result.value);
    return result.value;
  }

  /** Closes the connection: a stdio server gets end of input, then SIGTERM, then SIGKILL (the SDK's order). */
  async close(): Promise<void> {
    this.markClosed();
    await stopQuietly(this.client, this.transport);
  }
}

async function stopQuietly(client: Client, transport: Transport): Promise<void> {
  // The child and its pipes are unref'd: hold the process open until it is really stopped.
  const hold = setInterval(() => undefined, 1000);
  try {
    await client.close().catch(() => undefined);
    await transport.close().catch(() => undefined);
  } finally {
    clearInterval(hold);
  }
}

async function createTransport(spec: McpServerSpec, opts: ConnectOptions, log: Logger): Promise<Transport> {
  if (spec.transport === 'stdio') {
    const { StdioClientTransport, DEFAULT_INHERITED_ENV_VARS } = await import('@modelcontextprotocol/sdk/client/stdio.js');
    const transport = new StdioClientTransport({
      command: spec.command!,
      args: spec.args,
      cwd: spec.cwd ?? undefined,
      env: childEnv(spec, DEFAULT_INHERITED_ENV_VARS),
      stderr: 'pipe',
      maxBufferSize: MAX_MESSAGE_BYTES,
    });
    const stderr = transport.stderr;
    if (stderr) {
      const write = stderrLogger(log);
      stderr.on('data', write);
      stderr.on('error', () => undefined);
    }
    return transport;
  }
  const url = new URL(spec.url!);
  const requestInit: RequestInit | undefined = spec.bearerToken ? { headers: { Authorization: `Bearer ${spec.bearerToken}` } } : undefined;
  if (spec.transport === 'streamable_http') {
    const { StreamableHTTPClientTransport } = await import('@modelcontextprotocol/sdk/client/streamableHttp.js');
    return new StreamableHTTPClientTransport(url, { fetch: opts.fetch, requestInit, reconnectionOptions: { maxRetries: 0, initialReconnectionDelay: 1000, maxReconnectionDelay: 1000, reconnectionDelayGrowFactor: 1 } });
  }
  const { SSEClientTransport } = await import('@modelcontextprotocol/sdk/client/sse.js');
  return new SSEClientTransport(url, { fetch: opts.fetch, requestInit });
}
