// Closed-loop load generator for the thread CRUD cycle
//   POST /v1/threads → GET /v1/threads/{id} → PATCH /v1/threads/{id} {title} → DELETE /v1/threads/{id}
//
// Hand-written on purpose: generic HTTP load tools (autocannon, wrk, k6…) replay one request or
// a fixed list, while this cycle is stateful (every step needs the id the POST returned), must
// check each answer's exact status and body, and has to report latency per step *and* per whole
// cycle from the same samples. No library measures that, so this file does it in ~250 lines.
//
// Model: N clients, each an undici Client holding exactly one keep-alive connection
// (pipelining 1), each running cycles back to back (closed loop: a client sends its next request
// only when the previous answer has been read). The run is one timeline:
//   [connect: one GET /healthz per client] → [warm-up] → [measurement window] → abandon.
// A request belongs to the window when it *starts* inside it; a cycle counts when it starts
// inside the window and completes. At the end of the window clients stop issuing requests
// (an unfinished cycle is abandoned, not counted), in-flight requests are drained for a
// bounded time, then every connection is destroyed. Latencies are taken with
// performance.now() (monotonic, sub-microsecond) and percentiles are computed from the full
// sorted sample arrays, not from histograms.
import { performance } from 'node:perf_hooks';
import { Client, errors as undiciErrors } from 'undici';

export const OPS = ['create', 'get', 'update', 'delete'] as const;
export type Op = (typeof OPS)[number];
export const OP_LABEL: Record<Op, string> = {
  create: 'POST',
  get: 'GET',
  update: 'PATCH',
  delete: 'DELETE',
};
const EXPECTED_STATUS: Record<Op, number> = { create: 201, get: 200, update: 200, delete: 204 };

export interface LoadOptions {
  /** e.g. http://127.0.0.1:4321 (loopback only). */
  origin: string;
  /** Bearer token sent on every request. */
  token: string;
  clients: number;
  warmupMs: number;
  durationMs: number;
  /** Per-request headers/body timeout; a request over it counts as an error. */
  requestTimeoutMs?: number;
  /** Called when the measurement window opens / closes (e.g. to sample server CPU). */
  onWindowStart?: () => void;
  onWindowEnd?: () => void;
}

export interface LatencySummary {
  count: number;
  mean: number;
  p50: number;
  p90: number;
  p99: number;
  p999: number;
  max: number;
}

export interface LoadResult {
  clients: number;
  warmupS: number;
  windowS: number;
  /** Completed cycles started in the window (all four answers as expected). */
  cycles: number;
  /** Cycles started in the window that stopped on a non-2xx, an error or an invalid answer. */
  failedCycles: number;
  /** Requests started in the window. */
  requests: number;
  ok2xx: number;
  non2xx: number;
  /** Transport-level failures: refused/reset connections, timeouts. */
  errors: number;
  /** 2xx answers with the wrong status (e.g. 200 for a create) or a body that does not match. */
  invalid: number;
  cyclesPerS: number;
  requestsPerS: number;
  /** ok2xx / requests. */
  okRate: number;
  byOp: Record<Op, { requests: number; ok2xx: number; non2xx: number; errors: number; invalid: number }>;
  /** "POST 500" → count. */
  statusCounts: Record<string, number>;
  /** error code/name → count. */
  errorKinds: Record<string, number>;
  /** First few unexpected answers, for diagnosis. */
  samples: string[];
  latencyMs: Record<Op | 'cycle', LatencySummary>;
  /** TCP connections opened during the whole run (1 per client when keep-alive holds). */
  connections: number;
  /** Connections lost inside the window, by reason (none when keep-alive holds). */
  disconnects: Record<string, number>;
  /** Time to open every client's connection (one GET /healthz each) before the warm-up. */
  connectMs: number;
  /** Clients whose GET /healthz failed in the connect phase (they still run, reconnecting). */
  connectFailures: number;
  /** CPU used by this (load generator) process during the window, % of one core. */
  loadgenCpuPct: number;
  /**
   * One entry per second of the window (by request start): requests answered as expected,
   * requests that failed, the slowest latency (ms), and connections opened in that second. Shows whether a tail is steady queueing
   * or a stall.
   */
  timeline: Array<{ ok: number; failed: number; maxMs: number; connects: number }>;
}

/** A growable Float64Array of samples. */
class Samples {
  private buf = new Float64Array(4096);
  n = 0;
  push(v: number): void {
    if (this.n === this.buf.length) {
      const next = new Float64Array(this.buf.length * 2);
      next.set(this.buf);
      this.buf = next;
    }
    this.buf[this.n++] = v;
  }
  summary(): LatencySummary {
    return summarize(this.buf.subarray(0, this.n));
  }
}

/** Count, mean and nearest-rank percentiles over every sample (no histogram, no sampling). */
export function summarize(values: ArrayLike<number>): LatencySummary {
  const a = Float64Array.from(values).sort();
  const n = a.length;
  if (n === 0) return { count: 0, mean: NaN, p50: NaN, p90: NaN, p99: NaN, p999: NaN, max: NaN };
  let sum = 0;
  for (let i = 0; i < n; i++) sum += a[i];
  const pct = (p: number) => a[Math.min(n - 1, Math.max(0, Math.ceil(p * n) - 1))];
  return { count: n, mean: sum / n, p50: pct(0.5), p90: pct(0.9), p99: pct(0.99), p999: pct(0.999), max: a[n - 1] };
}

/** The benchmarks only ever load this machine. */
export function assertLoopback(origin: string): void {
  const u = new URL(origin);
  if (u.hostname !== '127.0.0.1' && u.hostname !== 'localhost' && u.hostname !== '[::1]') {
    throw new Error(`loopback only, got ${origin}`);
  }
}

type Outcome = { kind: 'ok'; json: unknown } | { kind: 'non2xx' | 'error' | 'invalid' };

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

export async function runLoad(opts: LoadOptions): Promise<LoadResult> {
  assertLoopback(opts.origin);
  const timeout = opts.requestTimeoutMs ?? 10_000;
  const auth = `Bearer ${opts.token}`;
  const jsonHeaders = { authorization: auth, 'content-type': 'application/json' };
  const plainHeaders = { authorization: auth };

  const lat: Record<Op | 'cycle', Samples> = {
    create: new Samples(),
    get: new Samples(),
    update: new Samples(),
    delete: new Samples(),
    cycle: new Samples(),
  };
  const byOp = Object.fromEntries(OPS.map((o) => [o, { requests: 0, ok2xx: 0, non2xx: 0, errors: 0, invalid: 0 }])) as LoadResult['byOp'];
  const statusCounts: Record<string, number> = {};
  const errorKinds: Record<string, number> = {};
  /** Why connections ended inside the window (undici 'disconnect' reasons). */
  const disconnects: Record<string, number> = {};
  const samples: string[] = [];
  let cycles = 0;
  let failedCycles = 0;
  let connections = 0;
  const seconds = Math.ceil(opts.durationMs / 1000);
  const tlOk = new Uint32Array(seconds);
  const tlFailed = new Uint32Array(seconds);
  const tlMax = new Float64Array(seconds);
  const tlConnects = new Uint32Array(seconds);

  // Set once every client is connected (see the connect phase below).
  let windowStart = Infinity;
  let windowEnd = Infinity;
  let cpuAtStart: NodeJS.CpuUsage | null = null;
  let cpuDelta: NodeJS.CpuUsage | null = null;
  let startTimer: NodeJS.Timeout | undefined;
  let endTimer: NodeJS.Timeout | undefined;

  const note = (line: string) => {
    if (samples.length < 8) samples.push(line);
  };

  /** Requests sent on each client's current connection (1 = the first after a (re)connect). */
  const onConnection = new Uint32Array(opts.clients);

  /** One request; records it when it started inside the window. */
  async function call(idx: number, client: Client, op: Op, method: 'POST' | 'GET' | 'PATCH' | 'DELETE', path: string, body: string | null, check: (json: unknown) => boolean): Promise<Outcome> {
    const start = performance.now();
    const counted = start >= windowStart && start < windowEnd;
    const stats = byOp[op];
    const sec = Math.min(seconds - 1, Math.floor((start - windowStart) / 1000));
    if (counted) stats.requests++;
    onConnection[idx]++;
    // Our own deadline, one timer per request (undici's own headers/body timers are off, see
    // below): a request over it is aborted, which also closes its connection.
    const ac = new AbortController();
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      ac.abort();
    }, timeout);
    const mark = (ok: boolean) => {
      if (!counted) return;
      const d = performance.now() - start;
      if (ok) tlOk[sec]++;
      else tlFailed[sec]++;
      if (d > tlMax[sec]) tlMax[sec] = d;
    };
    try {
      const res = await client.request({
        method,
        path,
        headers: body === null ? plainHeaders : jsonHeaders,
        body: body ?? undefined,
        signal: ac.signal,
      });
      const status = res.statusCode;
      if (status < 200 || status > 299) {
        const text = await res.body.text().catch(() => '');
        if (counted) {
          stats.non2xx++;
          const k = `${OP_LABEL[op]} ${status}`;
          statusCounts[k] = (statusCounts[k] ?? 0) + 1;
          note(`${k}: ${text.slice(0, 300)}`);
        }
        mark(false);
        return { kind: 'non2xx' };
      }
      let json: unknown = null;
      if (status === 204) await res.body.dump();
      else json = await res.body.json();
      const end = performance.now();
      const valid = status === EXPECTED_STATUS[op] && check(json);
      mark(valid);
      if (counted) {
        stats.ok2xx++;
        if (valid) lat[op].push(end - start);
        else {
          stats.invalid++;
          note(`${OP_LABEL[op]} ${status} unexpected: ${JSON.stringify(json).slice(0, 300)}`);
        }
      }
      return valid ? { kind: 'ok', json } : { kind: 'invalid' };
    } catch (err) {
      if (counted) {
        stats.errors++;
        const e = err as { code?: string; name?: string; message?: string };
        const k = timedOut || err instanceof undiciErrors.HeadersTimeoutError || err instanceof undiciErrors.BodyTimeoutError ? 'timeout' : (e.code ?? e.name ?? 'error');
        errorKinds[k] = (errorKinds[k] ?? 0) + 1;
        note(`${OP_LABEL[op]} error ${k} after ${Math.round(performance.now() - start)} ms (request #${onConnection[idx]} on its connection): ${e.message ?? ''}`);
      }
      mark(false);
      return { kind: 'error' };
    } finally {
      clearTimeout(timer);
    }
  }

  async function clientLoop(idx: number, client: Client): Promise<void> {
    let seq = 0;
    while (performance.now() < windowEnd) {
      seq++;
      const cycleStart = performance.now();
      const counted = cycleStart >= windowStart && cycleStart < windowEnd;
      const title = `bench c${idx} #${seq}`;
      const created = await call(idx, client, 'create', 'POST', '/v1/threads', JSON.stringify({ title }), (j) => {
        const t = j as { id?: unknown; title?: unknown };
        return typeof t?.id === 'string' && t.title === title;
      });
      let failed = created.kind !== 'ok';
      if (!failed && created.kind === 'ok') {
        const id = (created.json as { id: string }).id;
        const path = `/v1/threads/${id}`;
        const renamed = `renamed c${idx} #${seq}`;
        const steps: Array<() => Promise<Outcome>> = [
          () => call(idx, client, 'get', 'GET', path, null, (j) => (j as { id?: unknown })?.id === id),
          () => call(idx, client, 'update', 'PATCH', path, JSON.stringify({ title: renamed }), (j) => (j as { title?: unknown })?.title === renamed),
          () => call(idx, client, 'delete', 'DELETE', path, null, () => true),
        ];
        for (const step of steps) {
          if (performance.now() >= windowEnd) return; // abandon: the window is over
          if ((await step()).kind !== 'ok') {
            failed = true;
            break;
          }
        }
      }
      if (failed) {
        if (counted) failedCycles++;
        await sleep(10); // no hot spin against a failing server
        continue;
      }
      if (counted) {
        cycles++;
        lat.cycle.push(performance.now() - cycleStart);
      }
    }
  }

  const pool: Client[] = [];
  for (let i = 0; i < opts.clients; i++) {
    const c = new Client(opts.origin, {
      pipelining: 1,
      keepAliveTimeout: 60_000,
      keepAliveMaxTimeout: 600_000,
      // Off: the per-request deadline in call() replaces them (one clock for every request).
      headersTimeout: 0,
      bodyTimeout: 0,
      connectTimeout: 10_000,
    });
    c.on('connect', () => {
      connections++;
      onConnection[i] = 1; // the request that made the client connect is #1
      const now = performance.now();
      if (now >= windowStart && now < windowEnd) tlConnects[Math.min(seconds - 1, Math.floor((now - windowStart) / 1000))]++;
    });
    c.on('disconnect', (_origin: URL, _targets: unknown, err: Error & { code?: string }) => {
      const now = performance.now();
      if (now < windowStart || now >= windowEnd) return;
      const k = `disconnect: ${err?.code ?? err?.name ?? '?'} ${err?.message ?? ''}`.trim();
      disconnects[k] = (disconnects[k] ?? 0) + 1;
    });
    pool.push(c);
  }
  let connectMs = NaN;
  let connectFailures = 0;
  try {
    // Connect phase: every client opens its connection with one GET /healthz before any load,
    // so the measurement is about serving requests, not about accepting 200 sockets at once.
    const c0 = performance.now();
    const connectMsMax = Math.max(timeout, 30_000);
    const connected = await Promise.all(
      pool.map((c) =>
        c
          .request({ method: 'GET', path: '/healthz', signal: AbortSignal.timeout(connectMsMax) })
          .then((r) => r.body.dump().then(() => r.statusCode === 200))
          .catch(() => false),
      ),
    );
    connectFailures = connected.filter((ok) => !ok).length;
    connectMs = performance.now() - c0;

    const t0 = performance.now();
    windowStart = t0 + opts.warmupMs;
    windowEnd = windowStart + opts.durationMs;
    startTimer = setTimeout(() => {
      cpuAtStart = process.cpuUsage();
      opts.onWindowStart?.();
    }, Math.max(0, windowStart - performance.now()));
    endTimer = setTimeout(() => {
      if (cpuAtStart) cpuDelta = process.cpuUsage(cpuAtStart);
      opts.onWindowEnd?.();
    }, Math.max(0, windowEnd - performance.now()));

    const loops = pool.map((c, i) => clientLoop(i, c));
    // Bounded drain: at most one request timeout past the end of the window.
    let drainTimer: NodeJS.Timeout | undefined;
    const drained = await Promise.race([
      Promise.all(loops).then(() => true),
      new Promise<boolean>((resolve) => {
        drainTimer = setTimeout(() => resolve(false), Math.max(0, windowEnd - performance.now()) + timeout + 1_000);
      }),
    ]);
    clearTimeout(drainTimer);
    if (!drained) errorKinds['undrained_clients'] = (errorKinds['undrained_clients'] ?? 0) + 1;
  } finally {
    clearTimeout(startTimer);
    clearTimeout(endTimer);
    await Promise.all(pool.map((c) => c.destroy().catch(() => undefined)));
  }

  const windowS = opts.durationMs / 1000;
  let requests = 0;
  let ok2xx = 0;
  let non2xx = 0;
  let errs = 0;
  let invalid = 0;
  for (const o of OPS) {
    requests += byOp[o].requests;
    ok2xx += byOp[o].ok2xx;
    non2xx += byOp[o].non2xx;
    errs += byOp[o].errors;
    invalid += byOp[o].invalid;
  }
  const cpu = cpuDelta as NodeJS.CpuUsage | null;
  return {
    clients: opts.clients,
    warmupS: opts.warmupMs / 1000,
    windowS,
    cycles,
    failedCycles,
    requests,
    ok2xx,
    non2xx,
    errors: errs,
    invalid,
    cyclesPerS: cycles / windowS,
    requestsPerS: requests / windowS,
    okRate: requests ? ok2xx / requests : 0,
    byOp,
    statusCounts,
    errorKinds,
    samples,
    latencyMs: {
      create: lat.create.summary(),
      get: lat.get.summary(),
      update: lat.update.summary(),
      delete: lat.delete.summary(),
      cycle: lat.cycle.summary(),
    },
    connections,
    disconnects,
    connectMs,
    connectFailures,
    loadgenCpuPct: cpu ? ((cpu.user + cpu.system) / 1000 / opts.durationMs) * 100 : NaN,
    timeline: Array.from({ length: seconds }, (_, i) => ({ ok: tlOk[i], failed: tlFailed[i], maxMs: Math.round(tlMax[i] * 10) / 10, connects: tlConnects[i] })),
  };
}
