// Local stand-ins for LLM upstreams: node:http servers on 127.0.0.1 that answer with the SSE
// wire formats of OpenAI Chat Completions, OpenAI Responses and Anthropic Messages, byte for
// byte as the real APIs frame them, scripted per request and recording what they received.
import { createServer, type IncomingHttpHeaders, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { LlmChunk, LlmRequest } from '../../src/llm/types.js';

export interface ReceivedRequest {
  method: string;
  path: string;
  headers: IncomingHttpHeaders;
  body: any;
}

/** One scripted answer. */
export type FakeReply =
  /** A non-streaming HTTP answer (errors): JSON body. */
  | { status: number; headers?: Record<string, string>; json: unknown }
  /**
   * An SSE answer: `frames` are written one by one (each already framed, e.g. by `chatSse`),
   * `frameDelayMs` apart. `cutAfter` destroys the socket after that many frames;
   * `hangAfter` stops writing after that many frames and keeps the connection open.
   */
  | { sse: string[]; frameDelayMs?: number; cutAfter?: number; hangAfter?: number; headers?: Record<string, string> }
  /** Never answers (headers are not sent) until the client goes away. */
  | { hang: true };

export interface FakeLlm {
  baseUrl: string;
  requests: ReceivedRequest[];
  /** Queues answers for the next requests, in order. */
  reply(...replies: FakeReply[]): void;
  /** Resolves when the client side of the last request closed its connection. */
  closedCount(): number;
  close(): Promise<void>;
}

export async function startFakeLlm(): Promise<FakeLlm> {
  const queue: FakeReply[] = [];
  const requests: ReceivedRequest[] = [];
  let closed = 0;
  const sockets = new Set<import('node:net').Socket>();
  const server = createServer((req, res) => {
    const parts: Buffer[] = [];
    req.on('data', (c: Buffer) => parts.push(c));
    req.on('end', () => {
      const text = Buffer.concat(parts).toString('utf8');
      let body: unknown = text;
      try {
        body = text ? JSON.parse(text) : null;
      } catch {
        // keep the text
      }
      requests.push({ method: req.method ?? '', path: req.url ?? '', headers: req.headers, body });
      res.on('close', () => closed++);
      const reply = queue.shift();
      if (!reply) {
        res.writeHead(500, { 'content-type': 'application/json' });
        res.end(JSON.stringify({ error: { message: 'fake-llm: no reply scripted', type: 'server_error' } }));
        return;
      }
      void answer(res, reply);
    });
  });
  server.on('connection', (s) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as AddressInfo).port;
  return {
    baseUrl: `http://127.0.0.1:${port}`,
    requests,
    reply: (...r) => queue.push(...r),
    closedCount: () => closed,
    close: async () => {
      for (const s of sockets) s.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

async function answer(res: ServerResponse, reply: FakeReply): Promise<void> {
  if ('hang' in reply) return;
  if ('json' in reply) {
    res.writeHead(reply.status, { 'content-type': 'application/json', ...reply.headers });
    res.end(JSON.stringify(reply.json));
    return;
  }
  res.writeHead(200, {
    'content-type': 'text/event-stream; charset=utf-8',
    'cache-control': 'no-cache',
    connection: 'keep-alive',
    ...reply.headers,
  });
  res.flushHeaders();
  for (let i = 0; i < reply.sse.length; i++) {
    if (reply.cutAfter !== undefined && i >= reply.cutAfter) {
      // Let the client read what was written, then drop the connection mid-answer.
      await new Promise((r) => setTimeout(r, 50));
      res.socket?.destroy();
      return;
    }
    if (reply.hangAfter !== undefined && i >= reply.hangAfter) return;
    if (res.destroyed) return;
    res.write(reply.sse[i]);
    if (reply.frameDelayMs) await new Promise((r) => setTimeout(r, reply.frameDelayMs));
  }
  res.end();
}

// ---- wire framing -------------------------------------------------------------------------

/** OpenAI Chat Completions: `data: {...}\n\n` frames and a final `data: [DONE]\n\n`. */
export function chatSse(chunks: unknown[], done = true): string[] {
  const frames = chunks.map((c) => `data: ${JSON.stringify(c)}\n\n`);
  if (done) frames.push('data: [DONE]\n\n');
  return frames;
}

/** Anthropic Messages and OpenAI Responses: `event: <type>\ndata: {...}\n\n` frames. */
export function eventSse(events: Array<{ type: string } & Record<string, unknown>>): string[] {
  return events.map((e) => `event: ${e.type}\ndata: ${JSON.stringify(e)}\n\n`);
}

// ---- OpenAI Chat Completions chunks ---------------------------------------------------------

const CREATED = 1735689600;

export function chatChunk(
  delta: Record<string, unknown>,
  finishReason: string | null = null,
  model = 'gpt-4o-mini-2024-07-18',
): Record<string, unknown> {
  return {
    id: 'chatcmpl-B9MBs8CjcvOU2jLn4n570S5qMJKcT',
    object: 'chat.completion.chunk',
    created: CREATED,
    model,
    service_tier: 'default',
    system_fingerprint: 'fp_560af6e559',
    choices: [{ index: 0, delta, logprobs: null, finish_reason: finishReason }],
    usage: null,
  };
}

export function chatUsageChunk(prompt: number, completion: number, cached = 0, model = 'gpt-4o-mini-2024-07-18'): Record<string, unknown> {
  return {
    id: 'chatcmpl-B9MBs8CjcvOU2jLn4n570S5qMJKcT',
    object: 'chat.completion.chunk',
    created: CREATED,
    model,
    service_tier: 'default',
    system_fingerprint: 'fp_560af6e559',
    choices: [],
    usage: {
      prompt_tokens: prompt,
      completion_tokens: completion,
      total_tokens: prompt + completion,
      prompt_tokens_details: { cached_tokens: cached, audio_tokens: 0 },
      completion_tokens_details: { reasoning_tokens: 0, audio_tokens: 0, accepted_prediction_tokens: 0, rejected_prediction_tokens: 0 },
    },
  };
}

/** A complete text answer as Chat Completions streams it: role chunk, one chunk per piece, finish, usage. */
export function chatTextStream(pieces: string[], usage = { prompt: 10, completion: 5, cached: 0 }): string[] {
  return chatSse([
    chatChunk({ role: 'assistant', content: '', refusal: null }),
    ...pieces.map((p) => chatChunk({ content: p })),
    chatChunk({}, 'stop'),
    chatUsageChunk(usage.prompt, usage.completion, usage.cached),
  ]);
}

// ---- helpers for tests ----------------------------------------------------------------------

export async function collect(stream: AsyncIterable<LlmChunk>, opts: { raw?: boolean } = {}): Promise<LlmChunk[]> {
  const out: LlmChunk[] = [];
  for await (const c of stream) if (opts.raw || c.type !== 'raw') out.push(c);
  return out;
}

/** Collects until the stream throws; returns the chunks and the error. */
export async function collectUntilError(stream: AsyncIterable<LlmChunk>): Promise<{ chunks: LlmChunk[]; error: unknown }> {
  const chunks: LlmChunk[] = [];
  try {
    for await (const c of stream) if (c.type !== 'raw') chunks.push(c);
  } catch (error) {
    return { chunks, error };
  }
  return { chunks, error: null };
}

export function texts(chunks: LlmChunk[]): string[] {
  return chunks.flatMap((c) => (c.type === 'text' ? [c.text] : []));
}

export function request(overrides: Partial<LlmRequest> = {}): LlmRequest {
  return {
    model: 'test-model',
    system: null,
    messages: [{ role: 'user', content: 'hello' }],
    tools: [],
    turn: 0,
    ...overrides,
  };
}

// ---- OpenAI Responses events ----------------------------------------------------------------

const RESP_ID = 'resp_67ccd2bed1ec8190b14f964abc0542670bb6a6b452d3795b';

function responseObject(status: string, extra: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    id: RESP_ID,
    object: 'response',
    created_at: CREATED,
    status,
    background: false,
    error: null,
    incomplete_details: null,
    instructions: null,
    max_output_tokens: null,
    model: 'gpt-4.1-2025-04-14',
    output: [],
    parallel_tool_calls: true,
    previous_response_id: null,
    reasoning: { effort: null, summary: null },
    store: true,
    temperature: 1,
    text: { format: { type: 'text' } },
    tool_choice: 'auto',
    tools: [],
    top_p: 1,
    truncation: 'disabled',
    usage: null,
    user: null,
    metadata: {},
    ...extra,
  };
}

/** Builds a Responses event list with sequence numbers; `body` are the events between created/in_progress and the terminal one. */
export function responsesEvents(
  body: Array<Record<string, unknown> & { type: string }>,
  terminal: { type?: 'response.completed' | 'response.incomplete' | 'response.failed'; usage?: { input: number; output: number; cached?: number }; extra?: Record<string, unknown> } | null = {},
): string[] {
  const events: Array<Record<string, unknown> & { type: string }> = [
    { type: 'response.created', response: responseObject('in_progress') },
    { type: 'response.in_progress', response: responseObject('in_progress') },
    ...body,
  ];
  if (terminal) {
    const type = terminal.type ?? 'response.completed';
    const u = terminal.usage ?? { input: 12, output: 6, cached: 0 };
    const status = type === 'response.completed' ? 'completed' : type === 'response.incomplete' ? 'incomplete' : 'failed';
    events.push({
      type,
      response: responseObject(status, {
        usage: {
          input_tokens: u.input,
          input_tokens_details: { cached_tokens: u.cached ?? 0 },
          output_tokens: u.output,
          output_tokens_details: { reasoning_tokens: 0 },
          total_tokens: u.input + u.output,
        },
        ...terminal.extra,
      }),
    });
  }
  return eventSse(events.map((e, i) => ({ ...e, sequence_number: i })));
}

export function responsesTextItem(outputIndex: number, pieces: string[], itemId = 'msg_67ccd2bf17f0819081ff3bb2cf6508e60bb6a6b452d3795b') {
  const text = pieces.join('');
  return [
    { type: 'response.output_item.added', output_index: outputIndex, item: { id: itemId, type: 'message', status: 'in_progress', content: [], role: 'assistant' } },
    { type: 'response.content_part.added', item_id: itemId, output_index: outputIndex, content_index: 0, part: { type: 'output_text', annotations: [], logprobs: [], text: '' } },
    ...pieces.map((delta) => ({ type: 'response.output_text.delta', item_id: itemId, output_index: outputIndex, content_index: 0, delta, logprobs: [] })),
    { type: 'response.output_text.done', item_id: itemId, output_index: outputIndex, content_index: 0, text, logprobs: [] },
    { type: 'response.content_part.done', item_id: itemId, output_index: outputIndex, content_index: 0, part: { type: 'output_text', annotations: [], logprobs: [], text } },
    {
      type: 'response.output_item.done',
      output_index: outputIndex,
      item: { id: itemId, type: 'message', status: 'completed', content: [{ type: 'output_text', annotations: [], logprobs: [], text }], role: 'assistant' },
    },
  ];
}

export function responsesFunctionCallItem(outputIndex: number, callId: string, name: string, argPieces: string[]) {
  const itemId = `fc_${callId.replace(/^call_/, '')}`;
  const args = argPieces.join('');
  return [
    { type: 'response.output_item.added', output_index: outputIndex, item: { id: itemId, type: 'function_call', status: 'in_progress', arguments: '', call_id: callId, name } },
    ...argPieces.map((delta) => ({ type: 'response.function_call_arguments.delta', item_id: itemId, output_index: outputIndex, delta })),
    { type: 'response.function_call_arguments.done', item_id: itemId, output_index: outputIndex, arguments: args },
    { type: 'response.output_item.done', output_index: outputIndex, item: { id: itemId, type: 'function_call', status: 'completed', arguments: args, call_id: callId, name } },
  ];
}

export function responsesReasoningItem(outputIndex: number, pieces: string[], itemId = 'rs_6876cf02e0bc8192b74af0fb64b715ff06fa2fcced15a5ac') {
  const text = pieces.join('');
  return [
    { type: 'response.output_item.added', output_index: outputIndex, item: { id: itemId, type: 'reasoning', summary: [] } },
    { type: 'response.reasoning_summary_part.added', item_id: itemId, output_index: outputIndex, summary_index: 0, part: { type: 'summary_text', text: '' } },
    ...pieces.map((delta) => ({ type: 'response.reasoning_summary_text.delta', item_id: itemId, output_index: outputIndex, summary_index: 0, delta })),
    { type: 'response.reasoning_summary_text.done', item_id: itemId, output_index: outputIndex, summary_index: 0, text },
    { type: 'response.reasoning_summary_part.done', item_id: itemId, output_index: outputIndex, summary_index: 0, part: { type: 'summary_text', text } },
    { type: 'response.output_item.done', output_index: outputIndex, item: { id: itemId, type: 'reasoning', summary: [{ type: 'summary_text', text }] } },
  ];
}

// ---- Anthropic Messages events --------------------------------------------------------------

export function anthropicMessageStart(usage: { input: number; cacheRead?: number; cacheWrite?: number; output?: number } = { input: 25 }) {
  return {
    type: 'message_start',
    message: {
      id: 'msg_01XFDUDYJgAACzvnptvVoYEL',
      type: 'message',
      role: 'assistant',
      model: 'claude-sonnet-4-20250514',
      content: [],
      stop_reason: null,
      stop_sequence: null,
      usage: {
        input_tokens: usage.input,
        cache_creation_input_tokens: usage.cacheWrite ?? 0,
        cache_read_input_tokens: usage.cacheRead ?? 0,
        output_tokens: usage.output ?? 1,
        service_tier: 'standard',
      },
    },
  };
}

export function anthropicTextBlock(index: number, pieces: string[]) {
  return [
    { type: 'content_block_start', index, content_block: { type: 'text', text: '' } },
    ...pieces.map((text) => ({ type: 'content_block_delta', index, delta: { type: 'text_delta', text } })),
    { type: 'content_block_stop', index },
  ];
}

export function anthropicThinkingBlock(index: number, pieces: string[]) {
  return [
    { type: 'content_block_start', index, content_block: { type: 'thinking', thinking: '', signature: '' } },
    ...pieces.map((thinking) => ({ type: 'content_block_delta', index, delta: { type: 'thinking_delta', thinking } })),
    { type: 'content_block_delta', index, delta: { type: 'signature_delta', signature: 'EqQBCgIYAhIM1gbcDa9GJwZA2b3hGgxBdjrkzLoky3dl1pkiMOYds' } },
    { type: 'content_block_stop', index },
  ];
}

export function anthropicToolUseBlock(index: number, id: string, name: string, jsonPieces: string[]) {
  return [
    { type: 'content_block_start', index, content_block: { type: 'tool_use', id, name, input: {} } },
    { type: 'content_block_delta', index, delta: { type: 'input_json_delta', partial_json: '' } },
    ...jsonPieces.map((partial_json) => ({ type: 'content_block_delta', index, delta: { type: 'input_json_delta', partial_json } })),
    { type: 'content_block_stop', index },
  ];
}

/** A whole Messages stream: message_start, a ping, the blocks, message_delta (stop reason, usage), message_stop. */
export function anthropicStream(
  blocks: Array<Record<string, unknown> & { type: string }>,
  opts: { stopReason?: string; input?: number; cacheRead?: number; cacheWrite?: number; output?: number } = {},
): string[] {
  return eventSse([
    anthropicMessageStart({ input: opts.input ?? 25, cacheRead: opts.cacheRead, cacheWrite: opts.cacheWrite }),
    { type: 'ping' },
    ...blocks,
    { type: 'message_delta', delta: { stop_reason: opts.stopReason ?? 'end_turn', stop_sequence: null }, usage: { output_tokens: opts.output ?? 15 } },
    { type: 'message_stop' },
  ]);
}
