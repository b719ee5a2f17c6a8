// Client side of the runs benchmarks (bench/runs.ts):
//   - worker_runs: create thread → post message → create run → follow the run's SSE stream to
//     its terminal event, checking seqs, event types and the stub's answer; closed loop with K in
//     flight, or everything at once.
//   - sse_hold: N event streams held open on runs that wait for input, counting heartbeats.
//
// Hand-written on purpose: a stateful four-step cycle whose last step is an event stream that
// must be parsed and validated frame by frame; generic HTTP/SSE load tools replay fixed requests.
//
// Every request goes through one undici Agent with unlimited connections per origin
// (pipelining 1): a stream holds its own socket for as long as it is open. Loopback only.
import { performance } from 'node:perf_hooks';
import { Agent, request, type Dispatcher } from 'undici';
import { summarize, type LatencySummary } from './loadgen.js';

export function newAgent(): Agent {
  return new Agent({
    connections: null, // one socket per request in flight, none shared by two streams
    pipelining: 1,
    keepAliveTimeout: 30_000,
    keepAliveMaxTimeout: 60_000,
    headersTimeout: 0, // our own deadlines (AbortSignal) instead
    bodyTimeout: 0,
    connectTimeout: 30_000,
  });
}


// ---------------------------------------------------------------------------------------------
// SSE frame parser (the server's format: `id: <seq>\ndata: <json>\n\n`, heartbeats `: ping\n\n`).

export interface SseEvent {
  seq: number;
  type: string;
  data: Record<string, unknown>;
  /** performance.now() when the chunk holding this frame was read. */
  at: number;
  /** The event's own timestamp (`ts`, written by the server when the event was stored), epoch ms. */
  ts: number;
}

export class SseParser {
  private buf = '';
  private decoder = new TextDecoder();
  pings = 0;
  events = 0;
  bytes = 0;
  constructor(private onEvent: (e: SseEvent) => void, private onPing?: (at: number) => void) {}
  push(chunk: Uint8Array): void {
    const at = performance.now();
    this.bytes += chunk.byteLength;
    this.buf += this.decoder.decode(chunk, { stream: true });
    let i: number;
    while ((i = this.buf.indexOf('\n\n')) >= 0) {
      const raw = this.buf.slice(0, i);
      this.buf = this.buf.slice(i + 2);
      if (raw.startsWith(':')) {
        this.pings++;
        this.onPing?.(at);
        continue;
      }
      let id = NaN;
      let data = '';
      for (const line of raw.split('\n')) {
        if (line.startsWith('id:')) id = Number(line.slice(3).trim());
        else if (line.startsWith('data:')) data += line.slice(5).replace(/^ /, '');
      }
      const parsed = JSON.parse(data) as { seq?: number; type?: string; data?: Record<string, unknown>; ts?: string };
      this.events++;
      this.onEvent({ seq: Number.isFinite(id) ? id : Number(parsed.seq), type: String(parsed.type), data: parsed.data ?? {}, at, ts: Date.parse(String(parsed.ts)) });
    }
  }
}

// ---------------------------------------------------------------------------------------------
// worker_runs

const TERMINAL = new Set(['run.completed', 'run.failed', 'run.cancelled']);

export interface RunSample {
  ok: boolean;
  /** Why the run does not count, when !ok. */
  error?: string;
  terminal?: string;
  /** POST …/runs sent → terminal event read, ms. */
  completionMs?: number;
  /** POST …/runs sent → first message.delta read, ms. */
  firstDeltaMs?: number;
  /** `run.started` stored → first `message.delta` stored, by the events' own timestamps (server side, ms). */
  serverFirstDeltaMs?: number;
  /** POST …/runs sent → 201 read, ms. */
  createMs?: number;
  /** POST /v1/threads sent → terminal event read (the whole cycle), ms. */
  cycleMs?: number;
  /** Absolute performance.now() of the terminal event (for runs/s). */
  endAt?: number;
  events?: number;
}

interface Ctx {
  origin: string;
  auth: string;
  agent: Dispatcher;
  timeoutMs: number;
}

async function postJson(c: Ctx, path: string, body: unknown, signal: AbortSignal, want: number): Promise<Record<string, unknown>> {
  const res = await request(c.origin + path, {
    method: 'POST',
    headers: { authorization: c.auth, 'content-type': 'application/json' },
    body: JSON.stringify(body),
    dispatcher: c.agent,
    signal,
  });
  const text = await res.body.text();
  if (res.statusCode !== want) throw new Error(`POST ${path.replace(/[0-9a-f-]{36}/g, '{id}')} ${res.statusCode}: ${text.slice(0, 200)}`);
  return JSON.parse(text) as Record<string, unknown>;
}

/** One full cycle; never throws. */
export async function oneRun(c: Ctx, i: number): Promise<RunSample> {
  const ac = new AbortController();
  const timer = setTimeout(() => ac.abort(new Error(`timeout after ${c.timeoutMs} ms`)), c.timeoutMs);
  const message = `bench run ${i} says hello world`;
  const cycleStart = performance.now();
  let stage = 'thread';
  try {
    const th = await postJson(c, '/v1/threads', {}, ac.signal, 201);
    const threadId = String(th.id);
    stage = 'message';
    await postJson(c, `/v1/threads/${threadId}/messages`, { content: message }, ac.signal, 201);
    stage = 'run';
    const t0 = performance.now();
    const run = await postJson(c, `/v1/threads/${threadId}/runs`, {}, ac.signal, 201);
    const createMs = performance.now() - t0;
    const runId = String(run.run_id);
    stage = 'events';
    const res = await request(`${c.origin}/v1/runs/${runId}/events`, {
      method: 'GET',
      headers: { authorization: c.auth, accept: 'text/event-stream' },
      dispatcher: c.agent,
      signal: ac.signal,
    });
    if (res.statusCode !== 200) throw new Error(`GET /v1/runs/{id}/events ${res.statusCode}: ${(await res.body.text()).slice(0, 200)}`);
    let expectSeq = 1;
    let problem: string | null = null;
    let firstDelta: number | undefined;
    let startedTs: number | undefined;
    let firstDeltaTs: number | undefined;
    let terminal: SseEvent | undefined;
    let text = '';
    const parser = new SseParser((e) => {
      if (terminal) {
        problem ??= `event ${e.type} after the terminal event`;
        return;
      }
      if (e.seq !== expectSeq) problem ??= `seq ${e.seq} where ${expectSeq} was expected`;
      expectSeq = e.seq + 1;
      if (e.type === 'run.started') startedTs = e.ts;
      if (e.type === 'message.delta') {
        firstDelta ??= e.at;
        firstDeltaTs ??= e.ts;
        text += String(e.data.content_delta ?? '');
      }
      if (TERMINAL.has(e.type)) terminal = e;
    });
    for await (const chunk of res.body) {
      parser.push(chunk as Uint8Array);
      if (terminal) break;
    }
    // The server closes the stream after the terminal event; whatever else arrived is read above.
    if (!terminal) throw new Error(`stream ended without a terminal event after ${parser.events} events`);
    const t = terminal as SseEvent;
    if (t.type !== 'run.completed') problem ??= `terminal ${t.type}: ${JSON.stringify(t.data).slice(0, 200)}`;
    if (text !== `[stub] ${message}`) problem ??= `answer ${JSON.stringify(text.slice(0, 80))}`;
    if (firstDelta === undefined) problem ??= 'no message.delta';
    const sample: RunSample = {
      ok: problem === null,
      terminal: t.type,
      completionMs: t.at - t0,
      firstDeltaMs: firstDelta !== undefined ? firstDelta - t0 : undefined,
      serverFirstDeltaMs: firstDeltaTs !== undefined && startedTs !== undefined ? firstDeltaTs - startedTs : undefined,
      createMs,
      cycleMs: t.at - cycleStart,
      endAt: t.at,
      events: parser.events,
    };
    if (problem) sample.error = problem;
    return sample;
  } catch (err) {
    const e = err as Error & { code?: string };
    return { ok: false, error: `${stage}: ${ac.signal.aborted ? String((ac.signal.reason as Error)?.message ?? 'aborted') : (e.code ? `${e.code} ` : '') + e.message}` };
  } finally {
    clearTimeout(timer);
  }
}

export interface PhaseResult {
  label: string;
  inFlight: number | 'all';
  runs: number;
  completed: number;
  failed: number;
  /** run.failed terminals among the runs. */
  runFailed: number;
  wallS: number;
  runsPerS: number;
  latencyMs: { completion: LatencySummary; firstDelta: LatencySummary; serverFirstDelta: LatencySummary; create: LatencySummary; cycle: LatencySummary };
  errors: Record<string, number>;
  samples: string[];
}

/** `runs` cycles, `inFlight` at a time (closed loop), or all at once when inFlight ≥ runs. */
export async function runPhase(c: Omit<Ctx, 'agent'> & { agent: Dispatcher }, label: string, runs: number, inFlight: number, firstIndex = 0): Promise<PhaseResult> {
  const results: RunSample[] = [];
  let next = 0;
  const start = performance.now();
  const worker = async () => {
    while (next < runs) {
      const i = next++;
      results.push(await oneRun(c, firstIndex + i));
    }
  };
  await Promise.all(Array.from({ length: Math.min(inFlight, runs) }, worker));
  const ok = results.filter((r) => r.ok);
  const lastEnd = Math.max(start, ...ok.map((r) => r.endAt ?? start));
  const wallS = (lastEnd - start) / 1000;
  const errors: Record<string, number> = {};
  const samples: string[] = [];
  for (const r of results) {
    if (r.ok) continue;
    const k = (r.error ?? '?').replace(/[0-9a-f-]{36}/g, '{id}').replace(/\d+ ms/, 'N ms').slice(0, 120);
    errors[k] = (errors[k] ?? 0) + 1;
    if (samples.length < 5) samples.push(r.error ?? '?');
  }
  const pick = (k: 'completionMs' | 'firstDeltaMs' | 'serverFirstDeltaMs' | 'createMs' | 'cycleMs') => ok.map((r) => r[k]).filter((v): v is number => v !== undefined);
  return {
    label,
    inFlight: inFlight >= runs ? 'all' : inFlight,
    runs,
    completed: ok.length,
    failed: results.length - ok.length,
    runFailed: results.filter((r) => r.terminal === 'run.failed').length,
    wallS,
    runsPerS: wallS > 0 ? ok.length / wallS : NaN,
    latencyMs: { completion: summarize(pick('completionMs')), firstDelta: summarize(pick('firstDeltaMs')), serverFirstDelta: summarize(pick('serverFirstDeltaMs')), create: summarize(pick('createMs')), cycle: summarize(pick('cycleMs')) },
    errors,
    samples,
  };
}

// ---------------------------------------------------------------------------------------------
// sse_hold

export interface HoldStream {
  runId: string;
  opened: boolean;
  closed: boolean;
  closeReason: string | null;
  pings: number;
  events: number;
  sawWaiting: boolean;
  lastPingAt: number;
  /** Longest gap between two heartbeats (or open → first heartbeat), ms. */
  maxGapMs: number;
  openedAt: number;
  abort: AbortController;
}

/** Opens one stream and keeps reading it in the background; resolves once headers arrived (or it failed). */
export async function openHoldStream(c: Omit<Ctx, 'timeoutMs'>, runId: string, connectTimeoutMs: number): Promise<HoldStream> {
  const s: HoldStream = {
    runId,
    opened: false,
    closed: false,
    closeReason: null,
    pings: 0,
    events: 0,
    sawWaiting: false,
    lastPingAt: 0,
    maxGapMs: 0,
    openedAt: 0,
    abort: new AbortController(),
  };
  const timer = setTimeout(() => s.abort.abort(new Error('open timeout')), connectTimeoutMs);
  try {
    const res = await request(`${c.origin}/v1/runs/${runId}/events`, {
      method: 'GET',
      headers: { authorization: c.auth, accept: 'text/event-stream' },
      dispatcher: c.agent,
      signal: s.abort.signal,
    });
    clearTimeout(timer);
    if (res.statusCode !== 200) {
      s.closed = true;
      s.closeReason = `status ${res.statusCode}: ${(await res.body.text().catch(() => '')).slice(0, 120)}`;
      return s;
    }
    s.opened = true;
    s.openedAt = s.lastPingAt = performance.now();
    const parser = new SseParser(
      (e) => {
        s.events++;
        if (e.type === 'run.waiting_for_input') s.sawWaiting = true;
      },
      (at) => {
        s.pings++;
        s.maxGapMs = Math.max(s.maxGapMs, at - s.lastPingAt);
        s.lastPingAt = at;
      },
    );
    res.body.on('data', (chunk: Buffer) => {
      try {
        parser.push(chunk);
      } catch (err) {
        s.closeReason ??= `parse: ${(err as Error).message}`;
      }
    });
    res.body.on('end', () => {
      s.closed = true;
      s.closeReason ??= 'server ended the stream';
    });
    res.body.on('error', (err: Error & { code?: string }) => {
      s.closed = true;
      s.closeReason ??= s.abort.signal.aborted ? 'aborted by the bench' : `error ${err.code ?? ''} ${err.message}`.trim();
    });
  } catch (err) {
    clearTimeout(timer);
    const e = err as Error & { code?: string };
    s.closed = true;
    s.closeReason = s.abort.signal.aborted ? String((s.abort.signal.reason as Error)?.message ?? 'aborted') : `${e.code ?? ''} ${e.message}`.trim();
  }
  return s;
}
