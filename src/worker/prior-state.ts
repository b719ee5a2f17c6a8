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
  /** Names of the calls that ran (a `tool.result`), for the run's tool budget. */
  ranToolCalls: string[];
  routeSelected: boolean;
  /**
   * The last turn's calls that have no result yet — a turn paused for approvals (§27.5a),
   * with the decisions taken so far — or null when every call has its result.
   */
  pendingTurn: { calls: LlmToolCall[]; decisions: Map<string, 'approve' | 'deny'> } | null;
}

export function priorState(events: RunEvent[]): PriorState {
  const conversation: LlmMessage[] = [];
  let text = '';
  let segmentText = '';
  let segmentCalls: LlmToolCall[] = [];
  let iterations = 0;
  let calls = 0;
  const ranToolCalls: string[] = [];
  let routeSelected = false;
  let turnCalls: LlmToolCall[] = [];
  const settled = new Set<string>();
  let decisions = new Map<string, 'approve' | 'deny'>();
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
        turnCalls = [];
        settled.clear();
        decisions = new Map();
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
      case 'tool.call': {
        const call = { id: String(d.tool_call_id), name: String(d.tool_name), arguments: (d.arguments ?? {}) as Record<string, unknown> };
        segmentCalls.push(call);
        turnCalls.push(call);
        break;
      }
      case 'tool.result':
      case 'tool.denied':
        if (e.type === 'tool.result') ranToolCalls.push(String(d.tool_name));
        settled.add(String(d.tool_call_id));
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
        if (d.kind === 'tool_approval') decisions.set(String(d.tool_call_id), d.decision === 'approve' ? 'approve' : 'deny');
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
  const unsettled = turnCalls.filter((c) => !settled.has(c.id));
  const pendingTurn = unsettled.length ? { calls: unsettled, decisions } : null;
  return { conversation, text, iterations, calls, ranToolCalls, routeSelected, pendingTurn };
}

