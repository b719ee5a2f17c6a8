// The failure classes of an MCP request (api.md §27.5, §27.9) and how an error thrown by the
// SDK client or its transport maps onto them:
//   mcp.timeout         the deadline passed
//   mcp.disconnected    the transport closed, the process exited, the server is unreachable
//   mcp.rpc_error       the server answered with a JSON-RPC error
//   mcp.protocol_error  the answer was malformed (not a valid result for the request)
//   mcp.tool_error      the tool itself reported isError (made by the caller, not here)
// plus policy.ssrf_blocked (a refused address, §27.6) and tool.execution_failed (a host that
// does not resolve, §27.6).
import { SsrfBlockedError } from '../lib/ssrf.js';
import { ToolError } from '../tools/types.js';

export type McpErrorClass = 'mcp.timeout' | 'mcp.disconnected' | 'mcp.rpc_error' | 'mcp.protocol_error' | 'mcp.tool_error';

/** An MCP failure with its class; `result` carries a tool's isError content. */
export class McpFailure extends ToolError {
  constructor(
    readonly mcpClass: McpErrorClass | 'policy.ssrf_blocked' | 'tool.execution_failed',
    message: string,
    result: unknown = null,
  ) {
    super(mcpClass, message, result);
    this.name = 'McpFailure';
  }
}

// JSON-RPC codes the SDK uses for its own failures (types.ts ErrorCode).
const CONNECTION_CLOSED = -32000;
const REQUEST_TIMEOUT = -32001;

const MAX_MESSAGE = 500;

function short(s: string): string {
  const one = s.replace(/\s+/g, ' ').trim();
  return one.length > MAX_MESSAGE ? one.slice(0, MAX_MESSAGE) + '…' : one;
}

function causeChain(err: unknown): unknown[] {
  const out: unknown[] = [];
  for (let e = err, depth = 0; e && depth < 6; e = (e as { cause?: unknown }).cause, depth++) out.push(e);
  return out;
}

/** True for the error a zod (or any schema) parse of a malformed answer throws. */
function isParseError(err: unknown): boolean {
  const name = (err as { name?: unknown } | null)?.name;
  return name === 'ZodError' || name === '$ZodError' || err instanceof SyntaxError;
}

/**
 * The class of a failed request. `closed`: the connection was seen closing (a request then
 * failed is mcp.disconnected); `protocolError`: a malformed message arrived while it waited.
 */
export function classifyMcpError(err: unknown, what: string, opts: { closed?: boolean; protocolError?: string | null } = {}): McpFailure {
  if (err instanceof McpFailure) return err;
  for (const e of causeChain(err)) {
    if (e instanceof SsrfBlockedError) return new McpFailure('policy.ssrf_blocked', `${what}: ${e.message}`);
    const code = (e as { code?: unknown }).code;
    if (code === 'ENOTFOUND' || code === 'EAI_AGAIN') return new McpFailure('tool.execution_failed', `${what}: the server's host does not resolve`);
  }
  const message = err instanceof Error ? err.message : String(err);
  const code = (err as { code?: unknown } | null)?.code;
  const isMcpError = (err as { name?: unknown } | null)?.name === 'McpError' && typeof code === 'number';
  if (isMcpError) {
    if (code === CONNECTION_CLOSED || opts.closed) return new McpFailure('mcp.disconnected', `${what}: the server connection closed`);
    if (code === REQUEST_TIMEOUT) {
      // An answer that could not be read at all never reaches its request: it times out. Say why.
      if (opts.protocolError) return new McpFailure('mcp.protocol_error', `${what}: malformed message from the server (${short(opts.protocolError)})`);
      return new McpFailure('mcp.timeout', `${what}: no answer in time`);
    }
    return new McpFailure('mcp.rpc_error', `${what}: ${short(message)}`);
  }
  if (isParseError(err)) return new McpFailure('mcp.protocol_error', `${what}: malformed answer (${short(message)})`);
  // Anything else comes from the transport: a process that cannot start, a refused connection,
  // a reset, an HTTP error status, a write to a dead process.
  const cause = causeChain(err).slice(1).find((e) => typeof (e as { code?: unknown }).code === 'string') as { code: string } | undefined;
  return new McpFailure('mcp.disconnected', `${what}: ${short(message) || 'transport failure'}${cause ? ` (${cause.code})` : ''}`);
}
