// Chat Completions stream chunks → LlmChunks. Text and reasoning deltas pass through one for
// one; tool-call fragments are gathered per `index` and emitted whole when the choice finishes.
import type { FinishReason, LlmChunk, LlmUsage } from '../types.js';
import { parseToolArguments } from '../usage.js';

/** The parts of a `chat.completion.chunk` we read (compatible servers add reasoning fields). */
export interface ChatStreamChunk {
  choices?: Array<{
    index?: number;
    delta?: {
      content?: string | null;
      reasoning_content?: string | null;
      reasoning?: string | null;
      tool_calls?: Array<{
        index?: number;
        id?: string | null;
        function?: { name?: string | null; arguments?: string | null };
      }> | null;
    } | null;
    finish_reason?: string | null;
  }>;
  usage?: {
    prompt_tokens?: number;
    completion_tokens?: number;
    prompt_tokens_details?: { cached_tokens?: number | null } | null;
  } | null;
}

export function mapChatFinishReason(reason: string | null | undefined, hasToolCalls: boolean): FinishReason {
  // Some compatible servers answer "stop" after tool calls; a "tool_calls" without calls is a stop.
  if (hasToolCalls) return 'tool_calls';
  if (reason === 'length') return 'length';
  return 'stop';
}

export function mapChatUsage(usage: NonNullable<ChatStreamChunk['usage']>): LlmUsage {
  return {
    inputTokens: usage.prompt_tokens ?? 0,
    outputTokens: usage.completion_tokens ?? 0,
    cacheReadTokens: usage.prompt_tokens_details?.cached_tokens ?? 0,
    cacheWriteTokens: 0,
  };
}

interface PendingCall {
  id: string;
  name: string;
  args: string;
}

export class ChatStreamMapper {
  private readonly calls = new Map<number, PendingCall>();
  private callsEmitted = false;
  private emittedCalls = 0;
  finishReason: string | null = null;
  usage: LlmUsage | null = null;
  /** Characters of text and tool arguments, for a usage estimate when the upstream sends none. */
  outputChars = 0;

  push(chunk: ChatStreamChunk): LlmChunk[] {
    const out: LlmChunk[] = [];
    const choice = chunk.choices?.[0];
    const delta = choice?.delta;
    if (delta) {
      const reasoning = delta.reasoning_content ?? delta.reasoning;
      if (reasoning) out.push({ type: 'thinking', text: reasoning });
      if (delta.content) {
        this.outputChars += delta.content.length;
        out.push({ type: 'text', text: delta.content });
      }
      delta.tool_calls?.forEach((tc, position) => {
        const index = tc.index ?? position;
        let call = this.calls.get(index);
        if (!call) {
          call = { id: '', name: '', args: '' };
          this.calls.set(index, call);
        }
        if (tc.id) call.id = tc.id;
        if (tc.function?.name) call.name += tc.function.name;
        if (tc.function?.arguments) call.args += tc.function.arguments;
      });
    }
    if (choice?.finish_reason) {
      this.finishReason = choice.finish_reason;
      out.push(...this.flushCalls());
    }
    if (chunk.usage) this.usage = mapChatUsage(chunk.usage);
    return out;
  }

  get sawFinish(): boolean {
    return this.finishReason !== null;
  }

  /** Tool calls not yet emitted (normally at finish_reason; at the end for servers that omit it). */
  flushCalls(): LlmChunk[] {
    if (this.callsEmitted) return [];
    this.callsEmitted = true;
    const out: LlmChunk[] = [];
    for (const index of [...this.calls.keys()].sort((a, b) => a - b)) {
      const c = this.calls.get(index)!;
      this.outputChars += c.name.length + c.args.length;
      out.push({ type: 'tool_call', call: { id: c.id || `call_${index}`, name: c.name, ...parseToolArguments(c.args) } });
      this.emittedCalls++;
    }
    return out;
  }

  finish(): FinishReason {
    return mapChatFinishReason(this.finishReason, this.emittedCalls > 0);
  }
}
