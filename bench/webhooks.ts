// Webhook benchmarks, in process (the app and a worker built as `arkloop serve` builds them;
// API calls through Fastify's inject, deliveries over real HTTP to local receivers):
//
//   fanout         --runs completed runs, each delivered (`run.completed`) to 3 endpoints of
//                  the account: one receiver answering after 2 s, one answering 500 (retried),
//                  one healthy. Reports the healthy receiver's deliveries/s and its delay from
//                  the run's end (RunDetail.completed_at) to the delivery's arrival, p50/p99/max
//                  (aim p99 ≤ 1 s), with what the misbehaving receivers got meanwhile.
//   thread_create  POST /v1/threads at --in-flight callers in alternating rounds: an account with
//                  no endpoint, one whose endpoint does not subscribe to thread.created (the
//                  cached answer costs no query), and one whose endpoint does (the outbox
//                  transaction). p50/p99 per variant.
//
//   node --import tsx bench/webhooks.ts [fanout|thread_create|all] [--engine postgres|pglite]
//        [--runs 1000] [--rate 50] [--in-flight 20] [--requests 2000]
//
// Hand-written: fixed scenarios with their own receivers; nothing a load library provides.
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { performance } from 'node:perf_hooks';
import { parseArgs } from 'node:util';
import { startInProcessApp } from './in-process.js';
import { summarize } from './loadgen.js';
import { Cleanup, cleanUpOnExit } from './servers.js';

const { values: args, positionals } = parseArgs({
  allowPositionals: true,
  options: {
    engine: { type: 'string', default: 'postgres' },
    runs: { type: 'string', default: '1000' },
    'in-flight': { type: 'string', default: '20' },
    requests: { type: 'string', default: '2000' },
    rate: { type: 'string', default: '50' },
  },
});
const which = positionals[0] ?? 'all';
const cleanup = new Cleanup();
cleanUpOnExit(cleanup);

async function setup(env: Record<string, string> = {}) {
  const { ctx, call, register } = await startInProcessApp(args.engine!, cleanup, 'arkloop_bench_webhooks', { env, worker: true });
  await ctx.db.insertInto('platform_settings').values({ key: 'security.ssrf_allow_private', value: 'true' }).execute();
  await ctx.settings.invalidate();
  const endpoint = async (token: string, url: string, events: string[]) => {
    const res = await call('POST', '/v1/webhook-endpoints', token, { url, events });
    if (res.status !== 201) throw new Error(`endpoint: ${res.status} ${JSON.stringify(res.body)}`);
  };
  return { ctx, call, register, endpoint };
}

interface Receiver {
  url: string;
  arrivals: Array<{ at: number; body: any }>;
  inFlight: number;
  maxInFlight: number;
}

async function receiver(answer: (res: http.ServerResponse) => void): Promise<Receiver> {
  const r: Receiver = { url: '', arrivals: [], inFlight: 0, maxInFlight: 0 };
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      r.arrivals.push({ at: Date.now(), body: JSON.parse(Buffer.concat(chunks).toString('utf8')) });
      r.inFlight++;
      r.maxInFlight = Math.max(r.maxInFlight, r.inFlight);
      res.on('close', () => r.inFlight--);
      answer(res);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  cleanup.add('close receiver', async () => {
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  });
  r.url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/hook`;
  return r;
}

const fmt = (ms: number) => ms.toFixed(1);

async function fanout(): Promise<void> {
  const runs = Number(args.runs);
  const inFlight = Number(args['in-flight']);
  const { call, register, endpoint } = await setup({ ARKLOOP_WORKER_CONCURRENCY: '16' });
  await register('benchadmin');
  const user = await register('benchuser');
  const slow = await receiver((res) => setTimeout(() => res.writeHead(200).end('ok'), 2000));
  const failing = await receiver((res) => res.writeHead(500).end('no'));
  const healthy = await receiver((res) => res.writeHead(200).end('ok'));
  for (const r of [slow, failing, healthy]) await endpoint(user, r.url, ['run.completed']);

  // Runs are started at --rate per second (0: as fast as the callers go): the question is whether
  // the misbehaving receivers delay the healthy one, not how fast one process creates runs.
  const rate = Number(args.rate);
  const t0 = Date.now();
  let next = 0;
  const creator = async () => {
    while (next < runs) {
      const i = next++;
      const due = rate > 0 ? t0 + (i * 1000) / rate : 0;
      if (due > Date.now()) await new Promise((r) => setTimeout(r, due - Date.now()));
      const th = await call('POST', '/v1/threads', user, {});
      await call('POST', `/v1/threads/${th.body.id}/messages`, user, { content: 'hello' });
      const run = await call('POST', `/v1/threads/${th.body.id}/runs`, user, {});
      if (run.status !== 201) throw new Error(`run: ${run.status} ${JSON.stringify(run.body)}`);
    }
  };
  await Promise.all(Array.from({ length: inFlight }, creator));
  const createdS = (Date.now() - t0) / 1000;
  const deadline = Date.now() + 10 * 60_000;
  while (healthy.arrivals.length < runs && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
  const delays = healthy.arrivals.map((a) => a.at - Date.parse(a.body.data.completed_at));
  const ends = healthy.arrivals.map((a) => Date.parse(a.body.data.completed_at));
  const span = (Math.max(...healthy.arrivals.map((a) => a.at)) - Math.min(...ends)) / 1000;
  const s = summarize(delays);
  console.log(`fanout (${args.engine}): ${runs} runs started by ${inFlight} callers in ${createdS.toFixed(1)} s (--rate ${rate || 'unpaced'}); 3 endpoints (2 s, 500, healthy)`);
  console.log(`  healthy: ${healthy.arrivals.length} deliveries in ${span.toFixed(1)} s = ${(healthy.arrivals.length / span).toFixed(1)}/s;` +
    ` delay from run end p50 ${fmt(s.p50)} ms  p99 ${fmt(s.p99)} ms  max ${fmt(s.max)} ms  ${s.p99 <= 1000 ? 'PASS' : 'FAIL'} (aim p99 ≤ 1000 ms)`);
  if (process.env.BENCH_DEBUG) {
    const worst = healthy.arrivals.map((a) => ({ at: a.at - t0, delay: a.at - Date.parse(a.body.data.completed_at) })).sort((a, b) => b.delay - a.delay).slice(0, 20);
    console.log(JSON.stringify(worst));
    // The healthy receiver's delay by second of arrival: a queue that builds up, or a stall.
    const bySecond = new Map<number, number[]>();
    for (const a of healthy.arrivals) {
      const sec = Math.floor((a.at - t0) / 1000);
      bySecond.set(sec, [...(bySecond.get(sec) ?? []), a.at - Date.parse(a.body.data.completed_at)]);
    }
    console.log([...bySecond].map(([sec, d]) => `${sec}s:${d.length}@${Math.max(...d)}`).join(' '));
  }
  console.log(`  meanwhile: slow receiver ${slow.arrivals.length} requests (at most ${slow.maxInFlight} at once), failing receiver ${failing.arrivals.length} requests`);
}

async function threadCreate(): Promise<void> {
  const inFlight = Number(args['in-flight']);
  const requests = Number(args.requests);
  const { call, register, endpoint } = await setup();
  await register('benchadmin');
  const healthy = await receiver((res) => res.writeHead(200).end('ok'));
  const users = { none: await register('benchnone'), other: await register('benchother'), subscribed: await register('benchsub') };
  await endpoint(users.other, healthy.url, ['run.completed']);
  await endpoint(users.subscribed, healthy.url, ['thread.created']);
  const latencies: Record<keyof typeof users, number[]> = { none: [], other: [], subscribed: [] };
  const names = Object.keys(users) as Array<keyof typeof users>;
  const per = Math.max(inFlight, Math.floor(requests / 8));
  for (let round = 0; round < 8 * names.length; round++) {
    const name = names[round % names.length];
    let n = 0;
    const caller = async () => {
      while (n < per) {
        n++;
        const t = performance.now();
        const res = await call('POST', '/v1/threads', users[name], { title: 'bench' });
        if (res.status !== 201) throw new Error(`thread: ${res.status}`);
        if (round >= names.length) latencies[name].push(performance.now() - t); // the first round of each is warm-up
      }
    };
    await Promise.all(Array.from({ length: inFlight }, caller));
  }
  console.log(`thread_create (${args.engine}, ${inFlight} in flight, ${per} per round, 7 measured rounds per variant)`);
  const base = summarize(latencies.none);
  for (const name of names) {
    const s = summarize(latencies[name]);
    console.log(`  ${name.padEnd(11)} n=${s.count} p50 ${s.p50.toFixed(2)} ms  p99 ${s.p99.toFixed(2)} ms  p50 ratio ${(s.p50 / base.p50).toFixed(3)}`);
  }
}

try {
  if (which === 'fanout' || which === 'all') await fanout();
  if (which === 'thread_create' || which === 'all') await threadCreate();
} finally {
  await cleanup.runAll();
}
