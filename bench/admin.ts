// Admin read paths over large tables, in process (the app as the server builds it, requests
// through Fastify's inject): the user list (first page, a page deep in the list, a search that
// matches many users, one that matches none) and the dashboard, over N users and M runs.
//
//   node --import tsx bench/admin.ts [--engine postgres|pglite] [--users 200000] [--runs 500000] [--requests 50]
//   (runs spread over 60 days; users one a minute, every 7th signed in within 90 days, every 50th suspended)
//
// Hand-written: the setup (hundreds of thousands of rows) is SQL, the load is sequential reads.
import { performance } from 'node:perf_hooks';
import { parseArgs } from 'node:util';
import { sql } from 'kysely';
import { rollUpUsage } from '../src/modules/usage/platform.js';
import { startInProcessApp } from './in-process.js';
import { summarize } from './loadgen.js';
import { Cleanup, cleanUpOnExit } from './servers.js';

const { values: args } = parseArgs({
  options: {
    engine: { type: 'string', default: 'postgres' },
    users: { type: 'string', default: '200000' },
    runs: { type: 'string', default: '500000' },
    requests: { type: 'string', default: '50' },
  },
});
const cleanup = new Cleanup();
cleanUpOnExit(cleanup);

async function main(): Promise<void> {
  const { app, ctx, call, register } = await startInProcessApp(args.engine!, cleanup, 'arkloop_bench_admin');
  const token = await register('benchadmin'); // the first user: the platform admin
  const me = (await call('GET', '/v1/me', token)).body as { id: string; org_id: string };
  const [org, adminId] = [me.org_id, me.id];

  const users = Number(args.users);
  const runs = Number(args.runs);
  let t0 = performance.now();
  await sql`INSERT INTO users (id, login, email, username, status, created_at, last_login_at)
    SELECT gen_random_uuid(), 'user' || i, 'user' || i || '@example.com', 'User ' || i,
           CASE WHEN i % 50 = 0 THEN 'suspended' ELSE 'active' END,
           now() - make_interval(secs => (${users} - i) * 60), CASE WHEN i % 7 = 0 THEN now() - make_interval(days => i % 90) END
      FROM generate_series(1, ${users}) i`.execute(ctx.db);
  const thread = (await sql<{ id: string }>`INSERT INTO threads (id, org_id, created_by_user_id) VALUES (gen_random_uuid(), ${org}, ${adminId}) RETURNING id`.execute(ctx.db)).rows[0].id;
  await sql`INSERT INTO runs (id, org_id, thread_id, created_by_user_id, status, trace_id, created_at)
    SELECT gen_random_uuid(), ${org}, ${thread}, ${adminId}, 'completed', 't' || i, now() - make_interval(secs => (i::bigint * 86400 * 60 / ${runs})::int)
      FROM generate_series(1, ${runs}) i`.execute(ctx.db);
  await sql`VACUUM ANALYZE`.execute(ctx.db); // as autovacuum would have by then
  await rollUpUsage(ctx.db);
  console.log(`engine ${args.engine}: seeded ${users} users and ${runs} runs in ${((performance.now() - t0) / 1000).toFixed(1)} s`);

  const middle = (await sql<{ id: string }>`SELECT id FROM users ORDER BY created_at DESC, id DESC OFFSET ${Math.floor(users / 2)} LIMIT 1`.execute(ctx.db)).rows[0].id;
  const cases: Array<[string, string]> = [
    ['users: first page', '/v1/admin/users?limit=20'],
    ['users: page in the middle', `/v1/admin/users?limit=20&cursor=${middle}`],
    ['users: q matching many', '/v1/admin/users?limit=20&q=USER1'],
    ['users: q matching one', `/v1/admin/users?limit=20&q=user${Math.floor(users / 3)}@`],
    ['users: q matching none', '/v1/admin/users?limit=20&q=nobody-here'],
    ['users: suspended', '/v1/admin/users?limit=20&status=suspended'],
    ['dashboard', '/v1/admin/dashboard'],
  ];
  const n = Number(args.requests);
  for (const [name, url] of cases) {
    const times: number[] = [];
    for (let i = 0; i < n; i++) {
      t0 = performance.now();
      const res = await app.inject({ method: 'GET', url, headers: { authorization: `Bearer ${token}` } });
      times.push(performance.now() - t0);
      if (res.statusCode !== 200) throw new Error(`${url}: ${res.statusCode} ${res.body}`);
    }
    const s = summarize(times);
    console.log(`${name.padEnd(28)} p50 ${s.p50.toFixed(2).padStart(8)} ms   p99 ${s.p99.toFixed(2).padStart(8)} ms`);
  }
  await cleanup.runAll();
}

main().catch(async (err) => {
  console.error(err);
  await cleanup.runAll();
  process.exitCode = 1;
});
