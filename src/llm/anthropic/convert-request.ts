// LlmRequest → the body of `POST <base>/v1/messages` (streaming).
import type { LlmMessage, LlmRequest, LlmToolSpec } from '../types.js';

/** The Messages API requires max_tokens; ours is 4096 when the persona sets none (api.md §27.2). */
export const ANTHROPIC_DEFAULT_MAX_TOKENS = 4096;

const THINKING_BUDGET = { low: 1024, medium: 4096, high: 16384 } as const;

type ContentBlock =
  | { type: 'text'; text: string }
  | { type: 'tool_use'; id: string; name: string; input: Record<string, unknown> }
  | { type: 'tool_result'; tool_use_id: string; content: string };

export interface AnthropicMessageParam {
  role: 'user' | 'assistant';
  content: ContentBlock[];
}

/**
 * Tool results go back as `tool_result` blocks of a user turn; consecutive turns of one role
 * are merged, and empty assistant turns dropped, as the API wants alternating non-empty turns.
 */
export function convertToAnthropicMessages(messages: LlmMessage[]): AnthropicMessageParam[] {
  const out: AnthropicMessageParam[] = [];
  const push = (role: 'user' | 'assistant', blocks: ContentBlock[]) => {
    if (!blocks.length) return;
    const prev = out[out.length - 1];
    if (prev && prev.role === role) prev.content.push(...blocks);
    else out.push({ role, content: blocks });
  };
  for (const m of messages) {
    if (m.role === 'user') push('user', [{ type: 'text', text: m.content }]);
    else if (m.role === 'tool') push('user', [{ type: 'tool_result', tool_use_id: m.toolCallId, content: m.content }]);
    else {
      const blocks: ContentBlock[] = [];
      if (m.content !== '') blocks.push({ type: 'text', text: m.content });
      for (const c of m.toolCalls ?? []) blocks.push({ type: 'tool_use', id: c.id, name: c.name, input: c.arguments });
      push('assistant', blocks);
    }
  }
  return out;
}

export function convertToAnthropicTools(tools: LlmToolSpec[]) {
  return tools.map((t) => ({ name: t.name, description: t.description, input_schema: t.inputSchema }));
}

export function convertToAnthropicRequest(req: LlmRequest): Record<string, unknown> {
  const maxTokens = req.maxOutputTokens ?? ANTHROPIC_DEFAULT_MAX_TOKENS;
  const body: Record<string, unknown> = {
    model: req.model,
    max_tokens: maxTokens,
    messages: convertToAnthropicMessages(req.messages),
    stream: true,
  };
  if (req.system) body.system = req.system;
  if (req.tools.length) body.tools = convertToAnthropicTools(req.tools);
  if (req.temperature !== undefined) body.temperature = req.temperature;
  if (req.topP !== undefined) body.top_p = req.topP;
  if (req.reasoningEffort !== undefined) {
    // Extended thinking: the budget must stay below max_tokens and be at least 1024.
    const budget = Math.min(THINKING_BUDGET[req.reasoningEffort], maxTokens - 1);
    if (budget >= 1024) body.thinking = { type: 'enabled', budget_tokens: budget };
  }
  return { ...body, ...req.extraBody };
}
