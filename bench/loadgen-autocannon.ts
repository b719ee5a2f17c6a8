// The thread CRUD cycle driven by autocannon (`--generator autocannon` of bench/run.ts): the
// lean load generator the issue asks to compare with, beside the undici one of loadgen.ts.
//
// autocannon replays a list of requests per connection; `setupRequest` builds each one from a
// per-connection context (the POST's id is chained into GET/PATCH/DELETE) and `onResponse`
// checks it. Its own HTTP client is a small hand-rolled one (net socket + http-parser-js),
// cheaper per request than undici's, so the generator takes less of the shared CPU. Same
// model as loadgen.ts: N connections, pipelining 1, closed loop, one timeline
//   [warm-up] → [measurement window] → [drain: the cycles started in the window finish]
// in ONE autocannon run (no reconnect between warm-up and window). A request is recorded when it
// starts inside the window, a cycle when it starts inside the window and all four answers are as
// expected. Latencies are taken with performance.now() around each request (setupRequest is
// called right before autocannon writes it), percentiles from full sample arrays (summarize()).
import { performance } from 'node:perf_hooks';
import autocannon from 'autocannon';
import { OPS, OP_LABEL, assertLoopback, summarize, type LoadOptions, type LoadResult, type Op } from './loadgen.js';

const EXPECTED_STATUS: Record<Op, number> = { create: 201, get: 200, update: 200, delete: 204 };
/** Load kept on after the window so cycles started in it can finish (they are counted). */
const DRAIN_MS = 3_000;

interface Ctx {
  id?: string;
  title?: string;
  renamed?: string;
  cycleStart?: number;
  opStart?: number;
  /** The cycle has failed a step (it is then abandoned by returning null from setupRequest). */
  failed?: boolean;
}

type Req = { method: string; path: string; headers?: Record<string, string>; body?: string | Buffer };

export async function runAutocannonLoad(opts: LoadOptions): Promise<LoadResult> {
  assertLoopback(opts.origin);
  const timeoutMs = opts.requestTimeoutMs ?? 10_000;
  const auth = `Bearer ${opts.token}`;
  const lat: Record<Op | 'cycle', number[]> = { create: [], get: [], update: [], delete: [], cycle: [] };
  const byOp = Object.fromEntries(OPS.map((o) => [o, { requests: 0, ok2xx: 0, non2xx: 0, errors: 0, invalid: 0 }])) as LoadResult['byOp'];
  const statusCounts: Record<string, number> = {};
  const samples: string[] = [];
  const seconds = Math.ceil(opts.durationMs / 1000);
  const tlOk = new Uint32Array(seconds);
  const tlFailed = new Uint32Array(seconds);
  const tlMax = new Float64Array(seconds);
  let cycles = 0;
  let failedCycles = 0;
  let seq = 0;
  const t0 = performance.now();
  const windowStart = t0 + opts.warmupMs;
  const windowEnd = windowStart + opts.durationMs;
  const inWindow = (t: number) => t >= windowStart && t < windowEnd;

  /** Records the answer to `op`: its JSON when as expected, else null (the cycle ends). */
  function answered(op: Op, ctx: Ctx, status: number, body: string, check: (json: Record<string, unknown>) => boolean): Record<string, unknown> | null {
    const start = ctx.opStart ?? performance.now();
    const end = performance.now();
    const counted = inWindow(start);
    const stats = byOp[op];
    const sec = Math.min(seconds - 1, Math.floor((start - windowStart) / 1000));
    let ok = false;
    let json: Record<string, unknown> = {};
    if (status < 200 || status > 299) {
      if (counted) {
        stats.non2xx++;
        const k = `${OP_LABEL[op]} ${status}`;
        statusCounts[k] = (statusCounts[k] ?? 0) + 1;
        if (samples.length < 8) samples.push(`${k}: ${String(body).slice(0, 300)}`);
      }
    } else {
      try {
        json = status === 204 ? {} : JSON.parse(String(body));
      } catch {
        /* invalid below */
      }
      ok = status === EXPECTED_STATUS[op] && check(json);
      if (counted) {
        stats.ok2xx++;
        if (ok) lat[op].push(end - start);
        else {
          stats.invalid++;
          if (samples.length < 8) samples.push(`${OP_LABEL[op]} ${status} unexpected: ${String(body).slice(0, 300)}`);
        }
      }
    }
    if (counted) {
      if (ok) tlOk[sec]++;
      else tlFailed[sec]++;
      if (end - start > tlMax[sec]) tlMax[sec] = end - start;
    }
    if (!ok) {
      ctx.failed = true;
      if (ctx.cycleStart !== undefined && inWindow(ctx.cycleStart)) failedCycles++;
    }
    return ok ? json : null;
  }

  /**
   * A step's request, or null when the cycle failed (autocannon then restarts the list with a
   * fresh context: a new cycle). The POST never answers null (autocannon refuses that for the
   * first request); after the window the load goes on uncounted until the drain ends.
   */
  function step(op: Op, ctx: Ctx, build: () => Req): Req | null {
    if (op !== 'create' && (ctx.failed || !ctx.id)) return null;
    const now = performance.now();
    if (op === 'create') ctx.cycleStart = now;
    ctx.opStart = now;
    if (inWindow(now)) byOp[op].requests++;
    return build();
  }

  const path = (ctx: Ctx) => `/v1/threads/${ctx.id}`;
  const requests = [
    {
      method: 'POST',
      setupRequest: (req: Req, ctx: Ctx) =>
        step('create', ctx, () => {
          ctx.title = `bench ac #${++seq}`;
          return { ...req, method: 'POST', path: '/v1/threads', headers: { authorization: auth, 'content-type': 'application/json' }, body: JSON.stringify({ title: ctx.title }) };
        }),
      onResponse: (status: number, body: string, ctx: Ctx) => {
        ctx.id = answered('create', ctx, status, body, (j) => typeof j.id === 'string' && j.title === ctx.title)?.id as string | undefined;
      },
    },
    {
      method: 'GET',
      setupRequest: (req: Req, ctx: Ctx) => step('get', ctx, () => ({ ...req, method: 'GET', path: path(ctx), headers: { authorization: auth }, body: undefined })),
      onResponse: (status: number, body: string, ctx: Ctx) => void answered('get', ctx, status, body, (j) => j.id === ctx.id),
    },
    {
      method: 'PATCH',
      setupRequest: (req: Req, ctx: Ctx) =>
        step('update', ctx, () => {
          ctx.renamed = `renamed ac #${seq}`;
          return { ...req, method: 'PATCH', path: path(ctx), headers: { authorization: auth, 'content-type': 'application/json' }, body: JSON.stringify({ title: ctx.renamed }) };
        }),
      onResponse: (status: number, body: string, ctx: Ctx) => void answered('update', ctx, status, body, (j) => j.title === ctx.renamed),
    },
    {
      method: 'DELETE',
      setupRequest: (req: Req, ctx: Ctx) => step('delete', ctx, () => ({ ...req, method: 'DELETE', path: path(ctx), headers: { authorization: auth }, body: undefined })),
      onResponse: (status: number, body: string, ctx: Ctx) => {
        if (answered('delete', ctx, status, body, () => true) && inWindow(ctx.cycleStart!)) {
          cycles++;
          lat.cycle.push(performance.now() - ctx.cycleStart!);
        }
      },
    },
  ];

  let cpuAtStart: NodeJS.CpuUsage | null = null;
  let cpuDelta: NodeJS.CpuUsage | null = null;
  const startTimer = setTimeout(() => {
    cpuAtStart = process.cpuUsage();
    opts.onWindowStart?.();
  }, opts.warmupMs);
  const endTimer = setTimeout(() => {
    if (cpuAtStart) cpuDelta = process.cpuUsage(cpuAtStart);
    opts.onWindowEnd?.();
  }, opts.warmupMs + opts.durationMs);

  let result: autocannon.Result;
  try {
    result = await new Promise<autocannon.Result>((resolve, reject) => {
      autocannon(
        {
          url: opts.origin,
          connections: opts.clients,
          pipelining: 1,
          duration: (opts.warmupMs + opts.durationMs + DRAIN_MS) / 1000,
          timeout: timeoutMs / 1000,
          requests: requests as unknown as autocannon.Request[],
          initialContext: {},
        },
        (err, res) => (err ? reject(err) : resolve(res)),
      );
    });
  } finally {
    clearTimeout(startTimer);
    clearTimeout(endTimer);
  }

  const windowS = opts.durationMs / 1000;
  let reqs = 0;
  let ok2xx = 0;
  let non2xx = 0;
  let invalid = 0;
  for (const o of OPS) {
    reqs += byOp[o].requests;
    ok2xx += byOp[o].ok2xx;
    non2xx += byOp[o].non2xx;
    invalid += byOp[o].invalid;
  }
  // Transport failures (timeouts, refused/reset connections) as autocannon counts them, over the whole run.
  const errors = result.errors + result.timeouts;
  const errorKinds: Record<string, number> = {};
  if (result.timeouts) errorKinds.timeout = result.timeouts;
  if (result.errors - result.timeouts > 0) errorKinds.error = result.errors - result.timeouts;
  const cpu = cpuDelta as NodeJS.CpuUsage | null;
  return {
    clients: opts.clients,
    warmupS: opts.warmupMs / 1000,
    windowS,
    cycles,
    failedCycles,
    requests: reqs,
    ok2xx,
    non2xx,
    errors,
    invalid,
    cyclesPerS: cycles / windowS,
    requestsPerS: reqs / windowS,
    okRate: reqs ? ok2xx / reqs : 0,
    byOp,
    statusCounts,
    errorKinds,
    samples,
    latencyMs: {
      create: summarize(lat.create),
      get: summarize(lat.get),
      update: summarize(lat.update),
      delete: summarize(lat.delete),
      cycle: summarize(lat.cycle),
    },
    connections: opts.clients,
    disconnects: {},
    connectMs: NaN,
    connectFailures: 0,
    loadgenCpuPct: cpu ? ((cpu.user + cpu.system) / 1000 / opts.durationMs) * 100 : NaN,
    timeline: Array.from({ length: seconds }, (_, i) => ({ ok: tlOk[i], failed: tlFailed[i], maxMs: Math.round(tlMax[i] * 10) / 10, connects: 0 })),
  };
}
