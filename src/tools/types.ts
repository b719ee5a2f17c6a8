// The tool interface of the agent loop: built-ins now; tool-provider backends and MCP tools
// register into the same registry later.
import type { Logger } from 'pino';

export type ToolSource = 'builtin' | 'provider' | 'mcp';

export interface ToolContext {
  runId: string;
  orgId: string;
  userId: string;
  /** Aborted when the run is cancelled or the tool times out. */
  signal: AbortSignal;
  log: Logger;
}

export interface Tool {
  name: string;
  description: string;
  /** JSON Schema of the arguments object. */
  inputSchema: Record<string, unknown>;
  source: ToolSource;
  /** Per-call timeout, ms (built-ins: 30 s). */
  timeoutMs?: number;
  run(args: Record<string, unknown>, ctx: ToolContext): Promise<unknown>;
}

/** Tool error classes of api.md §27.9: never fatal, reported in `tool.result`. */
export class ToolError extends Error {
  constructor(
    readonly errorClass: string,
    message: string,
    /** Content returned together with the error (e.g. MCP isError content). */
    readonly result: unknown = null,
  ) {
    super(message);
    this.name = 'ToolError';
  }
}
