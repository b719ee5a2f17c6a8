// The `arkloop` command as a user runs it: start, serve, stop on SIGTERM, restart on the
// same data, refuse bad configuration naming the variable.
import { after, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ENTRY, ProcessPool, exitOf, freePort, waitReady } from './helpers/processes.js';

describe('the arkloop command', () => {
  const pool = new ProcessPool();
  const dirs: string[] = [];
  after(async () => {
    await pool.cleanup();
    for (const d of dirs) rmSync(d, { recursive: true, force: true });
  });

  it('serves, drains on SIGTERM, and reuses its data on the next start', async () => {
    const env = await pool.env();
    const port = await freePort();
    const base = `http://127.0.0.1:${port}`;
    const first = pool.spawn('serve', env, port);
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

    const second = pool.spawn('serve', env, port);
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
    const env = await pool.env();
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
