// The gateway as real processes: `arkloop serve` with ARKLOOP_SERVE_GATEWAY=1 (the gateway
// in the API's process, its access log in the shared in-memory ring) and `arkloop gateway` on
// its own in front of that API, stopped by SIGTERM.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { exitWithin, freePort, ProcessPool, type ArkloopProcess } from './helpers/processes.js';

/** The accept-queue size of the socket listening on `port` (`ss` shows it as Send-Q); null without `ss`. */
function listenBacklog(port: number): number | null {
  try {
    const line = execFileSync('ss', ['-Hltn', `sport = :${port}`], { encoding: 'utf8' }).trim().split('\n')[0];
    return Number(line.trim().split(/\s+/)[2]);
  } catch {
    return null;
  }
}
const HAS_SS = listenBacklog(1) !== null;
/** The kernel caps every backlog at net.core.somaxconn. */
function somaxconn(): number {
  try {
    return Number(readFileSync('/proc/sys/net/core/somaxconn', 'utf8'));
  } catch {
    return 4096;
  }
}

describe('gateway processes', () => {
  const pool = new ProcessPool();
  let env: Record<string, string>;
  let serve: ArkloopProcess;
  let gatewayBase: string;

  before(async () => {
    env = await pool.env();
    const gatewayPort = await freePort();
    gatewayBase = `http://127.0.0.1:${gatewayPort}`;
    serve = await pool.spawnApi('serve', { ...env, ARKLOOP_SERVE_GATEWAY: '1', ARKLOOP_GATEWAY_ADDR: `127.0.0.1:${gatewayPort}`, ARKLOOP_TRUST_X_FORWARDED_FOR: '1' });
    await serve.waitForOutput(/arkloop gateway listening/);
  });
  after(async () => pool.cleanup());

  it('serve with ARKLOOP_SERVE_GATEWAY=1 proxies to its API and logs into the ring its API reads', async () => {
    const reg = await fetch(`${gatewayBase}/v1/auth/register`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'user-agent': 'curl/8' },
      body: JSON.stringify({ login: 'gwadmin', email: 'gwadmin@example.com', password: 'correct horse battery' }),
    });
    assert.equal(reg.status, 201, await reg.clone().text());
    assert.equal(reg.headers.get('x-ratelimit-limit'), '600');
    assert.equal(reg.headers.get('x-arkloop-identity-type'), null);
    const { access_token: token } = (await reg.json()) as { access_token: string };
    const log = await fetch(`${gatewayBase}/v1/admin/access-log?path=/v1/auth/register`, { headers: { authorization: `Bearer ${token}`, 'user-agent': 'curl/8' } });
    assert.equal(log.status, 200);
    const body = (await log.json()) as { data: Array<{ method: string; status_code: number; client_ip: string }> };
    assert.deepEqual(body.data.map((e) => [e.method, e.status_code, e.client_ip]), [['POST', 201, '127.0.0.1']]);
  });

  it('`arkloop gateway` runs on its own in front of the API and stops on SIGTERM', async () => {
    const port = await freePort();
    const gw = pool.spawn('gateway', { ...env, ARKLOOP_GATEWAY_PORT: String(port), ARKLOOP_GATEWAY_UPSTREAM: serve.base!, ARKLOOP_LISTEN_BACKLOG: '123' });
    await gw.waitForOutput(/arkloop gateway listening/);
    const base = `http://127.0.0.1:${port}`;
    if (HAS_SS) assert.equal(listenBacklog(port), 123, 'the gateway listens with ARKLOOP_LISTEN_BACKLOG');
    assert.equal((await fetch(`${base}/healthz`)).status, 200);
    const ready = await fetch(`${base}/readyz`);
    assert.equal(ready.status, 200, 'proxied to the API');
    assert.match(ready.headers.get('x-trace-id') ?? '', /^[0-9a-f]{32}$/);
    const metrics = await (await fetch(`${base}/metrics`)).text();
    assert.match(metrics, /arkloop_gateway_requests_total/);
    gw.child.kill('SIGTERM');
    assert.equal(await exitWithin(gw.child, 15_000), 0);
  });

  it('the API listens with ARKLOOP_LISTEN_BACKLOG, and with 4096 by default (a burst of connects queues instead of being dropped)', { skip: HAS_SS ? false : 'needs `ss`' }, async () => {
    assert.equal(listenBacklog(Number(new URL(serve.base!).port)), Math.min(4096, somaxconn()), 'the default');
    const api = await pool.spawnApi('api', { ...(await pool.env()), ARKLOOP_LISTEN_BACKLOG: '77' });
    assert.equal(listenBacklog(Number(new URL(api.base!).port)), 77);
  });
});
