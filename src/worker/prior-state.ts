// What a run's events say happened before this job: the conversation of its earlier turns,
// the text streamed, and the turns, model calls and tool calls already spent. A run resumed
// after input (or taken over before any output) continues from here.
import type { LlmMessage, LlmToolCall } from '../llm/index.js';
import type { RunEvent } from '../engine/events.js';

/** What the run's events say happened before this job (a resume after input). */
export interface PriorState {
  conversation: LlmMessage[];
  text: string;
  iterations: number;
  calls: number;
  toolCalls: number;
  routeSelected: boolean;
}

export function priorState(events: RunEvent[]): PriorState {
  const conversation: LlmMessage[] = [];
  let text = '';
  let segmentText = '';
  let segmentCalls: LlmToolCall[] = [];
  let iterations = 0;
  let calls = 0;
  let toolCalls = 0;
  let routeSelected = false;
  // A model turn started but never ended: the previous worker was lost (or stopped) in the
  // middle of it before any output (otherwise the run fails with internal.worker_lost), so
  // the turn is played again — its iteration and the interrupted call are not counted.
  let openSegment = false;
  let pausedForTool = false;
  const flushAssistant = () => {
    if (segmentText || segmentCalls.length) conversation.push({ role: 'assistant', content: segmentText, toolCalls: segmentCalls.length ? segmentCalls : undefined });
    segmentText = '';
    segmentCalls = [];
  };
  for (const e of events) {
    const d = e.data as Record<string, unknown>;
    switch (e.type) {
      case 'run.route.selected':
        routeSelected = true;
        break;
      case 'run.segment.start':
        flushAssistant();
        iterations++;
        calls++;
        openSegment = true;
        break;
      case 'run.segment.end':
        openSegment = false;
        break;
      case 'run.llm.retry':
      case 'run.provider_fallback':
        calls++;
        break;
      case 'message.delta':
        if (d.channel !== 'thinking') {
          segmentText += String(d.content_delta ?? '');
          text += String(d.content_delta ?? '');
        }
        break;
      case 'tool.call':
        toolCalls++;
        segmentCalls.push({ id: String(d.tool_call_id), name: String(d.tool_name), arguments: (d.arguments ?? {}) as Record<string, unknown> });
        break;
      case 'tool.result':
      case 'tool.denied':
        flushAssistant();
        conversation.push({
          role: 'tool',
          toolCallId: String(d.tool_call_id),
          toolName: String(d.tool_name),
          content: JSON.stringify(e.type === 'tool.denied' ? { error: { error_class: d.error_class, message: d.message } } : d.error ? { error: d.error } : d.result),
        });
        break;
      case 'run.waiting_for_input':
        pausedForTool = d.tool_call_id != null;
        break;
      case 'run.input_provided':
        // After an ask_user pause the answer travels as that call's tool.result instead.
        if (!pausedForTool) {
          flushAssistant();
          conversation.push({ role: 'user', content: String(d.content ?? '') });
        }
        pausedForTool = false;
        break;
    }
  }
  flushAssistant();
  if (openSegment) {
    iterations--;
    calls--;
  }
  return { conversation, text, iterations, calls, toolCalls, routeSelected };
}

