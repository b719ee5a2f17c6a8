// Folds a run's events (api.md §26.4) into what the chat view shows: streamed text, folded tool
// calls with their results, the pending approval or question, and the final status. A copy of
// the fold is kept in sessionStorage per run, so a reload resumes the stream after its last seq
// instead of replaying it.

export const emptyRun = (runId) => ({ runId, lastSeq: 0, status: 'running', items: [], waiting: null, error: null, cancelRequested: false });

function updateTool(items, id, patch) {
  return items.map((it) => (it.kind === 'tool' && it.id === id ? { ...it, ...patch } : it));
}

export function applyEvent(run, ev) {
  const next = { ...run, lastSeq: ev.seq };
  const d = ev.data ?? {};
  switch (ev.type) {
    case 'message.delta': {
      const kind = d.channel === 'thinking' ? 'thinking' : 'text';
      const last = run.items[run.items.length - 1];
      const delta = d.content_delta ?? d.content ?? '';
      next.items = last?.kind === kind ? [...run.items.slice(0, -1), { ...last, text: last.text + delta }] : [...run.items, { kind, text: delta }];
      break;
    }
    case 'tool.call':
      next.items = [...run.items, { kind: 'tool', id: d.tool_call_id, name: d.tool_name, args: d.arguments, state: 'running' }];
      break;
    case 'tool.result':
      next.items = updateTool(run.items, d.tool_call_id, { state: d.error ? 'error' : 'done', result: d.result, error: d.error, ms: d.duration_ms });
      break;
    case 'tool.denied':
      next.items = updateTool(run.items, d.tool_call_id, { state: 'denied', error: { error_class: d.error_class, message: d.message } });
      break;
    case 'run.waiting_for_input':
      next.status = 'waiting_for_input';
      next.waiting = d;
      break;
    case 'run.input_provided':
      next.status = 'running';
      next.waiting = null;
      if (d.kind === 'tool_approval') next.items = updateTool(run.items, d.tool_call_id, { decision: d.decision });
      break;
    case 'run.cancel_requested':
      next.cancelRequested = true;
      break;
    case 'run.completed':
    case 'run.failed':
    case 'run.cancelled':
      next.status = ev.type.slice('run.'.length);
      next.waiting = null;
      if (ev.type === 'run.failed') next.error = d;
      break;
    default:
      break;
  }
  return next;
}

const key = (runId) => `arkloop.run.${runId}`;

export function savedRun(runId) {
  try {
    const raw = sessionStorage.getItem(key(runId));
    return raw ? JSON.parse(raw) : null;
  } catch {
    return null;
  }
}

export function saveRun(run) {
  try {
    if (run.status === 'completed' || run.status === 'failed' || run.status === 'cancelled') sessionStorage.removeItem(key(run.runId));
    else sessionStorage.setItem(key(run.runId), JSON.stringify(run));
  } catch {
    /* storage full or disabled: a reload replays from the start instead */
  }
}
