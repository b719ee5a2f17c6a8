// Usage estimates for when the upstream reports none (api.md §27.4: ⌈characters / 4⌉).
import type { LlmRequest, LlmUsage } from './types.js';

export function estimateTokens(chars: number): number {
  return Math.ceil(chars / 4);
}

/** Characters of everything sent to the model: system prompt, turns, tool calls, tool specs. */
export function requestChars(req: LlmRequest): number {
  let n = req.system?.length ?? 0;
  for (const m of req.messages) {
    n += m.content.length;
    if (m.role === 'assistant' && m.toolCalls) {
      for (const c of m.toolCalls) n += c.name.length + JSON.stringify(c.arguments).length;
    }
  }
  for (const t of req.tools) n += t.name.length + t.description.length + JSON.stringify(t.inputSchema).length;
  return n;
}

export function estimateUsage(req: LlmRequest, outputChars: number): LlmUsage {
  return {
    inputTokens: estimateTokens(requestChars(req)),
    outputTokens: estimateTokens(outputChars),
    cacheReadTokens: 0,
    cacheWriteTokens: 0,
  };
}

/** Parses tool-call arguments text; anything but a JSON object keeps the text in `rawArguments`. */
export function parseToolArguments(text: string): { arguments: Record<string, unknown>; rawArguments?: string } {
  if (text.trim() === '') return { arguments: {} };
  try {
    const v: unknown = JSON.parse(text);
    if (v && typeof v === 'object' && !Array.isArray(v)) return { arguments: v as Record<string, unknown> };
  } catch {
    // fall through
  }
  return { arguments: {}, rawArguments: text };
}
