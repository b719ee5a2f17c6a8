// The gateway inside `arkloop serve` (ARKLOOP_SERVE_GATEWAY=1) hands each request to the API
// router of its own process instead of proxying over a socket. The same contract from outside:
// bodies of every framing, the client IP the gateway resolved (and only that one) reaching the
// API, trace ids, rate-limit headers merged into the API's answer and refusals that never reach
// it, identity headers kept from the client but logged, and event streams live to the end.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import { registerUser, startTestApp, type TestApp, type TestUser } from './helpers/app.js';
import { createWorkspace } from './helpers/accounts-fixtures.js';
import { expectError } from './helpers/assert.js';
import { assertLoggedAs, listenTestApp, rawRequest, startTestGateway, uploadAudio, type TestGateway } from './helpers/gateway.js';

const UA = 'python-httpx/0.27';

describe('gateway handing requests to the API of its own process', () => {
  let t: TestApp;
  let admin: TestUser;
  let user: TestUser;
  let g: TestGateway;

  before(async () => {
    // No ARKLOOP_TRUST_X_FORWARDED_FOR: the hand-off, not a header, tells the API the client IP.
    t = await startTestApp({ ARKLOOP_SSE_HEARTBEAT_SECONDS: '0.1' }, { worker: true });
    admin = await registerUser(t);
    user = await registerUser(t);
    // Its address stays the upstream of record (the health probe), as in `arkloop serve`.
    g = await startTestGateway([await listenTestApp(t)], { local: t, accessLog: t.ctx.accessLog, trustIncomingTraceId: true });
  });
  after(async () => {
    await g?.close();
    await t?.close();
  });

  const auth = (u: TestUser) => ({ authorization: `Bearer ${u.token}`, 'user-agent': UA });

  it('passes method, path, query and bodies (with a length or chunked); trace id and limits on the answer, identity headers logged but not sent', async () => {
    const created = await rawRequest(g.base, '/v1/threads', {
      method: 'POST',
      headers: { ...auth(user), 'content-type': 'application/json', 'x-trace-id': 'local-trace-0001' },
      body: JSON.stringify({ title: 'via the gateway' }),
    });
    assert.equal(created.status, 201, created.text);
    assert.equal(created.json.title, 'via the gateway');
    assert.equal(created.headers['x-trace-id'], 'local-trace-0001', 'the API answers with the trace id the gateway chose');
    assert.equal(created.headers['x-ratelimit-limit'], '600');
    assert.equal(created.headers['x-ratelimit-remaining'], '599');
    for (const h of ['x-arkloop-identity-type', 'x-arkloop-org-id', 'x-arkloop-user-id', 'x-arkloop-username']) assert.equal(created.headers[h], undefined, h);

    const chunked = await rawRequest(g.base, `/v1/threads/${created.json.id}/messages`, {
      method: 'POST',
      headers: { ...auth(user), 'content-type': 'application/json', 'transfer-encoding': 'chunked' },
      body: JSON.stringify({ content: 'x'.repeat(50_000) }),
    });
    assert.equal(chunked.status, 201, chunked.text);
    assert.equal(chunked.json.content.length, 50_000);

    const listed = await rawRequest(g.base, `/v1/threads/${created.json.id}/messages?limit=1`, { headers: auth(user) });
    assert.equal(listed.status, 200, listed.text);
    assert.equal(listed.json.length, 1);
    assert.equal(Number(listed.headers['content-length']), Buffer.byteLength(listed.text));

    // The multipart route's own limit applies, not the JSON one: a 2 MiB upload reaches its handler.
    const upload = await uploadAudio(g.base, user.token, 2 * 1024 * 1024);
    assert.equal(upload.status, 409, upload.text);
    assert.equal(upload.body.code, 'asr.not_configured');

    const bad = await rawRequest(g.base, '/v1/threads', { method: 'POST', headers: { ...auth(user), 'content-type': 'application/json' }, body: '{"title":' });
    expectError({ status: bad.status, body: bad.json, headers: bad.headers as never, text: bad.text }, 422, 'validation.error');

    const log = await t.get('/v1/admin/access-log', { token: admin.token, query: { method: 'POST', path: '/v1/threads' } });
    assert.equal(log.status, 200, log.text);
    const entry = log.body.data.find((e: { trace_id: string }) => e.trace_id === 'local-trace-0001');
    assert.equal(entry.method, 'POST');
    assert.equal(entry.path, '/v1/threads');
    assert.equal(entry.status_code, 201);
    assertLoggedAs(entry, user);
    assert.equal(entry.client_ip, '127.0.0.1');
    assert.equal(entry.ua_type, 'sdk');
  });

  it('the API sees the client IP the gateway resolved per ip_mode; a spoofed X-Forwarded-For from an untrusted peer never reaches it', async () => {
    const acct = (await createWorkspace(t, user)).id;
    // A rule refusing everyone is refused with the caller's IP as the API sees it.
    const apiSees = async (headers: Record<string, string>, localAddress = '127.0.0.1') => {
      const r = await rawRequest(g.base, '/v1/ip-rules', {
        method: 'POST',
        headers: { ...auth(user), ...headers, 'x-account-id': acct, 'content-type': 'application/json' },
        body: JSON.stringify({ type: 'blocklist', cidr: '0.0.0.0/0' }),
        localAddress,
      });
      expectError({ status: r.status, body: r.json, headers: r.headers as never, text: r.text }, 400, 'ip_rules.would_lock_out');
      return r.json.details.ip;
    };
    await g.set({ 'gateway.ip_mode': 'direct' });
    assert.equal(await apiSees({ 'x-forwarded-for': '203.0.113.9' }), '127.0.0.1');
    await g.set({ 'gateway.ip_mode': 'trusted_proxy', 'gateway.trusted_cidrs': '127.0.0.1/32' });
    assert.equal(await apiSees({ 'x-forwarded-for': '203.0.113.9, 198.51.100.1' }), '198.51.100.1');
    assert.equal(await apiSees({ 'x-forwarded-for': '203.0.113.9' }, '127.0.0.2'), '127.0.0.2', 'untrusted peer: its header is ignored');
    await g.set({ 'gateway.ip_mode': 'direct', 'gateway.trusted_cidrs': '' });
  });

  it('refuses over the limit before the API: the 429 request changes nothing', async () => {
    await g.set({ 'gateway.ratelimit_capacity': 1, 'gateway.ratelimit_rate_per_minute': 1 });
    try {
      const fresh = await registerUser(t);
      const post = () => rawRequest(g.base, '/v1/threads', { method: 'POST', headers: { ...auth(fresh), 'content-type': 'application/json' }, body: '{"title":"limited"}' });
      assert.equal((await post()).status, 201);
      const refused = await post();
      expectError({ status: refused.status, body: refused.json, headers: refused.headers as never, text: refused.text }, 429, 'rate_limit');
      assert.ok(Number(refused.headers['retry-after']) > 0);
      const threads = await t.get('/v1/threads', { token: fresh.token });
      assert.deepEqual(threads.body.map((x: { title: string }) => x.title), ['limited'], 'one thread: the refused request never reached the API');
    } finally {
      await g.set({ 'gateway.ratelimit_capacity': 600, 'gateway.ratelimit_rate_per_minute': 600 });
    }
  });

  it('streams run events live, resumes with Last-Event-ID, and a client that leaves frees its stream', async () => {
    const th = await t.post('/v1/threads', {}, { token: user.token });
    await t.post(`/v1/threads/${th.body.id}/messages`, { content: JSON.stringify({ stub: { steps: [{ ask_input: 'go on?' }, { text: 'finished' }] } }) }, { token: user.token });
    const runId = (await t.post(`/v1/threads/${th.body.id}/runs`, {}, { token: user.token })).body.run_id;

    // Read until the run waits and two heartbeats came: the stream is live, not buffered to its end.
    const first = await readSse(`${g.base}/v1/runs/${runId}/events`, auth(user), (text) => text.includes('run.waiting_for_input') && (text.match(/: ping/g) ?? []).length >= 2);
    assert.equal(first.status, 200);
    assert.match(String(first.headers['content-type']), /text\/event-stream/);
    assert.equal(first.headers['x-arkloop-identity-type'], undefined);
    assert.equal(first.headers['x-ratelimit-limit'], '600');
    const ids = [...first.text.matchAll(/^id: (\d+)$/gm)].map((m) => Number(m[1]));
    assert.deepEqual(ids, ids.map((_, i) => i + 1));
    const last = ids.at(-1)!;

    const rest = readSse(`${g.base}/v1/runs/${runId}/events`, { ...auth(user), 'last-event-id': String(last) }, (text) => text.includes('run.completed'));
    await new Promise((r) => setTimeout(r, 100));
    assert.equal((await t.post(`/v1/runs/${runId}/input`, { content: 'yes' }, { token: user.token })).status, 200);
    const resumed = await rest;
    const next = [...resumed.text.matchAll(/^id: (\d+)$/gm)].map((m) => Number(m[1]));
    assert.deepEqual(next, next.map((_, i) => last + 1 + i), 'every event once, in order, after the last one seen');

    // Both streams were closed by the client: the API holds none of them any more.
    const deadline = Date.now() + 3000;
    while (t.ctx.engine.hub.subscriptions > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    assert.equal(t.ctx.engine.hub.subscriptions, 0);

    // Streams the client closed are logged too, with the status they were sent and their length.
    const log = await t.get('/v1/admin/access-log', { token: admin.token, query: { path: `/v1/runs/${runId}/events` } });
    assert.equal(log.body.data.length, 2);
    for (const e of log.body.data) {
      assert.equal(e.status_code, 200);
      assert.equal(e.user_id, user.id);
      assert.ok(e.duration_ms >= 100, 'held until the client left');
    }
  });
});

/** Reads an event stream as text until `done` says so, then leaves. */
function readSse(url: string, headers: Record<string, string>, done: (text: string) => boolean): Promise<{ status: number; headers: http.IncomingHttpHeaders; text: string }> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`stream did not reach its end within 10 s: ${url}`)), 10_000);
    const req = http.get(url, { headers: { accept: 'text/event-stream', ...headers }, agent: false }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (d: string) => {
        text += d;
        if (done(text)) {
          clearTimeout(timer);
          req.destroy();
          resolve({ status: res.statusCode!, headers: res.headers, text });
        }
      });
    });
    req.on('error', (err) => {
      if (!req.destroyed) reject(err);
    });
  });
}
