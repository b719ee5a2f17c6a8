// MCP tool-call benchmark: a run whose stub script calls one tool of a real stdio MCP server
// (@modelcontextprotocol/server-everything, `echo`), against `arkloop serve` on a fresh database.
//
//   warm  the server process is already in the pool: N runs one after another.
//   cold  before each run the bench kills the server process (SIGKILL), so the call has to
//         start a new process, initialize the MCP session and then call (tools stay cached,
//         ARKLOOP_MCP_CACHE_TTL_SECONDS is an hour, so discovery is not part of the figure).
//
// For each run: tool.call → tool.result as the events' own timestamps say (ms resolution) and
// the tool.result's duration_ms (the worker's clock around the call). The tool's own work
// (echoing a string) is negligible, so the warm figure is the pool's overhead.
//
//   node --import tsx bench/mcp.ts [--engine pglite|postgres] [--warm-runs 200] [--cold-runs 20]
//
// Hand-written on purpose, like the other benches: it drives one scripted run at a time and reads
// its event stream.
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { request } from 'undici';
import { summarize } from './loadgen.js';
import { newAgent, SseParser, type SseEvent } from './runclient.js';
import { Cleanup, cleanUpOnExit, buildAppInto, cleanEnv, createDatabase, freePort, pgReachable, sleep, spawnServer, waitReady } from './servers.js';

const require = createRequire(import.meta.url);
const EVERYTHING_BIN = path.join(path.dirname(require.resolve('@modelcontextprotocol/server-everything/package.json')), 'dist/index.js');
const DEFAULT_PG_URL = 'postgres://postgres@127.0.0.1:5432/postgres';
const TOOL = 'mcp__bench__echo';

const { values } = parseArgs({
  options: {
    engine: { type: 'string', default: 'pglite' },
    'warm-runs': { type: 'string', default: '200' },
    'cold-runs': { type: 'string', default: '20' },
    help: { type: 'boolean', default: false },
  },
});
if (values.help) {
  process.stdout.write('usage: node --import tsx bench/mcp.ts [--engine pglite|postgres] [--warm-runs 200] [--cold-runs 20]\n');
  process.exit(0);
}
const engine = values.engine === 'postgres' ? 'postgres' : values.engine === 'pglite' ? 'pglite' : null;
const warmRuns = Number(values['warm-runs']);
const coldRuns = Number(values['cold-runs']);
if (!engine || !(warmRuns >= 1) || !(coldRuns >= 1)) {
  process.stderr.write('bench: --engine pglite|postgres, --warm-runs and --cold-runs ≥ 1\n');
  process.exit(2);
}

/** Pids of the server-everything processes whose parent is `parent`. */
function serverPids(parent: number): number[] {
  const out: number[] = [];
  for (const d of readdirSync('/proc')) {
    if (!/^\d+$/.test(d)) continue;
    try {
      const stat = readFileSync(`/proc/${d}/stat`, 'utf8');
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      if (ppid === parent && readFileSync(`/proc/${d}/cmdline`, 'utf8').includes('server-everything')) out.push(Number(d));
    } catch {
      /* gone */
    }
  }
  return out;
}

async function main(): Promise<void> {
  const cleanup = new Cleanup();
  const interruption = cleanUpOnExit(cleanup);
  const tmpRoot = mkdtempSync(path.join(os.tmpdir(), 'arkloop-mcp-bench-'));
  cleanup.add(`remove ${tmpRoot}`, () => rmSync(tmpRoot, { recursive: true, force: true }));
  try {
    process.stdout.write(`mcp bench on ${engine}: ${os.cpus().length} CPUs, node ${process.version}; building the app…\n`);
    const built = await buildAppInto(path.join(tmpRoot, 'build'));
    const port = await freePort();
    const env: Record<string, string> = {
      ARKLOOP_API_ADDR: `127.0.0.1:${port}`,
      ARKLOOP_DATA_DIR: path.join(tmpRoot, 'data'),
      ARKLOOP_LOG_LEVEL: 'warn',
      ARKLOOP_MCP_CACHE_TTL_SECONDS: '3600',
    };
    if (engine === 'postgres') {
      const admin = process.env.ARKLOOP_BENCH_DATABASE_URL || DEFAULT_PG_URL;
      if (!(await pgReachable(admin))) throw new Error(`PostgreSQL at ${admin} is not reachable`);
      const db = await createDatabase(cleanup, admin, `arkloop_bench_mcp_${randomBytes(4).toString('hex')}`);
      env.ARKLOOP_DATABASE_URL = db.url;
      env.ARKLOOP_AUTH_JWT_SECRET = randomBytes(48).toString('base64');
      env.ARKLOOP_ENCRYPTION_KEY = randomBytes(32).toString('hex');
    }
    const server = spawnServer('app', [built.entry, 'serve'], { env: cleanEnv(env), cwd: tmpRoot, origin: `http://127.0.0.1:${port}` });
    cleanup.add('stop app', async () => void (await server.stop()));
    await waitReady(server);
    const agent = newAgent();
    cleanup.add('close agent', () => agent.close());

    const call = async (method: string, p: string, token: string | null, body?: unknown): Promise<Record<string, unknown>> => {
      const res = await request(server.origin + p, {
        method: method as 'POST',
        headers: { 'content-type': 'application/json', ...(token ? { authorization: `Bearer ${token}` } : {}) },
        body: body === undefined ? undefined : JSON.stringify(body),
        dispatcher: agent,
      });
      const text = await res.body.text();
      if (res.statusCode >= 300) throw new Error(`${method} ${p} answered ${res.statusCode}: ${text.slice(0, 300)}`);
      return text ? (JSON.parse(text) as Record<string, unknown>) : {};
    };
    // The first user is the platform admin, who alone may configure stdio servers.
    const reg = await call('POST', '/v1/auth/register', null, { login: 'benchadmin', password: 'bench-password-1', email: 'benchadmin@example.com' });
    const token = String(reg.access_token);
    await call('POST', '/v1/mcp-configs', token, { name: 'bench', transport: 'stdio', command: process.execPath, args: [EVERYTHING_BIN, 'stdio'] });
    const script = JSON.stringify({ stub: { steps: [{ tool_call: { name: TOOL, arguments: { message: 'hello' } } }, { text: 'done' }] } });

    /** One scripted run; the tool.call → tool.result figures. */
    const oneRun = async (): Promise<{ eventsMs: number; durationMs: number }> => {
      const th = await call('POST', '/v1/threads', token, {});
      await call('POST', `/v1/threads/${th.id}/messages`, token, { content: script });
      const run = await call('POST', `/v1/threads/${th.id}/runs`, token, {});
      const res = await request(`${server.origin}/v1/runs/${run.run_id}/events`, { headers: { authorization: `Bearer ${token}` }, dispatcher: agent });
      const events: SseEvent[] = [];
      let done = false;
      const parser = new SseParser((e) => {
        events.push(e);
        if (e.type === 'run.completed' || e.type === 'run.failed' || e.type === 'run.cancelled') done = true;
      });
      for await (const chunk of res.body) {
        parser.push(chunk as Uint8Array);
        if (done) break;
      }
      const toolCall = events.find((e) => e.type === 'tool.call');
      const result = events.find((e) => e.type === 'tool.result');
      if (!toolCall || !result || result.data.error) throw new Error(`no successful tool call: ${JSON.stringify(events.map((e) => [e.type, e.data]).slice(-4))}`);
      if (events.at(-1)?.type !== 'run.completed') throw new Error(`run ended ${events.at(-1)?.type}`);
      return { eventsMs: result.ts - toolCall.ts, durationMs: Number(result.data.duration_ms) };
    };

    await oneRun(); // discovery and the first process start
    const warm: Array<{ eventsMs: number; durationMs: number }> = [];
    for (let i = 0; i < warmRuns; i++) warm.push(await oneRun());
    const cold: Array<{ eventsMs: number; durationMs: number }> = [];
    for (let i = 0; i < coldRuns; i++) {
      const pids = serverPids(server.proc.pid!);
      if (pids.length !== 1) throw new Error(`expected one server-everything process, found ${pids.length}`);
      process.kill(pids[0], 'SIGKILL');
      for (let k = 0; k < 200 && serverPids(server.proc.pid!).includes(pids[0]); k++) await sleep(10);
      await sleep(50); // let the pool see the exit
      cold.push(await oneRun());
    }

    const line = (label: string, xs: Array<{ eventsMs: number; durationMs: number }>) => {
      const ev = summarize(xs.map((x) => x.eventsMs));
      const du = summarize(xs.map((x) => x.durationMs));
      return `${label.padEnd(5)} ${String(xs.length).padStart(4)} runs  tool.call → tool.result (event ts) p50 ${ev.p50} p99 ${ev.p99} ms;  tool.result duration_ms p50 ${du.p50} p99 ${du.p99} ms`;
    };
    process.stdout.write(`\nMCP stdio tool call (${TOOL}, server-everything), ${engine}\n${line('warm', warm)}\n${line('cold', cold)}\n`);
    const warmP50 = summarize(warm.map((x) => x.durationMs)).p50;
    process.stdout.write(`${warmP50 <= 5 ? 'PASS' : 'FAIL'}  warm duration_ms p50 ${warmP50} ms ≤ 5 ms (aim)\n`);
  } finally {
    if (!interruption.interrupted) await cleanup.runAll();
  }
}

main().catch((err: Error) => {
  process.stderr.write(`bench: ${err.stack ?? err.message}\n`);
  process.exit(1);
});
