// /metrics scrape-storm benchmark (issue 12 item 4): `arkloop api` and `arkloop worker` (with
// its metrics listener) on one PostgreSQL database; closed-loop scrapers hammer each role's
// /metrics and the bench reports scrapes/s, latency, and the database's transactions per second
// during the storm beside an idle period of the same length (the read-at-scrape gauges share a
// 2 s snapshot, so the storm must not raise the database's load by more than a few statements
// per second).
//
//   node --import tsx bench/metrics.ts [--clients 50] [--duration 10]
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import { parseArgs } from 'node:util';
import { Pool } from 'undici';
import { summarize } from './loadgen.js';
import { Cleanup, REPO_ROOT, cleanEnv, cleanUpOnExit, createDatabase, dbStats, freePort, pgReachable, sleep, spawnServer, waitReady } from './servers.js';

const ENTRY = ['--import', 'tsx', path.join(REPO_ROOT, 'src', 'cli', 'run.ts')];

async function storm(origin: string, clients: number, seconds: number): Promise<{ n: number; failed: number; ms: number[] }> {
  const pool = new Pool(origin, { connections: clients });
  const ms: number[] = [];
  let failed = 0;
  const until = Date.now() + seconds * 1000;
  await Promise.all(
    Array.from({ length: clients }, async () => {
      while (Date.now() < until) {
        const t0 = performance.now();
        const res = await pool.request({ method: 'GET', path: '/metrics' }).catch(() => null);
        if (!res) { failed++; continue; }
        await res.body.text();
        if (res.statusCode !== 200) failed++;
        ms.push(performance.now() - t0);
      }
    }),
  );
  await pool.close();
  return { n: ms.length, failed, ms };
}

async function xactsPerSecond(pgUrl: string, db: string, during: () => Promise<unknown>, seconds: number): Promise<number> {
  await sleep(1100); // pg_stat_database is flushed about once a second
  const a = await dbStats(pgUrl, db);
  await during();
  await sleep(1100);
  const b = await dbStats(pgUrl, db);
  return a && b ? (b.xact_commit + b.xact_rollback - a.xact_commit - a.xact_rollback) / (seconds + 1.1) : NaN;
}

async function main(): Promise<void> {
  const { values } = parseArgs({ options: { clients: { type: 'string', default: '50' }, duration: { type: 'string', default: '10' } } });
  const clients = Number(values.clients);
  const seconds = Number(values.duration);
  const pgUrl = process.env.ARKLOOP_BENCH_DATABASE_URL || 'postgres://postgres@127.0.0.1:5432/postgres';
  if (!(await pgReachable(pgUrl))) throw new Error(`PostgreSQL is not reachable at ${pgUrl} (the worker role needs it)`);
  const cleanup = new Cleanup();
  cleanUpOnExit(cleanup);
  try {
    const dataDir = mkdtempSync(path.join(os.tmpdir(), 'arkloop-metricsbench-'));
    cleanup.add('remove data dir', () => rmSync(dataDir, { recursive: true, force: true }));
    const dbName = `arkloop_bench_metrics_${randomBytes(4).toString('hex')}`;
    const db = await createDatabase(cleanup, pgUrl, dbName);
    const base = {
      ARKLOOP_DATA_DIR: dataDir,
      ARKLOOP_LOG_LEVEL: 'warn',
      ARKLOOP_DATABASE_URL: db.url,
      ARKLOOP_AUTH_JWT_SECRET: randomBytes(48).toString('base64'),
      ARKLOOP_ENCRYPTION_KEY: randomBytes(32).toString('hex'),
    };
    const apiPort = await freePort();
    const api = spawnServer('api', [...ENTRY, 'api'], { env: cleanEnv({ ...base, ARKLOOP_API_ADDR: `127.0.0.1:${apiPort}` }), cwd: REPO_ROOT, origin: `http://127.0.0.1:${apiPort}` });
    cleanup.add('stop api', async () => void (await api.stop()));
    await waitReady(api);
    const wPort = await freePort();
    const worker = spawnServer('worker', [...ENTRY, 'worker'], {
      env: cleanEnv({ ...base, ARKLOOP_WORKER_METRICS_ADDR: `127.0.0.1:${wPort}` }),
      cwd: REPO_ROOT,
      origin: `http://127.0.0.1:${wPort}`,
    });
    cleanup.add('stop worker', async () => void (await worker.stop()));
    for (let i = 0; ; i++) {
      if ((await fetch(`${worker.origin}/healthz`).catch(() => null))?.status === 200) break;
      if (i > 600) throw new Error(`worker did not start:\n${worker.tail()}`);
      await sleep(100);
    }

    const idle = await xactsPerSecond(pgUrl, dbName, () => sleep(seconds * 1000), seconds);
    const rows: string[][] = [];
    for (const [name, origin] of [['api', api.origin], ['worker', worker.origin]] as const) {
      let r = { n: 0, failed: 0, ms: [] as number[] };
      const busy = await xactsPerSecond(pgUrl, dbName, async () => (r = await storm(origin, clients, seconds)), seconds);
      const s = summarize(r.ms);
      rows.push([name, (r.n / seconds).toFixed(0), String(r.failed), s.p50.toFixed(2), s.p99.toFixed(2), idle.toFixed(1), busy.toFixed(1), (busy - idle).toFixed(1), '≤ 3']);
    }
    const head = ['role', 'scrapes/s', 'failed', 'p50 ms', 'p99 ms', 'db xact/s idle', 'db xact/s storm', 'added', 'target added'];
    const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i].length)));
    const line = (cells: string[]) => '| ' + cells.map((c, i) => c.padEnd(widths[i])).join(' | ') + ' |';
    process.stdout.write(`\n/metrics scrape storm: ${clients} clients, ${seconds} s per role, PostgreSQL\n`);
    process.stdout.write([line(head), line(widths.map((w) => '-'.repeat(w))), ...rows.map(line)].join('\n') + '\n');
  } finally {
    await cleanup.runAll();
  }
}

main().then(
  () => process.exit(0),
  (err: Error) => {
    process.stderr.write(`bench: ${err.stack ?? err.message}\n`);
    process.exit(1);
  },
);
