// Runs benchmarks against `arkloop serve` (API + in-process worker, stub model), on PGlite and/or
// PostgreSQL, each on a fresh data dir / database:
//
//   worker_runs  N stub runs (thread → message → run → SSE to the terminal event), first K in
//                flight (closed loop), then all N at once; completion and first-delta latency,
//                runs/s, checks (terminal reached, seqs gap-free from 1, no run.failed, answer).
//                With --route provider (or both), the same runs go through a configured
//                platform `openai` provider pointing at a local fake upstream (fake-openai.ts).
//                With --topology multi (or both), the same runs on 2 `arkloop api` + 2 `arkloop
//                worker` processes behind an `arkloop gateway`, on PostgreSQL + Redis (topology.ts).
//   sse_hold     S event streams opened in one burst (or --open-concurrency at a time) on runs
//                waiting for input, held H seconds with a low heartbeat interval, directly and/or
//                through an `arkloop gateway` process; streams still open, heartbeats per stream,
//                RSS of every process (app, gateway, this generator).
//
//   node --import tsx bench/runs.ts [worker_runs|sse_hold|all] [options]    (see bench/README.md)
//
// Hand-written on purpose, like the thread bench: the cycle is stateful and ends in an event
// stream that has to be validated frame by frame.
import { existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import os from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { parseArgs } from 'node:util';
import { request } from 'undici';
import { formatProfile, summarizeProfile, type ProfileSummary } from './profile.js';
import { assertLoopback } from './loadgen.js';
import { newAgent, openHoldStream, runPhase, type HoldStream, type PhaseResult } from './runclient.js';
import { Cleanup, cleanUpOnExit, REPO_ROOT, buildAppInto, cleanEnv, dbStats, freePort, pgReachable, processCpuSeconds, sleep, spawnServer, waitReady } from './servers.js';
import { startTopology, type Proc } from './topology.js';

type DatabaseKind = 'pglite' | 'postgres';
type Bench = 'worker_runs' | 'sse_hold';
/** How worker_runs reach a model: the built-in stub, or a configured provider at a local upstream. */
type Route = 'stub' | 'provider';
/** worker_runs: one `serve` process, or 2 api + 2 worker + gateway (topology.ts). */
type Shape = 'single' | 'multi';
/** sse_hold: streams straight to the API, or through an `arkloop gateway` process. */
type Via = 'direct' | 'gateway' | 'serve';
const ENGINE_LABEL: Record<DatabaseKind, string> = { pglite: 'PGlite', postgres: 'PostgreSQL' };
const DEFAULT_PG_URL = 'postgres://postgres@127.0.0.1:5432/postgres';
const DEFAULT_REDIS_URL = 'redis://127.0.0.1:6379';
/** The gateway's token bucket stays on (Redis in multi) but never limits the bench's one user. */
const GATEWAY_UNLIMITED = { ARKLOOP_RATELIMIT_CAPACITY: '1000000000', ARKLOOP_RATELIMIT_RATE_PER_MINUTE: '1000000000' };

const HELP = `usage: node --import tsx bench/runs.ts [worker_runs|sse_hold|all] [options]

  --engine pglite|postgres|both   (default both; postgres only when ARKLOOP_BENCH_DATABASE_URL
                                  or ${DEFAULT_PG_URL} answers)
  --app-from build|dist|source    as in the thread bench (default build: compile src/ into a temp dir)
  worker_runs:
  --runs <n>                      runs per phase (default 1000)
  --in-flight <n>                 runs in flight in the closed-loop phase (default 20)
  --warmup-runs <n>               unrecorded runs before the phases (default 50)
  --worker-concurrency <n>        ARKLOOP_WORKER_CONCURRENCY of the server (default 16)
  --timeout <s>                   deadline of one whole run cycle (default 60)
  --route stub|provider|both      stub: the built-in stub model (default); provider: a platform
                                  openai provider with a priced default model at a local fake
                                  Chat Completions upstream (same answer as the stub); both: each
  --topology single|multi|both    single: one \`arkloop serve\` (default); multi: --apis × \`arkloop api\`
                                  + --workers × \`arkloop worker\` + one \`arkloop gateway\` the clients
                                  go through, on PostgreSQL + Redis (ARKLOOP_BENCH_REDIS_URL or
                                  ${DEFAULT_REDIS_URL}); both: each
  --apis <n>, --workers <n>       process counts of the multi topology (default 2 and 2)
  --cpu-prof                      run the server under --cpu-prof for the closed-loop phase only
                                  (the all-at-once phase is skipped) and print the top functions;
                                  sse_hold: the app (serve) under --cpu-prof, whole life
  sse_hold:
  --streams <n>                   event streams held open (default 10000)
  --hold <s>                      seconds to hold them (default 60)
  --hold-runs <n>                 waiting runs the streams are spread over (default 100)
  --heartbeat <s>                 ARKLOOP_SSE_HEARTBEAT_SECONDS of the server (default 5)
  --open-concurrency <n|all>      streams being opened at the same time (default all: one burst,
                                  every request issued at once)
  --backlog <n>                   ARKLOOP_LISTEN_BACKLOG of the app and gateway (default: theirs, 4096)
  --via direct|gateway|serve|both streams straight to the app, through an \`arkloop gateway\`
                                  process, through the gateway inside \`serve\`
                                  (ARKLOOP_SERVE_GATEWAY=1), or direct and gateway (default both)
  --help`;

interface Options {
  benches: Bench[];
  engines: DatabaseKind[];
  routes: Route[];
  shapes: Shape[];
  apis: number;
  workers: number;
  vias: Via[];
  redisUrl: string;
  appFrom: 'build' | 'dist' | 'source';
  runs: number;
  inFlight: number;
  warmupRuns: number;
  workerConcurrency: number;
  timeoutS: number;
  cpuProf: boolean;
  streams: number;
  holdS: number;
  holdRuns: number;
  heartbeatS: number;
  openConcurrency: number;
  backlog: number | null;
  pgAdminUrl: string;
}

function fail(msg: string): never {
  process.stderr.write(`bench: ${msg}\n`);
  process.exit(2);
}

async function parseOptions(): Promise<Options> {
  const { values, positionals } = parseArgs({
    allowPositionals: true,
    options: {
      engine: { type: 'string', default: 'both' },
      'app-from': { type: 'string', default: 'build' },
      runs: { type: 'string', default: '1000' },
      'in-flight': { type: 'string', default: '20' },
      'warmup-runs': { type: 'string', default: '50' },
      'worker-concurrency': { type: 'string', default: '16' },
      timeout: { type: 'string', default: '60' },
      route: { type: 'string', default: 'stub' },
      topology: { type: 'string', default: 'single' },
      apis: { type: 'string', default: '2' },
      workers: { type: 'string', default: '2' },
      via: { type: 'string', default: 'both' },
      backlog: { type: 'string' },
      'cpu-prof': { type: 'boolean', default: false },
      streams: { type: 'string', default: '10000' },
      hold: { type: 'string', default: '60' },
      'hold-runs': { type: 'string', default: '100' },
      heartbeat: { type: 'string', default: '5' },
      'open-concurrency': { type: 'string', default: 'all' },
      help: { type: 'boolean', default: false },
    },
  });
  if (values.help) {
    process.stdout.write(HELP + '\n');
    process.exit(0);
  }
  const which = positionals[0] ?? 'all';
  const benches: Bench[] = which === 'all' ? ['worker_runs', 'sse_hold'] : which === 'worker_runs' || which === 'sse_hold' ? [which] : fail(`unknown bench ${which}\n${HELP}`);
  const pos = (name: string, v: string | undefined, min = 1): number => {
    const n = Number(v);
    if (!Number.isFinite(n) || n < min) fail(`--${name} must be a number ≥ ${min}`);
    return n;
  };
  const pgAdminUrl = process.env.ARKLOOP_BENCH_DATABASE_URL || DEFAULT_PG_URL;
  let engines: DatabaseKind[];
  if (values.engine === 'both') {
    engines = ['pglite'];
    if (await pgReachable(pgAdminUrl)) engines.push('postgres');
    else process.stdout.write(`note: PostgreSQL at ${redact(pgAdminUrl)} does not answer: PGlite only\n`);
  } else if (values.engine === 'pglite' || values.engine === 'postgres') {
    engines = [values.engine];
    if (values.engine === 'postgres' && !(await pgReachable(pgAdminUrl))) fail(`PostgreSQL at ${redact(pgAdminUrl)} is not reachable (set ARKLOOP_BENCH_DATABASE_URL)`);
  } else fail(`--engine must be pglite, postgres or both`);
  const routes: Route[] = values.route === 'both' ? ['stub', 'provider'] : values.route === 'stub' || values.route === 'provider' ? [values.route] : fail('--route must be stub, provider or both');
  const shapes: Shape[] = values.topology === 'both' ? ['single', 'multi'] : values.topology === 'single' || values.topology === 'multi' ? [values.topology] : fail('--topology must be single, multi or both');
  if (shapes.includes('multi') && benches.includes('worker_runs') && !engines.includes('postgres')) fail('--topology multi needs PostgreSQL (--engine postgres)');
  const vias: Via[] = values.via === 'both' ? ['direct', 'gateway'] : ['direct', 'gateway', 'serve'].includes(values.via) ? [values.via as Via] : fail('--via must be direct, gateway, serve or both');
  const appFrom = values['app-from'];
  if (appFrom !== 'build' && appFrom !== 'dist' && appFrom !== 'source') fail('--app-from must be build, dist or source');
  return {
    benches,
    engines,
    routes,
    shapes,
    apis: Math.floor(pos('apis', values.apis)),
    workers: Math.floor(pos('workers', values.workers)),
    vias,
    redisUrl: process.env.ARKLOOP_BENCH_REDIS_URL || DEFAULT_REDIS_URL,
    appFrom,
    runs: Math.floor(pos('runs', values.runs)),
    inFlight: Math.floor(pos('in-flight', values['in-flight'])),
    warmupRuns: Math.floor(pos('warmup-runs', values['warmup-runs'], 0)),
    workerConcurrency: Math.floor(pos('worker-concurrency', values['worker-concurrency'])),
    timeoutS: pos('timeout', values.timeout),
    cpuProf: values['cpu-prof'],
    streams: Math.floor(pos('streams', values.streams)),
    holdS: pos('hold', values.hold, 0),
    holdRuns: Math.floor(pos('hold-runs', values['hold-runs'])),
    heartbeatS: pos('heartbeat', values.heartbeat, 0.05),
    openConcurrency: values['open-concurrency'] === 'all' ? Infinity : Math.floor(pos('open-concurrency', values['open-concurrency'])),
    backlog: values.backlog === undefined ? null : Math.floor(pos('backlog', values.backlog)),
    pgAdminUrl,
  };
}

function redact(url: string): string {
  return url.replace(/\/\/([^:@/]*):[^@/]*@/, '//$1:***@');
}

/** VmRSS of a process in MiB (null when unknown). */
function rssMiB(pid: number | undefined): number | null {
  if (!pid) return null;
  try {
    const m = readFileSync(`/proc/${pid}/status`, 'utf8').match(/^VmRSS:\s+(\d+)\s+kB/m);
    return m ? Number(m[1]) / 1024 : null;
  } catch {
    return null;
  }
}

function openFilesLimit(): number | null {
  try {
    const m = readFileSync('/proc/self/limits', 'utf8').match(/^Max open files\s+(\d+|unlimited)/m);
    return m ? (m[1] === 'unlimited' ? Infinity : Number(m[1])) : null;
  } catch {
    return null;
  }
}

const f1 = (v: number | null | undefined) => (v === null || v === undefined || Number.isNaN(v) ? '—' : v >= 100 ? v.toFixed(0) : v.toFixed(1));

// ---------------------------------------------------------------------------------------------
// The app.

interface App {
  /** Where the bench sends its requests (the gateway when there is one). */
  origin: string;
  /** Every process of the topology, in start order. */
  procs: Proc[];
  token: string;
  /** The first user's token: a platform admin. */
  adminToken: string;
  /** PostgreSQL database name (postgres only). */
  dbName: string | null;
  stop: () => Promise<void>;
}

interface AppShape {
  shape: Shape;
  /** single: an `arkloop gateway` process in front of `serve`. */
  gateway?: boolean;
  /** single: the gateway inside `serve`. */
  serveGateway?: boolean;
}

async function startApp(cleanup: Cleanup, opts: Options, engine: DatabaseKind, tmpRoot: string, tag: string, entryArgs: string[], extraEnv: Record<string, string>, nodeArgs: string[], shape: AppShape = { shape: 'single' }): Promise<App> {
  const topo = await startTopology({
    cleanup,
    entryArgs,
    nodeArgs,
    tmpRoot,
    tag,
    pgAdminUrl: engine === 'postgres' ? opts.pgAdminUrl : null,
    redisUrl: shape.shape === 'multi' ? opts.redisUrl : null,
    shape: shape.shape,
    apis: opts.apis,
    workers: opts.workers,
    gateway: shape.gateway,
    serveGateway: shape.serveGateway,
    env: extraEnv,
    gatewayEnv: GATEWAY_UNLIMITED,
  });
  try {
    const register = async (login: string) => {
      const res = await fetch(`${topo.origin}/v1/auth/register`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ login, password: 'bench-password-1', email: `${login}@example.com` }),
      });
      const body = (await res.json().catch(() => ({}))) as { access_token?: string };
      if (res.status !== 201 || !body.access_token) throw new Error(`POST /v1/auth/register answered ${res.status}: ${JSON.stringify(body).slice(0, 300)}`);
      return body.access_token;
    };
    const adminToken = await register('benchadmin'); // first user = platform admin; the bench acts as an ordinary user
    const token = await register('benchuser');
    return { origin: topo.origin, procs: topo.procs, token, adminToken, dbName: topo.dbName, stop: topo.stop };
  } catch (err) {
    await topo.stop();
    throw err;
  }
}

/** CPU seconds of every process (null when one is unreadable). */
function cpuOf(procs: Proc[]): number | null {
  let sum = 0;
  for (const p of procs) {
    const c = processCpuSeconds(p.server.proc.pid);
    if (c === null) return null;
    sum += c;
  }
  return sum;
}

/** RSS of every process, by name, plus this generator's own. */
function rssOf(procs: Proc[]): Record<string, number | null> {
  const out: Record<string, number | null> = {};
  for (const p of procs) out[p.name] = rssMiB(p.server.proc.pid);
  out.generator = process.memoryUsage().rss / 2 ** 20;
  return out;
}

const fmtRss = (r: Record<string, number | null>) => Object.entries(r).map(([k, v]) => `${k} ${f1(v)}`).join(', ');

/** Throws with the output of a process of the topology that exited. */
function assertAlive(app: App, when: string): void {
  const dead = app.procs.find((p) => p.server.proc.exitCode !== null || p.server.proc.signalCode !== null);
  if (dead) throw new Error(`${dead.name} exited ${when}:\n${dead.server.tail()}`);
}

// ---------------------------------------------------------------------------------------------
// worker_runs

interface WorkerRecord extends PhaseResult {
  engine: DatabaseKind;
  route: Route;
  topology: Shape;
  /** Processes of the topology, e.g. `serve` or `2 api + 2 worker + gateway`. */
  processes: string;
  /** CPU of every process of the topology together (% of one core, ms per completed run). */
  serverCpuPct: number | null;
  serverCpuMsPerRun: number | null;
  /** CPU ms per completed run of each process. */
  cpuMsPerRunByProc: Record<string, number | null>;
  /** RSS per process at the end of the phase (and the generator's own), MiB. */
  rssMiB: Record<string, number | null>;
  /** PostgreSQL work per valid run from pg_stat_database deltas (approximate: flushed ~1/s). */
  dbPerRun: { transactions: number; rowsInserted: number; rowsUpdated: number; rowsFetched: number } | null;
}

/**
 * Starts the fake upstream in its own process and configures it, as the platform admin, as a
 * platform `openai` provider whose priced default model heads every run's chain (§27.3 rule 4).
 */
async function routeThroughProvider(cleanup: Cleanup, app: App): Promise<() => Promise<void>> {
  const port = await freePort();
  const origin = `http://127.0.0.1:${port}`;
  const fake = spawnServer('fake openai upstream', ['--import', 'tsx', path.join(REPO_ROOT, 'bench', 'fake-openai.ts'), String(port)], { env: cleanEnv({}), cwd: REPO_ROOT, origin });
  const release = cleanup.add(`stop ${fake.name}`, async () => void (await fake.stop()));
  await waitReady(fake);
  const post = async (p: string, body: unknown) => {
    const res = await fetch(app.origin + p, { method: 'POST', headers: { authorization: `Bearer ${app.adminToken}`, 'content-type': 'application/json' }, body: JSON.stringify(body) });
    const json = (await res.json().catch(() => ({}))) as { id?: string };
    if (res.status !== 201 || !json.id) throw new Error(`POST ${p} answered ${res.status}: ${JSON.stringify(json).slice(0, 300)}`);
    return json.id;
  };
  const providerId = await post('/v1/llm-providers', { scope: 'platform', name: 'bench-openai', provider: 'openai', api_key: `sk-bench-${randomBytes(16).toString('hex')}`, base_url: origin, openai_api_mode: 'chat_completions' });
  await post(`/v1/llm-providers/${providerId}/models`, { model: 'gpt-bench', is_default: true, cost_per_1k_input: 0.001, cost_per_1k_output: 0.002 });
  return release;
}

async function benchWorkerRuns(cleanup: Cleanup, opts: Options, engine: DatabaseKind, route: Route, shape: Shape, tmpRoot: string, runTag: string, entryArgs: string[], profDir: string | null): Promise<{ records: WorkerRecord[]; profile: ProfileSummary | null }> {
  const processes = shape === 'single' ? 'serve' : `${opts.apis} api + ${opts.workers} worker + gateway`;
  const L = `${ENGINE_LABEL[engine]}, ${route}, ${processes}`;
  // Profiles of the single process only (in multi the work is split over several).
  const profArgs = profDir && shape === 'single' ? ['--cpu-prof', `--cpu-prof-dir=${path.join(profDir, `${engine}-${route}`)}`] : [];
  process.stdout.write(`[${L}] worker_runs: starting ${processes} (ARKLOOP_WORKER_CONCURRENCY=${opts.workerConcurrency}${shape === 'multi' ? ' per worker; Redis ' + opts.redisUrl : ''})…\n`);
  // Priced provider runs cost credits: a grant large enough for every run of the bench, on both routes alike.
  const env: Record<string, string> = { ARKLOOP_WORKER_CONCURRENCY: String(opts.workerConcurrency), ARKLOOP_CREDIT_INITIAL_GRANT: '1000000000' };
  // Four processes × the default pool of 20 (+ their LISTEN sessions) come close to a default
  // max_connections of 100 on a machine other work shares: 10 each, 40 in all.
  if (shape === 'multi') env.ARKLOOP_DATABASE_POOL_SIZE = '10';
  const app = await startApp(cleanup, opts, engine, tmpRoot, `${runTag}_w${engine === 'postgres' ? 'pg' : 'pgl'}_${route}_${shape}`, entryArgs, env, profArgs, { shape });
  const agent = newAgent();
  const records: WorkerRecord[] = [];
  let stopUpstream: (() => Promise<void>) | null = null;
  try {
    if (route === 'provider') stopUpstream = await routeThroughProvider(cleanup, app);
    const c = { origin: app.origin, auth: `Bearer ${app.token}`, agent, timeoutMs: opts.timeoutS * 1000 };
    assertLoopback(c.origin);
    if (opts.warmupRuns) {
      const w = await runPhase(c, 'warm-up', opts.warmupRuns, opts.inFlight, 1_000_000);
      process.stdout.write(`[${L}] warm-up: ${w.completed}/${w.runs} ok${w.failed ? `; failures: ${JSON.stringify(w.errors)}` : ''}\n`);
    }
    const phases: number[] = opts.cpuProf ? [opts.inFlight] : [opts.inFlight, opts.runs];
    let base = 0;
    for (const inFlight of phases) {
      const st0 = app.dbName ? await dbStats(opts.pgAdminUrl, app.dbName) : null;
      const cpu0 = cpuOf(app.procs);
      const cpuByProc0 = app.procs.map((p) => processCpuSeconds(p.server.proc.pid));
      const t0 = performance.now();
      const r = await runPhase(c, inFlight >= opts.runs ? 'all at once' : `${inFlight} in flight`, opts.runs, inFlight, base);
      base += opts.runs;
      const cpu1 = cpuOf(app.procs);
      const elapsedS = (performance.now() - t0) / 1000;
      const cpuS = cpu0 !== null && cpu1 !== null ? cpu1 - cpu0 : null;
      if (st0) await sleep(1_200); // let PostgreSQL flush its counters
      const st1 = app.dbName ? await dbStats(opts.pgAdminUrl, app.dbName) : null;
      const per = (a: number, b: number) => Math.round(((b - a) / Math.max(1, r.completed)) * 10) / 10;
      const rec: WorkerRecord = {
        ...r,
        engine,
        route,
        topology: shape,
        processes,
        serverCpuPct: cpuS !== null ? (cpuS / elapsedS) * 100 : null,
        serverCpuMsPerRun: cpuS !== null && r.completed ? (cpuS * 1000) / r.completed : null,
        cpuMsPerRunByProc: Object.fromEntries(
          app.procs.map((p, i) => {
            const a = cpuByProc0[i];
            const b = processCpuSeconds(p.server.proc.pid);
            return [p.name, a !== null && b !== null && r.completed ? ((b - a) * 1000) / r.completed : null];
          }),
        ),
        rssMiB: rssOf(app.procs),
        dbPerRun: st0 && st1 ? { transactions: per(st0.xact_commit + st0.xact_rollback, st1.xact_commit + st1.xact_rollback), rowsInserted: per(st0.tup_inserted, st1.tup_inserted), rowsUpdated: per(st0.tup_updated, st1.tup_updated), rowsFetched: per(st0.tup_fetched, st1.tup_fetched) } : null,
      };
      records.push(rec);
      process.stdout.write(
        `[${L}] ${rec.label}: ${r.completed}/${r.runs} ok, ${r.failed} failed (${r.runFailed} run.failed), ${f1(r.runsPerS)} runs/s; ` +
          `completion p50 ${f1(r.latencyMs.completion.p50)} p99 ${f1(r.latencyMs.completion.p99)} ms; first delta p50 ${f1(r.latencyMs.firstDelta.p50)} p99 ${f1(r.latencyMs.firstDelta.p99)} ms ` +
          `(server: run.started → first delta p50 ${f1(r.latencyMs.serverFirstDelta.p50)} p99 ${f1(r.latencyMs.serverFirstDelta.p99)} ms); ` +
          `srv CPU ${f1(rec.serverCpuPct)}%, ${f1(rec.serverCpuMsPerRun)} ms/run (${fmtRss(rec.cpuMsPerRunByProc)}); RSS MiB ${fmtRss(rec.rssMiB)}` +
          (rec.dbPerRun ? `; per run (whole cycle, 4 requests): ${rec.dbPerRun.transactions} transactions, ${rec.dbPerRun.rowsInserted} rows inserted, ${rec.dbPerRun.rowsUpdated} updated, ${rec.dbPerRun.rowsFetched} fetched` : '') + '\n',
      );
      if (r.failed) process.stdout.write(`  failures: ${JSON.stringify(r.errors)}\n  first: ${r.samples.join('\n         ')}\n`);
      assertAlive(app, 'during the run');
      for (const p of app.procs) if (p.server.lines()) process.stdout.write(`  ${p.name} wrote ${p.server.lines()} log lines so far; last ones:\n${p.server.tail().split('\n').slice(-6).join('\n')}\n`);
      await sleep(1_000);
    }
  } finally {
    await agent.close().catch(() => undefined);
    await app.stop();
    await stopUpstream?.();
  }
  let profile: ProfileSummary | null = null;
  if (profDir) {
    const dir = path.join(profDir, `${engine}-${route}`);
    for (const f of existsSync(dir) ? readdirSync(dir) : []) {
      if (!f.endsWith('.cpuprofile')) continue;
      const s = summarizeProfile(path.join(dir, f), 30);
      if (!profile || s.busyMs > profile.busyMs) profile = s;
    }
  }
  return { records, profile };
}

// ---------------------------------------------------------------------------------------------
// sse_hold

interface HoldRecord {
  engine: DatabaseKind;
  via: Via;
  streamsRequested: number;
  /** Streams being opened at once (the whole count: one burst). */
  openConcurrency: number;
  /** ARKLOOP_LISTEN_BACKLOG given to the app and gateway (null: their default). */
  backlog: number | null;
  runs: number;
  streamsPerRun: number;
  heartbeatS: number;
  holdS: number;
  opened: number;
  openFailed: number;
  openS: number;
  /** When each stream's 200 arrived, from the start of the burst (ms). */
  openMs: { p50: number; p99: number; max: number } | null;
  stillOpenAtEnd: number;
  closeReasons: Record<string, number>;
  heartbeatsPerStream: { min: number; median: number; max: number } | null;
  maxHeartbeatGapMs: number | null;
  sawWaitingEvent: number;
  /** Per process (app, gateway, generator): before the streams, after the open, max, end (MiB). */
  rssMiB: Record<string, { beforeStreams: number | null; afterOpen: number | null; max: number | null; end: number | null }>;
  /** Every process of the app side together (app, gateway), % of one core. */
  serverCpuPctDuringHold: number | null;
  healthzMsAtEnd: number | null;
}

async function benchSseHold(cleanup: Cleanup, opts: Options, engine: DatabaseKind, via: Via, tmpRoot: string, runTag: string, entryArgs: string[], profDir: string | null): Promise<{ record: HoldRecord; profile: ProfileSummary | null }> {
  const profOut = profDir ? path.join(profDir, `hold-${engine}-${via}`) : null;
  const L = `${ENGINE_LABEL[engine]}, ${via}`;
  const limit = openFilesLimit();
  // Through the gateway, it holds two sockets per stream; each process has its own limit (inherited).
  if (limit !== null && limit < opts.streams * (via === 'gateway' ? 2 : 1) + 512) {
    throw new Error(`sse_hold: the open files limit is ${limit}, too low for ${opts.streams} streams (the server children inherit it too); run from a shell with \`ulimit -n 65536\``);
  }
  process.stdout.write(`[${L}] sse_hold: starting the app${via === 'gateway' ? ' and an arkloop gateway in front' : via === 'serve' ? ' with its gateway inside' : ''} (ARKLOOP_SSE_HEARTBEAT_SECONDS=${opts.heartbeatS})…\n`);
  const app = await startApp(
    cleanup,
    opts,
    engine,
    tmpRoot,
    `${runTag}_h${engine === 'postgres' ? 'pg' : 'pgl'}_${via}`,
    entryArgs,
    {
      ARKLOOP_SSE_HEARTBEAT_SECONDS: String(opts.heartbeatS),
      ARKLOOP_WORKER_CONCURRENCY: String(Math.max(opts.workerConcurrency, 1)),
      ...(opts.backlog !== null ? { ARKLOOP_LISTEN_BACKLOG: String(opts.backlog) } : {}),
    },
    profOut ? ['--cpu-prof', `--cpu-prof-dir=${profOut}`] : [],
    { shape: 'single', gateway: via === 'gateway', serveGateway: via === 'serve' },
  );
  const agent = newAgent();
  const streams: HoldStream[] = [];
  let record: HoldRecord;
  try {
    const c = { origin: app.origin, auth: `Bearer ${app.token}`, agent };
    assertLoopback(c.origin);
    const headers = { authorization: c.auth, 'content-type': 'application/json' };
    const post = async (p: string, body: unknown) => {
      const res = await request(c.origin + p, { method: 'POST', headers, body: JSON.stringify(body), dispatcher: agent });
      const text = await res.body.text();
      if (res.statusCode !== 201) throw new Error(`POST ${p} answered ${res.statusCode}: ${text.slice(0, 200)}`);
      return JSON.parse(text) as Record<string, unknown>;
    };
    // The waiting runs.
    const nRuns = Math.min(opts.holdRuns, opts.streams);
    const runIds: string[] = [];
    const script = JSON.stringify({ stub: { steps: [{ ask_input: 'hold' }] } });
    let k = 0;
    await Promise.all(
      Array.from({ length: Math.min(10, nRuns) }, async () => {
        while (k < nRuns) {
          k++;
          const th = await post('/v1/threads', {});
          await post(`/v1/threads/${th.id}/messages`, { content: script });
          const run = await post(`/v1/threads/${th.id}/runs`, {});
          runIds.push(String(run.run_id));
        }
      }),
    );
    const deadline = performance.now() + 120_000;
    for (const id of runIds) {
      for (;;) {
        const res = await request(`${c.origin}/v1/runs/${id}`, { headers: { authorization: c.auth }, dispatcher: agent });
        const body = (await res.body.json()) as { status?: string };
        if (body.status === 'waiting_for_input') break;
        if (body.status !== 'queued' && body.status !== 'running') throw new Error(`hold run ${id} is ${body.status}, not waiting_for_input`);
        if (performance.now() > deadline) throw new Error(`hold runs did not all reach waiting_for_input within 120 s`);
        await sleep(100);
      }
    }
    const concurrency = Math.min(opts.openConcurrency, opts.streams);
    process.stdout.write(
      `[${L}] ${nRuns} runs waiting for input; opening ${opts.streams} streams (${Math.ceil(opts.streams / nRuns)} per run, ${concurrency === opts.streams ? 'all in one burst' : `${concurrency} at a time`})…\n`,
    );
    await sleep(1_000);
    const rss: HoldRecord['rssMiB'] = {};
    const sampleRss = (field: 'beforeStreams' | 'afterOpen' | 'end' | null) => {
      for (const [name, v] of Object.entries(rssOf(app.procs))) {
        const r = (rss[name] ??= { beforeStreams: null, afterOpen: null, max: null, end: null });
        if (field) r[field] = v;
        if (v !== null && v > (r.max ?? 0)) r.max = v;
      }
    };
    sampleRss('beforeStreams');

    // Open: every request issued at once (a burst), or `concurrency` at a time.
    const o0 = performance.now();
    let n = 0;
    await Promise.all(
      Array.from({ length: concurrency }, async () => {
        while (n < opts.streams) {
          const i = n++;
          streams.push(await openHoldStream(c, runIds[i % nRuns], 60_000));
        }
      }),
    );
    const openS = (performance.now() - o0) / 1000;
    const opened = streams.filter((s) => s.opened).length;
    const openAt = streams.filter((s) => s.opened).map((s) => s.openedAt - o0).sort((a, b) => a - b);
    const rank = (q: number) => openAt[Math.min(openAt.length - 1, Math.ceil(q * openAt.length) - 1)];
    sampleRss('afterOpen');
    process.stdout.write(`[${L}] ${opened}/${opts.streams} streams opened in ${openS.toFixed(1)} s; RSS MiB ${fmtRss(Object.fromEntries(Object.entries(rss).map(([k, v]) => [k, v.afterOpen])))}; holding ${opts.holdS} s…\n`);

    // Hold, sampling RSS.
    const cpu0 = cpuOf(app.procs);
    const h0 = performance.now();
    const holdEnd = h0 + opts.holdS * 1000;
    while (performance.now() < holdEnd) {
      await sleep(Math.min(1_000, Math.max(0, holdEnd - performance.now())));
      sampleRss(null);
      assertAlive(app, 'during the hold');
    }
    const cpu1 = cpuOf(app.procs);
    const holdElapsedS = (performance.now() - h0) / 1000;
    sampleRss('end');
    // Does the server still answer promptly with every stream open?
    let healthzMs: number | null = null;
    try {
      const t = performance.now();
      const res = await request(`${c.origin}/healthz`, { dispatcher: agent, signal: AbortSignal.timeout(10_000) });
      await res.body.dump();
      healthzMs = performance.now() - t;
    } catch {
      /* reported as — */
    }

    const open = streams.filter((s) => s.opened && !s.closed);
    const pings = streams.filter((s) => s.opened).map((s) => s.pings).sort((a, b) => a - b);
    const closeReasons: Record<string, number> = {};
    for (const s of streams) if (s.closed) closeReasons[s.closeReason ?? '?'] = (closeReasons[s.closeReason ?? '?'] ?? 0) + 1;
    const rec: HoldRecord = {
      engine,
      via,
      streamsRequested: opts.streams,
      openConcurrency: concurrency,
      backlog: opts.backlog,
      runs: nRuns,
      streamsPerRun: Math.ceil(opts.streams / nRuns),
      heartbeatS: opts.heartbeatS,
      holdS: opts.holdS,
      opened,
      openFailed: opts.streams - opened,
      openS,
      openMs: openAt.length ? { p50: rank(0.5), p99: rank(0.99), max: openAt[openAt.length - 1] } : null,
      stillOpenAtEnd: open.length,
      closeReasons,
      heartbeatsPerStream: pings.length ? { min: pings[0], median: pings[Math.floor(pings.length / 2)], max: pings[pings.length - 1] } : null,
      maxHeartbeatGapMs: open.length ? Math.max(...open.map((s) => Math.max(s.maxGapMs, holdEnd - s.lastPingAt))) : null,
      sawWaitingEvent: streams.filter((s) => s.sawWaiting).length,
      rssMiB: rss,
      serverCpuPctDuringHold: cpu0 !== null && cpu1 !== null ? ((cpu1 - cpu0) / holdElapsedS) * 100 : null,
      healthzMsAtEnd: healthzMs,
    };
    process.stdout.write(
      `[${L}] end of hold: ${rec.stillOpenAtEnd}/${opened} still open; heartbeats per stream min ${rec.heartbeatsPerStream?.min ?? '—'} median ${rec.heartbeatsPerStream?.median ?? '—'}; ` +
        `RSS max MiB ${fmtRss(Object.fromEntries(Object.entries(rss).map(([k, v]) => [k, v.max])))}; srv CPU ${f1(rec.serverCpuPctDuringHold)}%; /healthz ${f1(healthzMs)} ms\n`,
    );
    if (Object.keys(closeReasons).length) process.stdout.write(`  closed streams: ${JSON.stringify(closeReasons)}\n`);
    record = rec;
  } finally {
    for (const s of streams) s.abort.abort(new Error('aborted by the bench'));
    await agent.destroy().catch(() => undefined);
    await app.stop();
  }
  let profile: ProfileSummary | null = null;
  for (const f of profOut && existsSync(profOut) ? readdirSync(profOut) : []) {
    if (!f.endsWith('.cpuprofile')) continue;
    const sum = summarizeProfile(path.join(profOut!, f), 30); // the main thread's, the busiest of them
    if (!profile || sum.busyMs > profile.busyMs) profile = sum;
  }
  return { record, profile };
}

// ---------------------------------------------------------------------------------------------
// Report.

function pad(cells: string[][]): string {
  const w = cells[0].map((_, i) => Math.max(...cells.map((r) => r[i].length)));
  return cells.map((r) => r.map((c, i) => (i === 0 ? c.padEnd(w[i]) : c.padStart(w[i]))).join('  ')).join('\n');
}

function workerTable(opts: Options, records: WorkerRecord[]): string {
  const rows: string[][] = [['engine', 'route', 'processes', 'in flight', 'ok/runs', 'failed', 'run.failed', 'runs/s', 'completion p50/p99 ms', 'first delta p50/p99 ms', 'srv first delta p50/p99', 'POST run p50/p99 ms', 'cycle p50/p99 ms', 'srv CPU%', 'srv ms/run', 'RSS MiB per process (+ generator)']];
  for (const r of records) {
    const l = r.latencyMs;
    rows.push([
      ENGINE_LABEL[r.engine],
      r.route,
      r.processes,
      String(r.inFlight),
      `${r.completed}/${r.runs}`,
      String(r.failed),
      String(r.runFailed),
      f1(r.runsPerS),
      `${f1(l.completion.p50)} / ${f1(l.completion.p99)}`,
      `${f1(l.firstDelta.p50)} / ${f1(l.firstDelta.p99)}`,
      `${f1(l.serverFirstDelta.p50)} / ${f1(l.serverFirstDelta.p99)}`,
      `${f1(l.create.p50)} / ${f1(l.create.p99)}`,
      `${f1(l.cycle.p50)} / ${f1(l.cycle.p99)}`,
      f1(r.serverCpuPct),
      f1(r.serverCpuMsPerRun),
      fmtRss(r.rssMiB),
    ]);
  }
  const multi = records.some((r) => r.topology === 'multi') ? `; multi: clients through the gateway, ARKLOOP_WORKER_CONCURRENCY per worker process, Redis ${opts.redisUrl}` : '';
  return `worker_runs — ${opts.runs} runs per phase, ARKLOOP_WORKER_CONCURRENCY=${opts.workerConcurrency}${multi}; srv CPU: every process of the topology together\n` + pad(rows);
}

function workerChecks(opts: Options, records: WorkerRecord[]): string[] {
  const out: string[] = [];
  const mark = (ok: boolean) => (ok ? 'PASS' : 'FAIL');
  for (const r of records) {
    const L = `${ENGINE_LABEL[r.engine]}, ${r.route}, ${r.processes}, ${r.inFlight === 'all' ? 'all at once' : `${r.inFlight} in flight`}`;
    out.push(`${mark(r.failed === 0)}  ${L}: every run reached run.completed, seqs gap-free from 1, answer as expected (${r.failed} failed)`);
    const stub = records.find((x) => x.engine === r.engine && x.route === 'stub' && x.topology === r.topology && x.inFlight === r.inFlight);
    const single = records.find((x) => x.engine === r.engine && x.route === r.route && x.topology === 'single' && x.inFlight === r.inFlight);
    if (r.topology === 'multi' && single) {
      out.push(
        `info  ${L}: beside one serve process: runs/s ${f1(r.runsPerS)} vs ${f1(single.runsPerS)} (×${(r.runsPerS / single.runsPerS).toFixed(2)}), completion p50 ${f1(r.latencyMs.completion.p50)} vs ${f1(single.latencyMs.completion.p50)} ms, ` +
          `p99 ${f1(r.latencyMs.completion.p99)} vs ${f1(single.latencyMs.completion.p99)} ms, CPU ${f1(r.serverCpuMsPerRun)} vs ${f1(single.serverCpuMsPerRun)} ms/run`,
      );
    }
    if (r.route === 'provider' && stub) {
      const ratio = r.latencyMs.completion.p50 / stub.latencyMs.completion.p50;
      const addedMs = (r.serverCpuMsPerRun ?? NaN) - (stub.serverCpuMsPerRun ?? NaN);
      out.push(
        `${mark(ratio <= 1.5)}  ${L}: completion p50 ${f1(r.latencyMs.completion.p50)} ms = ${ratio.toFixed(2)}× the stub's ${f1(stub.latencyMs.completion.p50)} ms (aim ≤ 1.5×); ` +
          `added server CPU per run ${f1(addedMs)} ms (routing, key decryption, SDK, upstream HTTP)`,
      );
    }
    if (r.route === 'stub' && r.engine === 'postgres' && r.inFlight === opts.inFlight && opts.inFlight === 20) {
      out.push(`${mark(r.latencyMs.completion.p50 <= 50)}  ${L}: completion p50 ${f1(r.latencyMs.completion.p50)} ms ≤ 50 ms`);
      out.push(`${mark(r.latencyMs.completion.p99 <= 250)}  ${L}: completion p99 ${f1(r.latencyMs.completion.p99)} ms ≤ 250 ms`);
      // Two readings of "create → first delta": as the client sees it (POST sent → first delta
      // frame read, which includes the POST's own queueing in a loaded server), and as the
      // engine does it (the run's creation → its first delta stored, by the events' timestamps).
      out.push(`${mark(r.latencyMs.firstDelta.p50 <= 15)}  ${L}: client: POST run sent → first message.delta read p50 ${f1(r.latencyMs.firstDelta.p50)} ms ≤ 15 ms`);
      out.push(`${mark(r.latencyMs.serverFirstDelta.p50 <= 15)}  ${L}: server: run created (run.started) → first message.delta stored p50 ${f1(r.latencyMs.serverFirstDelta.p50)} ms ≤ 15 ms`);
    }
    if (r.route === 'stub' && r.engine === 'postgres' && r.inFlight === 'all') {
      out.push(`${mark(r.runsPerS >= 200)}  ${L}: ${f1(r.runsPerS)} runs/s ≥ 200 (aim); completion p99 ${f1(r.latencyMs.completion.p99)} ms`);
    }
  }
  return out;
}

function holdTable(records: HoldRecord[]): string {
  const rows: string[][] = [['engine', 'via', 'streams', 'opened at once', 'runs × per run', 'opened', 'open s', 'open p50/p99 ms', 'open at end', 'pings/stream min/med', 'max gap s', 'RSS max MiB per process', 'srv CPU%', '/healthz ms']];
  for (const r of records) {
    rows.push([
      ENGINE_LABEL[r.engine],
      r.via,
      String(r.streamsRequested),
      r.openConcurrency === r.streamsRequested ? 'all (burst)' : String(r.openConcurrency),
      `${r.runs} × ${r.streamsPerRun}`,
      String(r.opened),
      r.openS.toFixed(1),
      r.openMs ? `${f1(r.openMs.p50)} / ${f1(r.openMs.p99)}` : '—',
      String(r.stillOpenAtEnd),
      r.heartbeatsPerStream ? `${r.heartbeatsPerStream.min} / ${r.heartbeatsPerStream.median}` : '—',
      r.maxHeartbeatGapMs !== null ? (r.maxHeartbeatGapMs / 1000).toFixed(1) : '—',
      fmtRss(Object.fromEntries(Object.entries(r.rssMiB).map(([k, v]) => [k, v.max]))),
      f1(r.serverCpuPctDuringHold),
      f1(r.healthzMsAtEnd),
    ]);
  }
  const r0 = records[0];
  return `sse_hold — held ${r0?.holdS} s, ARKLOOP_SSE_HEARTBEAT_SECONDS=${r0?.heartbeatS}, ARKLOOP_LISTEN_BACKLOG=${r0?.backlog ?? 'default (4096)'}; srv CPU: app and gateway together\n` + pad(rows);
}

function holdChecks(records: HoldRecord[]): string[] {
  const out: string[] = [];
  for (const r of records) {
    const L = `${ENGINE_LABEL[r.engine]}, ${r.via}, ${r.openConcurrency === r.streamsRequested ? 'one burst' : `${r.openConcurrency} at a time`}`;
    out.push(`${r.stillOpenAtEnd === r.streamsRequested ? 'PASS' : 'FAIL'}  ${L}: ${r.stillOpenAtEnd}/${r.streamsRequested} streams opened and still open after ${r.holdS} s (${r.openFailed} failed to open)`);
    for (const [name, v] of Object.entries(r.rssMiB)) {
      if (name === 'generator') continue;
      out.push(`${(v.max ?? Infinity) < 1024 ? 'PASS' : 'FAIL'}  ${L}: ${name} RSS max ${f1(v.max)} MiB < 1024 MiB`);
    }
  }
  return out;
}

// ---------------------------------------------------------------------------------------------

async function main(): Promise<void> {
  const opts = await parseOptions();
  const started = new Date();
  const stamp = started.toISOString().replace(/[:.]/g, '-');
  const runTag = `${Date.now().toString(36)}_${randomBytes(3).toString('hex')}`;
  const cleanup = new Cleanup();
  const interruption = cleanUpOnExit(cleanup);

  const resultsDir = path.join(REPO_ROOT, 'bench', 'results');
  mkdirSync(resultsDir, { recursive: true });
  const tmpRoot = mkdtempSync(path.join(os.tmpdir(), 'arkloop-runs-bench-'));
  cleanup.add(`remove ${tmpRoot}`, () => rmSync(tmpRoot, { recursive: true, force: true }));
  const profDir = opts.cpuProf ? path.join(resultsDir, `runs-${stamp}-profiles`) : null;
  if (profDir) mkdirSync(profDir, { recursive: true });

  const workerRecords: WorkerRecord[] = [];
  const holdRecords: HoldRecord[] = [];
  const profiles: Array<{ label: string; summary: ProfileSummary }> = [];
  try {
    process.stdout.write(
      `runs bench: ${opts.benches.join(', ')} on ${opts.engines.map((e) => ENGINE_LABEL[e]).join(', ')}; ${os.cpus().length} CPUs, node ${process.version}, ` +
        `load ${os.loadavg()[0].toFixed(2)}, open files limit ${openFilesLimit()}\n`,
    );
    let entryArgs: string[];
    if (opts.appFrom === 'build') {
      process.stdout.write('building the app from the working tree into a temp dir…\n');
      const built = await buildAppInto(path.join(tmpRoot, 'build'));
      if (built.warnings) process.stdout.write(`warning: tsc reported errors (the app was still emitted):\n${built.warnings.split('\n').slice(0, 10).join('\n')}\n`);
      entryArgs = [built.entry];
    } else if (opts.appFrom === 'dist') entryArgs = [path.join(REPO_ROOT, 'bin', 'arkloop.js')];
    else entryArgs = ['--import', 'tsx', path.join(REPO_ROOT, 'src', 'cli', 'run.ts')];

    for (const engine of opts.engines) {
      if (opts.benches.includes('worker_runs')) {
        for (const shape of opts.shapes) {
          if (shape === 'multi' && engine !== 'postgres') continue; // several processes need PostgreSQL
          for (const route of opts.routes) {
            const { records, profile } = await benchWorkerRuns(cleanup, opts, engine, route, shape, tmpRoot, runTag, entryArgs, profDir);
            workerRecords.push(...records);
            if (profile) profiles.push({ label: `app on ${ENGINE_LABEL[engine]}, ${route} route, worker_runs ${opts.inFlight} in flight`, summary: profile });
          }
        }
      }
      if (opts.benches.includes('sse_hold')) {
        for (const via of opts.vias) {
          const { record, profile } = await benchSseHold(cleanup, opts, engine, via, tmpRoot, runTag, entryArgs, profDir);
          holdRecords.push(record);
          if (profile) profiles.push({ label: `app on ${ENGINE_LABEL[engine]}, sse_hold ${via}, ${opts.streams} streams (whole life)`, summary: profile });
        }
      }
    }

    const text: string[] = [''];
    if (workerRecords.length) {
      text.push(workerTable(opts, workerRecords), '', 'Checks and targets (targets: PostgreSQL)', ...workerChecks(opts, workerRecords));
      if (opts.cpuProf) text.push('note: the server ran under --cpu-prof, which slows it: read these figures for the profile only.');
      text.push('');
    }
    if (holdRecords.length) {
      text.push(holdTable(holdRecords), '', 'Checks and targets', ...holdChecks(holdRecords), '');
    }
    process.stdout.write(text.join('\n') + '\n');
    for (const p of profiles) process.stdout.write('\n' + formatProfile(p.summary, p.label) + '\n');

    const file = path.join(resultsDir, `runs-${stamp}.json`);
    writeFileSync(
      file,
      JSON.stringify(
        {
          startedAt: started.toISOString(),
          finishedAt: new Date().toISOString(),
          options: { ...opts, openConcurrency: Number.isFinite(opts.openConcurrency) ? opts.openConcurrency : 'all', pgAdminUrl: redact(opts.pgAdminUrl), redisUrl: redact(opts.redisUrl) },
          load: os.loadavg(),
          host: { cpus: os.cpus().length, cpuModel: os.cpus()[0]?.model, node: process.version, totalMemMB: Math.round(os.totalmem() / 2 ** 20) },
          worker_runs: workerRecords,
          sse_hold: holdRecords,
          profiles: profiles.map((p) => ({ label: p.label, ...p.summary })),
        },
        null,
        2,
      ) + '\n',
    );
    process.stdout.write(`\nresults written to ${path.relative(process.cwd(), file)}\n`);
  } finally {
    if (!interruption.interrupted) await cleanup.runAll();
  }
}

main().catch((err: Error) => {
  process.stderr.write(`bench: ${err.stack ?? err.message}\n`);
  process.exit(1);
});
