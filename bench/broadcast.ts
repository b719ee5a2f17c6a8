// Broadcast benchmark (issue 10): an admin broadcast to N active users (100,000 by default),
// fanned out by the `broadcast.fanout` job of a real server (`arkloop serve`, compiled from the
// working tree, in a child process). Reports the wall time from POST (202) to `status: sent`,
// the fan-out rate, and the server's resident memory: before the POST, the peak sampled every
// 50 ms while the job runs, and the kernel's own peak (VmHWM). Checks sent_count and that every
// user got exactly one notification. Users are seeded with one set-based INSERT before the
// server starts (so PGlite's data directory is free), the admin named by
// ARKLOOP_BOOTSTRAP_PLATFORM_ADMIN.
//
//   node --import tsx bench/broadcast.ts [--engine postgres|pglite|both] [--users 100000] [--batch 5000]
//
// Hand-written: one fixed scenario measured from outside the server process, nothing a load
// library covers.
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { sql } from 'kysely';
import { openDatabase } from '../src/db/database.js';
import { migrate } from '../src/db/migrator.js';
import { Cleanup, buildAppInto, cleanEnv, cleanUpOnExit, createDatabase, freePort, pgReachable, sleep, spawnServer, waitReady } from './servers.js';

const { values: args } = parseArgs({
  options: {
    engine: { type: 'string', default: 'both' },
    users: { type: 'string', default: '100000' },
    batch: { type: 'string', default: '' },
  },
});
const USERS = Number(args.users);
const PG = process.env.ARKLOOP_BENCH_DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres';
const MiB = 1024 * 1024;
const cleanup = new Cleanup();
cleanUpOnExit(cleanup);

/** VmRSS and VmHWM (peak) of a process, in bytes. */
function memoryOf(pid: number): { rss: number; hwm: number } {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const kb = (field: string) => Number(new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(status)?.[1] ?? 0) * 1024;
  return { rss: kb('VmRSS'), hwm: kb('VmHWM') };
}

async function seed(databaseUrl: string | null, dataDir: string): Promise<void> {
  const database = await openDatabase({ databaseUrl, dataDir: databaseUrl ? null : dataDir });
  try {
    await migrate(database);
    await sql`
      INSERT INTO users (id, login, username)
      SELECT arkloop_uuid_v7(), 'bu' || g, 'bu' || g FROM generate_series(1, ${USERS}) g`.execute(database.db);
  } finally {
    await database.close();
  }
}

async function benchEngine(engine: 'postgres' | 'pglite', entry: string, tmpRoot: string) {
  const dataDir = path.join(tmpRoot, `data-${engine}`);
  const env: Record<string, string> = {
    ARKLOOP_DATA_DIR: dataDir,
    ARKLOOP_LOG_LEVEL: 'warn',
    ARKLOOP_BOOTSTRAP_PLATFORM_ADMIN: 'benchadmin',
  };
  if (args.batch) env.ARKLOOP_BROADCAST_BATCH_SIZE = args.batch;
  let databaseUrl: string | null = null;
  if (engine === 'postgres') {
    const db = await createDatabase(cleanup, PG, `arkloop_bench_broadcast_${randomBytes(4).toString('hex')}`);
    databaseUrl = db.url;
    Object.assign(env, { ARKLOOP_DATABASE_URL: db.url, ARKLOOP_AUTH_JWT_SECRET: randomBytes(48).toString('base64'), ARKLOOP_ENCRYPTION_KEY: randomBytes(32).toString('hex') });
  }
  const seedStart = performance.now();
  await seed(databaseUrl, dataDir);
  const seedMs = performance.now() - seedStart;

  const port = await freePort();
  env.ARKLOOP_API_ADDR = `127.0.0.1:${port}`;
  const server = spawnServer(`app (${engine})`, [entry, 'serve'], { env: cleanEnv(env), cwd: tmpRoot, origin: `http://127.0.0.1:${port}` });
  const stopServer = cleanup.add(`stop ${server.name}`, async () => void (await server.stop()));
  try {
    await waitReady(server);
    const call = async (method: string, url: string, token: string | null, body?: unknown) => {
      const res = await fetch(server.origin + url, {
        method,
        headers: { ...(token ? { authorization: `Bearer ${token}` } : {}), ...(body ? { 'content-type': 'application/json' } : {}) },
        body: body ? JSON.stringify(body) : undefined,
      });
      return { status: res.status, body: (await res.json().catch(() => null)) as any };
    };
    const reg = await call('POST', '/v1/auth/register', null, { login: 'benchadmin', email: 'benchadmin@example.com', password: 'bench-password-1' });
    if (reg.status !== 201) throw new Error(`register: ${reg.status} ${JSON.stringify(reg.body)}`);
    const token = reg.body.access_token as string;
    const pid = server.proc.pid!;
    // Settle: a small broadcast to the admin's own account warms the code path up.
    const me = await call('GET', '/v1/me', token);
    const warm = await call('POST', '/v1/admin/notifications/broadcasts', token, { type: 'warmup', title: 'w', body: 'w', target: me.body.org_id });
    if (warm.status !== 202) throw new Error(`warm-up broadcast: ${warm.status} ${JSON.stringify(warm.body)}`);
    for (let i = 0; i < 200 && (await call('GET', `/v1/admin/notifications/broadcasts/${warm.body.id}`, token)).body.status !== 'sent'; i++) await sleep(50);
    global.gc?.();
    await sleep(500);

    const before = memoryOf(pid);
    let peak = before.rss;
    const sampler = setInterval(() => {
      try {
        peak = Math.max(peak, memoryOf(pid).rss);
      } catch {
        /* exited */
      }
    }, 50);
    const start = performance.now();
    const post = await call('POST', '/v1/admin/notifications/broadcasts', token, { type: 'bench', title: 'Benchmark', body: 'A broadcast to everyone', target: 'all', payload: { bench: true } });
    if (post.status !== 202) throw new Error(`POST: ${post.status} ${JSON.stringify(post.body)}`);
    const postMs = performance.now() - start;
    let b: any;
    const polls: number[] = [];
    for (;;) {
      const t0 = performance.now();
      b = (await call('GET', `/v1/admin/notifications/broadcasts/${post.body.id}`, token)).body;
      polls.push(performance.now() - t0);
      if (b.status === 'sent' || b.status === 'failed') break;
      if (performance.now() - start > 600_000) throw new Error(`still ${b.status} after 10 minutes (${b.sent_count} sent)`);
      await sleep(100);
    }
    const wallMs = performance.now() - start;
    clearInterval(sampler);
    const after = memoryOf(pid);
    peak = Math.max(peak, after.rss);
    polls.sort((x, y) => x - y);

    // Every active user exactly once (read after the server stopped: PGlite's directory is then free).
    await stopServer();
    const check = await openDatabase({ databaseUrl, dataDir: databaseUrl ? null : dataDir });
    let exact: string;
    {
      const r = await sql<{ n: number; users: number; active: number }>`
        SELECT (SELECT count(*)::int FROM notifications WHERE broadcast_id = ${post.body.id}) AS n,
               (SELECT count(DISTINCT user_id)::int FROM notifications WHERE broadcast_id = ${post.body.id}) AS users,
               (SELECT count(*)::int FROM users WHERE status = 'active') AS active`.execute(check.db);
      await check.close();
      const row = r.rows[0];
      exact = row.n === row.active && row.users === row.active ? `yes (${row.n} rows, ${row.users} users)` : `NO: ${row.n} rows, ${row.users} users, ${row.active} active`;
    }
    return {
      engine,
      users: USERS + 1,
      seedMs,
      status: b.status as string,
      sentCount: b.sent_count as number,
      postMs,
      wallMs,
      rate: (b.sent_count / wallMs) * 1000,
      rssBefore: before.rss,
      rssPeak: peak,
      hwmBefore: before.hwm,
      hwmAfter: after.hwm,
      pollP50: polls[Math.floor(polls.length / 2)],
      pollMax: polls[polls.length - 1],
      exact,
    };
  } finally {
    await stopServer();
  }
}

async function main() {
  const engines: Array<'postgres' | 'pglite'> = args.engine === 'both' ? ['postgres', 'pglite'] : [args.engine as 'postgres' | 'pglite'];
  if (engines.includes('postgres') && !(await pgReachable(PG))) {
    if (args.engine === 'postgres') throw new Error(`PostgreSQL at ${PG} does not answer`);
    engines.splice(engines.indexOf('postgres'), 1);
    process.stdout.write(`PostgreSQL at ${PG} does not answer: PGlite only\n`);
  }
  const tmpRoot = mkdtempSync(path.join(os.tmpdir(), 'arkloop-bench-broadcast-'));
  cleanup.add(`remove ${tmpRoot}`, () => rmSync(tmpRoot, { recursive: true, force: true }));
  process.stdout.write('building the app…\n');
  const built = await buildAppInto(path.join(tmpRoot, 'build'));
  if (built.warnings) process.stdout.write(`warning: tsc reported errors:\n${built.warnings.split('\n').slice(0, 10).join('\n')}\n`);
  for (const engine of engines) {
    process.stdout.write(`\n[${engine}] seeding ${USERS} users and broadcasting to all…\n`);
    const r = await benchEngine(engine, built.entry, tmpRoot);
    const growth = (r.rssPeak - r.rssBefore) / MiB;
    const lines = [
      `status ${r.status}, sent_count ${r.sentCount} of ${r.users} active users; each exactly once: ${r.exact}`,
      `seed ${(r.seedMs / 1000).toFixed(1)} s (not counted)`,
      `POST answered 202 in ${r.postMs.toFixed(1)} ms; wall time to sent ${(r.wallMs / 1000).toFixed(2)} s (${Math.round(r.rate)} notifications/s)   aim < 60 s: ${r.wallMs < 60_000 ? 'PASS' : 'FAIL'}`,
      `server RSS before ${(r.rssBefore / MiB).toFixed(0)} MiB, peak during ${(r.rssPeak / MiB).toFixed(0)} MiB (+${growth.toFixed(0)} MiB)   aim < +200 MiB: ${growth < 200 ? 'PASS' : 'FAIL'}`,
      `VmHWM (process peak since start) ${(r.hwmBefore / MiB).toFixed(0)} → ${(r.hwmAfter / MiB).toFixed(0)} MiB`,
      `GET broadcast while fanning out: p50 ${r.pollP50.toFixed(1)} ms, max ${r.pollMax.toFixed(1)} ms`,
    ];
    for (const l of lines) process.stdout.write(`  ${l}\n`);
  }
}

main()
  .catch((err) => {
    process.stderr.write(`bench failed: ${(err as Error).stack ?? err}\n`);
    process.exitCode = 1;
  })
  .finally(() => cleanup.runAll());
