// The `anthropic` provider kind: the Messages API through the official SDK (which sends
// `x-api-key` and `anthropic-version: 2023-06-01`). No SDK retries: the worker retries above us.
import Anthropic from '@anthropic-ai/sdk';
import { connectionError, streamInterrupted } from '../errors.js';
import type { LlmChunk, LlmProvider, LlmRequest, ProviderConfig } from '../types.js';
import { estimateUsage } from '../usage.js';
import { convertToAnthropicRequest } from './convert-request.js';
import { mapAnthropicError } from './map-error.js';
import { AnthropicStreamMapper, type AnthropicStreamEvent } from './map-stream.js';

const ANTHROPIC_BASE_URL = 'https://api.anthropic.com';

export function createAnthropicProvider(config: ProviderConfig): LlmProvider {
  // The SDK appends /v1/messages; accept a base URL given with or without the /v1.
  const baseURL = (config.baseUrl ?? ANTHROPIC_BASE_URL).replace(/\/+$/, '').replace(/\/v1$/, '');
  const client = new Anthropic({
    apiKey: config.apiKey ?? 'none',
    // Explicit, so the SDK never picks up ANTHROPIC_* variables of the process.
    authToken: null,
    baseURL,
    maxRetries: 0,
    ...(config.timeoutMs ? { timeout: config.timeoutMs } : {}),
    ...(config.fetch ? { fetch: config.fetch } : {}),
  });
  return { kind: 'anthropic', name: config.name, stream: (req, signal) => streamMessages(client, req, signal) };
}

async function* streamMessages(client: Anthropic, req: LlmRequest, signal: AbortSignal): AsyncGenerator<LlmChunk> {
  const body = convertToAnthropicRequest(req);
  const mapper = new AnthropicStreamMapper();
  let outputStarted = false;
  try {
    const stream = await client.messages.create(body as unknown as Anthropic.MessageCreateParamsStreaming, {
      signal,
      headers: req.headers,
    });
    for await (const event of stream) {
      yield { type: 'raw', data: event };
      for (const c of mapper.push(event as AnthropicStreamEvent)) {
        if (c.type === 'text' || c.type === 'thinking' || c.type === 'tool_call') outputStarted = true;
        yield c;
      }
    }
  } catch (err) {
    throw mapAnthropicError(err, { signal, outputStarted });
  }
  if (signal.aborted) throw mapAnthropicError(null, { signal, outputStarted });
  if (!mapper.sawMessageStop) {
    throw outputStarted
      ? streamInterrupted('the upstream stream ended before the message was complete')
      : connectionError('the upstream stream ended without a message', { timedOut: false, outputStarted: false });
  }
  yield { type: 'usage', usage: mapper.usage() ?? estimateUsage(req, mapper.outputChars) };
  yield { type: 'finish', reason: mapper.finish() };
}
