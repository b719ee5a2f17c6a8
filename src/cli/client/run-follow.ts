// Showing one run to its end: its events through the renderer, and an approval or input request
// asked inline (y/n, or the answer) and sent with POST /v1/runs/{id}/input (api.md §8.6, §27.5a).
// Used by `chat` for each turn and by `runs watch`.
import { ApiError, type ApiClient } from './api.js';
import type { LineReader } from './prompt.js';
import { withoutControls, type Renderer } from './render.js';
import { followRunEvents, type RunEvent } from './sse.js';

/** Leaves the command with this exit code after printing the message. */
export class ClientExit extends Error {
  constructor(
    readonly exitCode: number,
    message: string,
  ) {
    super(message);
  }
}

export interface FollowContext {
  api: ApiClient;
  renderer: Renderer;
  /** Where answers come from; null: requests for input are shown but not answered here. */
  reader: (() => LineReader) | null;
  signal?: AbortSignal;
  /** True once the user asked to cancel the run: a question left unanswered then is no error. */
  cancelling?: () => boolean;
}

/** Follows the run until its terminal event and returns that event (null if `signal` aborted first). */
export async function followRun(ctx: FollowContext, runId: string): Promise<RunEvent | null> {
  const events = followRunEvents(ctx.api, runId, {
    signal: ctx.signal,
    onReconnect: (reason, attempt) => ctx.renderer.note(`(connection lost: ${reason}; resuming${attempt > 1 ? `, attempt ${attempt}` : ''})`),
  });
  let terminal: RunEvent | null = null;
  for await (const ev of events) {
    ctx.renderer.event(ev);
    if (ev.type === 'run.waiting_for_input') {
      if (ctx.reader) await answer(ctx, ctx.reader(), runId, ev);
      else ctx.renderer.note(waitingNote(ev.data ?? {}));
    }
    if (ev.type === 'run.completed' || ev.type === 'run.failed' || ev.type === 'run.cancelled') terminal = ev;
  }
  return terminal;
}

async function answer(ctx: FollowContext, reader: LineReader, runId: string, ev: RunEvent): Promise<void> {
  if (ctx.cancelling?.()) return;
  const d = ev.data ?? {};
  ctx.renderer.breakLine();
  let body: Record<string, unknown>;
  if (d.kind === 'tool_approval') {
    const question = `approve ${d.tool_name}(${JSON.stringify(d.arguments ?? {})})? [y/n] `;
    let decision: 'approve' | 'deny' | null = null;
    while (!decision) {
      const line = await reader.ask(question);
      if (line === null) return unanswered(ctx, runId);
      const a = line.trim().toLowerCase();
      decision = a === 'y' || a === 'yes' ? 'approve' : a === 'n' || a === 'no' ? 'deny' : null;
    }
    body = { approval: { tool_call_id: d.tool_call_id, decision, arguments_sha256: d.arguments_sha256 } };
  } else {
    let content = '';
    while (!content.trim()) {
      const line = await reader.ask(`${withoutControls(String(d.prompt ?? 'input requested'))}\n> `);
      if (line === null) return unanswered(ctx, runId);
      content = line;
    }
    body = { content };
  }
  try {
    await ctx.api.json('POST', `/v1/runs/${runId}/input`, body);
  } catch (err) {
    // Answered elsewhere or cancelled meanwhile: the stream shows what happened next.
    if (err instanceof ApiError && err.code === 'runs.invalid_state') ctx.renderer.note(`(not sent: ${err.message})`);
    else throw err;
  }
}

function waitingNote(d: any): string {
  return d.kind === 'tool_approval'
    ? `(waiting for approval of ${d.tool_name}(${JSON.stringify(d.arguments ?? {})}))`
    : `(waiting for input: ${d.prompt ?? ''})`;
}

/** No answer came: fine while a cancel is on its way (the stream shows the run end), else an error. */
function unanswered(ctx: FollowContext, runId: string): void {
  if (ctx.cancelling?.()) return;
  throw new ClientExit(1, `stdin ended while run ${runId} waits for an answer; it keeps waiting (answer it with \`arkloop runs watch ${runId}\` on a terminal)`);
}
