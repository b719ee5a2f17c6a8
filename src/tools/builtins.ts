// Built-in tools with the argument and result shapes of api.md §27.5. `web_search` and
// `web_fetch` need backends and live in their own modules.
import { ToolRegistry } from './registry.js';
import { ToolError, type Tool } from './types.js';

/** §27.5: built-in tools time out after 30 s. */
export const BUILTIN_TOOL_TIMEOUT_MS = 30_000;

export const echoTool: Tool = {
  name: 'echo',
  description: 'Returns its arguments unchanged. A test tool.',
  inputSchema: { type: 'object', additionalProperties: true },
  source: 'builtin',
  timeoutMs: BUILTIN_TOOL_TIMEOUT_MS,
  async run(args) {
    return args;
  },
};

export const noopTool: Tool = {
  name: 'noop',
  description: 'Does nothing and returns {"ok": true}. A test tool.',
  inputSchema: { type: 'object', additionalProperties: true },
  source: 'builtin',
  timeoutMs: BUILTIN_TOOL_TIMEOUT_MS,
  async run() {
    return { ok: true };
  },
};

export const ASK_USER_TOOL_NAME = 'ask_user';

export interface AskUserArgs {
  question: string;
}

/** What the model receives once the user answered (`POST /v1/runs/{id}/input`). */
export interface AskUserResult {
  answer: string;
}

/**
 * `ask_user` is offered like any tool, but the agent loop handles a call itself: it emits
 * `run.waiting_for_input`, pauses the run and feeds `{answer}` back. Running it directly is a
 * bug in the loop, hence the throw.
 */
export const askUserTool: Tool = {
  name: ASK_USER_TOOL_NAME,
  description:
    'Asks the user a question and waits for the answer. Use it only when you cannot continue without information or a decision from the user.',
  inputSchema: {
    type: 'object',
    properties: { question: { type: 'string', minLength: 1, description: 'The question to show the user.' } },
    required: ['question'],
    additionalProperties: false,
  },
  source: 'builtin',
  timeoutMs: BUILTIN_TOOL_TIMEOUT_MS,
  async run() {
    throw new Error('ask_user is handled by the agent loop and cannot be run directly');
  },
};

export function isAskUser(name: string): boolean {
  return name === ASK_USER_TOOL_NAME;
}

/** The question of an `ask_user` call; ToolError `tool.invalid_arguments` when there is none. */
export function askUserQuestion(args: unknown): string {
  const q = typeof args === 'object' && args !== null ? (args as Record<string, unknown>).question : undefined;
  if (typeof q !== 'string' || q.trim() === '') {
    throw new ToolError('tool.invalid_arguments', 'ask_user needs {"question": "<non-empty string>"}');
  }
  return q;
}

export function askUserResult(answer: string): AskUserResult {
  return { answer };
}

/** The built-ins this module defines, in the order they are offered. */
export const builtinTools: readonly Tool[] = [echoTool, noopTool, askUserTool];

/** A registry holding the built-ins; other sources register into it afterwards. */
export function createBuiltinToolRegistry(): ToolRegistry {
  return new ToolRegistry(builtinTools);
}
