// One registry of the tools a run can offer: built-ins now, tool-provider backends and MCP
// tools later, all through register(). The agent loop reads list() and filters it by the
// persona's policy (policy.ts).
import type { LlmToolSpec } from '../llm/types.js';
import type { Tool } from './types.js';

/** Names the model APIs accept for functions (OpenAI and Anthropic alike). */
export const TOOL_NAME_RE = /^[A-Za-z0-9_-]{1,64}$/;

export class ToolRegistry {
  private readonly tools = new Map<string, Tool>();

  constructor(tools: Iterable<Tool> = []) {
    for (const t of tools) this.register(t);
  }

  /** Adds a tool; a malformed or already registered name is a programming error and throws. */
  register(tool: Tool): void {
    if (!TOOL_NAME_RE.test(tool.name)) throw new Error(`invalid tool name "${tool.name}" (${TOOL_NAME_RE.source})`);
    if (this.tools.has(tool.name)) throw new Error(`tool "${tool.name}" is already registered`);
    this.tools.set(tool.name, tool);
  }

  /** Removes a tool (e.g. an MCP server that went away); true when it was there. */
  unregister(name: string): boolean {
    return this.tools.delete(name);
  }

  get(name: string): Tool | undefined {
    return this.tools.get(name);
  }

  has(name: string): boolean {
    return this.tools.has(name);
  }

  /** Every registered tool, in registration order. */
  list(): Tool[] {
    return [...this.tools.values()];
  }

  get size(): number {
    return this.tools.size;
  }
}

/** What the model is told about a tool. */
export function toolSpec(tool: Tool): LlmToolSpec {
  return { name: tool.name, description: tool.description, inputSchema: tool.inputSchema };
}
