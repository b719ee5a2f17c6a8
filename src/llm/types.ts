// The model-provider interface the agent loop streams through. Adapters (openai, anthropic,
// stub) turn one request into a stream of small tagged chunks; retries, backoff and
// fallback live once, above them, in the worker.

export type ProviderKind = 'openai' | 'anthropic' | 'stub';

export interface LlmToolCall {
  id: string;
  name: string;
  arguments: Record<string, unknown>;
  /**
   * Set only when the upstream arguments text was not a JSON object (then `arguments` is {}):
   * the text as received, so the loop can answer `tool.invalid_arguments`.
   */
  rawArguments?: string;
}

export type LlmMessage =
  | { role: 'user'; content: string }
  | { role: 'assistant'; content: string; toolCalls?: LlmToolCall[] }
  /** A tool result fed back to the model; `content` is the JSON-encoded result. */
  | { role: 'tool'; toolCallId: string; toolName: string; content: string };

export interface LlmToolSpec {
  name: string;
  description: string;
  /** JSON Schema of the arguments object. */
  inputSchema: Record<string, unknown>;
}

export interface LlmRequest {
  /** Upstream model name. */
  model: string;
  system: string | null;
  messages: LlmMessage[];
  tools: LlmToolSpec[];
  maxOutputTokens?: number;
  temperature?: number;
  topP?: number;
  reasoningEffort?: 'low' | 'medium' | 'high';
  /** `advanced_json.extra_body` of the provider/model: merged into the upstream body. */
  extraBody?: Record<string, unknown>;
  /** `advanced_json.headers`: extra upstream headers. */
  headers?: Record<string, string>;
  /**
   * 0-based index of this model call within the run, counting retries and fallback calls.
   * Only the stub reads it (its scripted steps are played one per call).
   */
  turn: number;
}

export interface LlmUsage {
  /** Includes cached tokens. */
  inputTokens: number;
  outputTokens: number;
  cacheReadTokens: number;
  cacheWriteTokens: number;
}

export type FinishReason = 'stop' | 'tool_calls' | 'length';

export type LlmChunk =
  /** Assistant text, one upstream chunk each (no coalescing). */
  | { type: 'text'; text: string }
  /** Reasoning text (never part of the message content). */
  | { type: 'thinking'; text: string }
  /** A complete tool call: adapters assemble arguments split across upstream chunks. */
  | { type: 'tool_call'; call: LlmToolCall }
  | { type: 'usage'; usage: LlmUsage }
  | { type: 'finish'; reason: FinishReason }
  /** Stub only: pause the run until human input arrives (DECISIONS.md `ask_input`). */
  | { type: 'ask_input'; prompt: string }
  /** One raw upstream chunk, for the optional `llm.response.chunk` debug events. */
  | { type: 'raw'; data: unknown };

export interface LlmProvider {
  readonly kind: ProviderKind;
  /** Provider `name` (selector prefix), e.g. "openai" or "stub". */
  readonly name: string;
  /**
   * Streams one model call. Throws LlmError for upstream failures; aborting `signal` stops
   * the upstream request promptly and ends the iteration with an AbortError.
   */
  stream(req: LlmRequest, signal: AbortSignal): AsyncIterable<LlmChunk>;
}

/** Configuration of one provider, from the database or the environment. */
export interface ProviderConfig {
  kind: ProviderKind;
  name: string;
  apiKey: string | null;
  baseUrl: string | null;
  /** openai only: which API to call; `auto` = Chat Completions. */
  openaiApiMode?: 'auto' | 'responses' | 'chat_completions' | null;
  /** Provider-level advanced_json (stub: `chunk_delay_ms`). */
  advancedJson?: Record<string, unknown> | null;
  /** Per-attempt timeout before the first byte, ms. */
  timeoutMs?: number;
  /** The fetch the SDK uses (the SSRF guard's for account-owned providers, §27.6). */
  fetch?: typeof fetch;
}

/** Error classes of api.md §27.4 / §27.9. */
export type LlmErrorClass =
  | 'provider.auth_failed'
  | 'provider.bad_request'
  | 'provider.context_length_exceeded'
  | 'provider.rate_limited'
  | 'provider.unavailable'
  | 'provider.timeout'
  | 'provider.stream_interrupted';

export class LlmError extends Error {
  constructor(
    readonly errorClass: LlmErrorClass,
    message: string,
    readonly opts: {
      /** Upstream HTTP status, or null for connection errors and timeouts. */
      status: number | null;
      /** Upstream Retry-After, ms. */
      retryAfterMs?: number | null;
      /** 429/502/503, connection errors and timeouts before the first byte. */
      retryable: boolean;
    },
  ) {
    super(message);
    this.name = 'LlmError';
  }
}
