// Responses API stream events → LlmChunks. Function calls are emitted whole when their output
// item is done; the usage and the finish come from the terminal `response.*` event.
import { httpError, connectionError } from '../errors.js';
import type { FinishReason, LlmChunk, LlmUsage } from '../types.js';
import { parseToolArguments } from '../usage.js';

export interface ResponsesStreamEvent {
  type: string;
  delta?: string;
  output_index?: number;
  item_id?: string;
  arguments?: string;
  item?: { type?: string; id?: string; call_id?: string; name?: string; arguments?: string };
  response?: {
    status?: string;
    incomplete_details?: { reason?: string } | null;
    error?: { code?: string; message?: string } | null;
    usage?: {
      input_tokens?: number;
      output_tokens?: number;
      input_tokens_details?: { cached_tokens?: number } | null;
    } | null;
  };
  code?: string | null;
  message?: string;
}

export function mapResponsesUsage(usage: NonNullable<NonNullable<ResponsesStreamEvent['response']>['usage']>): LlmUsage {
  return {
    inputTokens: usage.input_tokens ?? 0,
    outputTokens: usage.output_tokens ?? 0,
    cacheReadTokens: usage.input_tokens_details?.cached_tokens ?? 0,
    cacheWriteTokens: 0,
  };
}

interface PendingCall {
  callId: string;
  name: string;
  args: string;
  emitted: boolean;
}

export class ResponsesStreamMapper {
  private readonly calls = new Map<number, PendingCall>();
  private emittedCalls = 0;
  terminal: 'completed' | 'incomplete' | null = null;
  incompleteReason: string | null = null;
  usage: LlmUsage | null = null;
  outputChars = 0;

  /** Throws LlmError for `response.failed` and `error` events. */
  push(event: ResponsesStreamEvent, outputStarted: boolean): LlmChunk[] {
    switch (event.type) {
      case 'response.output_text.delta':
        if (!event.delta) return [];
        this.outputChars += event.delta.length;
        return [{ type: 'text', text: event.delta }];
      case 'response.reasoning_summary_text.delta':
      case 'response.reasoning_text.delta':
        return event.delta ? [{ type: 'thinking', text: event.delta }] : [];
      case 'response.output_item.added':
        if (event.item?.type === 'function_call' && event.output_index !== undefined) {
          this.calls.set(event.output_index, {
            callId: event.item.call_id ?? event.item.id ?? '',
            name: event.item.name ?? '',
            args: event.item.arguments ?? '',
            emitted: false,
          });
        }
        return [];
      case 'response.function_call_arguments.delta': {
        const call = event.output_index !== undefined ? this.calls.get(event.output_index) : undefined;
        if (call && event.delta) call.args += event.delta;
        return [];
      }
      case 'response.function_call_arguments.done': {
        const call = event.output_index !== undefined ? this.calls.get(event.output_index) : undefined;
        if (call && event.arguments !== undefined) call.args = event.arguments;
        return [];
      }
      case 'response.output_item.done': {
        if (event.item?.type !== 'function_call' || event.output_index === undefined) return [];
        const call = this.calls.get(event.output_index) ?? { callId: '', name: '', args: '', emitted: false };
        if (event.item.call_id) call.callId = event.item.call_id;
        if (event.item.name) call.name = event.item.name;
        if (event.item.arguments !== undefined) call.args = event.item.arguments;
        this.calls.set(event.output_index, call);
        return this.emit(call);
      }
      case 'response.completed':
      case 'response.incomplete': {
        this.terminal = event.type === 'response.completed' ? 'completed' : 'incomplete';
        this.incompleteReason = event.response?.incomplete_details?.reason ?? null;
        if (event.response?.usage) this.usage = mapResponsesUsage(event.response.usage);
        return this.flushCalls();
      }
      case 'response.failed': {
        const e = event.response?.error;
        throw failure(e?.code ?? null, e?.message ?? 'the upstream response failed', outputStarted);
      }
      case 'error':
        throw failure(event.code ?? null, event.message ?? 'upstream stream error', outputStarted);
      default:
        return [];
    }
  }

  private emit(call: PendingCall): LlmChunk[] {
    if (call.emitted) return [];
    call.emitted = true;
    this.emittedCalls++;
    this.outputChars += call.name.length + call.args.length;
    return [{ type: 'tool_call', call: { id: call.callId, name: call.name, ...parseToolArguments(call.args) } }];
  }

  flushCalls(): LlmChunk[] {
    return [...this.calls.keys()].sort((a, b) => a - b).flatMap((i) => this.emit(this.calls.get(i)!));
  }

  finish(): FinishReason {
    if (this.emittedCalls > 0) return 'tool_calls';
    if (this.terminal === 'incomplete' && this.incompleteReason === 'max_output_tokens') return 'length';
    return 'stop';
  }
}

function failure(code: string | null, message: string, outputStarted: boolean) {
  if (outputStarted) return connectionError(message, { timedOut: false, outputStarted: true });
  if (code === 'rate_limit_exceeded') return httpError(429, message, null, code);
  if (code === 'context_length_exceeded') return httpError(400, message, null, code);
  if (code === 'invalid_prompt') return httpError(400, message, null, code);
  return connectionError(message, { timedOut: false, outputStarted: false });
}
