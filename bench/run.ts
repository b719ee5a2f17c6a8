// Thread CRUD benchmark: the app (`node bin/arkloop.js serve`, compiled from the working tree)
// against a raw floor (bench/floor.ts: bare node:http + the same driver + the minimal SQL), both
// running as child processes, both driven by the same closed-loop load generator
// (bench/loadgen.ts) in this process, on PGlite and/or PostgreSQL, at several concurrencies.
// Prints per-request and per-cycle p50/p99, cycles/s, requests/s, the 2xx rate, every figure as
// a ratio app/floor, and PASS/FAIL against the issue's targets; writes bench/results/<ts>.json.
//
// Hand-written on purpose: a benchmark of this exact stateful cycle, with a same-run yardstick
// on the same database and the project's own targets, is nothing a library provides.
//
//   npm run bench -- [--engine pglite|postgres|both] [--duration 30] [--clients 50,200]
//                    [--target app|floor|both] [--warmup 3] [--cpu-prof] [--app-from build|dist|source]
// See bench/README.md. `npm run bench -- cli [options]` runs bench/cli.ts (CLI wall time) instead.
import { existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { OPS, OP_LABEL, runLoad, type LoadResult, type Op } from './loadgen.js';
import { runAutocannonLoad } from './loadgen-autocannon.js';
import { formatProfile, summarizeProfile, type ProfileSummary } from './profile.js';
import {
  Cleanup, cleanUpOnExit,
  REPO_ROOT,
  backendPids,
  backendsCpuDelta,
  buildAppInto,
  cleanEnv,
  createDatabase,
  dbStats,
  freePort,
  hostCpu,
  pgReachable,
  processCpuSeconds,
  sleep,
  snapshotCpu,
  spawnServer,
  waitReady,
  type DbStats,
  type Server,
} from './servers.js';

type DatabaseKind = 'pglite' | 'postgres';
/**
 * `gateway`: the app driven through a gateway: an `arkloop gateway` process in front of it
 * (`--via gateway`), or the gateway inside `arkloop serve` (`--via serve`).
 */
type Target = 'floor' | 'app' | 'gateway';
type Generator = 'undici' | 'autocannon';
const GENERATORS: Record<Generator, typeof runLoad> = { undici: runLoad, autocannon: runAutocannonLoad };

const ENGINE_LABEL: Record<DatabaseKind, string> = { pglite: 'PGlite', postgres: 'PostgreSQL' };
const DEFAULT_PG_URL = 'postgres://postgres@127.0.0.1:5432/postgres';

const HELP = `usage: npm run bench -- [options]

  --engine pglite|postgres|both   database engine(s) (default both; postgres only when
                                  ARKLOOP_BENCH_DATABASE_URL or ${DEFAULT_PG_URL} answers)
  --duration <s>                  measured seconds per run (default 30)
  --warmup <s>                    warm-up seconds before each measurement (default 3)
  --timeout <s>                   per-request timeout, counted as an error (default 10)
  --clients <n,n,...>             concurrent closed-loop clients (default 50,200)
  --target app|floor|both         what to measure (default both)
  --via direct|gateway|serve       gateway: also drive the app through an \`arkloop gateway\` process,
                                  right after each direct run, and report the added p99;
                                  serve: the same through the gateway inside \`arkloop serve\`
                                  (ARKLOOP_SERVE_GATEWAY=1, handing requests to its own API)
  --generator undici|autocannon|both
                                  load generator (default undici: loadgen.ts; autocannon:
                                  loadgen-autocannon.ts, leaner; both: each, app and floor alike)
  --cpu-prof                      write V8 CPU profiles of the servers and summarise them
                                  (adds overhead: do not compare profiled figures)
  --app-from build|dist|source    build: compile src/ into a temp dir and run its bin/arkloop.js
                                  (default); dist: the repository's bin/arkloop.js + dist/ as they
                                  are; source: node --import tsx src/cli/run.ts
  --app-ref <git ref>             build that commit (git archive) instead of the working tree
  --app-node-args="<flags>"       extra node flags for the app process, e.g. --app-node-args="--max-semi-space-size=64"
  --repeat <n>                    measure every (clients, generator, target) n times, in rounds
                                  (floor and app alternate within a round); the tables show the
                                  round with the median cycles/s, the targets use the median of
                                  the per-round ratios and list each (default 1)
  --help`;

interface Options {
  engines: DatabaseKind[];
  durationS: number;
  warmupS: number;
  /** Per-request timeout; a request over it is an error. */
  timeoutS: number;
  clients: number[];
  targets: Target[];
  generators: Generator[];
  cpuProf: boolean;
  appFrom: 'build' | 'dist' | 'source';
  /** Build this git revision instead of the working tree (implies --app-from build). */
  appRef: string | null;
  /** Extra node flags for the app process (e.g. --max-semi-space-size=64, --import ./hook.mjs). */
  appNodeArgs: string[];
  pgAdminUrl: string;
  via: 'direct' | 'gateway' | 'serve';
  /** Rounds of measurement (--repeat). */
  repeat: number;
}

interface RunRecord {
  engine: DatabaseKind;
  target: Target;
  clients: number;
  generator: Generator;
  /** 0-based round of --repeat. */
  round: number;
  /** Server process CPU during the window, % of one core (PostgreSQL's own backends excluded). */
  serverCpuPct: number | null;
  /** Server process CPU milliseconds per completed cycle. */
  serverCpuMsPerCycle: number | null;
  /** PostgreSQL backends of this target's database: CPU during the window, % of one core. */
  dbCpuPct: number | null;
  dbCpuMsPerCycle: number | null;
  /** PostgreSQL work per completed cycle, from pg_stat_database deltas over the window (approximate). */
  dbPerCycle: { transactions: number; rowsInserted: number; rowsUpdated: number; rowsFetched: number } | null;
  /** Whole-host CPU busy during the window, % of all cores (shows noise from other work). */
  hostCpuPct: number | null;
  loadavg1: number;
  serverLogLines: number;
  result: LoadResult;
}

interface TargetCheck {
  engine: DatabaseKind;
  name: string;
  status: 'PASS' | 'FAIL' | 'n/a';
  detail: string;
}

function fail(msg: string): never {
  process.stderr.write(`bench: ${msg}\n`);
  process.exit(2);
}

async function parseOptions(): Promise<Options> {
  const { values } = parseArgs({
    options: {
      engine: { type: 'string', default: 'both' },
      duration: { type: 'string', default: '30' },
      warmup: { type: 'string', default: '3' },
      timeout: { type: 'string', default: '10' },
      clients: { type: 'string', default: '50,200' },
      target: { type: 'string', default: 'both' },
      generator: { type: 'string', default: 'undici' },
      via: { type: 'string', default: 'direct' },
      'cpu-prof': { type: 'boolean', default: false },
      'app-from': { type: 'string', default: 'build' },
      'app-ref': { type: 'string' },
      'app-node-args': { type: 'string', default: '' },
      repeat: { type: 'string', default: '1' },
      help: { type: 'boolean', short: 'h', default: false },
    },
    strict: true,
  });
  if (values.help) {
    process.stdout.write(HELP + '\n');
    process.exit(0);
  }
  const durationS = Number(values.duration);
  const warmupS = Number(values.warmup);
  if (!(durationS > 0) || durationS > 3600) fail('--duration must be 0 < s ≤ 3600');
  if (!(warmupS >= 0) || warmupS > 600) fail('--warmup must be 0 ≤ s ≤ 600');
  const timeoutS = Number(values.timeout);
  if (!(timeoutS > 0) || timeoutS > 600) fail('--timeout must be 0 < s ≤ 600');
  const clients = values.clients.split(',').map((s) => Number(s.trim()));
  if (!clients.length || clients.some((n) => !Number.isInteger(n) || n < 1 || n > 5000)) fail('--clients must be integers 1..5000, e.g. 50,200');
  if (!['app', 'floor', 'both'].includes(values.target)) fail('--target must be app, floor or both');
  const targets: Target[] = values.target === 'both' ? ['floor', 'app'] : [values.target as Target];
  if (!['direct', 'gateway', 'serve'].includes(values.via)) fail('--via must be direct, gateway or serve');
  const via = values.via as Options['via'];
  if (via !== 'direct') {
    if (!targets.includes('app')) fail(`--via ${via} needs the app (--target app or both)`);
    targets.push('gateway');
  }
  if (!['undici', 'autocannon', 'both'].includes(values.generator)) fail('--generator must be undici, autocannon or both');
  const generators: Generator[] = values.generator === 'both' ? ['undici', 'autocannon'] : [values.generator as Generator];
  if (!['build', 'dist', 'source'].includes(values['app-from'])) fail('--app-from must be build, dist or source');
  if (!['pglite', 'postgres', 'both'].includes(values.engine)) fail('--engine must be pglite, postgres or both');

  const explicitUrl = process.env.ARKLOOP_BENCH_DATABASE_URL;
  const pgAdminUrl = explicitUrl || DEFAULT_PG_URL;
  let engines: DatabaseKind[];
  if (values.engine === 'both') {
    engines = ['pglite'];
    if (await pgReachable(pgAdminUrl)) engines.push('postgres');
    else process.stdout.write(`note: PostgreSQL at ${redact(pgAdminUrl)} is not reachable; running PGlite only\n`);
  } else {
    engines = [values.engine as DatabaseKind];
    if (values.engine === 'postgres' && !(await pgReachable(pgAdminUrl))) {
      fail(`PostgreSQL at ${redact(pgAdminUrl)} is not reachable (set ARKLOOP_BENCH_DATABASE_URL)`);
    }
  }
  const repeat = Number(values.repeat);
  if (!Number.isInteger(repeat) || repeat < 1 || repeat > 20) fail('--repeat must be an integer 1..20');
  const appRef = values['app-ref'] ?? null;
  if (appRef !== null && values['app-from'] !== 'build') fail('--app-ref needs --app-from build');
  return { engines, durationS, warmupS, timeoutS, clients, targets, generators, cpuProf: values['cpu-prof'], appFrom: values['app-from'] as Options['appFrom'], appRef,
    appNodeArgs: values['app-node-args'].split(/\s+/).filter(Boolean), pgAdminUrl, via, repeat };
}

/** HEAD and the files that differ from it, to record what a working-tree build measured. */
async function gitState(): Promise<{ head: string; changed: string[] } | null> {
  const { execFileSync } = await import('node:child_process');
  try {
    const head = execFileSync('git', ['rev-parse', 'HEAD'], { cwd: REPO_ROOT, encoding: 'utf8' }).trim();
    const changed = execFileSync('git', ['status', '--porcelain', '--', 'src', 'migrations', 'bin'], { cwd: REPO_ROOT, encoding: 'utf8' })
      .split('\n')
      .filter(Boolean);
    return { head, changed };
  } catch {
    return null;
  }
}

function redact(url: string): string {
  return url.replace(/\/\/([^:@/]*):[^@/]*@/, '//$1:***@');
}

// ---------------------------------------------------------------------------------------------
// Starting the two servers of one engine.

interface Started {
  server: Server;
  token: string;
  /** PostgreSQL database name (postgres engine only). */
  dbName: string | null;
  stop: () => Promise<void>;
}

async function startFloor(cleanup: Cleanup, opts: Options, engine: DatabaseKind, tmpRoot: string, runTag: string, profDir: string | null): Promise<Started> {
  const port = await freePort();
  const token = randomBytes(24).toString('base64url');
  const env: Record<string, string> = {
    BENCH_FLOOR_PORT: String(port),
    BENCH_FLOOR_TOKEN: token,
    BENCH_FLOOR_ENGINE: engine,
    BENCH_FLOOR_POOL_SIZE: '20',
  };
  const releases: Array<() => Promise<void>> = [];
  const dbName = engine === 'postgres' ? `arkloop_bench_${runTag}_floor` : null;
  if (dbName) {
    const db = await createDatabase(cleanup, opts.pgAdminUrl, dbName);
    env.BENCH_FLOOR_DATABASE_URL = db.url;
    releases.push(db.drop);
  } else {
    const dir = path.join(tmpRoot, `floor-${engine}`);
    env.BENCH_FLOOR_DATA_DIR = dir;
    releases.push(cleanup.add(`remove ${dir}`, () => rmSync(dir, { recursive: true, force: true })));
  }
  const prof = profDir ? ['--cpu-prof', `--cpu-prof-dir=${path.join(profDir, `floor-${engine}`)}`] : [];
  const server = spawnServer(`floor (${engine})`, [...prof, '--import', 'tsx', path.join(REPO_ROOT, 'bench', 'floor.ts')], {
    env: cleanEnv(env),
    cwd: REPO_ROOT,
    origin: `http://127.0.0.1:${port}`,
  });
  // The process goes before its database and directory (registered later = released first).
  releases.unshift(cleanup.add(`stop ${server.name}`, async () => void (await server.stop())));
  await waitReady(server);
  return { server, token, dbName, stop: async () => { for (const r of releases) await r(); } };
}

/** Gateway buckets too big to refuse the bench (the limiter still runs on every request). */
const UNLIMITED_GATEWAY = { ARKLOOP_GATEWAY_RATELIMIT_CAPACITY: '1000000000', ARKLOOP_GATEWAY_RATELIMIT_RATE_PER_MINUTE: '1000000000' };

/** An `arkloop gateway` in front of the app (limiter in memory). */
async function startGateway(cleanup: Cleanup, app: Started & { jwtSecret: string | null }, entryArgs: string[], tmpRoot: string, profDir: string | null, engine: DatabaseKind): Promise<Started> {
  const port = await freePort();
  const prof = profDir ? ['--cpu-prof', `--cpu-prof-dir=${path.join(profDir, `gateway-${engine}`)}`] : [];
  const server = spawnServer(`gateway (${engine})`, [...prof, ...entryArgs, 'gateway'], {
    env: cleanEnv({
      ARKLOOP_GATEWAY_ADDR: `127.0.0.1:${port}`,
      ARKLOOP_GATEWAY_UPSTREAM: app.server.origin,
      // The app's key: the gateway verifies the bench user's token and buckets it as `user:<id>`.
      ...(app.jwtSecret ? { ARKLOOP_AUTH_JWT_SECRET: app.jwtSecret } : {}),
      ...UNLIMITED_GATEWAY,
      ARKLOOP_LOG_LEVEL: 'warn',
      ARKLOOP_DATA_DIR: path.join(tmpRoot, `gateway-${engine}`),
    }),
    cwd: tmpRoot,
    origin: `http://127.0.0.1:${port}`,
  });
  const release = cleanup.add(`stop ${server.name}`, async () => void (await server.stop()));
  await waitReady(server);
  return { server, token: app.token, dbName: app.dbName, stop: release };
}

async function startApp(
  cleanup: Cleanup,
  opts: Options,
  engine: DatabaseKind,
  tmpRoot: string,
  runTag: string,
  entryArgs: string[],
  profDir: string | null,
): Promise<Started & { skip: string | null; jwtSecret: string | null; gatewayOrigin: string | null }> {
  const port = await freePort();
  const dataDir = path.join(tmpRoot, `app-${engine}`);
  const env: Record<string, string> = {
    ARKLOOP_API_ADDR: `127.0.0.1:${port}`,
    ARKLOOP_DATA_DIR: dataDir,
    ARKLOOP_LOG_LEVEL: 'warn',
    // A long bench must not outlive its access token (default 900 s); nothing else changes.
    ARKLOOP_AUTH_ACCESS_TOKEN_TTL_SECONDS: '86400',
    // Behind the gateway (--via gateway) the client address comes from X-Forwarded-For (§29).
    ...(opts.via === 'gateway' ? { ARKLOOP_TRUST_X_FORWARDED_FOR: '1' } : {}),
  };
  const gatewayPort = opts.via === 'serve' ? await freePort() : null;
  if (gatewayPort) Object.assign(env, { ARKLOOP_SERVE_GATEWAY: '1', ARKLOOP_GATEWAY_ADDR: `127.0.0.1:${gatewayPort}`, ...UNLIMITED_GATEWAY });
  const releases: Array<() => Promise<void>> = [];
  releases.push(cleanup.add(`remove ${dataDir}`, () => rmSync(dataDir, { recursive: true, force: true })));
  const dbName = engine === 'postgres' ? `arkloop_bench_${runTag}_app` : null;
  if (dbName) {
    const db = await createDatabase(cleanup, opts.pgAdminUrl, dbName);
    releases.unshift(db.drop);
    env.ARKLOOP_DATABASE_URL = db.url;
    env.ARKLOOP_ENCRYPTION_KEY = randomBytes(32).toString('hex');
  }
  // Given on both engines when a gateway runs in front: it verifies the same tokens.
  if (dbName || opts.targets.includes('gateway')) env.ARKLOOP_AUTH_JWT_SECRET = randomBytes(48).toString('base64');
  const prof = profDir ? ['--cpu-prof', `--cpu-prof-dir=${path.join(profDir, `app-${engine}`)}`] : [];
  const server = spawnServer(`app (${engine})`, [...prof, ...opts.appNodeArgs, ...entryArgs, 'serve'], {
    env: cleanEnv(env),
    cwd: tmpRoot,
    origin: `http://127.0.0.1:${port}`,
  });
  releases.unshift(cleanup.add(`stop ${server.name}`, async () => void (await server.stop())));
  const stop = async () => { for (const r of releases) await r(); };
  await waitReady(server);

  // The first user becomes platform admin; the bench acts as an ordinary second user.
  const register = async (login: string) => {
    const res = await fetch(`${server.origin}/v1/auth/register`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ login, password: 'bench-password-1', email: `${login}@example.com` }),
    });
    const body = (await res.json().catch(() => ({}))) as { access_token?: string };
    if (res.status !== 201 || !body.access_token) throw new Error(`POST /v1/auth/register answered ${res.status}: ${JSON.stringify(body).slice(0, 300)}`);
    return body.access_token;
  };
  await register('benchadmin');
  const token = await register('benchuser');

  // Probe one cycle: are the endpoints there, and do they answer as the load generator expects?
  const auth = { authorization: `Bearer ${token}` };
  const created = await fetch(`${server.origin}/v1/threads`, {
    method: 'POST',
    headers: { ...auth, 'content-type': 'application/json' },
    body: JSON.stringify({ title: 'probe' }),
  });
  const createdBody = (await created.json().catch(() => null)) as { id?: string; code?: string } | null;
  if (created.status === 404) {
    return { server, token, dbName, stop, jwtSecret: null, gatewayOrigin: null, skip: `POST /v1/threads answers 404 (${createdBody?.code ?? '?'}): the threads endpoints are not implemented yet` };
  }
  if (created.status !== 201 || !createdBody?.id) {
    process.stdout.write(`warning: probe POST /v1/threads answered ${created.status}: ${JSON.stringify(createdBody).slice(0, 300)}\n`);
  } else {
    const p = `${server.origin}/v1/threads/${createdBody.id}`;
    const steps: Array<[string, RequestInit, number]> = [
      ['GET', { headers: auth }, 200],
      ['PATCH', { method: 'PATCH', headers: { ...auth, 'content-type': 'application/json' }, body: '{"title":"probe 2"}' }, 200],
      ['DELETE', { method: 'DELETE', headers: auth }, 204],
    ];
    for (const [label, init, want] of steps) {
      const res = await fetch(p, init);
      const text = await res.text();
      if (res.status !== want) process.stdout.write(`warning: probe ${label} /v1/threads/{id} answered ${res.status} (want ${want}): ${text.slice(0, 300)}\n`);
    }
  }
  return { server, token, dbName, stop, skip: null, jwtSecret: env.ARKLOOP_AUTH_JWT_SECRET ?? null, gatewayOrigin: gatewayPort ? `http://127.0.0.1:${gatewayPort}` : null };
}

// ---------------------------------------------------------------------------------------------
// Formatting.

function ms(v: number): string {
  if (!Number.isFinite(v)) return '—';
  return v >= 100 ? v.toFixed(0) : v >= 10 ? v.toFixed(1) : v.toFixed(2);
}
function ratio(a: number, b: number): string {
  return Number.isFinite(a) && Number.isFinite(b) && b > 0 ? `${(a / b).toFixed(2)}×` : '—';
}
function pct(v: number): string {
  return v >= 0.99995 ? '100%' : `${(v * 100).toFixed(2)}%`;
}
function num(v: number | null, digits = 0): string {
  return v === null || !Number.isFinite(v) ? '—' : v.toFixed(digits);
}

function table(header: string[], rows: string[][], leftCols = 2): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: string[]) => cells.map((c, i) => (i < leftCols ? c.padEnd(widths[i]) : c.padStart(widths[i]))).join('  ');
  return [line(header), widths.map((w) => '─'.repeat(w)).join('  '), ...rows.map(line)].join('\n');
}

/** Per-second spread of the window: steady queueing or stalls? */
function timelineLine(x: LoadResult): string {
  const t = x.timeline;
  if (!t.length) return '';
  const ok = t.map((s) => s.ok).sort((a, b) => a - b);
  let worst = 0;
  for (let i = 1; i < t.length; i++) if (t[i].maxMs > t[worst].maxMs) worst = i;
  return (
    `  per second: answered min ${ok[0]} / median ${ok[Math.floor(ok.length / 2)]} / max ${ok[ok.length - 1]} requests; ` +
    `slowest request ${ms(t[worst].maxMs)} ms, started in second ${worst + 1}`
  );
}

function oneLine(r: RunRecord): string {
  const x = r.result;
  return (
    `${num(x.cyclesPerS)} cycles/s, ${num(x.requestsPerS)} req/s, 2xx ${pct(x.okRate)} (non-2xx ${x.non2xx}, errors ${x.errors}, invalid ${x.invalid}), ` +
    `cycle p50 ${ms(x.latencyMs.cycle.p50)} ms p99 ${ms(x.latencyMs.cycle.p99)} ms, server CPU ${num(r.serverCpuPct)}%, host CPU ${num(r.hostCpuPct)}%`
  );
}

function report(opts: Options, records: RunRecord[], skipped: Map<DatabaseKind, string>): string {
  const out: string[] = [];
  const opHeads = OPS.map((o) => `${OP_LABEL[o]} p50/p99`);
  const header = ['clients', 'gen', 'target', 'cycles/s', 'req/s', '2xx', 'non-2xx', 'errors', 'invalid', 'cycle p50', 'cycle p99', ...opHeads, 'srv CPU%', 'srv ms/cyc', 'db CPU%', 'db ms/cyc', 'gen CPU%', 'host CPU%'];
  for (const engine of opts.engines) {
    const rows: string[][] = [];
    for (const c of opts.clients) for (const g of opts.generators) {
      const find = (t: Target) => findRecord(records, engine, t, c, g);
      for (const t of opts.targets) {
        const r = find(t);
        if (!r) continue;
        const x = r.result;
        rows.push([
          String(c),
          g,
          t,
          num(x.cyclesPerS),
          num(x.requestsPerS),
          pct(x.okRate),
          String(x.non2xx),
          String(x.errors),
          String(x.invalid),
          ms(x.latencyMs.cycle.p50),
          ms(x.latencyMs.cycle.p99),
          ...OPS.map((o: Op) => `${ms(x.latencyMs[o].p50)}/${ms(x.latencyMs[o].p99)}`),
          num(r.serverCpuPct),
          num(r.serverCpuMsPerCycle, 2),
          num(r.dbCpuPct),
          num(r.dbCpuMsPerCycle, 2),
          num(x.loadgenCpuPct),
          num(r.hostCpuPct),
        ]);
      }
      const a = find('app');
      const f = find('floor');
      if (a && f) {
        const A = a.result;
        const F = f.result;
        rows.push([
          String(c),
          g,
          'app/floor',
          ratio(A.cyclesPerS, F.cyclesPerS),
          ratio(A.requestsPerS, F.requestsPerS),
          '',
          '',
          '',
          '',
          ratio(A.latencyMs.cycle.p50, F.latencyMs.cycle.p50),
          ratio(A.latencyMs.cycle.p99, F.latencyMs.cycle.p99),
          ...OPS.map((o: Op) => `${ratio(A.latencyMs[o].p50, F.latencyMs[o].p50)}/${ratio(A.latencyMs[o].p99, F.latencyMs[o].p99)}`),
          a.serverCpuPct !== null && f.serverCpuPct !== null ? ratio(a.serverCpuPct, f.serverCpuPct) : '—',
          a.serverCpuMsPerCycle !== null && f.serverCpuMsPerCycle !== null ? ratio(a.serverCpuMsPerCycle, f.serverCpuMsPerCycle) : '—',
          a.dbCpuPct !== null && f.dbCpuPct !== null ? ratio(a.dbCpuPct, f.dbCpuPct) : '—',
          a.dbCpuMsPerCycle !== null && f.dbCpuMsPerCycle !== null ? ratio(a.dbCpuMsPerCycle, f.dbCpuMsPerCycle) : '—',
          '',
          '',
        ]);
      }
      const gw = find('gateway');
      if (a && gw) {
        const plus = (x: number, y: number) => `${x - y >= 0 ? '+' : ''}${ms(x - y)}`;
        const A = a.result.latencyMs;
        const G = gw.result.latencyMs;
        rows.push([String(c), g, 'gw−app', ratio(gw.result.cyclesPerS, a.result.cyclesPerS), ratio(gw.result.requestsPerS, a.result.requestsPerS), '', '', '', '',
          plus(G.cycle.p50, A.cycle.p50), plus(G.cycle.p99, A.cycle.p99), ...OPS.map((o: Op) => `${plus(G[o].p50, A[o].p50)}/${plus(G[o].p99, A[o].p99)}`), '', '', '', '', '', '']);
      }
    }
    const driver = engine === 'postgres' ? 'pg.Pool max 20' : 'embedded, on disk';
    out.push(`${ENGINE_LABEL[engine]} (${driver}) — ${opts.durationS} s measured after ${opts.warmupS} s warm-up; latencies in ms`);
    if (skipped.has(engine)) out.push(`  app not measured: ${skipped.get(engine)}`);
    out.push(rows.length ? table(header, rows, 3) : '  (no runs)');
    const dbRows = records
      .filter((r) => r.engine === engine && r.dbPerCycle)
      .map((r) => [String(r.clients), r.generator, r.target, num(r.dbPerCycle!.transactions, 1), num(r.dbPerCycle!.rowsInserted, 1), num(r.dbPerCycle!.rowsUpdated, 1), num(r.dbPerCycle!.rowsFetched, 1)]);
    if (dbRows.length) {
      out.push('');
      out.push('  database work per completed cycle (pg_stat_database deltas, approximate):');
      out.push(
        table(['clients', 'gen', 'target', 'transactions', 'rows inserted', 'rows updated', 'rows fetched'], dbRows, 3)
          .split('\n')
          .map((l) => '  ' + l)
          .join('\n'),
      );
    }
    out.push('');
  }
  return out.join('\n');
}

/** The measurement of (e, t, c, g); with --repeat, the round with the median cycles/s. */
function findRecord(records: RunRecord[], e: DatabaseKind, t: Target, c: number, g: Generator): RunRecord | undefined {
  const all = records.filter((r) => r.engine === e && r.target === t && r.clients === c && r.generator === g);
  all.sort((a, b) => a.result.cyclesPerS - b.result.cyclesPerS);
  return all[Math.floor((all.length - 1) / 2)];
}

/** `of(a, b)` for each round that measured both a (target t) and b (target u) at (e, c, g). */
function perRound(records: RunRecord[], e: DatabaseKind, c: number, g: Generator, t: Target, u: Target, of: (a: RunRecord, b: RunRecord) => number): number[] {
  const out: number[] = [];
  for (const a of records) {
    if (a.engine !== e || a.clients !== c || a.generator !== g || a.target !== t) continue;
    const b = records.find((r) => r.engine === e && r.clients === c && r.generator === g && r.target === u && r.round === a.round);
    if (b) out.push(of(a, b));
  }
  return out;
}

/** The median of `values` (the lower middle one for an even count), and how they read. */
function medianOf(values: number[], fmt: (v: number) => string): { median: number; detail: string } {
  const sorted = [...values].sort((x, y) => x - y);
  const median = sorted[Math.floor((sorted.length - 1) / 2)];
  return { median, detail: values.length > 1 ? `median of ${values.length} rounds (${values.map(fmt).join(', ')})` : '' };
}

/** Mean of the four requests' p99: the "request p99" of the gateway target (as in bench/gateway.ts). */
function requestP99(r: RunRecord): number {
  return OPS.reduce((sum, o) => sum + r.result.latencyMs[o].p99, 0) / OPS.length;
}

/** The issue's targets (issue 12, Performance), checked per engine and load generator. */
function checkTargets(opts: Options, records: RunRecord[]): TargetCheck[] {
  const checks: TargetCheck[] = [];
  const all2xx = (r: RunRecord) => r.result.requests > 0 && r.result.non2xx === 0 && r.result.errors === 0 && r.result.invalid === 0;
  const okDetail = (r: RunRecord) =>
    `${r.result.ok2xx - r.result.invalid}/${r.result.requests} valid 2xx (non-2xx ${r.result.non2xx}, errors ${r.result.errors}, invalid ${r.result.invalid})`;
  for (const engine of opts.engines) for (const g of opts.generators) {
    const find = (t: Target, c: number) => findRecord(records, engine, t, c, g);
    const gen = opts.generators.length > 1 ? ` [${g}]` : '';
    for (const c of opts.clients) {
      for (const t of ['app', 'gateway'] as const) {
        const a = find(t, c);
        if (t === 'gateway' && !a) continue;
        checks.push({ engine, name: `${t} 100% 2xx @ ${c} clients${gen}`, status: a ? (all2xx(a) ? 'PASS' : 'FAIL') : 'n/a', detail: a ? okDetail(a) : `${t} not measured` });
      }
    }
    // PostgreSQL: ≥ 0.6 × floor at 200 clients; PGlite (no target in the issue): ≥ 0.5 × at every concurrency.
    const min = engine === 'postgres' ? 0.6 : 0.5;
    const throughputAt = engine === 'postgres' ? [200] : opts.clients;
    for (const c of throughputAt) {
      const name = `app cycles/s @ ${c} clients ≥ ${min} × floor${gen}`;
      const ratios = perRound(records, engine, c, g, 'app', 'floor', (a, f) => a.result.cyclesPerS / f.result.cyclesPerS).filter(Number.isFinite);
      if (!ratios.length) {
        checks.push({ engine, name, status: 'n/a', detail: 'needs app and floor at that concurrency' });
        continue;
      }
      const a = find('app', c)!;
      const f = find('floor', c)!;
      const m = medianOf(ratios, (v) => v.toFixed(2));
      checks.push({
        engine,
        name,
        status: m.median >= min ? 'PASS' : 'FAIL',
        detail: ratios.length > 1 ? `${m.median.toFixed(2)}×, ${m.detail}` : `${m.median.toFixed(2)}× (app ${num(a.result.cyclesPerS)} / floor ${num(f.result.cyclesPerS)} cycles/s)`,
      });
    }
    if (engine === 'postgres') {
      const name = `app cycle p99 @ 50 clients ≤ 1.5 × floor's${gen}`;
      const p99s = perRound(records, engine, 50, g, 'app', 'floor', (a, f) => a.result.latencyMs.cycle.p99 / f.result.latencyMs.cycle.p99).filter(Number.isFinite);
      if (!p99s.length) checks.push({ engine, name, status: 'n/a', detail: 'needs app and floor at 50 clients' });
      else {
        const a = find('app', 50)!;
        const f = find('floor', 50)!;
        const m = medianOf(p99s, (v) => v.toFixed(2));
        checks.push({
          engine,
          name,
          status: m.median <= 1.5 ? 'PASS' : 'FAIL',
          detail: p99s.length > 1 ? `${m.median.toFixed(2)}×, ${m.detail}` : `${m.median.toFixed(2)}× (app ${ms(a.result.latencyMs.cycle.p99)} / floor ${ms(f.result.latencyMs.cycle.p99)} ms)`,
        });
      }
      const gw = find('gateway', 200);
      const direct = find('app', 200);
      if (opts.targets.includes('gateway')) {
        const name = `gateway added request p99 @ 200 clients ≤ 5 ms${gen}`;
        if (!gw || !direct) checks.push({ engine, name, status: 'n/a', detail: 'needs app and gateway at 200 clients' });
        else {
          const adds = perRound(records, engine, 200, g, 'gateway', 'app', (x, y) => requestP99(x) - requestP99(y));
          const m = medianOf(adds, (v) => `${v >= 0 ? '+' : ''}${ms(v)}`);
          const added = m.median;
          checks.push({
            engine,
            name,
            status: added <= 5 ? 'PASS' : 'FAIL',
            detail: adds.length > 1 ? `${added >= 0 ? '+' : ''}${ms(added)} ms, ${m.detail}` : `${added >= 0 ? '+' : ''}${ms(added)} ms (mean of the 4 requests' p99: ${ms(requestP99(gw))} via gateway, ${ms(requestP99(direct))} direct; cycle p99 ${ms(gw.result.latencyMs.cycle.p99)} vs ${ms(direct.result.latencyMs.cycle.p99)})`,
          });
        }
      }
    }
    for (const c of opts.clients) {
      const f = find('floor', c);
      if (f && !all2xx(f)) checks.push({ engine, name: `floor sanity @ ${c} clients${gen}`, status: 'FAIL', detail: okDetail(f) });
    }
  }
  return checks;
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
  const tmpRoot = mkdtempSync(path.join(os.tmpdir(), 'arkloop-bench-'));
  cleanup.add(`remove ${tmpRoot}`, () => rmSync(tmpRoot, { recursive: true, force: true }));
  const profDir = opts.cpuProf ? path.join(resultsDir, `${stamp}-profiles`) : null;
  if (profDir) mkdirSync(profDir, { recursive: true });

  const records: RunRecord[] = [];
  const skipped = new Map<DatabaseKind, string>();
  const profiles: Array<{ label: string; summary: ProfileSummary }> = [];
  let buildWarnings = '';
  let appRevision: string | null = null;

  try {
    process.stdout.write(
      `thread CRUD bench: engines ${opts.engines.join(', ')}; targets ${opts.targets.join(', ')}; clients ${opts.clients.join(', ')}; ` +
        `${opts.warmupS} s warm-up + ${opts.durationS} s each; ${os.cpus().length} CPUs, node ${process.version}, load ${os.loadavg()[0].toFixed(2)}\n`,
    );
    let entryArgs: string[] = [];
    if (opts.targets.includes('app')) {
      if (opts.appFrom === 'build') {
        process.stdout.write(`building the app from ${opts.appRef ? `git ${opts.appRef}` : 'the working tree'} into a temp dir…\n`);
        const built = await buildAppInto(path.join(tmpRoot, 'build'), opts.appRef);
        buildWarnings = built.warnings;
        appRevision = built.revision;
        if (appRevision) process.stdout.write(`app revision ${appRevision}\n`);
        else {
          const g = await gitState();
          if (g) process.stdout.write(`app = working tree at ${g.head.slice(0, 10)}${g.changed.length ? ` + ${g.changed.length} uncommitted file(s) under src/ migrations/ bin/` : ' (clean)'}\n`);
        }
        if (built.warnings) process.stdout.write(`warning: tsc reported errors (the app was still emitted):\n${built.warnings.split('\n').slice(0, 15).join('\n')}\n`);
        entryArgs = [built.entry];
      } else if (opts.appFrom === 'dist') entryArgs = [path.join(REPO_ROOT, 'bin', 'arkloop.js')];
      else entryArgs = ['--import', 'tsx', path.join(REPO_ROOT, 'src', 'cli', 'run.ts')];
    }

    for (const engine of opts.engines) {
      const servers = new Map<Target, Started>();
      try {
        if (opts.targets.includes('floor')) {
          process.stdout.write(`[${ENGINE_LABEL[engine]}] starting the floor…\n`);
          servers.set('floor', await startFloor(cleanup, opts, engine, tmpRoot, runTag, profDir));
        }
        if (opts.targets.includes('app')) {
          process.stdout.write(`[${ENGINE_LABEL[engine]}] starting the app…\n`);
          const app = await startApp(cleanup, opts, engine, tmpRoot, runTag, entryArgs, profDir);
          if (app.skip) {
            skipped.set(engine, app.skip);
            process.stdout.write(`[${ENGINE_LABEL[engine]}] app skipped: ${app.skip}\n`);
            await app.stop();
          } else {
            servers.set('app', app);
            if (opts.via === 'gateway') {
              process.stdout.write(`[${ENGINE_LABEL[engine]}] starting the gateway in front of the app…\n`);
              servers.set('gateway', await startGateway(cleanup, app, entryArgs, tmpRoot, profDir, engine));
            } else if (opts.via === 'serve' && app.gatewayOrigin) {
              // The same process, reached on its gateway's port; it stops with the app.
              servers.set('gateway', { ...app, server: { ...app.server, origin: app.gatewayOrigin }, stop: async () => undefined });
            }
          }
        }
        for (let round = 0; round < opts.repeat; round++) for (const clients of opts.clients) {
          for (const generator of opts.generators) for (const target of opts.targets) {
            const s = servers.get(target);
            if (!s) continue;
            const genLabel = (opts.generators.length > 1 ? ` (${generator})` : '') + (opts.repeat > 1 ? ` [round ${round + 1}/${opts.repeat}]` : '');
            process.stdout.write(`[${ENGINE_LABEL[engine]}] ${target} @ ${clients} clients${genLabel}: ${opts.warmupS} s warm-up + ${opts.durationS} s… `);
            const pid = s.server.proc.pid;
            let cpu0: number | null = null;
            let host0: ReturnType<typeof hostCpu> = null;
            let serverCpu: number | null = null;
            let hostPct: number | null = null;
            let db0: Promise<Map<number, number>> | null = null;
            let db1: Promise<Map<number, number>> | null = null;
            let st0: Promise<DbStats | null> | null = null;
            let st1: Promise<DbStats | null> | null = null;
            const linesBefore = s.server.lines();
            const loadavg1 = os.loadavg()[0];
            const result = await GENERATORS[generator]({
              origin: s.server.origin,
              token: s.token,
              clients,
              warmupMs: opts.warmupS * 1000,
              durationMs: opts.durationS * 1000,
              requestTimeoutMs: opts.timeoutS * 1000,
              onWindowStart: () => {
                cpu0 = processCpuSeconds(pid);
                host0 = hostCpu();
                if (s.dbName) {
                  db0 = backendPids(opts.pgAdminUrl, s.dbName).then(snapshotCpu);
                  st0 = dbStats(opts.pgAdminUrl, s.dbName);
                }
              },
              onWindowEnd: () => {
                const cpu1 = processCpuSeconds(pid);
                const host1 = hostCpu();
                if (cpu0 !== null && cpu1 !== null) serverCpu = cpu1 - cpu0;
                if (host0 && host1 && host1.total > host0.total) hostPct = ((host1.busy - host0.busy) / (host1.total - host0.total)) * 100;
                if (s.dbName) {
                  db1 = backendPids(opts.pgAdminUrl, s.dbName).then(snapshotCpu);
                  st1 = dbStats(opts.pgAdminUrl, s.dbName);
                }
              },
            });
            const cpuS = serverCpu as number | null;
            const dbBefore = await (db0 as Promise<Map<number, number>> | null);
            const dbAfter = await (db1 as Promise<Map<number, number>> | null);
            const dbS = dbBefore && dbAfter && dbAfter.size ? backendsCpuDelta(dbBefore, dbAfter) : null;
            const stats0 = await (st0 as Promise<DbStats | null> | null);
            const stats1 = await (st1 as Promise<DbStats | null> | null);
            const perCycle = (k: keyof DbStats) => (stats0 && stats1 && result.cycles ? (stats1[k] - stats0[k]) / result.cycles : NaN);
            const rec: RunRecord = {
              engine,
              target,
              clients,
              generator,
              round,
              serverCpuPct: cpuS === null ? null : (cpuS / opts.durationS) * 100,
              serverCpuMsPerCycle: cpuS === null || result.cycles === 0 ? null : (cpuS * 1000) / result.cycles,
              dbCpuPct: dbS === null ? null : (dbS / opts.durationS) * 100,
              dbCpuMsPerCycle: dbS === null || result.cycles === 0 ? null : (dbS * 1000) / result.cycles,
              dbPerCycle:
                stats0 && stats1 && result.cycles
                  ? {
                      transactions: perCycle('xact_commit') + perCycle('xact_rollback'),
                      rowsInserted: perCycle('tup_inserted'),
                      rowsUpdated: perCycle('tup_updated'),
                      rowsFetched: perCycle('tup_fetched'),
                    }
                  : null,
              hostCpuPct: hostPct,
              loadavg1,
              serverLogLines: s.server.lines() - linesBefore,
              result,
            };
            records.push(rec);
            process.stdout.write(oneLine(rec) + '\n' + timelineLine(result) + '\n');
            if (result.connectFailures || result.connectMs > 2_000) {
              process.stdout.write(`  note: connecting the ${clients} clients took ${ms(result.connectMs)} ms (${result.connectFailures} failed)\n`);
            }
            if (result.connections > clients) {
              const why = Object.entries(result.disconnects).map(([k, n]) => `${n}× ${k}`).join('; ');
              process.stdout.write(`  note: ${result.connections} connections opened for ${clients} clients${why ? ` — in the window: ${why}` : ''}\n`);
            }
            if (result.samples.length) process.stdout.write(`  unexpected answers, first ones:\n    ${result.samples.join('\n    ')}\n`);
            if (rec.serverLogLines) process.stdout.write(`  the ${target} wrote ${rec.serverLogLines} log lines; last ones:\n${s.server.tail()}\n`);
            if (s.server.proc.exitCode !== null) throw new Error(`${s.server.name} exited during the run:\n${s.server.tail()}`);
            await sleep(1_000);
          }
        }
      } finally {
        for (const t of ['gateway', 'app', 'floor'] as const) await servers.get(t)?.stop();
      }
      if (profDir) {
        for (const t of opts.targets) {
          // One file per thread (the tsx loader of the floor runs in a worker): keep the busiest.
          const dir = path.join(profDir, `${t}-${engine}`);
          let best: ProfileSummary | null = null;
          for (const f of existsSync(dir) ? readdirSync(dir) : []) {
            if (!f.endsWith('.cpuprofile')) continue;
            const sum = summarizeProfile(path.join(dir, f), 30);
            if (!best || sum.busyMs > best.busyMs) best = sum;
          }
          if (best) profiles.push({ label: `${t} on ${ENGINE_LABEL[engine]}`, summary: best });
        }
      }
    }

    // ---- report
    const text: string[] = [''];
    text.push(report(opts, records, skipped));
    const checks = checkTargets(opts, records);
    text.push('Targets');
    text.push(
      table(
        ['engine', 'target', 'result', 'measured'],
        checks.map((c) => [ENGINE_LABEL[c.engine], c.name, c.status, c.detail]),
        4,
      ),
    );
    text.push('');
    text.push(
      'cycles/s: completed POST→GET→PATCH→DELETE cycles per second; req/s: requests started per second; 2xx: share of 2xx answers; ' +
        'invalid: 2xx with a wrong status or body; latencies p50/p99 in ms; srv: the server process; db: the PostgreSQL backends of its database; ' +
        'gen: this load generator; CPU% of one core, ms/cyc = CPU ms per completed cycle; host CPU%: all cores, all processes (noise from other work shows here).',
    );
    if (opts.cpuProf) text.push('note: servers ran under --cpu-prof, which slows them: use the figures above for the profile only.');
    process.stdout.write(text.join('\n') + '\n');
    for (const p of profiles) process.stdout.write('\n' + formatProfile(p.summary, p.label) + '\n');

    mkdirSync(resultsDir, { recursive: true });
    const file = path.join(resultsDir, `${stamp}.json`);
    writeFileSync(
      file,
      JSON.stringify(
        {
          startedAt: started.toISOString(),
          finishedAt: new Date().toISOString(),
          options: { ...opts, pgAdminUrl: redact(opts.pgAdminUrl) },
          host: { cpus: os.cpus().length, cpuModel: os.cpus()[0]?.model, node: process.version, platform: `${os.platform()} ${os.release()}`, totalMemMB: Math.round(os.totalmem() / 2 ** 20) },
          app: {
            from: opts.appFrom,
            revision: appRevision,
            // What the working tree differed by when it was built (the default build measures it).
            workingTree: opts.appFrom !== 'dist' && !opts.appRef ? await gitState() : null,
          },
          appSkipped: Object.fromEntries(skipped),
          buildWarnings: buildWarnings || null,
          runs: records,
          targets: checks,
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

// `npm run bench -- cli|gateway [options]` runs that bench (bench/cli.ts, bench/gateway.ts) instead of this one.
const sub = process.argv[2];
const chosen =
  sub === 'cli'
    ? (process.argv.splice(2, 1), import('./cli.js').then(() => undefined))
    : sub === 'gateway'
      ? import('./gateway.js').then((g) => g.main(process.argv.slice(3)))
      : main();
chosen.catch(async (err: Error) => {
  process.stderr.write(`bench: ${err.stack ?? err.message}\n`);
  process.exit(1);
});
