// Real `arkloop` child processes for tests: spawn a command on a free port, wait until it is
// ready, stop it (SIGTERM / SIGKILL) with bounded waits, and fresh PostgreSQL databases for
// them. Every process and database is tracked so `cleanup()` can end them in `after`.
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createServer } from 'node:net';
import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { TEST_PG_URL, TEST_SECRETS } from './app.js';

export const ENTRY = ['--import', 'tsx', 'src/cli/run.ts'];

export function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => resolve(port));
    });
    s.on('error', reject);
  });
}

// A fresh embedded data dir (initdb) on a loaded 2-core CI machine can take over 30 s.
export async function waitReady(base: string, child: ChildProcess, timeoutMs = 90_000): Promise<void> {
  const start = Date.now();
  while (Date.now() - start < timeoutMs) {
    if (child.exitCode !== null || child.signalCode !== null) throw new Error(`server exited with ${child.exitCode ?? child.signalCode}`);
    try {
      const res = await fetch(`${base}/readyz`);
      if (res.status === 200) return;
    } catch {
      /* not listening yet */
    }
    await sleep(100);
  }
  throw new Error('server did not become ready');
}

/** The exit code (null when killed by a signal). */
export function exitOf(child: ChildProcess): Promise<number | null> {
  return new Promise((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null) return resolve(child.exitCode);
    child.once('exit', (code) => resolve(code));
  });
}

/** Like exitOf, but rejects when the process has not exited within `ms`. */
export function exitWithin(child: ChildProcess, ms: number): Promise<number | null> {
  return new Promise((resolve, reject) => {
    const t = setTimeout(() => reject(new Error(`process ${child.pid} did not exit within ${ms} ms`)), ms);
    exitOf(child).then((code) => {
      clearTimeout(t);
      resolve(code);
    });
  });
}

export interface ArkloopProcess {
  child: ChildProcess;
  /** Base URL of its API (null for `worker`). */
  base: string | null;
  output(): string;
  /** Resolves once the output matches `re` (rejects on exit or after `timeoutMs`). */
  waitForOutput(re: RegExp, timeoutMs?: number): Promise<void>;
}

/** Tracks child processes, temporary directories and databases of one test file. */
export class ProcessPool {
  private readonly children = new Set<ChildProcess>();
  private readonly dirs: string[] = [];
  private readonly dbs: string[] = [];

  /** Environment for processes sharing one fresh data store (a new PostgreSQL database when configured). */
  async env(opts: { postgres?: boolean } = {}): Promise<Record<string, string>> {
    const dir = mkdtempSync(join(tmpdir(), 'arkloop-proc-'));
    this.dirs.push(dir);
    const env: Record<string, string> = { ARKLOOP_DATA_DIR: dir, ARKLOOP_LOG_LEVEL: 'info' };
    const usePg = opts.postgres ?? Boolean(TEST_PG_URL);
    if (usePg) {
      if (!TEST_PG_URL) throw new Error('ARKLOOP_TEST_DATABASE_URL is not set');
      const name = `arkloop_p_${randomBytes(5).toString('hex')}`;
      const c = new pg.Client({ connectionString: TEST_PG_URL });
      await c.connect();
      try {
        await c.query(`CREATE DATABASE ${name}`);
      } finally {
        await c.end();
      }
      this.dbs.push(name);
      const url = new URL(TEST_PG_URL);
      url.pathname = '/' + name;
      Object.assign(env, {
        ARKLOOP_DATABASE_URL: url.toString(),
        ARKLOOP_AUTH_JWT_SECRET: TEST_SECRETS.jwtSecret,
        ARKLOOP_ENCRYPTION_KEY: TEST_SECRETS.encryptionKey,
      });
    }
    return env;
  }

  /** Spawns `arkloop <command>`; `port` sets ARKLOOP_API_ADDR (commands with an API). */
  spawn(command: string, env: Record<string, string>, port?: number): ArkloopProcess {
    let out = '';
    const waiters = new Set<() => void>();
    const child = spawn(process.execPath, [...ENTRY, command], {
      env: { ...process.env, ...env, ...(port ? { ARKLOOP_API_ADDR: `127.0.0.1:${port}` } : {}) },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    this.children.add(child);
    child.once('exit', () => {
      this.children.delete(child);
      for (const w of waiters) w();
    });
    const onData = (d: Buffer) => {
      out += d;
      for (const w of waiters) w();
    };
    child.stdout!.on('data', onData);
    child.stderr!.on('data', onData);
    return {
      child,
      base: port ? `http://127.0.0.1:${port}` : null,
      output: () => out,
      waitForOutput: (re, timeoutMs = 30_000) =>
        new Promise<void>((resolve, reject) => {
          const check = () => {
            if (re.test(out)) return done(null);
            if (child.exitCode !== null || child.signalCode !== null) done(new Error(`process exited before printing ${re}:\n${out.slice(-2000)}`));
          };
          const t = setTimeout(() => done(new Error(`timed out waiting for ${re}:\n${out.slice(-2000)}`)), timeoutMs);
          const done = (err: Error | null) => {
            clearTimeout(t);
            waiters.delete(check);
            if (err) reject(err);
            else resolve();
          };
          waiters.add(check);
          check();
        }),
    };
  }

  /** Spawns a command with an API on a free port and waits for /readyz. */
  async spawnApi(command: 'serve' | 'api', env: Record<string, string>): Promise<ArkloopProcess> {
    const port = await freePort();
    const p = this.spawn(command, env, port);
    try {
      await waitReady(p.base!, p.child);
    } catch (err) {
      throw new Error(`${(err as Error).message}\n${p.output().slice(-2000)}`);
    }
    return p;
  }

  /** Spawns `arkloop worker` and waits for its start line. */
  async spawnWorker(env: Record<string, string>): Promise<ArkloopProcess> {
    const p = this.spawn('worker', env);
    await p.waitForOutput(/arkloop worker started/);
    return p;
  }

  /** SIGKILLs every process still running, then drops the databases and removes the directories. */
  async cleanup(): Promise<void> {
    const alive = [...this.children];
    for (const c of alive) c.kill('SIGKILL');
    await Promise.all(alive.map((c) => exitWithin(c, 10_000).catch(() => undefined)));
    if (TEST_PG_URL && this.dbs.length) {
      const c = new pg.Client({ connectionString: TEST_PG_URL });
      await c.connect();
      try {
        for (const name of this.dbs.splice(0)) await c.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
      } finally {
        await c.end();
      }
    }
    for (const d of this.dirs.splice(0)) rmSync(d, { recursive: true, force: true });
  }
}
