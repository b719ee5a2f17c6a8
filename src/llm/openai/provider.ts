// The `openai` provider kind: Chat Completions or Responses through the official SDK, against
// api.openai.com or any compatible base URL. No SDK retries: the worker retries above us.
import OpenAI from 'openai';
import { streamInterrupted, connectionError } from '../errors.js';
import type { LlmChunk, LlmProvider, LlmRequest, ProviderConfig } from '../types.js';
import { estimateUsage } from '../usage.js';
import { convertToChatRequest } from './convert-chat-request.js';
import { convertToResponsesRequest } from './convert-responses-request.js';
import { ChatStreamMapper, type ChatStreamChunk } from './map-chat-stream.js';
import { mapOpenAiError } from './map-error.js';
import { ResponsesStreamMapper, type ResponsesStreamEvent } from './map-responses-stream.js';

const OPENAI_BASE_URL = 'https://api.openai.com/v1';

export function createOpenAiProvider(config: ProviderConfig): LlmProvider {
  const baseURL = (config.baseUrl ?? OPENAI_BASE_URL).replace(/\/+$/, '');
  const client = new OpenAI({
    // Compatible local servers often need no key; the SDK insists on one.
    apiKey: config.apiKey ?? 'none',
    baseURL,
    // Explicit, so the SDK never picks up OPENAI_* variables of the process.
    organization: null,
    project: null,
    maxRetries: 0,
    ...(config.timeoutMs ? { timeout: config.timeoutMs } : {}),
    ...(config.fetch ? { fetch: config.fetch } : {}),
  });
  const official = new URL(baseURL).hostname === 'api.openai.com';
  const useResponses = config.openaiApiMode === 'responses';
  return {
    kind: 'openai',
    name: config.name,
    stream: (req, signal) =>
      useResponses ? streamResponses(client, req, signal) : streamChat(client, req, signal, official),
  };
}

async function* streamChat(client: OpenAI, req: LlmRequest, signal: AbortSignal, official: boolean): AsyncGenerator<LlmChunk> {
  const body = convertToChatRequest(req, { maxTokensField: official ? 'max_completion_tokens' : 'max_tokens' });
  const mapper = new ChatStreamMapper();
  let outputStarted = false;
  try {
    const stream = await client.chat.completions.create(
      body as unknown as OpenAI.Chat.ChatCompletionCreateParamsStreaming,
      { signal, headers: req.headers },
    );
    for await (const chunk of stream) {
      yield { type: 'raw', data: chunk };
      for (const c of mapper.push(chunk as ChatStreamChunk)) {
        if (c.type === 'text' || c.type === 'thinking' || c.type === 'tool_call') outputStarted = true;
        yield c;
      }
    }
  } catch (err) {
    throw mapOpenAiError(err, { signal, outputStarted });
  }
  if (signal.aborted) throw mapOpenAiError(null, { signal, outputStarted });
  if (!mapper.sawFinish) {
    // The body ended without a finish_reason: the stream was cut.
    throw outputStarted
      ? streamInterrupted('the upstream stream ended before the answer was complete')
      : connectionError('the upstream stream ended without an answer', { timedOut: false, outputStarted: false });
  }
  yield* mapper.flushCalls();
  yield { type: 'usage', usage: mapper.usage ?? estimateUsage(req, mapper.outputChars) };
  yield { type: 'finish', reason: mapper.finish() };
}

async function* streamResponses(client: OpenAI, req: LlmRequest, signal: AbortSignal): AsyncGenerator<LlmChunk> {
  const body = convertToResponsesRequest(req);
  const mapper = new ResponsesStreamMapper();
  let outputStarted = false;
  try {
    const stream = await client.responses.create(
      body as unknown as OpenAI.Responses.ResponseCreateParamsStreaming,
      { signal, headers: req.headers },
    );
    for await (const event of stream) {
      yield { type: 'raw', data: event };
      for (const c of mapper.push(event as ResponsesStreamEvent, outputStarted)) {
        if (c.type === 'text' || c.type === 'thinking' || c.type === 'tool_call') outputStarted = true;
        yield c;
      }
    }
  } catch (err) {
    throw mapOpenAiError(err, { signal, outputStarted });
  }
  if (signal.aborted) throw mapOpenAiError(null, { signal, outputStarted });
  if (!mapper.terminal) {
    throw outputStarted
      ? streamInterrupted('the upstream stream ended before the response completed')
      : connectionError('the upstream stream ended without a response', { timedOut: false, outputStarted: false });
  }
  yield { type: 'usage', usage: mapper.usage ?? estimateUsage(req, mapper.outputChars) };
  yield { type: 'finish', reason: mapper.finish() };
}
