// The `arkloop` command as a user runs it: start, serve, stop on SIGTERM, restart on the
// same data, refuse bad configuration naming the variable.
import { after, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createServer } from 'node:net';
import pg from 'pg';
import { TEST_PG_URL, TEST_SECRETS } from './helpers/app.js';

const ENTRY = ['--import', 'tsx', 'src/cli/run.ts'];

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => resolve(port));
    });
    s.on('error', reject);
  });
}

async function waitReady(base: string, child: ChildProcess, timeoutMs = 30_000): Promise<void> {
  const start = Date.now();
  while (Date.now() - start < timeoutMs) {
    if (child.exitCode !== null) throw new Error(`server exited with ${child.exitCode}`);
    try {
      const res = await fetch(`${base}/readyz`);
      if (res.status === 200) return;
    } catch {
      /* not listening yet */
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error('server did not become ready');
}

function exitOf(child: ChildProcess): Promise<number | null> {
  return new Promise((resolve) => {
    if (child.exitCode !== null) return resolve(child.exitCode);
    child.once('exit', (code) => resolve(code));
  });
}

describe('the arkloop command', () => {
  const dirs: string[] = [];
  const dbs: string[] = [];
  after(async () => {
    for (const d of dirs) rmSync(d, { recursive: true, force: true });
    if (TEST_PG_URL && dbs.length) {
      const c = new pg.Client({ connectionString: TEST_PG_URL });
      await c.connect();
      for (const name of dbs) await c.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
      await c.end();
    }
  });

  async function serverEnv(): Promise<Record<string, string>> {
    const dir = mkdtempSync(join(tmpdir(), 'arkloop-proc-'));
    dirs.push(dir);
    const env: Record<string, string> = { ARKLOOP_DATA_DIR: dir, ARKLOOP_LOG_LEVEL: 'info' };
    if (TEST_PG_URL) {
      const name = `arkloop_p_${Math.random().toString(16).slice(2, 10)}`;
      const c = new pg.Client({ connectionString: TEST_PG_URL });
      await c.connect();
      await c.query(`CREATE DATABASE ${name}`);
      await c.end();
      dbs.push(name);
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

  function start(env: Record<string, string>, port: number): { child: ChildProcess; output: () => string } {
    let out = '';
    const child = spawn(process.execPath, [...ENTRY, 'serve'], {
      env: { ...process.env, ...env, ARKLOOP_API_ADDR: `127.0.0.1:${port}` },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    child.stdout!.on('data', (d) => (out += d));
    child.stderr!.on('data', (d) => (out += d));
    return { child, output: () => out };
  }

  it('serves, drains on SIGTERM, and reuses its data on the next start', async () => {
    const env = await serverEnv();
    const port = await freePort();
    const base = `http://127.0.0.1:${port}`;
    const first = start(env, port);
    await waitReady(base, first.child);
    const reg = await fetch(`${base}/v1/auth/register`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ login: 'procuser', email: 'proc@example.com', password: 'password-123' }),
    });
    assert.equal(reg.status, 201);
    first.child.kill('SIGTERM');
    assert.equal(await exitOf(first.child), 0);
    const logLines = first.output().split('\n').filter((l) => l.startsWith('{'));
    assert.ok(logLines.length > 0, 'logs are JSON lines');
    for (const l of logLines) JSON.parse(l);
    assert.match(first.output(), /"msg":"stopped"/);
    assert.doesNotMatch(first.output(), /password-123/);

    const second = start(env, port);
    await waitReady(base, second.child);
    const login = await fetch(`${base}/v1/auth/login`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ login: 'procuser', password: 'password-123' }),
    });
    assert.equal(login.status, 200);
    assert.doesNotMatch(second.output(), /migrations applied/);
    second.child.kill('SIGTERM');
    assert.equal(await exitOf(second.child), 0);
  });

  it('refuses a wrong configuration value, naming the variable', () => {
    const cases: Array<[Record<string, string>, RegExp]> = [
      [{ ARKLOOP_API_ADDR: 'not-an-address' }, /ARKLOOP_API_ADDR/],
      [{ ARKLOOP_AUTH_ACCESS_TOKEN_TTL_SECONDS: 'soon' }, /ARKLOOP_AUTH_ACCESS_TOKEN_TTL_SECONDS/],
      [{ ARKLOOP_LIMIT_CONCURRENT_RUNS: 'many' }, /ARKLOOP_LIMIT_CONCURRENT_RUNS/],
      [{ ARKLOOP_REGISTRATION_MODE: 'sometimes' }, /ARKLOOP_REGISTRATION_MODE/],
      [{ ARKLOOP_LOG_LEVEL: 'loud' }, /ARKLOOP_LOG_LEVEL/],
      [{ ARKLOOP_DATABASE_URL: 'postgres://u@127.0.0.1:1/x' }, /ARKLOOP_AUTH_JWT_SECRET/],
      [{ ARKLOOP_ENCRYPTION_KEY: 'short' }, /ARKLOOP_ENCRYPTION_KEY/],
    ];
    for (const [env, re] of cases) {
      const dir = mkdtempSync(join(tmpdir(), 'arkloop-cfg-'));
      dirs.push(dir);
      const res = spawnSync(process.execPath, [...ENTRY, 'serve'], {
        env: { ...process.env, ARKLOOP_DATA_DIR: dir, ARKLOOP_API_ADDR: '127.0.0.1:0', ...env },
        encoding: 'utf8',
        timeout: 20_000,
      });
      assert.notEqual(res.status, 0, `expected failure for ${JSON.stringify(env)}`);
      assert.match(res.stderr, re);
      assert.match(res.stderr, /configuration error/);
    }
  });

  it('arkloop migrate applies migrations and is idempotent', async () => {
    const env = await serverEnv();
    const run = () =>
      spawnSync(process.execPath, [...ENTRY, 'migrate'], { env: { ...process.env, ...env }, encoding: 'utf8', timeout: 30_000 });
    const firstRun = run();
    assert.equal(firstRun.status, 0, firstRun.stderr);
    assert.match(firstRun.stdout, /applied 0001/);
    const again = run();
    assert.equal(again.status, 0, again.stderr);
    assert.match(again.stdout, /up to date/);
  });

  it('unknown commands print the usage', () => {
    const res = spawnSync(process.execPath, [...ENTRY, 'frobnicate'], { encoding: 'utf8', timeout: 20_000 });
    assert.equal(res.status, 2);
    assert.match(res.stderr, /usage: arkloop/);
  });
});
