// Process and resource plumbing for the thread CRUD benchmark: builds the app into a private
// directory, spawns the app and the floor as child processes on free loopback ports, creates
// and drops the PostgreSQL databases they use, samples CPU from /proc, and guarantees that
// every child, database and temp directory is released, also on failure and Ctrl-C.
//
// Hand-written on purpose: it is glue specific to this repository's CLI, configuration and
// migrations; there is nothing generic to reuse.
import { spawn, type ChildProcess } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, readFileSync, symlinkSync } from 'node:fs';
import { createServer } from 'node:net';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import pg from 'pg';

export const REPO_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');

// ---------------------------------------------------------------------------------------------
// Cleanup registry: every resource registers its release the moment it exists.

type Task = { name: string; fn: () => Promise<void> | void };

export class Cleanup {
  private tasks: Task[] = [];
  private running: Promise<void> | null = null;

  /** Registers a release; the returned function runs it now (once) and unregisters it. */
  add(name: string, fn: () => Promise<void> | void): () => Promise<void> {
    const task: Task = { name, fn };
    this.tasks.push(task);
    return async () => {
      const i = this.tasks.indexOf(task);
      if (i < 0) return;
      this.tasks.splice(i, 1);
      await runTask(task);
    };
  }

  /** Releases everything still registered, newest first. */
  runAll(): Promise<void> {
    return (this.running ??= (async () => {
      while (this.tasks.length) await runTask(this.tasks.pop()!);
    })());
  }
}

async function runTask(task: Task): Promise<void> {
  try {
    await task.fn();
  } catch (err) {
    process.stderr.write(`bench: cleanup "${task.name}" failed: ${(err as Error).message}\n`);
  }
}

// ---------------------------------------------------------------------------------------------
// Small helpers.

export function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.unref();
    s.on('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => resolve(port));
    });
  });
}

/** The parent's environment without any ARKLOOP_* variable, so the shell cannot leak settings in. */
export function cleanEnv(extra: Record<string, string>): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) if (!k.startsWith('ARKLOOP_') && !k.startsWith('BENCH_FLOOR_')) env[k] = v;
  return { ...env, ...extra };
}

// ---------------------------------------------------------------------------------------------
// Child processes.

export interface Server {
  name: string;
  origin: string;
  proc: ChildProcess;
  /** Last output lines (stdout+stderr), for diagnosis. */
  tail(): string;
  /** Output lines seen so far (with ARKLOOP_LOG_LEVEL=warn, each is a warning or an error). */
  lines(): number;
  /** SIGTERM, then SIGKILL after `graceMs`; resolves with the exit code. */
  stop(graceMs?: number): Promise<number | null>;
}

export function spawnServer(name: string, args: string[], opts: { env: NodeJS.ProcessEnv; cwd: string; origin: string }): Server {
  const proc = spawn(process.execPath, args, { env: opts.env, cwd: opts.cwd, stdio: ['ignore', 'pipe', 'pipe'] });
  let buf = '';
  let count = 0;
  const onData = (chunk: Buffer) => {
    const s = chunk.toString('utf8');
    for (let i = 0; i < s.length; i++) if (s.charCodeAt(i) === 10) count++;
    buf = (buf + s).slice(-16_384);
  };
  proc.stdout!.on('data', onData);
  proc.stderr!.on('data', onData);
  proc.on('error', (err) => onData(Buffer.from(`spawn error: ${err.message}\n`)));
  const exited = new Promise<number | null>((resolve) => {
    if (proc.exitCode !== null) resolve(proc.exitCode);
    proc.once('exit', (code, signal) => resolve(code ?? (signal ? 128 : null)));
  });
  return {
    name,
    origin: opts.origin,
    proc,
    tail: () => buf.split('\n').slice(-25).join('\n'),
    lines: () => count,
    async stop(graceMs = 15_000) {
      if (proc.exitCode === null && proc.signalCode === null) {
        proc.kill('SIGTERM');
        const t = setTimeout(() => proc.kill('SIGKILL'), graceMs);
        const code = await exited;
        clearTimeout(t);
        return code;
      }
      return exited;
    },
  };
}

/** Polls `${origin}${probe}` (/readyz) until it answers 200; fails early when the child exits. */
export async function waitReady(server: Server, timeoutMs = 90_000, probe = '/readyz'): Promise<void> {
  const start = Date.now();
  while (Date.now() - start < timeoutMs) {
    if (server.proc.exitCode !== null || server.proc.signalCode !== null) {
      throw new Error(`${server.name} exited (${server.proc.exitCode ?? server.proc.signalCode}) before it was ready:\n${server.tail()}`);
    }
    try {
      const res = await fetch(`${server.origin}${probe}`, { signal: AbortSignal.timeout(2_000) });
      await res.arrayBuffer();
      if (res.status === 200) return;
    } catch {
      /* not listening yet */
    }
    await sleep(150);
  }
  throw new Error(`${server.name} did not become ready within ${timeoutMs / 1000} s:\n${server.tail()}`);
}

// ---------------------------------------------------------------------------------------------
// The app, compiled from the current src/ into a private directory, so the bench measures the
// code in the working tree without touching the shared dist/. Layout mirrors the repository
// (bin/, dist/, migrations/, node_modules/, package.json) so bin/arkloop.js and the migrator's
// relative paths resolve exactly as in a checkout.

function run(cmd: string, args: string[], cwd: string): Promise<{ code: number | null; text: string }> {
  return new Promise((resolve) => {
    const p = spawn(cmd, args, { cwd, stdio: ['ignore', 'pipe', 'pipe'] });
    let text = '';
    p.stdout.on('data', (c: Buffer) => (text += c.toString()));
    p.stderr.on('data', (c: Buffer) => (text += c.toString()));
    p.on('error', (err) => (text += err.message));
    p.on('close', (code) => resolve({ code, text }));
  });
}

/**
 * Compiles the app into `root`: the working tree's src/ by default, or, with `ref`, the
 * committed tree of that git revision (src/, bin/, migrations/, tsconfig.json, package.json
 * exported with `git archive`), so a measurement can name exactly what it measured.
 */
export async function buildAppInto(root: string, ref: string | null = null): Promise<{ entry: string; warnings: string; revision: string | null }> {
  mkdirSync(path.join(root, 'bin'), { recursive: true });
  let revision: string | null = null;
  let project = REPO_ROOT;
  if (ref) {
    const rev = await run('git', ['rev-parse', '--verify', `${ref}^{commit}`], REPO_ROOT);
    if (rev.code !== 0) throw new Error(`--app-ref ${ref}: ${rev.text.trim()}`);
    revision = rev.text.trim();
    const tarFile = path.join(root, 'src.tar');
    const arch = await run('git', ['archive', '--format=tar', '-o', tarFile, revision, 'src', 'bin', 'migrations', 'tsconfig.json', 'package.json'], REPO_ROOT);
    if (arch.code !== 0) throw new Error(`git archive ${ref} failed: ${arch.text.trim()}`);
    const untar = await run('tar', ['-xf', tarFile, '-C', root], root);
    if (untar.code !== 0) throw new Error(`extracting ${ref} failed: ${untar.text.trim()}`);
    project = root;
  } else {
    copyFileSync(path.join(REPO_ROOT, 'package.json'), path.join(root, 'package.json'));
    copyFileSync(path.join(REPO_ROOT, 'bin', 'arkloop.js'), path.join(root, 'bin', 'arkloop.js'));
    symlinkSync(path.join(REPO_ROOT, 'migrations'), path.join(root, 'migrations'), 'dir');
  }
  // Built-in personas (src/modules/personas/builtin.ts reads <root>/personas/): needed by runs;
  // the web console (src/http/console.ts serves <root>/web/): needed at start.
  for (const dir of ['personas', 'web']) {
    if (!existsSync(path.join(root, dir)) && existsSync(path.join(REPO_ROOT, dir))) {
      symlinkSync(path.join(REPO_ROOT, dir), path.join(root, dir), 'dir');
    }
  }
  symlinkSync(path.join(REPO_ROOT, 'node_modules'), path.join(root, 'node_modules'), 'dir');
  const outDir = path.join(root, 'dist');
  const tsc = path.join(REPO_ROOT, 'node_modules', 'typescript', 'bin', 'tsc');
  const args = [tsc, '-p', path.join(project, 'tsconfig.json'), '--outDir', outDir, '--tsBuildInfoFile', path.join(root, 'tsbuildinfo')];
  const out = await run(process.execPath, args, project);
  // tsc emits even with type errors (noEmitOnError is off); a half-edited file elsewhere in
  // the tree should not stop the bench, but it is reported.
  const entryTarget = readFileSync(path.join(root, 'bin', 'arkloop.js'), 'utf8').match(/['"]\.\.\/dist\/([^'"]+)['"]/)?.[1];
  if (!entryTarget || !existsSync(path.join(outDir, entryTarget))) {
    throw new Error(`building the app failed (tsc exit ${out.code}):\n${out.text.slice(0, 4000)}`);
  }
  return { entry: path.join(root, 'bin', 'arkloop.js'), warnings: out.code === 0 ? '' : out.text.trim(), revision };
}

// ---------------------------------------------------------------------------------------------
// PostgreSQL databases.

export async function pgReachable(url: string): Promise<boolean> {
  const c = new pg.Client({ connectionString: url, connectionTimeoutMillis: 2_000 });
  c.on('error', () => undefined);
  try {
    await c.connect();
    await c.query('SELECT 1');
    return true;
  } catch {
    return false;
  } finally {
    await c.end().catch(() => undefined);
  }
}

async function adminQuery(adminUrl: string, text: string): Promise<void> {
  const c = new pg.Client({ connectionString: adminUrl, connectionTimeoutMillis: 5_000 });
  c.on('error', () => undefined);
  await c.connect();
  try {
    await c.query(text);
  } finally {
    await c.end().catch(() => undefined);
  }
}

/** Creates a fresh database and registers its DROP; returns its URL. */
export async function createDatabase(cleanup: Cleanup, adminUrl: string, name: string): Promise<{ url: string; drop: () => Promise<void> }> {
  if (!/^[a-z_][a-z0-9_]{0,62}$/.test(name)) throw new Error(`bad database name ${name}`);
  // Register the drop first: a CREATE interrupted half-way is still cleaned.
  const drop = cleanup.add(`drop database ${name}`, () => adminQuery(adminUrl, `DROP DATABASE IF EXISTS ${name} WITH (FORCE)`));
  await adminQuery(adminUrl, `CREATE DATABASE ${name}`);
  const u = new URL(adminUrl);
  u.pathname = '/' + name;
  return { url: u.toString(), drop };
}

// ---------------------------------------------------------------------------------------------
// CPU accounting from /proc (Linux); null elsewhere.

const CLK_TCK = 100; // USER_HZ, fixed at 100 on Linux for /proc/*/stat

/** CPU seconds (user+system) used so far by a process. */
export function processCpuSeconds(pid: number | undefined): number | null {
  if (!pid) return null;
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    // After "pid (comm) ", field 0 is state; utime and stime are fields 11 and 12.
    return (Number(fields[11]) + Number(fields[12])) / CLK_TCK;
  } catch {
    return null;
  }
}

/** Host-wide CPU counters: busy and total jiffies over all cores. */
export function hostCpu(): { busy: number; total: number } | null {
  try {
    const line = readFileSync('/proc/stat', 'utf8').split('\n')[0];
    const v = line.trim().split(/\s+/).slice(1).map(Number);
    const total = v.slice(0, 8).reduce((a, b) => a + b, 0);
    const idle = v[3] + (v[4] ?? 0);
    return { busy: total - idle, total };
  } catch {
    return null;
  }
}

/** PIDs of the PostgreSQL backends connected to `dbName` (same host only; [] when unknown). */
export async function backendPids(adminUrl: string, dbName: string): Promise<number[]> {
  const c = new pg.Client({ connectionString: adminUrl, connectionTimeoutMillis: 2_000 });
  c.on('error', () => undefined);
  try {
    await c.connect();
    const r = await c.query<{ pid: number }>('SELECT pid FROM pg_stat_activity WHERE datname = $1', [dbName]);
    return r.rows.map((x) => x.pid);
  } catch {
    return [];
  } finally {
    await c.end().catch(() => undefined);
  }
}

/** CPU seconds of PostgreSQL backends between two snapshots (a backend new in `after` counts whole). */
export function backendsCpuDelta(before: Map<number, number>, after: Map<number, number>): number {
  let sum = 0;
  for (const [pid, s] of after) sum += s - (before.get(pid) ?? 0);
  return sum;
}

export function snapshotCpu(pids: number[]): Map<number, number> {
  const m = new Map<number, number>();
  for (const pid of pids) {
    // Only a local postgres process: a server in another host or PID namespace has other pids.
    let comm = '';
    try {
      comm = readFileSync(`/proc/${pid}/cmdline`, 'utf8');
    } catch {
      continue;
    }
    if (!comm.startsWith('postgres')) continue;
    const s = processCpuSeconds(pid);
    if (s !== null) m.set(pid, s);
  }
  return m;
}

export interface DbStats {
  xact_commit: number;
  xact_rollback: number;
  tup_returned: number;
  tup_fetched: number;
  tup_inserted: number;
  tup_updated: number;
  tup_deleted: number;
}

/** Cumulative counters of one database (PostgreSQL flushes them lazily, about once a second). */
export async function dbStats(adminUrl: string, dbName: string): Promise<DbStats | null> {
  const c = new pg.Client({ connectionString: adminUrl, connectionTimeoutMillis: 2_000 });
  c.on('error', () => undefined);
  try {
    await c.connect();
    const r = await c.query(
      `SELECT xact_commit, xact_rollback, tup_returned, tup_fetched, tup_inserted, tup_updated, tup_deleted
         FROM pg_stat_database WHERE datname = $1`,
      [dbName],
    );
    if (!r.rows[0]) return null;
    const row = r.rows[0] as Record<string, string | number>;
    return Object.fromEntries(Object.entries(row).map(([k, v]) => [k, Number(v)])) as unknown as DbStats;
  } catch {
    return null;
  } finally {
    await c.end().catch(() => undefined);
  }
}

/**
 * Signals and crashes stop the servers, drop the databases and remove the temp dirs before
 * the process exits; a closed stdout (e.g. `| head`) must not kill a run before it cleaned up.
 */
export function cleanUpOnExit(cleanup: Cleanup): { readonly interrupted: boolean } {
  const state = { interrupted: false };
  const onSignal = (sig: NodeJS.Signals) => {
    if (state.interrupted) return;
    state.interrupted = true;
    process.stderr.write(`\nbench: ${sig} — stopping servers, dropping databases, removing temp dirs…\n`);
    cleanup.runAll().finally(() => process.exit(130));
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  process.on('SIGHUP', onSignal);
  process.stdout.on('error', () => undefined);
  process.on('uncaughtException', (err) => {
    process.stderr.write(`bench: ${err.stack ?? err.message}\n`);
    if (state.interrupted) return;
    state.interrupted = true;
    cleanup.runAll().finally(() => process.exit(1));
  });
  return state;
}
