// The gateway on Redis (api.md §30, §21.13): token buckets shared by two gateways (one Lua
// script per take), fail-open when Redis is unreachable (logged) and limits back without a
// restart once it returns, and access log entries in the Redis stream read by an API process.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { registerUser, startTestApp, TEST_SECRETS } from './helpers/app.js';
import { freePort, sleep } from './helpers/processes.js';
import { capturingLogger, rawRequest, startEchoUpstream, startTestGateway, type TestGateway } from './helpers/gateway.js';
import { TcpProxy } from './helpers/tcp-proxy.js';
import { connectRedis } from '../src/lib/redis.js';
import { RedisBucketStore } from '../src/gateway/buckets.js';
import { RedisAccessLog } from '../src/gateway/access-log.js';
import { signAccessToken } from '../src/modules/auth/tokens.js';

const REDIS = process.env.ARKLOOP_TEST_REDIS_URL;
const BROWSER = 'Mozilla/5.0 test';

/** A valid access token for a user nobody else uses: a bucket of its own in the shared Redis. */
async function freshToken(): Promise<string> {
  return signAccessToken(new TextEncoder().encode(TEST_SECRETS.jwtSecret), randomUUID(), randomUUID(), 600);
}

describe('gateway on Redis', { skip: REDIS ? false : 'ARKLOOP_TEST_REDIS_URL is not set' }, () => {
  let echo: Awaited<ReturnType<typeof startEchoUpstream>>;
  const gateways: TestGateway[] = [];
  const closers: Array<() => Promise<void>> = [];

  async function gatewayOn(url: string, settings: Record<string, number>) {
    const { log, lines } = capturingLogger();
    const buckets = new RedisBucketStore(await connectRedis(url, log, 'gateway rate limits'), log);
    closers.push(() => buckets.close());
    const g = await startTestGateway([echo.base], { buckets, settings });
    gateways.push(g);
    return { g, lines };
  }

  before(async () => {
    echo = await startEchoUpstream('echo');
  });
  after(async () => {
    for (const g of gateways) await g.close();
    for (const c of closers) await c();
    await echo?.close();
  });

  it('shares one bucket per identity between two gateways', async () => {
    const settings = { 'gateway.ratelimit_capacity': 4, 'gateway.ratelimit_rate_per_minute': 1 };
    const [{ g: a }, { g: b }] = [await gatewayOn(REDIS!, settings), await gatewayOn(REDIS!, settings)];
    const headers = { 'user-agent': BROWSER, authorization: `Bearer ${await freshToken()}` };
    const seen: Array<[number, string | undefined]> = [];
    for (const g of [a, b, a, b, a, b]) {
      const res = await rawRequest(g.base, '/v1/x', { headers });
      seen.push([res.status, res.headers['x-ratelimit-remaining'] as string | undefined]);
      if (res.status === 429) assert.equal(res.headers['retry-after'], '60', '1 per minute: a token in 60 s');
    }
    assert.deepEqual(seen, [[200, '3'], [200, '2'], [200, '1'], [200, '0'], [429, '0'], [429, '0']]);
    // Another identity has its own bucket.
    const other = await rawRequest(b.base, '/v1/x', { headers: { ...headers, authorization: `Bearer ${await freshToken()}` } });
    assert.equal(other.status, 200);
    assert.equal(other.headers['x-ratelimit-remaining'], '3');
  });

  it('fails open when Redis is unreachable, logs it, and limits again once Redis is back (no restart)', async () => {
    const target = new URL(REDIS!);
    const proxy = new TcpProxy(target.hostname, Number(target.port || 6379));
    await proxy.start();
    closers.push(() => proxy.close());
    const via = new URL(REDIS!);
    via.hostname = '127.0.0.1';
    via.port = String(proxy.port);
    const { g, lines } = await gatewayOn(via.toString(), { 'gateway.ratelimit_capacity': 2, 'gateway.ratelimit_rate_per_minute': 1 });
    const headers = { 'user-agent': BROWSER, authorization: `Bearer ${await freshToken()}` };
    assert.equal((await rawRequest(g.base, '/v1/x', { headers })).headers['x-ratelimit-remaining'], '1');

    await proxy.cut();
    for (let i = 0; i < 4; i++) assert.equal((await rawRequest(g.base, '/v1/x', { headers })).status, 200, 'allowed while Redis is away');
    assert.ok(lines.some((l) => l.includes('redis unavailable')), 'the outage is logged');

    await proxy.restore();
    const start = Date.now();
    let status = 200;
    while (status === 200 && Date.now() - start < 15_000) {
      await sleep(100);
      status = (await rawRequest(g.base, '/v1/x', { headers })).status;
    }
    assert.equal(status, 429, 'the bucket (1 token left before the outage) applies again');
    assert.ok(lines.some((l) => l.includes('redis available again')), 'the recovery is logged');
  });

  it('fails open against a closed port from the start', async () => {
    const { g, lines } = await gatewayOn(`redis://127.0.0.1:${await freePort()}`, { 'gateway.ratelimit_capacity': 1, 'gateway.ratelimit_rate_per_minute': 1 });
    for (let i = 0; i < 3; i++) {
      const res = await rawRequest(g.base, '/v1/x', { headers: { 'user-agent': BROWSER } });
      assert.equal(res.status, 200);
      assert.equal(res.headers['x-ratelimit-limit'], '1');
    }
    assert.ok(lines.some((l) => l.includes('redis unavailable')));
  });

  it('writes the access log to the Redis stream, which an API process reads', async () => {
    const t = await startTestApp({ ARKLOOP_REDIS_URL: REDIS! });
    try {
      const admin = await registerUser(t);
      const { log } = capturingLogger();
      const accessLog = new RedisAccessLog(REDIS!, log);
      closers.push(() => accessLog.close());
      const g = await startTestGateway([echo.base], { accessLog });
      gateways.push(g);
      const marker = `/v1/redis-log-${randomUUID()}`;
      for (const p of ['/a', '/b', '/c']) await rawRequest(g.base, marker + p, { headers: { 'user-agent': 'curl/8' } });
      let res = await t.get('/v1/admin/access-log', { token: admin.token, query: { path: marker } });
      for (let i = 0; i < 20 && res.body.data?.length < 3; i++) {
        await sleep(50);
        res = await t.get('/v1/admin/access-log', { token: admin.token, query: { path: marker } });
      }
      assert.equal(res.status, 200, res.text);
      assert.deepEqual(res.body.data.map((e: { path: string }) => e.path.slice(marker.length)), ['/c', '/b', '/a']);
      assert.match(res.body.data[0].id, /^\d+-\d+$/);
      assert.equal(res.body.data[0].ua_type, 'cli');
      const page = await t.get('/v1/admin/access-log', { token: admin.token, query: { path: marker, limit: 1 } });
      assert.equal(page.body.has_more, true);
      const next = await t.get('/v1/admin/access-log', { token: admin.token, query: { path: marker, before: page.body.next_before } });
      assert.deepEqual(next.body.data.map((e: { path: string }) => e.path.slice(marker.length)), ['/b', '/a']);
      const since = await t.get('/v1/admin/access-log', { token: admin.token, query: { path: marker, since: next.body.data[1].id } });
      assert.deepEqual(since.body.data.map((e: { path: string }) => e.path.slice(marker.length)), ['/c', '/b']);
    } finally {
      await t.close();
    }
  });
});
