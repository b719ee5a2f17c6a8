// A client of real `arkloop` processes over HTTP, for the fault tests: register, start runs,
// read events (JSON and SSE), wait for conditions with bounds, and the §26.3 invariants.
import assert from 'node:assert/strict';
import { sleep } from './processes.js';

export const TERMINAL = new Set(['run.completed', 'run.failed', 'run.cancelled']);
/** Short leases so a lost worker is noticed within seconds (config.ts: lease ≥ 1 s, heartbeat ≥ 0.1 s). */
export const FAST_LEASES = { ARKLOOP_WORKER_LEASE_SECONDS: '2', ARKLOOP_WORKER_HEARTBEAT_SECONDS: '0.5', ARKLOOP_WORKER_POLL_SECONDS: '0.25' };

export interface Client {
  base: string;
  token: string;
}

export async function call(base: string, method: string, path: string, body?: unknown, token?: string, headers: Record<string, string> = {}): Promise<{ status: number; body: any; text: string }> {
  const res = await fetch(base + path, {
    method,
    headers: {
      ...(body !== undefined ? { 'content-type': 'application/json' } : {}),
      ...(token ? { authorization: `Bearer ${token}` } : {}),
      ...headers,
    },
    body: body !== undefined ? JSON.stringify(body) : undefined,
    signal: AbortSignal.timeout(10_000),
  });
  const text = await res.text();
  let parsed: any = null;
  try {
    parsed = text ? JSON.parse(text) : null;
  } catch {
    /* not JSON */
  }
  return { status: res.status, body: parsed, text };
}

export async function register(base: string): Promise<string> {
  const login = `fault${Math.random().toString(16).slice(2, 10)}`;
  const res = await call(base, 'POST', '/v1/auth/register', { login, email: `${login}@example.com`, password: 'correct horse battery' });
  assert.equal(res.status, 201, res.text);
  return res.body.access_token as string;
}

/** Creates a thread with one user message and starts a run on it. */
export async function startRun(c: Client, content: string): Promise<{ threadId: string; runId: string }> {
  const th = await call(c.base, 'POST', '/v1/threads', {}, c.token);
  assert.equal(th.status, 201, th.text);
  const msg = await call(c.base, 'POST', `/v1/threads/${th.body.id}/messages`, { content }, c.token);
  assert.equal(msg.status, 201, msg.text);
  const run = await call(c.base, 'POST', `/v1/threads/${th.body.id}/runs`, {}, c.token);
  assert.equal(run.status, 201, run.text);
  return { threadId: th.body.id, runId: run.body.run_id };
}

export async function eventsOf(c: Client, runId: string): Promise<{ data: any[]; status: string }> {
  const res = await call(c.base, 'GET', `/v1/runs/${runId}/events?limit=1000`, undefined, c.token, { accept: 'application/json' });
  assert.equal(res.status, 200, res.text);
  return res.body;
}

/** Polls the run's events (JSON) until `pred` holds; fails after `timeoutMs`. */
export async function waitForEvents(c: Client, runId: string, pred: (events: any[]) => boolean, what: string, timeoutMs = 20_000): Promise<any[]> {
  const start = Date.now();
  let last: any[] = [];
  while (Date.now() - start < timeoutMs) {
    last = (await eventsOf(c, runId)).data;
    if (pred(last)) return last;
    await sleep(50);
  }
  throw new Error(`timed out waiting for ${what}; events: ${last.map((e) => e.type).join(', ')}`);
}

/** The §26.3 invariants: seqs 1..N without gap or repeat, one terminal event, and it is the last. */
export function assertWellFormed(events: any[]): void {
  assert.deepEqual(
    events.map((e) => e.seq),
    events.map((_, i) => i + 1),
    'seqs are 1..N',
  );
  const terminals = events.filter((e) => TERMINAL.has(e.type));
  assert.equal(terminals.length, 1, `exactly one terminal event: ${events.map((e) => e.type).join(', ')}`);
  assert.equal(events.at(-1).type, terminals[0].type, 'the terminal event is the last');
  assert.equal(events[0].type, 'run.started');
}

/**
 * Follows `GET /v1/runs/{id}/events` over real HTTP, returning the frames (id line + event)
 * once the server closes the stream, which it must do after the terminal event.
 */
export async function followSse(c: Client, runId: string, timeoutMs = 30_000): Promise<Array<{ id: number; event: any; at: number }>> {
  const res = await fetch(`${c.base}/v1/runs/${runId}/events`, {
    headers: { authorization: `Bearer ${c.token}`, accept: 'text/event-stream' },
    signal: AbortSignal.timeout(timeoutMs),
  });
  assert.equal(res.status, 200);
  assert.match(res.headers.get('content-type') ?? '', /^text\/event-stream/);
  const frames: Array<{ id: number; event: any; at: number }> = [];
  const decoder = new TextDecoder();
  let buf = '';
  const reader = res.body!.getReader();
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    buf += decoder.decode(value, { stream: true });
    let i: number;
    while ((i = buf.indexOf('\n\n')) >= 0) {
      const frame = buf.slice(0, i);
      buf = buf.slice(i + 2);
      if (frame.startsWith(':')) continue; // heartbeat comment
      const lines = frame.split('\n');
      assert.ok(lines[0].startsWith('id: ') && lines[1].startsWith('data: ') && lines.length === 2, `frame shape: ${JSON.stringify(frame)}`);
      frames.push({ id: Number(lines[0].slice(4)), event: JSON.parse(lines[1].slice(6)), at: Date.now() });
    }
  }
  assert.equal(buf, '', 'no partial frame at the end of the stream');
  return frames;
}

export async function waitTerminal(c: Client, runId: string, timeoutMs: number): Promise<any> {
  const start = Date.now();
  while (Date.now() - start < timeoutMs) {
    const r = await call(c.base, 'GET', `/v1/runs/${runId}`, undefined, c.token);
    assert.equal(r.status, 200, r.text);
    if (['completed', 'failed', 'cancelled'].includes(r.body.status)) return r.body;
    await sleep(100);
  }
  throw new Error(`run ${runId} did not reach a terminal state within ${timeoutMs} ms`);
}

