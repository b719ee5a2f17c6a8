// CLI benchmark: wall time of `arkloop chat --once "…"` (one process: start, sign-in from the
// stored session, thread + message + run, the streamed answer, exit) against `arkloop serve` on a
// fresh database with the built-in stub model, next to what Node alone costs:
//
//   node -e ''                     bare Node start-up
//   arkloop help                   Node + the command's entry (no client code loaded)
//   arkloop chat --help            + the client modules
//   arkloop chat --once "…"        the whole turn (checked: exit 0, the stub's exact answer)
//
// The variants are interleaved run by run, so load from other work on the machine hits them
// alike. Prints p50/p90/p99/max per variant and PASS/FAIL against the aim (chat --once
// p50 under 0.5 s); writes bench/results/cli-<ts>.json.
//
//   node --import tsx bench/cli.ts [--engine pglite|postgres] [--runs 30] [--warmup 3]
//                                  [--auth session|token] [--app-from build|dist]
//
// Hand-written on purpose, like the other benches: it times whole processes of this command.
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { parseArgs } from 'node:util';
import { summarize, type LatencySummary } from './loadgen.js';
import { Cleanup, REPO_ROOT, buildAppInto, cleanEnv, cleanUpOnExit, createDatabase, freePort, pgReachable, spawnServer, waitReady } from './servers.js';

const DEFAULT_PG_URL = 'postgres://postgres@127.0.0.1:5432/postgres';
const AIM_MS = 500;
const HELP = `usage: node --import tsx bench/cli.ts [options]

  --engine pglite|postgres   database of the server (default pglite)
  --runs N                   measured runs per variant (default 30)
  --warmup N                 unmeasured runs per variant first (default 3)
  --auth session|token       session: \`arkloop login\` first, then the stored session (default);
                             token: ARKLOOP_TOKEN holds an access token
  --app-from build|dist      build: compile src/ into a temp dir (default); dist: the repository's
                             bin/arkloop.js + dist/ as they are
  --help`;

const { values } = parseArgs({
  options: {
    engine: { type: 'string', default: 'pglite' },
    runs: { type: 'string', default: '30' },
    warmup: { type: 'string', default: '3' },
    auth: { type: 'string', default: 'session' },
    'app-from': { type: 'string', default: 'build' },
    help: { type: 'boolean', default: false },
  },
});
if (values.help) {
  process.stdout.write(HELP + '\n');
  process.exit(0);
}
const engine = values.engine === 'postgres' || values.engine === 'pglite' ? values.engine : null;
const runs = Number(values.runs);
const warmup = Number(values.warmup);
const auth = values.auth === 'token' || values.auth === 'session' ? values.auth : null;
const appFrom = values['app-from'] === 'dist' || values['app-from'] === 'build' ? values['app-from'] : null;
if (!engine || !auth || !appFrom || !(runs >= 1) || !(warmup >= 0)) {
  process.stderr.write(`bench: bad options\n${HELP}\n`);
  process.exit(2);
}

const MESSAGE = 'hello from the cli bench';
const EXPECTED = `[stub] ${MESSAGE}\n`;

/** Runs one process to its end; wall time from spawn to exit, in ms. */
function timeProcess(args: string[], env: NodeJS.ProcessEnv, stdin?: string): Promise<{ ms: number; code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const start = performance.now();
    const p = spawn(process.execPath, args, { env, stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    p.stdout.on('data', (c: Buffer) => (stdout += c));
    p.stderr.on('data', (c: Buffer) => (stderr += c));
    p.stdin.end(stdin ?? '');
    p.on('close', (code) => resolve({ ms: performance.now() - start, code, stdout, stderr }));
  });
}

async function main(): Promise<void> {
  const cleanup = new Cleanup();
  const interruption = cleanUpOnExit(cleanup);
  const tmpRoot = mkdtempSync(path.join(os.tmpdir(), 'arkloop-cli-bench-'));
  cleanup.add(`remove ${tmpRoot}`, () => rmSync(tmpRoot, { recursive: true, force: true }));
  try {
    process.stdout.write(`cli bench on ${engine}: ${os.cpus().length} CPUs, load ${os.loadavg()[0].toFixed(2)}, node ${process.version}; ${appFrom === 'build' ? 'building the app…' : 'using dist/'}\n`);
    const entry = appFrom === 'build' ? (await buildAppInto(path.join(tmpRoot, 'build'))).entry : path.join(REPO_ROOT, 'bin', 'arkloop.js');
    const port = await freePort();
    const origin = `http://127.0.0.1:${port}`;
    const env: Record<string, string> = { ARKLOOP_API_ADDR: `127.0.0.1:${port}`, ARKLOOP_DATA_DIR: path.join(tmpRoot, 'data'), ARKLOOP_LOG_LEVEL: 'warn' };
    if (engine === 'postgres') {
      const admin = process.env.ARKLOOP_BENCH_DATABASE_URL || DEFAULT_PG_URL;
      if (!(await pgReachable(admin))) throw new Error(`PostgreSQL at ${admin} is not reachable`);
      const db = await createDatabase(cleanup, admin, `arkloop_bench_cli_${randomBytes(4).toString('hex')}`);
      env.ARKLOOP_DATABASE_URL = db.url;
      env.ARKLOOP_AUTH_JWT_SECRET = randomBytes(48).toString('base64');
      env.ARKLOOP_ENCRYPTION_KEY = randomBytes(32).toString('hex');
    }
    const server = spawnServer('app', [entry, 'serve'], { env: cleanEnv(env), cwd: tmpRoot, origin });
    cleanup.add('stop app', async () => void (await server.stop()));
    await waitReady(server);

    const password = 'bench-password-1';
    const reg = await fetch(`${origin}/v1/auth/register`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ login: 'clibench', password, email: 'clibench@example.com' }),
    });
    if (reg.status !== 201) throw new Error(`register answered ${reg.status}: ${await reg.text()}`);
    const token = ((await reg.json()) as { access_token: string }).access_token;

    const configDir = path.join(tmpRoot, 'config');
    mkdirSync(configDir);
    const cliEnv = cleanEnv({ ARKLOOP_CONFIG_DIR: configDir, ARKLOOP_SERVER: origin, ...(auth === 'token' ? { ARKLOOP_TOKEN: token } : {}) });
    if (auth === 'session') {
      const login = await timeProcess([entry, 'login', '--login', 'clibench', '--password-stdin'], cliEnv, password + '\n');
      if (login.code !== 0) throw new Error(`arkloop login failed: ${login.stderr}`);
    }

    const variants: Array<{ name: string; args: string[]; check?: (r: { code: number | null; stdout: string; stderr: string }) => string | null }> = [
      { name: "node -e ''", args: ['-e', ''] },
      { name: 'arkloop help', args: [entry, 'help'] },
      { name: 'arkloop chat --help', args: [entry, 'chat', '--help'] },
      {
        name: 'arkloop chat --once',
        args: [entry, 'chat', '--once', MESSAGE],
        check: (r) => (r.code !== 0 ? `exit ${r.code}: ${r.stderr.trim()}` : r.stdout !== EXPECTED ? `unexpected answer ${JSON.stringify(r.stdout)}` : null),
      },
    ];
    const samples = variants.map(() => [] as number[]);
    for (let i = 0; i < warmup + runs; i++) {
      for (const [k, v] of variants.entries()) {
        const r = await timeProcess(v.args, cliEnv);
        const problem = v.check ? v.check(r) : r.code === 0 ? null : `exit ${r.code}`;
        if (problem) throw new Error(`${v.name}: ${problem}`);
        if (i >= warmup) samples[k].push(r.ms);
      }
    }

    const results: Record<string, LatencySummary> = {};
    const fmt = (x: number) => x.toFixed(0).padStart(6);
    process.stdout.write(`\nwall time per process, ms (${runs} runs each, auth ${auth}, ${engine})\n${'variant'.padEnd(22)}    p50    p90    p99    max   mean\n`);
    for (const [k, v] of variants.entries()) {
      const s = summarize(samples[k]);
      results[v.name] = s;
      process.stdout.write(`${v.name.padEnd(22)}${fmt(s.p50)} ${fmt(s.p90)} ${fmt(s.p99)} ${fmt(s.max)} ${fmt(s.mean)}\n`);
    }
    const once = results['arkloop chat --once'];
    const bare = results["node -e ''"];
    process.stdout.write(
      `\nat p50: Node start-up is ${((bare.p50 / once.p50) * 100).toFixed(0)}% of chat --once; the rest (client code + the turn on the server) is ` +
        `${(once.p50 - bare.p50).toFixed(0)} ms, of which the turn adds ${(once.p50 - results['arkloop chat --help'].p50).toFixed(0)} ms over chat --help\n` +
        `(the machine's load average is ${os.loadavg()[0].toFixed(2)} on ${os.cpus().length} CPUs: under load every figure, Node's own start-up included, grows)\n`,
    );
    process.stdout.write(`${once.p50 < AIM_MS ? 'PASS' : 'FAIL'}  chat --once p50 ${once.p50.toFixed(0)} ms < ${AIM_MS} ms (aim)\n`);

    const dir = path.join(REPO_ROOT, 'bench', 'results');
    mkdirSync(dir, { recursive: true });
    const file = path.join(dir, `cli-${new Date().toISOString().replace(/[:.]/g, '-')}.json`);
    writeFileSync(file, JSON.stringify({ engine, auth, appFrom, runs, warmup, node: process.version, cpus: os.cpus().length, loadavg: os.loadavg(), results }, null, 2));
    process.stdout.write(`results: ${path.relative(REPO_ROOT, file)}\n`);
  } finally {
    if (!interruption.interrupted) await cleanup.runAll();
  }
}

main().catch((err: Error) => {
  process.stderr.write(`bench: ${err.stack ?? err.message}\n`);
  process.exit(1);
});
