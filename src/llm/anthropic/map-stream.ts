// Messages API stream events → LlmChunks. Text and thinking deltas pass through one for one;
// `input_json_delta` fragments are gathered per content block index and emitted whole at
// `content_block_stop`. Usage: our inputTokens include cache reads and writes.
import type { FinishReason, LlmChunk, LlmUsage } from '../types.js';
import { parseToolArguments } from '../usage.js';

interface AnthropicUsage {
  input_tokens?: number | null;
  output_tokens?: number | null;
  cache_read_input_tokens?: number | null;
  cache_creation_input_tokens?: number | null;
}

export interface AnthropicStreamEvent {
  type: string;
  index?: number;
  message?: { usage?: AnthropicUsage };
  content_block?: { type?: string; id?: string; name?: string; input?: unknown };
  delta?: { type?: string; text?: string; partial_json?: string; thinking?: string; stop_reason?: string | null };
  usage?: AnthropicUsage;
}

export function mapAnthropicStopReason(reason: string | null | undefined, hasToolCalls: boolean): FinishReason {
  if (reason === 'tool_use' || hasToolCalls) return 'tool_calls';
  if (reason === 'max_tokens' || reason === 'model_context_window_exceeded') return 'length';
  return 'stop';
}

interface PendingToolUse {
  id: string;
  name: string;
  json: string;
}

export class AnthropicStreamMapper {
  private readonly toolUses = new Map<number, PendingToolUse>();
  private emittedCalls = 0;
  private raw: AnthropicUsage = {};
  private sawUsage = false;
  stopReason: string | null = null;
  sawMessageStop = false;
  outputChars = 0;

  push(event: AnthropicStreamEvent): LlmChunk[] {
    switch (event.type) {
      case 'message_start':
        if (event.message?.usage) this.mergeUsage(event.message.usage);
        return [];
      case 'content_block_start':
        if (event.content_block?.type === 'tool_use' && event.index !== undefined) {
          this.toolUses.set(event.index, { id: event.content_block.id ?? '', name: event.content_block.name ?? '', json: '' });
        }
        return [];
      case 'content_block_delta': {
        const d = event.delta;
        if (d?.type === 'text_delta' && d.text) {
          this.outputChars += d.text.length;
          return [{ type: 'text', text: d.text }];
        }
        if (d?.type === 'thinking_delta' && d.thinking) return [{ type: 'thinking', text: d.thinking }];
        if (d?.type === 'input_json_delta' && event.index !== undefined) {
          const t = this.toolUses.get(event.index);
          if (t && d.partial_json) t.json += d.partial_json;
        }
        return [];
      }
      case 'content_block_stop': {
        const t = event.index !== undefined ? this.toolUses.get(event.index) : undefined;
        if (!t) return [];
        this.toolUses.delete(event.index!);
        this.emittedCalls++;
        this.outputChars += t.name.length + t.json.length;
        return [{ type: 'tool_call', call: { id: t.id, name: t.name, ...parseToolArguments(t.json) } }];
      }
      case 'message_delta':
        if (event.delta?.stop_reason) this.stopReason = event.delta.stop_reason;
        if (event.usage) this.mergeUsage(event.usage);
        return [];
      case 'message_stop':
        this.sawMessageStop = true;
        return [];
      default:
        return [];
    }
  }

  /** message_delta carries cumulative counts; a field it leaves out keeps message_start's value. */
  private mergeUsage(u: AnthropicUsage) {
    this.sawUsage = true;
    for (const k of ['input_tokens', 'output_tokens', 'cache_read_input_tokens', 'cache_creation_input_tokens'] as const) {
      if (typeof u[k] === 'number') this.raw[k] = u[k];
    }
  }

  usage(): LlmUsage | null {
    if (!this.sawUsage) return null;
    const cacheRead = this.raw.cache_read_input_tokens ?? 0;
    const cacheWrite = this.raw.cache_creation_input_tokens ?? 0;
    return {
      inputTokens: (this.raw.input_tokens ?? 0) + cacheRead + cacheWrite,
      outputTokens: this.raw.output_tokens ?? 0,
      cacheReadTokens: cacheRead,
      cacheWriteTokens: cacheWrite,
    };
  }

  finish(): FinishReason {
    return mapAnthropicStopReason(this.stopReason, this.emittedCalls > 0);
  }
}
