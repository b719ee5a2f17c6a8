// What a run receives from an MCP tools/call answer (api.md §27.5): `structuredContent` when
// present, else the text content items joined into one string.
//
// Decided where the contract is silent: items are joined with "\n"; an embedded text resource
// contributes its text; other items (images, audio, binary resources, resource links) are named
// in place, e.g. "[image image/png]", rather than passed as base64 the model cannot read; a
// result longer than MAX_RESULT_CHARS (its JSON, for structured content) is cut to that many
// characters with a marker, so one tool cannot bloat the event log or the conversation.

export const MAX_RESULT_CHARS = 100_000;
const TRUNCATED = '\n…[truncated]';

/** The part of a CallToolResult the runtime reads (the SDK's parsed answer). */
export interface RawCallResult {
  content?: Array<Record<string, unknown>>;
  structuredContent?: Record<string, unknown>;
  isError?: boolean;
}

function itemText(item: Record<string, unknown>): string {
  const type = String(item.type ?? 'unknown');
  if (type === 'text') return String(item.text ?? '');
  if (type === 'resource') {
    const r = (item.resource ?? {}) as Record<string, unknown>;
    if (typeof r.text === 'string') return r.text;
    return `[resource ${String(r.uri ?? '')}${r.mimeType ? ` ${String(r.mimeType)}` : ''}]`;
  }
  if (type === 'resource_link') return `[resource ${String(item.uri ?? '')}]`;
  return `[${type}${item.mimeType ? ` ${String(item.mimeType)}` : ''}]`;
}

function cut(s: string): string {
  return s.length > MAX_RESULT_CHARS ? s.slice(0, MAX_RESULT_CHARS) + TRUNCATED : s;
}

/** The value a run sees, and the text used in an error message when the tool reported isError. */
export function toolCallResult(res: RawCallResult): { value: unknown; errorText: string } {
  const text = cut((res.content ?? []).map(itemText).join('\n'));
  const errorText = (text.replace(/\s+/g, ' ').trim() || 'the tool reported an error').slice(0, 1000);
  if (res.structuredContent !== undefined && res.structuredContent !== null) {
    const json = JSON.stringify(res.structuredContent);
    return { value: json.length > MAX_RESULT_CHARS ? cut(json) : res.structuredContent, errorText };
  }
  return { value: text, errorText };
}
