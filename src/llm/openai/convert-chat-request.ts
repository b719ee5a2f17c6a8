// LlmRequest → the body of `POST <base>/chat/completions` (streaming, usage included).
import type { LlmMessage, LlmRequest, LlmToolSpec } from '../types.js';

export type ChatMessageParam =
  | { role: 'system'; content: string }
  | { role: 'user'; content: string }
  | {
      role: 'assistant';
      content: string | null;
      tool_calls?: Array<{ id: string; type: 'function'; function: { name: string; arguments: string } }>;
    }
  | { role: 'tool'; tool_call_id: string; content: string };

export function convertToChatMessages(system: string | null, messages: LlmMessage[]): ChatMessageParam[] {
  const out: ChatMessageParam[] = [];
  if (system) out.push({ role: 'system', content: system });
  for (const m of messages) {
    if (m.role === 'user') out.push({ role: 'user', content: m.content });
    else if (m.role === 'tool') out.push({ role: 'tool', tool_call_id: m.toolCallId, content: m.content });
    else if (m.toolCalls?.length) {
      out.push({
        role: 'assistant',
        content: m.content === '' ? null : m.content,
        tool_calls: m.toolCalls.map((c) => ({
          id: c.id,
          type: 'function',
          function: { name: c.name, arguments: c.rawArguments ?? JSON.stringify(c.arguments) },
        })),
      });
    } else out.push({ role: 'assistant', content: m.content });
  }
  return out;
}

export function convertToChatTools(tools: LlmToolSpec[]) {
  return tools.map((t) => ({
    type: 'function' as const,
    function: { name: t.name, description: t.description, parameters: t.inputSchema },
  }));
}

export interface ChatRequestOptions {
  /**
   * OpenAI itself wants `max_completion_tokens` (its reasoning models refuse `max_tokens`);
   * compatible servers (vLLM, Ollama, llama.cpp) know `max_tokens` for sure.
   */
  maxTokensField: 'max_tokens' | 'max_completion_tokens';
}

export function convertToChatRequest(req: LlmRequest, opts: ChatRequestOptions): Record<string, unknown> {
  const body: Record<string, unknown> = {
    model: req.model,
    messages: convertToChatMessages(req.system, req.messages),
    stream: true,
    stream_options: { include_usage: true },
  };
  if (req.tools.length) body.tools = convertToChatTools(req.tools);
  if (req.maxOutputTokens !== undefined) body[opts.maxTokensField] = req.maxOutputTokens;
  if (req.temperature !== undefined) body.temperature = req.temperature;
  if (req.topP !== undefined) body.top_p = req.topP;
  if (req.reasoningEffort !== undefined) body.reasoning_effort = req.reasoningEffort;
  return { ...body, ...req.extraBody };
}
