// Billing benchmarks, in process (the app built as the server builds it, requests through
// Fastify's inject, so the figures are the API's own cost without the HTTP stack):
//
//   run_create   POST /v1/threads/{id}/runs at K in flight with the run limits coming from
//                platform settings (today's path before entitlements) versus from a plan and an
//                override (the entitlement resolution, cached), in alternating rounds on the same
//                database; p50/p99 per variant. No worker runs: created runs are marked finished
//                between rounds so both variants count the same active runs.
//   usage_daily  GET /v1/admin/usage/daily over a year with N usage records (200 accounts,
//                3 models, spread over 365 days): read from the raw records, then through the
//                daily rollup (modules/usage/platform.ts).
//
//   node --import tsx bench/billing.ts [run_create|usage_daily|all] [--engine postgres|pglite]
//        [--runs 2000] [--in-flight 20] [--records 1000000] [--requests 50]
//
// Hand-written: two fixed scenarios whose setup (plans, a million records) is SQL, not load.
import { performance } from 'node:perf_hooks';
import { parseArgs } from 'node:util';
import { sql } from 'kysely';
import { rollUpUsage } from '../src/modules/usage/platform.js';
import { summarize } from './loadgen.js';
import { Cleanup, cleanUpOnExit } from './servers.js';
import { startInProcessApp } from './in-process.js';

const { values: args, positionals } = parseArgs({
  allowPositionals: true,
  options: {
    engine: { type: 'string', default: 'postgres' },
    runs: { type: 'string', default: '2000' },
    'in-flight': { type: 'string', default: '20' },
    records: { type: 'string', default: '1000000' },
    requests: { type: 'string', default: '50' },
  },
});
const which = positionals[0] ?? 'all';
const cleanup = new Cleanup();
cleanUpOnExit(cleanup);

const setup = () => startInProcessApp(args.engine!, cleanup, 'arkloop_bench_billing');

const fmt = (ms: number) => ms.toFixed(2);

async function runCreate(): Promise<void> {
  const { ctx, call, register } = await setup();
  const admin = await register('benchadmin');
  const user = await register('benchuser');
  const me = await call('GET', '/v1/me', user);
  const org = me.body.org_id as string;
  const total = Number(args.runs);
  const inFlight = Number(args['in-flight']);
  const threads: string[] = [];
  for (let i = 0; i < inFlight * 2; i++) {
    const th = await call('POST', '/v1/threads', user, {});
    await call('POST', `/v1/threads/${th.body.id}/messages`, user, { content: 'hello' });
    threads.push(th.body.id);
  }
  const setSetting = async (key: string, value: unknown) => {
    if (value === null) await ctx.db.deleteFrom('platform_settings').where('key', '=', key).execute();
    else await ctx.db.insertInto('platform_settings').values({ key, value: JSON.stringify(value) }).onConflict((oc) => oc.column('key').doUpdateSet({ value: JSON.stringify(value) })).execute();
    await ctx.settings.invalidate();
  };
  const plan = await call('POST', '/v1/plans', admin, { name: 'bench', display_name: 'Bench', entitlements: [{ key: 'quota.runs_per_month', value: '1000000000', value_type: 'integer' }] });
  const now = Date.now();
  const variants = {
    settings: async () => {
      await setSetting('quota.runs_per_month', 1_000_000_000);
      await setSetting('limit.concurrent_runs', 1_000_000_000);
      await ctx.db.deleteFrom('entitlement_overrides').execute();
      await ctx.db.updateTable('subscriptions').set({ status: 'cancelled' }).execute();
      const { entitlementsChanged } = await import('../src/modules/entitlements/resolve.js');
      await entitlementsChanged(ctx, null);
    },
    entitlements: async () => {
      await setSetting('quota.runs_per_month', null);
      await setSetting('limit.concurrent_runs', null);
      await call('POST', '/v1/subscriptions', admin, { org_id: org, plan_id: plan.body.id, current_period_start: new Date(now - 3600_000).toISOString(), current_period_end: new Date(now + 30 * 86400_000).toISOString() });
      await call('POST', '/v1/entitlement-overrides', admin, { org_id: org, key: 'limit.concurrent_runs', value: '1000000000', value_type: 'integer' });
    },
  };
  const latencies: Record<string, number[]> = { settings: [], entitlements: [] };
  const round = Math.max(inFlight, Math.floor(total / 8));
  for (let r = 0; r < 8; r++) {
    const name = r % 2 === 0 ? 'settings' : 'entitlements';
    await variants[name]();
    let next = 0;
    const worker = async (slot: number) => {
      const thread = threads[slot];
      while (next < round) {
        next++;
        const t0 = performance.now();
        const res = await call('POST', `/v1/threads/${thread}/runs`, user, {});
        const ms = performance.now() - t0;
        if (res.status !== 201) throw new Error(`run create: ${res.status} ${JSON.stringify(res.body)}`);
        if (r > 1) latencies[name].push(ms); // the first round of each is warm-up
        await sql`UPDATE runs SET status = 'completed' WHERE id = ${res.body.run_id}`.execute(ctx.db);
        await sql`UPDATE threads SET active_run_id = NULL WHERE id = ${thread}`.execute(ctx.db);
      }
    };
    await Promise.all(Array.from({ length: inFlight }, (_, i) => worker(i)));
  }
  console.log(`run_create (${args.engine}, ${inFlight} in flight, ${round} runs per round, 3 measured rounds per variant)`);
  const base = summarize(latencies.settings);
  for (const name of ['settings', 'entitlements']) {
    const s = summarize(latencies[name]);
    console.log(`  ${name.padEnd(13)} n=${s.count} p50 ${fmt(s.p50)} ms  p99 ${fmt(s.p99)} ms  mean ${fmt(s.mean)} ms  p50 ratio ${(s.p50 / base.p50).toFixed(3)}`);
  }
}

async function usageDaily(): Promise<void> {
  const { ctx, call, register } = await setup();
  const admin = await register('benchadmin');
  const records = Number(args.records);
  const requests = Number(args.requests);
  await sql`INSERT INTO accounts (id, slug, name, type) SELECT gen_random_uuid(), 'bench-' || g, 'Bench ' || g, 'workspace' FROM generate_series(1, 200) g`.execute(ctx.db);
  const t0 = performance.now();
  await sql`
    INSERT INTO usage_records (id, org_id, model, input_tokens, output_tokens, cost_usd, created_at)
    SELECT gen_random_uuid(), a.ids[1 + (g % 200)], (ARRAY['gpt-a', 'gpt-b', 'claude-c'])[1 + (g % 3)], 100 + g % 900, 10 + g % 90, (g % 1000) / 100000.0,
           now() - make_interval(secs => (g::float8 / ${records}) * 365 * 86400)
    FROM generate_series(1, ${records}::int) g, (SELECT array_agg(id) AS ids FROM accounts WHERE slug LIKE 'bench-%') a`.execute(ctx.db);
  await sql`ANALYZE usage_records`.execute(ctx.db);
  console.log(`usage_daily (${args.engine}): ${records} records inserted in ${((performance.now() - t0) / 1000).toFixed(1)} s`);
  const end = new Date().toISOString().slice(0, 10);
  const start = new Date(Date.now() - 365 * 86400_000).toISOString().slice(0, 10);
  const measure = async (label: string, n: number) => {
    const ms: number[] = [];
    let days = 0;
    for (let i = 0; i < n; i++) {
      const t = performance.now();
      const res = await call('GET', `/v1/admin/usage/daily?start=${start}&end=${end}`, admin);
      ms.push(performance.now() - t);
      if (res.status !== 200) throw new Error(`daily: ${res.status}`);
      days = res.body.length;
    }
    const s = summarize(ms);
    console.log(`  ${label.padEnd(26)} n=${s.count} p50 ${fmt(s.p50)} ms  p99 ${fmt(s.p99)} ms  (${days} days)`);
  };
  await measure('raw records (no rollup)', Math.min(requests, 10));
  const r0 = performance.now();
  const rows = await rollUpUsage(ctx.db);
  console.log(`  rollup: ${rows} rows written in ${((performance.now() - r0) / 1000).toFixed(1)} s`);
  await measure('rollup + last two days raw', requests);
}

try {
  if (which === 'run_create' || which === 'all') await runCreate();
  if (which === 'usage_daily' || which === 'all') await usageDaily();
} finally {
  await cleanup.runAll();
}
