// LlmRequest → the body of `POST <base>/responses` (streaming).
import type { LlmMessage, LlmRequest, LlmToolSpec } from '../types.js';

export type ResponsesInputItem =
  | { role: 'user' | 'assistant'; content: string }
  | { type: 'function_call'; call_id: string; name: string; arguments: string }
  | { type: 'function_call_output'; call_id: string; output: string };

export function convertToResponsesInput(messages: LlmMessage[]): ResponsesInputItem[] {
  const out: ResponsesInputItem[] = [];
  for (const m of messages) {
    if (m.role === 'user') out.push({ role: 'user', content: m.content });
    else if (m.role === 'tool') out.push({ type: 'function_call_output', call_id: m.toolCallId, output: m.content });
    else {
      if (m.content !== '') out.push({ role: 'assistant', content: m.content });
      for (const c of m.toolCalls ?? []) {
        out.push({ type: 'function_call', call_id: c.id, name: c.name, arguments: c.rawArguments ?? JSON.stringify(c.arguments) });
      }
    }
  }
  return out;
}

export function convertToResponsesTools(tools: LlmToolSpec[]) {
  return tools.map((t) => ({
    type: 'function' as const,
    name: t.name,
    description: t.description,
    parameters: t.inputSchema,
    strict: false,
  }));
}

export function convertToResponsesRequest(req: LlmRequest): Record<string, unknown> {
  const body: Record<string, unknown> = {
    model: req.model,
    input: convertToResponsesInput(req.messages),
    stream: true,
  };
  if (req.system) body.instructions = req.system;
  if (req.tools.length) body.tools = convertToResponsesTools(req.tools);
  if (req.maxOutputTokens !== undefined) body.max_output_tokens = req.maxOutputTokens;
  if (req.temperature !== undefined) body.temperature = req.temperature;
  if (req.topP !== undefined) body.top_p = req.topP;
  if (req.reasoningEffort !== undefined) body.reasoning = { effort: req.reasoningEffort, summary: 'auto' };
  return { ...body, ...req.extraBody };
}
