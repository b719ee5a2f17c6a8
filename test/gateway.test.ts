// The gateway (api.md §30) through real HTTP: a test API on a port and small node:http
// upstreams behind gateways started in this process. Proxying (bodies, headers, SSE unbuffered,
// client disconnect), 502, round robin with health-aware skipping, one retry on the next upstream
// of a request that never arrived (or an idempotent one without a body), the client IP of each
// ip_mode (spoofed X-Forwarded-For from an untrusted peer included), the in-memory token
// bucket, the risk score, identity headers stripped into the access log, and config re-reads.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import { registerUser, startTestApp, type TestApp, type TestUser } from './helpers/app.js';
import { expectError } from './helpers/assert.js';
import { freePort, sleep } from './helpers/processes.js';
import { MemoryAccessLog } from '../src/gateway/access-log.js';
import { PROTOCOL_CASES, rawExchange } from './helpers/raw-http.js';
import { assertLoggedAs, listenTestApp, rawRequest, uploadAudio, startEchoUpstream, startTestGateway, type TestGateway } from './helpers/gateway.js';

const BROWSER = 'Mozilla/5.0 (X11; Linux x86_64) test';

describe('gateway', () => {
  let t: TestApp;
  let api: string;
  let admin: TestUser;
  let echo: Awaited<ReturnType<typeof startEchoUpstream>>;
  const gateways: TestGateway[] = [];
  const gw = async (...args: Parameters<typeof startTestGateway>) => {
    const g = await startTestGateway(...args);
    gateways.push(g);
    return g;
  };

  // SSE upstream state: the stream waits for `release` before its last event.
  let release: () => void = () => undefined;
  let upstreamClosed: Promise<void> = Promise.resolve();

  before(async () => {
    t = await startTestApp({ ARKLOOP_TRUST_X_FORWARDED_FOR: '1', ARKLOOP_TRUST_INCOMING_TRACE_ID: '1' });
    api = await listenTestApp(t);
    admin = await registerUser(t);
    echo = await startEchoUpstream('echo', (req, res) => {
      if (req.url === '/v1/hold') return true; // never answered: the client gives up first
      if (req.url !== '/v1/sse') return false;
      res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache' });
      res.write('data: first\n\n');
      let done!: () => void;
      upstreamClosed = new Promise((r) => (done = r));
      res.on('close', () => done());
      release = () => res.end('data: last\n\n');
      return true;
    });
  });

  after(async () => {
    for (const g of gateways) await g.close();
    await echo?.close();
    await t?.close();
  });

  it('proxies method, path, query and body; sets forwarding headers and a trace id; drops hop-by-hop headers both ways', async () => {
    const g = await gw([echo.base]);
    const res = await rawRequest(g.base, '/v1/things/x?a=1&b=two', {
      method: 'POST',
      headers: {
        'content-type': 'application/json',
        'user-agent': BROWSER,
        'x-forwarded-for': '198.51.100.7',
        'x-trace-id': 'incoming-trace-1234',
        connection: 'keep-alive, x-secret-hop',
        'x-secret-hop': 'hidden',
        te: 'trailers',
        'x-kept': 'yes',
        host: 'arkloop.example:8443',
      },
      body: '{"hello":"world"}',
    });
    assert.equal(res.status, 200, res.text);
    const seen = res.json;
    assert.equal(seen.method, 'POST');
    assert.equal(seen.url, '/v1/things/x?a=1&b=two');
    assert.equal(seen.body, '{"hello":"world"}');
    assert.equal(seen.headers['x-kept'], 'yes');
    assert.equal(seen.headers['x-secret-hop'], undefined);
    assert.equal(seen.headers.te, undefined);
    // direct mode: the spoofed value is replaced by the socket address.
    assert.equal(seen.headers['x-forwarded-for'], '127.0.0.1');
    assert.equal(seen.headers['x-forwarded-proto'], 'http');
    assert.equal(seen.headers['x-forwarded-host'], 'arkloop.example:8443');
    // Not trusted by default: a new trace id, the same upstream and to the client.
    assert.match(seen.headers['x-trace-id'], /^[0-9a-f]{32}$/);
    assert.equal(res.headers['x-trace-id'], seen.headers['x-trace-id']);
    // Response: hop-by-hop and identity headers removed, limits announced.
    assert.equal(res.headers['x-drop-me'], undefined);
    assert.notEqual(res.headers['keep-alive'], 'timeout=5', "the upstream connection's keep-alive is not passed on");
    assert.equal(res.headers['x-arkloop-identity-type'], undefined);
    assert.equal(res.headers['x-arkloop-user-id'], undefined);
    assert.equal(res.headers['x-ratelimit-limit'], '600');
    assert.equal(res.headers['x-ratelimit-remaining'], '599');
  });

  it('streams bodies of any type, chunked or not, and answers a malformed URL with the envelope', async () => {
    const g = await gw([echo.base]);
    const raw = await rawRequest(g.base, '/v1/upload', { method: 'POST', body: 'raw-bytes', headers: { 'user-agent': 'curl/8', 'content-length': '9' } });
    assert.equal(raw.json.body, 'raw-bytes');
    const chunked = await rawRequest(g.base, '/v1/upload', { method: 'PUT', body: 'a'.repeat(100_000), headers: { 'user-agent': 'curl/8', 'content-type': 'text/plain', 'transfer-encoding': 'chunked' } });
    assert.equal(chunked.json.body.length, 100_000);
    // The API's JSON (small, with a Content-Length) is read whole and sent in one write: intact, same length.
    const viaApi = await gw([api]);
    const mode = await rawRequest(viaApi.base, '/v1/auth/registration-mode', { headers: { 'user-agent': 'curl/8' } });
    assert.equal(mode.status, 200, mode.text);
    assert.equal(Number(mode.headers['content-length']), Buffer.byteLength(mode.text));
    assert.equal(typeof mode.json.mode, 'string');
    const bad = await rawRequest(g.base, '/v1/%E0%A4%A', { headers: { 'user-agent': 'curl/8' } });
    expectError({ status: bad.status, body: bad.json, headers: bad.headers as never, text: bad.text }, 400, 'validation.error');
  });

  it('what Node refuses, and bodies over the limit (with a length or chunked), answer with the envelope; the upstream stays in rotation', async () => {
    const g = await gw([api, echo.base]);
    const failures: string[] = [];
    for (const [name, payload, status] of PROTOCOL_CASES) {
      const res = await rawExchange(g.port, payload).catch((err: Error) => ({ status: 0, headers: {} as Record<string, string>, body: err.message }));
      let body: { code?: string; trace_id?: string } = {};
      try {
        body = JSON.parse(res.body);
      } catch {
        /* reported below */
      }
      if (res.status !== status) failures.push(`${name}: expected ${status}, got ${res.status} ${res.body.slice(0, 200)}`);
      else if (body.code !== 'validation.error' || !res.headers['x-trace-id'] || body.trace_id !== res.headers['x-trace-id']) failures.push(`${name}: ${res.body.slice(0, 200)}`);
    }
    assert.deepEqual(failures, []);
    // A client's oversized body is not an upstream's failure: both still take their turns.
    const seen = new Set<string>();
    for (let i = 0; i < 2; i++) {
      const r = await rawRequest(g.base, '/v1/auth/registration-mode', { headers: { 'user-agent': BROWSER } });
      assert.equal(r.status, 200);
      seen.add(r.json.upstream ?? 'api');
    }
    assert.deepEqual([...seen].sort(), ['api', 'echo']);

    // The multipart route keeps its own, larger limit: a 2 MiB upload reaches the API (which has no ASR credential to use).
    const viaApi = await gw([api]);
    const uploader = await registerUser(t);
    const upload = await uploadAudio(viaApi.base, uploader.token, 2 * 1024 * 1024);
    assert.equal(upload.status, 409, upload.text);
    assert.equal(upload.body.code, 'asr.not_configured');
  });

  it('keeps a valid incoming trace id only when trusted, and the API adopts it', async () => {
    const g = await gw([api], { trustIncomingTraceId: true });
    const res = await rawRequest(g.base, '/v1/auth/registration-mode', { headers: { 'x-trace-id': 'trace-from-client-42', 'user-agent': BROWSER } });
    assert.equal(res.status, 200, res.text);
    assert.equal(res.headers['x-trace-id'], 'trace-from-client-42');
    const bad = await rawRequest(g.base, '/v1/auth/registration-mode', { headers: { 'x-trace-id': 'bad trace!', 'user-agent': BROWSER } });
    assert.match(String(bad.headers['x-trace-id']), /^[0-9a-f]{32}$/);
  });

  it('passes SSE unbuffered, and a client disconnect aborts the upstream request (and is logged)', async () => {
    const accessLog = new MemoryAccessLog();
    const g = await gw([echo.base], { accessLog });
    // The first event arrives while the upstream still holds the stream open.
    const first = await new Promise<{ req: http.ClientRequest; res: http.IncomingMessage; chunk: string }>((resolve, reject) => {
      const req = http.get(`${g.base}/v1/sse`, { headers: { 'user-agent': BROWSER, accept: 'text/event-stream' } }, (res) => {
        res.setEncoding('utf8');
        res.once('data', (chunk: string) => resolve({ req, res, chunk }));
      });
      req.on('error', reject);
    });
    assert.equal(first.res.statusCode, 200);
    assert.equal(first.res.headers['content-type'], 'text/event-stream');
    assert.equal(first.chunk, 'data: first\n\n');
    const closed = upstreamClosed;
    first.req.destroy();
    await Promise.race([closed, sleep(3000).then(() => assert.fail('the upstream request was not aborted within 3 s'))]);
    // The stream the client left is in the access log with the status it was sent.
    const left = await accessLog.list({ limit: 5, path: '/v1/sse' });
    assert.deepEqual(left.data.map((e) => e.status_code), [200]);

    // A stream the client keeps reads to its end.
    const whole = new Promise<string>((resolve) => {
      http.get(`${g.base}/v1/sse`, { headers: { 'user-agent': BROWSER } }, (res) => {
        let text = '';
        res.setEncoding('utf8');
        res.on('data', (d) => {
          text += d;
          if (text === 'data: first\n\n') release();
        });
        res.on('end', () => resolve(text));
      });
    });
    assert.equal(await whole, 'data: first\n\ndata: last\n\n');

    // A client that leaves before any answer: logged as 499.
    const gone = http.get(`${g.base}/v1/hold`, { headers: { 'user-agent': BROWSER } });
    gone.on('error', () => undefined);
    await sleep(100);
    gone.destroy();
    for (let i = 0; i < 50 && !(await accessLog.list({ limit: 1, path: '/v1/hold' })).data.length; i++) await sleep(20);
    assert.deepEqual((await accessLog.list({ limit: 5, path: '/v1/hold' })).data.map((e) => e.status_code), [499]);
  });

  it('holds more concurrent event streams than an upstream pool cap would allow (each keeps its own upstream socket)', async () => {
    // 400 > the 256 sockets the gateway's pool was once capped at (and reply-from's default 128):
    // with a cap, the streams past it would wait forever for a socket.
    const N = 400;
    let open = 0;
    let peak = 0;
    const held = await startEchoUpstream('held', (req, res) => {
      if (req.url !== '/v1/held') return false;
      open++;
      peak = Math.max(peak, open);
      res.writeHead(200, { 'content-type': 'text/event-stream' });
      res.write(': ping\n\n');
      res.on('close', () => open--);
      return true;
    });
    const g = await gw([held.base], { settings: { 'gateway.ratelimit_capacity': 0 } });
    const clients: http.ClientRequest[] = [];
    try {
      const firsts = Array.from({ length: N }, () =>
        new Promise<string>((resolve, reject) => {
          const req = http.get(`${g.base}/v1/held`, { agent: false, headers: { 'user-agent': BROWSER, accept: 'text/event-stream' } }, (res) => {
            res.setEncoding('utf8');
            res.once('data', (chunk: string) => resolve(chunk));
          });
          req.on('error', reject);
          clients.push(req);
        }),
      );
      const all = Promise.all(firsts);
      const got = await Promise.race([all, sleep(20_000).then(() => null)]);
      assert.ok(got, `not every stream got its first frame within 20 s (upstream streams open: ${open})`);
      assert.ok(got.every((c) => c === ': ping\n\n'));
      assert.equal(peak, N, 'every client stream had its own upstream request open at once');
    } finally {
      for (const c of clients) c.destroy();
      await g.close();
      await held.close();
    }
  });

  it('answers 502 gateway.upstream_unavailable in the envelope when the upstream is down', async () => {
    const port = await freePort();
    const g = await gw([`http://127.0.0.1:${port}`]);
    const res = await rawRequest(g.base, '/v1/me', { headers: { 'user-agent': BROWSER } });
    assert.equal(res.status, 502);
    expectError({ status: res.status, body: res.json, headers: res.headers as never, text: res.text }, 502, 'gateway.upstream_unavailable');
    // Its own /healthz still answers.
    assert.equal((await rawRequest(g.base, '/healthz')).status, 200);
  });

  it('balances round robin over two upstreams and skips one that is down', async () => {
    const a = await startEchoUpstream('a');
    const b = await startEchoUpstream('b');
    try {
      const g = await gw([a.base, b.base], { probeIntervalMs: 100 });
      const who = async () => (await rawRequest(g.base, '/v1/x', { headers: { 'user-agent': BROWSER } })).json?.upstream ?? 'error';
      const seq = [await who(), await who(), await who(), await who()];
      assert.deepEqual(seq, ['a', 'b', 'a', 'b']);
      await b.close();
      // A request that meets the dead upstream before the failure or probe marks it is sent again to `a`.
      const after = [];
      for (let i = 0; i < 8; i++) after.push(await who());
      assert.deepEqual(after, Array(8).fill('a'));
    } finally {
      await a.close();
      await b.close().catch(() => undefined);
    }
  });

  it('sends a request the upstream never received (connection refused) once to the next upstream, any method, body intact', async () => {
    const b = await startEchoUpstream('b');
    const dead = `http://127.0.0.1:${await freePort()}`;
    try {
      const g = await gw([dead, b.base]);
      const body = JSON.stringify({ text: 'x'.repeat(200_000) });
      const res = await rawRequest(g.base, '/v1/threads', { method: 'POST', headers: { 'content-type': 'application/json', 'user-agent': BROWSER }, body });
      assert.equal(res.status, 200, res.text.slice(0, 300));
      assert.equal(res.json.upstream, 'b');
      assert.equal(res.json.body, body);
      // The refusing upstream is now skipped: the next requests go straight to `b`.
      for (let i = 0; i < 3; i++) assert.equal((await rawRequest(g.base, '/v1/x', { method: 'DELETE', headers: { 'user-agent': BROWSER } })).json.upstream, 'b');
      assert.equal(g.logs.filter((l) => l.includes('upstream request failed')).length, 1);
      // Every upstream refusing: one retry, then the 502 envelope.
      const none = await gw([dead, `http://127.0.0.1:${await freePort()}`]);
      const res2 = await rawRequest(none.base, '/v1/threads', { method: 'POST', headers: { 'content-type': 'application/json', 'user-agent': BROWSER }, body: '{}' });
      expectError({ status: res2.status, body: res2.json, headers: res2.headers as never, text: res2.text }, 502, 'gateway.upstream_unavailable');
      assert.equal(none.logs.filter((l) => l.includes('upstream request failed')).length, 2);
    } finally {
      await b.close();
    }
  });

  it('never sends a non-idempotent request again once it reached an upstream; an idempotent one without a body goes to the next', async () => {
    const seen: string[] = [];
    // Reads the whole request, then drops the connection without answering.
    const dropper = await startEchoUpstream('dropper', (req) => {
      seen.push(`dropper ${req.method}`);
      req.resume();
      req.on('end', () => req.socket.destroy());
      return true;
    });
    const b = await startEchoUpstream('b', (req) => {
      seen.push(`b ${req.method}`);
      return false;
    });
    try {
      // The dropper's cooldown is short so that each request below starts on it again.
      const g = await gw([dropper.base, b.base], { failCooldownMs: 0 });
      const post = await rawRequest(g.base, '/v1/runs', { method: 'POST', headers: { 'content-type': 'application/json', 'user-agent': BROWSER }, body: '{"a":1}' });
      expectError({ status: post.status, body: post.json, headers: post.headers as never, text: post.text }, 502, 'gateway.upstream_unavailable');
      assert.deepEqual(seen, ['dropper POST']);
      seen.length = 0;
      // The turn now points at `b`; take one request there so the GET starts on the dropper.
      assert.equal((await rawRequest(g.base, '/v1/x', { headers: { 'user-agent': BROWSER } })).json.upstream, 'b');
      seen.length = 0;
      const get = await rawRequest(g.base, '/v1/x', { headers: { 'user-agent': BROWSER } });
      assert.equal(get.status, 200);
      assert.deepEqual(seen, ['dropper GET', 'b GET']);
    } finally {
      await dropper.close();
      await b.close();
    }
  });

  it('resolves the client IP per ip_mode; a spoofed X-Forwarded-For from an untrusted peer never wins', async () => {
    const g = await gw([echo.base]);
    const ipOf = async (headers: Record<string, string>, localAddress = '127.0.0.1') =>
      (await rawRequest(g.base, '/v1/ip', { headers: { 'user-agent': BROWSER, ...headers }, localAddress })).json.headers['x-forwarded-for'];
    const spoof = { 'x-forwarded-for': '203.0.113.9', 'cf-connecting-ip': '198.51.100.1' };

    // direct: the socket address, whatever the headers say.
    await g.set({ 'gateway.ip_mode': 'direct', 'gateway.trusted_cidrs': '127.0.0.1/32' });
    assert.equal(await ipOf(spoof), '127.0.0.1');

    // trusted_proxy: right to left past trusted hops; untrusted peers are their own client.
    await g.set({ 'gateway.ip_mode': 'trusted_proxy', 'gateway.trusted_cidrs': '127.0.0.1/32,10.0.0.0/8' });
    assert.equal(await ipOf({ 'x-forwarded-for': '203.0.113.9, 198.51.100.1, 10.1.2.3' }), '198.51.100.1');
    assert.equal(await ipOf({ 'x-forwarded-for': '10.0.0.1, 10.0.0.2' }), '10.0.0.1', 'all trusted: the left-most');
    assert.equal(await ipOf({}), '127.0.0.1', 'no header: the socket address');
    assert.equal(await ipOf(spoof, '127.0.0.2'), '127.0.0.2', 'untrusted peer: its spoofed header is ignored');
    assert.equal(await ipOf({ 'x-forwarded-for': '::ffff:203.0.113.5' }), '203.0.113.5', 'IPv4-mapped written as IPv4');

    // cloudflare: CF-Connecting-IP and country from a trusted peer only.
    await g.set({ 'gateway.ip_mode': 'cloudflare', 'gateway.trusted_cidrs': '127.0.0.1' });
    assert.equal(await ipOf({ ...spoof, 'cf-ipcountry': 'de' }), '198.51.100.1');
    assert.equal(await ipOf({ ...spoof, 'cf-ipcountry': 'de' }, '127.0.0.2'), '127.0.0.2');
    const log = await g.gateway.app.inject({ method: 'GET', url: '/healthz' });
    assert.equal(log.statusCode, 200);
  });

  it('rate-limits per identity in memory: 429 rate_limit with Retry-After and X-RateLimit-*; health paths exempt', async () => {
    const g = await gw([api], { settings: { 'gateway.ratelimit_capacity': 3, 'gateway.ratelimit_rate_per_minute': 30 } });
    const h = { 'user-agent': BROWSER };
    const statuses: number[] = [];
    let last!: Awaited<ReturnType<typeof rawRequest>>;
    for (let i = 0; i < 4; i++) {
      last = await rawRequest(g.base, '/v1/auth/registration-mode', { headers: h });
      statuses.push(last.status);
      if (i < 3) assert.equal(last.headers['x-ratelimit-remaining'], String(2 - i));
    }
    assert.deepEqual(statuses, [200, 200, 200, 429]);
    expectError({ status: last.status, body: last.json, headers: last.headers as never, text: last.text }, 429, 'rate_limit');
    assert.equal(last.headers['retry-after'], '2', '30 per minute: the next token in 2 s');
    assert.equal(last.headers['x-ratelimit-limit'], '3');
    assert.equal(last.headers['x-ratelimit-remaining'], '0');
    for (const p of ['/healthz', '/readyz', '/metrics']) {
      const res = await rawRequest(g.base, p, { headers: h });
      assert.equal(res.status, 200, `${p} is exempt`);
      assert.equal(res.headers['x-ratelimit-limit'], undefined);
    }
    // A user's own bucket: the anonymous one of the same IP is empty, theirs is full.
    const user = await registerUser(t);
    const mine = await rawRequest(g.base, '/v1/me', { headers: { ...h, authorization: `Bearer ${user.token}` } });
    assert.equal(mine.status, 200, mine.text);
    assert.equal(mine.headers['x-ratelimit-remaining'], '2');
    // An invalid token counts as anonymous: the IP's bucket, still empty — also when repeated
    // (the second time the gateway remembers the refusal instead of verifying again).
    for (let i = 0; i < 2; i++) assert.equal((await rawRequest(g.base, '/v1/me', { headers: { ...h, authorization: 'Bearer not.a.jwt' } })).status, 429);
    // And the user's token still buckets as the user after a refused one.
    assert.equal((await rawRequest(g.base, '/v1/me', { headers: { ...h, authorization: `Bearer ${user.token}` } })).headers['x-ratelimit-remaining'], '1');
    const metrics = await rawRequest(g.base, '/metrics');
    assert.match(metrics.text, /arkloop_gateway_rate_limited_total\{identity_type="anonymous"\} 3/);
  });

  it('scores risk and rejects at the threshold with 403 gateway.risk_rejected (not forwarded, still logged)', async () => {
    const g = await gw([echo.base]);
    await g.set({ 'gateway.risk_reject_threshold': 50 });
    // Unknown user agent (30) + a path outside the API (20) = 50.
    const rejected = await rawRequest(g.base, '/wp-login.php', { headers: { 'user-agent': 'weird-agent' }, localAddress: '127.0.0.3' });
    expectError({ status: rejected.status, body: rejected.json, headers: rejected.headers as never, text: rejected.text }, 403, 'gateway.risk_rejected');
    // A bot alone is 50.
    assert.equal((await rawRequest(g.base, '/v1/x', { headers: { 'user-agent': 'Googlebot/2.1' }, localAddress: '127.0.0.3' })).status, 403);
    // A CLI on the API is 0.
    assert.equal((await rawRequest(g.base, '/v1/x', { headers: { 'user-agent': 'curl/8.5.0' }, localAddress: '127.0.0.3' })).status, 200);
    // 5 answers 401/403 to this IP in 10 min add 30: now an unknown agent on the API (30) reaches 60.
    assert.equal((await rawRequest(g.base, '/v1/x', { headers: { 'user-agent': 'weird-agent' }, localAddress: '127.0.0.4' })).status, 200);
    for (let i = 0; i < 5; i++) await rawRequest(g.base, '/v1/x', { headers: { 'user-agent': 'Googlebot' }, localAddress: '127.0.0.4' });
    assert.equal((await rawRequest(g.base, '/v1/x', { headers: { 'user-agent': 'weird-agent' }, localAddress: '127.0.0.4' })).status, 403);
    await g.set({ 'gateway.risk_reject_threshold': 0 });
    assert.equal((await rawRequest(g.base, '/wp-login.php', { headers: { 'user-agent': 'Googlebot' }, localAddress: '127.0.0.3' })).status, 200, '0 = never reject');
  });

  it('logs every request with identity from the API, whose X-Arkloop-* headers the client never sees', async () => {
    const g = await gw([api], { accessLog: t.ctx.accessLog });
    const user = await registerUser(t);
    assert.equal((await rawRequest(g.base, '/healthz')).status, 200, 'not logged: the gateway answers it');
    assert.equal((await rawRequest(g.base, '/readyz', { headers: { 'user-agent': BROWSER } })).status, 200);
    const me = await rawRequest(g.base, '/v1/me?x=1', { headers: { authorization: `Bearer ${user.token}`, 'user-agent': 'python-httpx/0.27' } });
    assert.equal(me.status, 200, me.text);
    for (const h of ['x-arkloop-identity-type', 'x-arkloop-org-id', 'x-arkloop-user-id', 'x-arkloop-username']) assert.equal(me.headers[h], undefined, h);
    const anon = await rawRequest(g.base, '/v1/me', { headers: { 'user-agent': 'curl/8' } });
    assert.equal(anon.status, 401);

    const log = await t.get('/v1/admin/access-log', { token: admin.token, query: { limit: 2 } });
    assert.equal(log.status, 200, log.text);
    const [e401, e200] = log.body.data;
    assert.equal(e200.trace_id, me.headers['x-trace-id']);
    assert.equal(e200.method, 'GET');
    assert.equal(e200.path, '/v1/me', 'the query string is not logged');
    assert.equal(e200.status_code, 200);
    assertLoggedAs(e200, user);
    assert.equal(e200.ua_type, 'sdk');
    assert.equal(e200.client_ip, '127.0.0.1');
    assert.equal(e200.country, null);
    assert.equal(e200.city, null);
    assert.equal(typeof e200.duration_ms, 'number');
    assert.equal(e401.status_code, 401);
    assert.equal(e401.identity_type, 'anonymous');
    assert.equal(e401.user_id, null);
    assert.equal(e401.ua_type, 'cli');
    assert.equal(log.body.has_more, true, 'the /readyz entry is older');
    assert.equal(log.body.next_before, e200.id);
    const rest = await t.get('/v1/admin/access-log', { token: admin.token, query: { before: e200.id } });
    assert.deepEqual(rest.body.data.map((e: { path: string }) => e.path), ['/readyz']);
    assert.equal(rest.body.has_more, false);
    assert.equal(rest.body.next_before, null);
  });

  it('filters the access log by every §21.13 field and pages with before / since', async () => {
    const g = await gw([echo.base], { accessLog: t.ctx.accessLog });
    await g.set({ 'gateway.ip_mode': 'cloudflare', 'gateway.trusted_cidrs': '127.0.0.1' });
    const marker = `/v1/filter-${Date.now()}`;
    const first = await rawRequest(g.base, `${marker}/a`, { headers: { 'user-agent': BROWSER, 'cf-connecting-ip': '192.0.2.10', 'cf-ipcountry': 'FR' } });
    await rawRequest(g.base, `${marker}/b`, { method: 'DELETE', headers: { 'user-agent': 'Googlebot', 'cf-connecting-ip': '192.0.2.11', 'cf-ipcountry': 'DE' } });
    await rawRequest(g.base, `${marker}/c`, { method: 'POST', headers: { 'user-agent': 'curl/8', 'cf-connecting-ip': '192.0.2.10', 'cf-ipcountry': 'FR' } });
    const q = async (query: Record<string, string | number>) => {
      const res = await t.get('/v1/admin/access-log', { token: admin.token, query: { path: marker, ...query } });
      assert.equal(res.status, 200, res.text);
      return (res.body.data as Array<{ path: string }>).map((e) => e.path.slice(marker.length));
    };
    assert.deepEqual(await q({}), ['/c', '/b', '/a']);
    assert.deepEqual(await q({ method: 'delete' }), ['/b']);
    assert.deepEqual(await q({ ip: '192.0.2.10' }), ['/c', '/a']);
    assert.deepEqual(await q({ country: 'DE' }), ['/b']);
    assert.deepEqual(await q({ risk_min: 50 }), ['/b']);
    assert.deepEqual(await q({ ua_type: 'cli' }), ['/c']);
    assert.deepEqual(await q({ path: `${marker}/a` }), ['/a']);
    const page = await t.get('/v1/admin/access-log', { token: admin.token, query: { path: marker, limit: 2 } });
    assert.equal(page.body.has_more, true);
    assert.deepEqual(await q({ before: page.body.next_before }), ['/a']);
    const firstId = (await t.get('/v1/admin/access-log', { token: admin.token, query: { path: `${marker}/a` } })).body.data[0].id;
    assert.deepEqual(await q({ since: firstId }), ['/c', '/b']);
    assert.ok(first.status === 200);
    for (const bad of [{ before: 'nope' }, { since: '12' }, { limit: 0 }, { limit: 201 }, { risk_min: 101 }, { ua_type: 'robot' }]) {
      const res = await t.get('/v1/admin/access-log', { token: admin.token, query: bad });
      expectError(res, 400, 'validation.error');
    }
  });

  it('applies a gateway-config change within the re-read interval', async () => {
    const g = await gw([echo.base], { readSetting: async (key) => (await t.ctx.settings.resolve(key)).value, configRefreshMs: 100 });
    assert.equal((await rawRequest(g.base, '/v1/x', { headers: { 'user-agent': 'Googlebot' } })).status, 200);
    const put = await t.put('/v1/admin/gateway-config', { risk_reject_threshold: 40 }, { token: admin.token });
    assert.equal(put.status, 200, put.text);
    const start = Date.now();
    let status = 200;
    while (status === 200 && Date.now() - start < 10_000) {
      await sleep(50);
      status = (await rawRequest(g.base, '/v1/x', { headers: { 'user-agent': 'Googlebot' } })).status;
    }
    assert.equal(status, 403, 'rejected once the new threshold applies');
    assert.ok(Date.now() - start < 10_000);
    assert.equal((await t.put('/v1/admin/gateway-config', { risk_reject_threshold: 0 }, { token: admin.token })).status, 200);
  });
});
