// IP-rule enforcement and flag evaluation on the hot path (issue 10), in process like
// bench/billing.ts (the app built as the server builds it, requests through Fastify's inject):
//
//   thread CRUD cycle  POST /v1/threads → GET → PATCH → DELETE at K in flight, in alternating
//                      rounds: the account with no IP rules and no flags, versus 50 IP rules
//                      (IPv4 and IPv6, allow- and blocklist; the client matches the last
//                      allowlist rule) and 10 flags (5 with an override for the account).
//                      A warm-up round of each, then A B B A A B B A. p50/p99 per variant, cycles/s,
//                      and the ratios (aim: ≤ 5 % slower).
//   micro              the compiled matcher of 50 rules on 100,000 distinct client addresses
//                      (no verdict memo hit), and isFeatureEnabled with 10 flags cached.
//
//   node --import tsx bench/ip-flags.ts [--engine postgres|pglite] [--cycles 4000] [--in-flight 20]
//
// Hand-written: a fixed A/B scenario whose setup is SQL, not load.
import { performance } from 'node:perf_hooks';
import { parseArgs } from 'node:util';
import { newId } from '../src/lib/ids.js';
import { IpMatcher, parseCidr, type IpRuleType } from '../src/modules/ip-rules/cidr.js';
import { ipRulesChanged } from '../src/modules/ip-rules/enforce.js';
import { flagsChanged } from '../src/modules/feature-flags/flags.js';
import { isFeatureEnabled } from '../src/modules/feature-flags/evaluate.js';
import { summarize } from './loadgen.js';
import { Cleanup, cleanUpOnExit } from './servers.js';
import { startInProcessApp } from './in-process.js';

const { values: args } = parseArgs({
  options: {
    engine: { type: 'string', default: 'postgres' },
    cycles: { type: 'string', default: '4000' },
    'in-flight': { type: 'string', default: '20' },
  },
});
const cleanup = new Cleanup();
cleanUpOnExit(cleanup);
const fmt = (ms: number) => ms.toFixed(2);

/** 50 rules: 24 blocklist and 26 allowlist, IPv4 and IPv6; 127.0.0.1 (inject's address) matches only the last. */
function fiftyRules(): Array<{ type: IpRuleType; cidr: string }> {
  const rules: Array<{ type: IpRuleType; cidr: string }> = [];
  for (let i = 0; i < 12; i++) rules.push({ type: 'blocklist', cidr: `203.0.${i}.0/24` }, { type: 'blocklist', cidr: `2001:db8:${i.toString(16)}::/48` });
  for (let i = 0; i < 12; i++) rules.push({ type: 'allowlist', cidr: `10.${i}.0.0/16` }, { type: 'allowlist', cidr: `2001:db8:f${i.toString(16)}::/48` });
  rules.push({ type: 'allowlist', cidr: '192.168.0.0/16' }, { type: 'allowlist', cidr: '127.0.0.0/8' });
  return rules.map((r) => ({ ...r, cidr: parseCidr(r.cidr)!.text }));
}

async function main(): Promise<void> {
  const { app, ctx, call, register } = await startInProcessApp(args.engine!, cleanup, 'arkloop_bench_ipflags');
  await register('benchadmin');
  const user = await register('benchuser');
  const org = (await call('GET', '/v1/me', user)).body.org_id as string;
  const rules = fiftyRules();
  const flagKeys = ['feature.byok_enabled', 'feature.mcp_remote_enabled', ...Array.from({ length: 8 }, (_, i) => `bench.flag${i}`)];

  const variants: Record<'none' | 'configured', () => Promise<void>> = {
    none: async () => {
      await ctx.db.deleteFrom('ip_rules').where('org_id', '=', org).execute();
      await ctx.db.deleteFrom('feature_flags').execute();
      await ipRulesChanged(ctx, org);
      await flagsChanged(ctx, null);
    },
    configured: async () => {
      await variants.none();
      await ctx.db.insertInto('ip_rules').values(rules.map((r) => ({ id: newId(), org_id: org, type: r.type, cidr: r.cidr, note: null }))).execute();
      await ctx.db.insertInto('feature_flags').values(flagKeys.map((key, i) => ({ id: newId(), key, description: null, default_value: i % 2 === 0 }))).execute();
      await ctx.db.insertInto('feature_flag_overrides').values(flagKeys.slice(0, 5).map((flag_key) => ({ flag_key, org_id: org, enabled: true }))).execute();
      await ipRulesChanged(ctx, org);
      await flagsChanged(ctx, null);
    },
  };
  // Sanity: with the rules in place a listed address is refused, 127.0.0.1 (inject's) is not.
  await variants.configured();
  const probe = await app.inject({ method: 'GET', url: '/v1/threads', headers: { authorization: `Bearer ${user}` }, remoteAddress: '203.0.5.9' });
  if (probe.statusCode !== 403 || JSON.parse(probe.body).code !== 'policy.ip_blocked') throw new Error(`rules not enforced: ${probe.statusCode} ${probe.body}`);
  await variants.none();

  const total = Number(args.cycles);
  const inFlight = Number(args['in-flight']);
  // A warm-up round of each, then A B B A A B B A: a drift over the run (tables growing) weighs on both alike.
  const order = ['none', 'configured', 'none', 'configured', 'configured', 'none', 'none', 'configured', 'configured', 'none'] as const;
  const perRound = Math.max(inFlight, Math.floor(total / order.length));
  const cycles: Record<keyof typeof variants, number[]> = { none: [], configured: [] };
  const rates: Record<keyof typeof variants, number[]> = { none: [], configured: [] };
  /** Process CPU (the app and this driver share it) per cycle, µs. */
  const cpu: Record<keyof typeof variants, number[]> = { none: [], configured: [] };
  for (let r = 0; r < order.length; r++) {
    const name = order[r];
    await variants[name]();
    let next = 0;
    const t0 = performance.now();
    const c0 = process.cpuUsage();
    const worker = async () => {
      while (next < perRound) {
        next++;
        const cs = performance.now();
        const created = await call('POST', '/v1/threads', user, { title: 'bench' });
        if (created.status !== 201) throw new Error(`create: ${created.status} ${JSON.stringify(created.body)}`);
        const path = `/v1/threads/${created.body.id}`;
        if ((await call('GET', path, user)).status !== 200) throw new Error('get');
        if ((await call('PATCH', path, user, { title: 'renamed' })).status !== 200) throw new Error('patch');
        if ((await call('DELETE', path, user)).status !== 204) throw new Error('delete');
        if (r > 1) cycles[name].push(performance.now() - cs);
      }
    };
    await Promise.all(Array.from({ length: inFlight }, worker));
    if (r > 1) {
      rates[name].push(perRound / ((performance.now() - t0) / 1000));
      const used = process.cpuUsage(c0);
      cpu[name].push((used.user + used.system) / perRound);
    }
  }
  console.log(`thread CRUD cycle (${args.engine}, ${inFlight} in flight, ${perRound} cycles per round, 4 measured rounds per variant)`);
  const base = summarize(cycles.none);
  const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;
  const [baseRate, baseCpu] = [mean(rates.none), mean(cpu.none)];
  for (const name of ['none', 'configured'] as const) {
    const s = summarize(cycles[name]);
    const [rate, cpuPerCycle] = [mean(rates[name]), mean(cpu[name])];
    console.log(
      `  ${(name === 'none' ? 'no rules/flags' : '50 rules, 10 flags').padEnd(20)} n=${s.count} cycle p50 ${fmt(s.p50)} ms  p99 ${fmt(s.p99)} ms  ${rate.toFixed(0)} cycles/s  CPU ${(cpuPerCycle / 1000).toFixed(2)} ms/cycle` +
        `  | ratios: p50 ${(s.p50 / base.p50).toFixed(3)}  cycles/s ${(rate / baseRate).toFixed(3)}  CPU/cycle ${(cpuPerCycle / baseCpu).toFixed(3)}`,
    );
  }

  // The parts alone: what a request pays when its verdict is not memoised, and a flag read.
  const matcher = new IpMatcher(rules);
  const addrs = Array.from({ length: 100_000 }, (_, i) => (i % 4 === 3 ? `2001:db8:f1::${(i & 0xffff).toString(16)}` : `10.${i % 12}.${(i >> 8) & 255}.${i & 255}`));
  let m0 = performance.now();
  for (const a of addrs) matcher.check(a);
  const perCheck = ((performance.now() - m0) * 1000) / addrs.length;
  m0 = performance.now();
  for (let i = 0; i < 100_000; i++) await isFeatureEnabled(ctx, org, i % 2 ? 'feature.byok_enabled' : 'bench.flag7');
  const perFlag = ((performance.now() - m0) * 1000) / 100_000;
  console.log(`  micro: IpMatcher.check, 50 rules, distinct addresses: ${perCheck.toFixed(2)} µs; isFeatureEnabled (cached, 10 flags): ${perFlag.toFixed(2)} µs`);
}

try {
  await main();
} finally {
  await cleanup.runAll();
}
