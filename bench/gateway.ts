// Gateway benchmark (issue 12): `arkloop gateway` as its own process in front of `arkloop serve`.
//   1. open loop at a fixed rate (default 1,000 req/s for 30 s) to the gateway's /healthz, with
//      the rate limiter in memory and on Redis (targets: p99 ≤ 10 ms, 2xx ≥ 99.9%). /healthz is
//      exempt from the limiter (§30), so the same load is also sent to a rate-limited, proxied
//      path (GET /v1/auth/registration-mode, buckets large enough never to refuse), which takes
//      a bucket in memory or in Redis on every request, at --proxied-rate (default 200/s: the
//      API behind it, not the gateway, is the limit there); informative, no target of its own;
//   2. the thread CRUD cycle (bench/loadgen.ts) at 200 clients, through the gateway and
//      directly, alternately on the same server: the added p99 (target ≤ 5 ms).
// The open-loop generator is hand-written: autocannon's `overallRate` holds requests back
// while its connections are busy (closed loop), which hides queueing; here each request is
// due at its own time, sent on time on a pool with spare connections, and timed from when it
// was due (no coordinated omission).
//
//   node --import tsx bench/gateway.ts [--engine pglite|postgres] [--rate 1000] [--proxied-rate 200] [--duration 30]
//        [--crud-clients 200] [--crud-duration 20] [--skip healthz|crud]
// Also `npm run bench -- gateway [same options]`. See bench/README.md.
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import { parseArgs } from 'node:util';
import { connect } from 'node:net';
import { Pool } from 'undici';
import { runLoad, summarize, type LoadResult } from './loadgen.js';
import { Cleanup, REPO_ROOT, cleanEnv, cleanUpOnExit, createDatabase, freePort, pgReachable, sleep, spawnServer, waitReady, type Server } from './servers.js';

const DEFAULT_PG_URL = 'postgres://postgres@127.0.0.1:5432/postgres';
const ENTRY = ['--import', 'tsx', path.join(REPO_ROOT, 'src', 'cli', 'run.ts')];

interface OpenLoopResult {
  sent: number;
  ok2xx: number;
  failed: number;
  p50: number;
  p99: number;
  p999: number;
  max: number;
  /** Requests actually started per second. */
  achievedRate: number;
}

/** Requests due every 1/rate s for `durationS`, latency from the due time. */
async function openLoop(origin: string, pathname: string, rate: number, durationS: number): Promise<OpenLoopResult> {
  const pool = new Pool(origin, { connections: 256, pipelining: 1, keepAliveTimeout: 30_000 });
  const latencies = new Float64Array(Math.ceil(rate * durationS) + 10);
  let n = 0;
  let ok = 0;
  let failed = 0;
  const inflight = new Set<Promise<void>>();
  const start = performance.now();
  const total = Math.floor(rate * durationS);
  const intervalMs = 1000 / rate;
  for (let i = 0; i < total; i++) {
    const due = start + i * intervalMs;
    const wait = due - performance.now();
    if (wait > 1) await sleep(wait);
    // Sent late (behind schedule): timed from when it was due. Sent early (a sleep under 1 ms
    // is skipped): timed from when it was sent.
    const from = Math.min(due, performance.now());
    const p = pool
      .request({ method: 'GET', path: pathname, headers: { 'user-agent': 'arkloop-bench' } })
      .then(async (res) => {
        await res.body.dump();
        latencies[n++] = performance.now() - from;
        if (res.statusCode >= 200 && res.statusCode < 300) ok++;
        else failed++;
      })
      .catch(() => {
        latencies[n++] = performance.now() - from;
        failed++;
      });
    inflight.add(p);
    void p.finally(() => inflight.delete(p));
  }
  const sentIn = (performance.now() - start) / 1000;
  await Promise.all(inflight);
  await pool.close();
  const s = summarize(latencies.subarray(0, n));
  return { sent: total, ok2xx: ok, failed, p50: s.p50, p99: s.p99, p999: s.p999, max: s.max, achievedRate: total / sentIn };
}

/** A bare node:http server answering /healthz and /readyz (for waitReady) with 200 JSON. */
const BARE_SERVER = `require('node:http').createServer((q, s) => { q.resume(); s.writeHead(200, { 'content-type': 'application/json' }); s.end('{"status":"ok"}'); }).listen(Number(process.argv[1]), '127.0.0.1');`;

function tcpReachable(url: string): Promise<boolean> {
  const u = new URL(url);
  return new Promise((resolve) => {
    const s = connect(Number(u.port || 6379), u.hostname, () => {
      s.destroy();
      resolve(true);
    });
    s.on('error', () => resolve(false));
  });
}

function ms(v: number): string {
  return !Number.isFinite(v) ? '—' : v >= 100 ? v.toFixed(0) : v >= 10 ? v.toFixed(1) : v.toFixed(2);
}

function table(header: string[], rows: string[][]): string {
  const w = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (c: string[]) => c.map((x, i) => (i === 0 ? x.padEnd(w[i]) : x.padStart(w[i]))).join('  ');
  return [line(header), w.map((x) => '─'.repeat(x)).join('  '), ...rows.map(line)].join('\n');
}

function loadAvg(): string {
  return os.loadavg().map((x) => x.toFixed(2)).join(' / ');
}

export async function main(argv: string[]): Promise<void> {
  const { values } = parseArgs({
    args: argv,
    options: {
      engine: { type: 'string', default: '' },
      rate: { type: 'string', default: '1000' },
      'proxied-rate': { type: 'string', default: '200' },
      duration: { type: 'string', default: '30' },
      'crud-clients': { type: 'string', default: '200' },
      'crud-duration': { type: 'string', default: '20' },
      skip: { type: 'string', default: '' },
      help: { type: 'boolean', default: false },
    },
  });
  if (values.help) {
    process.stdout.write('usage: node --import tsx bench/gateway.ts [--engine pglite|postgres] [--rate 1000] [--proxied-rate 200 (0 = skip)] [--duration 30] [--crud-clients 200] [--crud-duration 20] [--skip healthz|crud]\n');
    return;
  }
  const rate = Number(values.rate);
  const proxiedRate = Number(values['proxied-rate']);
  const durationS = Number(values.duration);
  const crudClients = Number(values['crud-clients']);
  const crudS = Number(values['crud-duration']);
  const pgUrl = process.env.ARKLOOP_BENCH_DATABASE_URL || DEFAULT_PG_URL;
  const redisUrl = process.env.ARKLOOP_BENCH_REDIS_URL || 'redis://127.0.0.1:6379';
  const engine = values.engine || ((await pgReachable(pgUrl)) ? 'postgres' : 'pglite');

  const cleanup = new Cleanup();
  cleanUpOnExit(cleanup);
  try {
    const dataDir = mkdtempSync(path.join(os.tmpdir(), 'arkloop-gwbench-'));
    cleanup.add('remove data dir', async () => rmSync(dataDir, { recursive: true, force: true }));
    const base: Record<string, string> = {
      ARKLOOP_DATA_DIR: dataDir,
      ARKLOOP_LOG_LEVEL: 'warn',
      ARKLOOP_AUTH_JWT_SECRET: randomBytes(48).toString('base64'),
      ARKLOOP_ENCRYPTION_KEY: randomBytes(32).toString('hex'),
      ARKLOOP_AUTH_ACCESS_TOKEN_TTL_SECONDS: '86400',
    };
    if (engine === 'postgres') {
      const db = await createDatabase(cleanup, pgUrl, `arkloop_bench_gw_${randomBytes(4).toString('hex')}`);
      base.ARKLOOP_DATABASE_URL = db.url;
    }
    const apiPort = await freePort();
    const api = spawnServer('api', [...ENTRY, 'serve'], {
      env: cleanEnv({ ...base, ARKLOOP_API_ADDR: `127.0.0.1:${apiPort}`, ARKLOOP_TRUST_X_FORWARDED_FOR: '1', ARKLOOP_TRUST_INCOMING_TRACE_ID: '1' }),
      cwd: REPO_ROOT,
      origin: `http://127.0.0.1:${apiPort}`,
    });
    cleanup.add('stop api', async () => void (await api.stop()));
    await waitReady(api);

    const startGateway = async (name: string, extra: Record<string, string>): Promise<Server> => {
      const port = await freePort();
      const g = spawnServer(name, [...ENTRY, 'gateway'], {
        // Buckets big enough never to refuse the bench: the limiter runs, the load passes.
        env: cleanEnv({
          ...base,
          ARKLOOP_GATEWAY_ADDR: `127.0.0.1:${port}`,
          ARKLOOP_GATEWAY_UPSTREAM: api.origin,
          ARKLOOP_GATEWAY_RATELIMIT_CAPACITY: '1000000000',
          ARKLOOP_GATEWAY_RATELIMIT_RATE_PER_MINUTE: '1000000000',
          ...extra,
        }),
        cwd: REPO_ROOT,
        origin: `http://127.0.0.1:${port}`,
      });
      cleanup.add(`stop ${name}`, async () => void (await g.stop()));
      await waitReady(g);
      return g;
    };

    const rows: string[][] = [];
    const results: Record<string, unknown> = { engine, rate, durationS, loadavgBefore: os.loadavg(), cpus: os.cpus().length };
    process.stdout.write(`gateway bench on ${engine}; ${os.cpus().length} cores; load average before ${loadAvg()}\n`);

    if (values.skip !== 'healthz') {
      // The yardstick on this machine now: a bare node:http server answering the same way.
      const floorPort = await freePort();
      const floor = spawnServer('bare node:http', ['-e', BARE_SERVER, String(floorPort)], { env: cleanEnv({}), cwd: REPO_ROOT, origin: `http://127.0.0.1:${floorPort}` });
      cleanup.add('stop bare server', async () => void (await floor.stop()));
      await waitReady(floor);
      await openLoop(floor.origin, '/healthz', Math.min(rate, 200), 2);
      const f = await openLoop(floor.origin, '/healthz', rate, durationS);
      results['floor /healthz'] = f;
      rows.push(['floor: bare node:http /healthz', `${f.achievedRate.toFixed(0)}/s`, ms(f.p50), ms(f.p99), ms(f.max), `${((f.ok2xx / f.sent) * 100).toFixed(2)}%`, '(machine yardstick)', 'info']);
      process.stdout.write(`  ${rows[rows.length - 1].join('  ')}\n`);
      await floor.stop();

      const memGw = await startGateway('gateway (memory)', {});
      const variants: Array<[string, Server | null]> = [['memory', memGw]];
      let redisGw: Server | null = null;
      if (await tcpReachable(redisUrl)) {
        redisGw = await startGateway('gateway (redis)', { ARKLOOP_REDIS_URL: redisUrl }).catch((err: Error) => {
          process.stdout.write(`redis gateway not started: ${err.message}\n`);
          return null;
        });
        variants.push(['redis', redisGw]);
      }
      if (!redisGw) process.stdout.write(`redis at ${redisUrl} does not answer: the redis rows are left out\n`);
      for (const [limiter, g] of variants) {
        if (!g) continue;
        for (const [label, p, target, r0] of [
          ['/healthz (exempt)', '/healthz', true, rate],
          ['/v1/auth/registration-mode (limited, proxied)', '/v1/auth/registration-mode', false, proxiedRate],
        ] as const) {
          if (r0 <= 0) continue;
          await openLoop(g.origin, p, Math.min(r0, 200), 2); // warm-up
          const r = await openLoop(g.origin, p, r0, durationS);
          results[`${limiter} ${p}`] = r;
          const okRate = r.ok2xx / r.sent;
          const pass = target ? (r.p99 <= 10 && okRate >= 0.999 ? 'PASS' : 'FAIL') : 'info';
          rows.push([
            `${limiter}: ${label}`,
            `${r.achievedRate.toFixed(0)}/s`,
            ms(r.p50),
            ms(r.p99),
            ms(r.max),
            `${(okRate * 100).toFixed(2)}%`,
            target ? 'p99 ≤ 10 ms, 2xx ≥ 99.9%' : '—',
            pass,
          ]);
          process.stdout.write(`  ${rows[rows.length - 1].join('  ')}\n`);
        }
      }
    }

    if (values.skip !== 'crud') {
      const gw = await startGateway('gateway (crud)', {});
      const register = async (login: string) => {
        const res = await fetch(`${api.origin}/v1/auth/register`, {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify({ login, password: 'bench-password-1', email: `${login}@example.com` }),
        });
        const body = (await res.json()) as { access_token: string };
        return body.access_token;
      };
      await register('gwbenchadmin');
      const token = await register('gwbenchuser');
      const runs: Record<'direct' | 'gateway', LoadResult[]> = { direct: [], gateway: [] };
      // Alternate twice, so a load spike from elsewhere on the machine hits both sides.
      for (const round of [0, 1]) {
        for (const side of round === 0 ? (['direct', 'gateway'] as const) : (['gateway', 'direct'] as const)) {
          const origin = side === 'direct' ? api.origin : gw.origin;
          const r = await runLoad({ origin, token, clients: crudClients, warmupMs: 2000, durationMs: (crudS * 1000) / 2, requestTimeoutMs: 10_000 });
          runs[side].push(r);
          process.stdout.write(`  crud ${side} round ${round + 1}: cycle p99 ${ms(r.latencyMs.cycle.p99)} ms, ${r.cyclesPerS.toFixed(0)} cycles/s, 2xx ${(r.okRate * 100).toFixed(2)}%\n`);
        }
      }
      const p99 = (side: 'direct' | 'gateway', k: 'cycle' | 'create' | 'get' | 'update' | 'delete') =>
        runs[side].reduce((a, r) => a + r.latencyMs[k].p99, 0) / runs[side].length;
      const reqP99 = (side: 'direct' | 'gateway') => (['create', 'get', 'update', 'delete'] as const).reduce((a, k) => a + p99(side, k), 0) / 4;
      const added = reqP99('gateway') - reqP99('direct');
      const addedCycle = p99('gateway', 'cycle') - p99('direct', 'cycle');
      results.crud = { clients: crudClients, runs, addedRequestP99: added, addedCycleP99: addedCycle };
      const cps = (side: 'direct' | 'gateway') => runs[side].reduce((a, r) => a + r.cyclesPerS, 0) / runs[side].length;
      rows.push([`crud ${crudClients} clients: direct`, `${cps('direct').toFixed(0)} cyc/s`, '', ms(reqP99('direct')), '', '', 'request p99 (mean of 4 ops)', '']);
      rows.push([`crud ${crudClients} clients: via gateway`, `${cps('gateway').toFixed(0)} cyc/s`, '', ms(reqP99('gateway')), '', '', '', '']);
      rows.push([`crud ${crudClients} clients: added request p99`, '', '', ms(added), '', '', '≤ 5 ms', added <= 5 ? 'PASS' : 'FAIL']);
      rows.push([`crud ${crudClients} clients: added cycle p99`, '', '', ms(addedCycle), '', '', '(4 requests)', 'info']);
    }

    process.stdout.write(`\nload average after ${loadAvg()} (${os.cpus().length} cores, shared with other work)\n\n`);
    process.stdout.write(table(['figure', 'rate', 'p50 ms', 'p99 ms', 'max ms', '2xx', 'target', 'verdict'], rows) + '\n');
    results.loadavgAfter = os.loadavg();
    process.stdout.write(`\n${JSON.stringify({ results: Object.fromEntries(Object.entries(results).filter(([k]) => k !== 'crud')) })}\n`);
  } finally {
    await cleanup.runAll();
  }
}

if (process.argv[1] && path.resolve(process.argv[1]) === path.resolve(REPO_ROOT, 'bench', 'gateway.ts')) {
  main(process.argv.slice(2)).catch((err: Error) => {
    process.stderr.write(`${err.stack ?? err.message}\n`);
    process.exit(1);
  });
}
