// Webhooks (api.md §20) through the HTTP surface, delivered by a real worker to local HTTP
// receivers: endpoint CRUD and its rules, every event type delivered once with both signatures
// (the contract's by hand, Standard Webhooks with the `standardwebhooks` package), retries on
// the clock the test advances, Retry-After, 410, give-up, isolation between receivers, the
// outbox (a rolled-back event is never sent) and at-least-once without a re-send after success.
import { after, afterEach, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { createHmac } from 'node:crypto';
import { sql } from 'kysely';
import { Webhook } from 'standardwebhooks';
import { registerUser, startTestApp, type TestApp, type TestUser } from './helpers/app.js';
import { auditRows, createWorkspace, inAccount, addMember } from './helpers/content-fixtures.js';
import { FAST_LEASES } from './helpers/run-client.js';
import { until } from './helpers/wait.js';
import { startWorker } from '../src/server.js';
import type { Worker } from '../src/worker/worker.js';
import { newId } from '../src/lib/ids.js';

interface Received {
  headers: http.IncomingHttpHeaders;
  body: string;
  json: any;
  at: number;
}
type Answer = { status: number; headers?: Record<string, string>; body?: string } | 'hang';

/** A local webhook receiver: records every request and answers with `respond`. */
class Receiver {
  readonly received: Received[] = [];
  respond: (r: Received, n: number) => Answer | Promise<Answer> = () => ({ status: 200, body: 'ok' });
  inFlight = 0;
  maxInFlight = 0;
  private constructor(private readonly server: http.Server) {}

  static async start(): Promise<Receiver> {
    const server = http.createServer();
    const r = new Receiver(server);
    server.on('request', (req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', async () => {
        const body = Buffer.concat(chunks).toString('utf8');
        const rec = { headers: req.headers, body, json: JSON.parse(body), at: Date.now() };
        r.received.push(rec);
        r.inFlight++;
        r.maxInFlight = Math.max(r.maxInFlight, r.inFlight);
        res.on('close', () => r.inFlight--);
        const answer = await r.respond(rec, r.received.length);
        if (answer === 'hang') return;
        res.writeHead(answer.status, answer.headers ?? {});
        res.end(answer.body ?? '');
      });
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    return r;
  }

  get url(): string {
    return `http://127.0.0.1:${(this.server.address() as AddressInfo).port}/hook`;
  }

  ofType(type: string): Received[] {
    return this.received.filter((r) => r.json.type === type);
  }

  async waitFor(n: number, what = `${n} deliveries`, timeoutMs = 15_000): Promise<Received[]> {
    await until(() => this.received.length >= n, what, timeoutMs);
    return this.received;
  }

  async close(): Promise<void> {
    this.server.closeAllConnections();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }
}

const settle = () => new Promise((r) => setTimeout(r, 400));

describe('webhooks (§20)', () => {
  let t: TestApp;
  let worker: Worker;
  let owner: TestUser;
  let opts: { token: string };
  const receivers: Receiver[] = [];

  async function setSetting(key: string, value: unknown): Promise<void> {
    const json = JSON.stringify(value);
    await t.ctx.db.insertInto('platform_settings').values({ key, value: json }).onConflict((oc) => oc.column('key').doUpdateSet({ value: json })).execute();
    await t.ctx.settings.invalidate();
  }

  async function clearSetting(key: string): Promise<void> {
    await t.ctx.db.deleteFrom('platform_settings').where('key', '=', key).execute();
    await t.ctx.settings.invalidate();
  }

  async function receiver(): Promise<Receiver> {
    const r = await Receiver.start();
    receivers.push(r);
    return r;
  }

  async function endpoint(user: TestUser, url: string, events: string[] = ['*'], headers: Record<string, string> = {}) {
    const res = await t.post('/v1/webhook-endpoints', { url, events }, { token: user.token, headers });
    assert.equal(res.status, 201, res.text);
    return res.body as { id: string; secret: string; [k: string]: unknown };
  }

  async function deliveries(endpointId: string, user = owner, query = '') {
    const res = await t.get(`/v1/webhook-endpoints/${endpointId}/deliveries${query}`, { token: user.token });
    assert.equal(res.status, 200, res.text);
    return res.body.data as any[];
  }

  /** Moves the clock the delivery schedule reads, and wakes the worker (no real wait). */
  function advance(ms: number): void {
    t.ctx.clock.advance(ms);
    t.ctx.engine.wakeWorkers();
  }

  async function waitRun(runId: string, as: { token: string }) {
    let run: any;
    await until(async () => {
      run = (await t.get(`/v1/runs/${runId}`, as)).body;
      return ['completed', 'failed', 'cancelled'].includes(run.status);
    }, `run ${runId} terminal`);
    return run;
  }

  /** A fresh user with its own account, so endpoints of other tests do not hear its events. */
  async function freshUser(): Promise<{ user: TestUser; o: { token: string } }> {
    const user = await registerUser(t);
    return { user, o: { token: user.token } };
  }

  before(async () => {
    t = await startTestApp(FAST_LEASES);
    worker = startWorker(t.ctx);
    await registerUser(t); // the platform admin
    owner = await registerUser(t);
    opts = { token: owner.token };
  });
  afterEach(async () => {
    t.ctx.clock.reset();
    for (const k of ['security.ssrf_allow_private', 'webhook.max_attempts', 'webhook.timeout_ms', 'webhook.retry_base_delay_ms']) await clearSetting(k);
  });
  after(async () => {
    await worker.stop();
    for (const r of receivers) await r.close();
    await t.close();
  });

  describe('endpoint CRUD (§20.3–§20.9)', () => {
    it('creates an endpoint: the secret is shown once, stored encrypted, and never listed', async () => {
      await setSetting('security.ssrf_allow_private', false);
      const res = await t.post('/v1/webhook-endpoints', { url: 'https://hooks.example.com/in', events: ['run.completed', 'run.completed', 'thread.created'], description: '  mine  ' }, opts);
      assert.equal(res.status, 201, res.text);
      const e = res.body;
      assert.match(e.secret, /^whsec_[A-Za-z0-9_-]{43}$/);
      assert.deepEqual(Object.keys(e).sort(), ['created_at', 'description', 'enabled', 'events', 'id', 'org_id', 'secret', 'updated_at', 'url']);
      assert.equal(e.org_id, owner.personalAccountId);
      assert.deepEqual(e.events, ['run.completed', 'thread.created']);
      assert.equal(e.enabled, true);
      assert.equal(e.description, 'mine');
      const got = await t.get(`/v1/webhook-endpoints/${e.id}`, opts);
      assert.equal(got.status, 200);
      assert.equal(got.body.secret, undefined);
      const list = await t.get('/v1/webhook-endpoints', opts);
      assert.ok(list.body.some((x: any) => x.id === e.id) && list.body.every((x: any) => x.secret === undefined));
      const row = await t.ctx.db.selectFrom('webhook_endpoints').select('secret_enc').where('id', '=', e.id).executeTakeFirstOrThrow();
      assert.ok(!row.secret_enc.includes(e.secret.slice(6)), 'stored encrypted');
      const audit = await auditRows(t, 'webhook_endpoint.create', e.id);
      assert.equal(audit.length, 1);
      assert.ok(!JSON.stringify(audit).includes(e.secret.slice(6)), 'the secret is not in the audit row');
      await t.del(`/v1/webhook-endpoints/${e.id}`, opts);
    });

    it('validates the body: url, events, description; the SSRF rule on the stored URL', async () => {
      await setSetting('security.ssrf_allow_private', false);
      const post = (body: unknown) => t.post('/v1/webhook-endpoints', body, opts);
      for (const body of [
        {},
        { url: 'https://a.example.com' },
        { events: ['*'] },
        { url: 'not a url', events: ['*'] },
        { url: 'ftp://a.example.com/x', events: ['*'] },
        { url: 'https://a.example.com', events: [] },
        { url: 'https://a.example.com', events: ['run.nope'] },
        { url: 'https://a.example.com', events: 'run.completed' },
        { url: 'https://a.example.com', events: ['*'], description: 'x'.repeat(201) },
        { url: 'https://a.example.com/' + 'x'.repeat(2048), events: ['*'] },
        { url: 42, events: ['*'] },
      ]) {
        const res = await post(body);
        assert.equal(res.status, 400, JSON.stringify(body) + ' ' + res.text);
        assert.equal(res.body.code, 'validation.error');
      }
      for (const url of ['http://a.example.com/x', 'https://127.0.0.1/x', 'https://localhost/x', 'https://u:p@a.example.com/x', 'https://[::1]/x', 'https://169.254.169.254/latest']) {
        const res = await post({ url, events: ['*'] });
        assert.equal(res.status, 400, url);
        assert.equal(res.body.code, 'policy.ssrf_blocked', url);
      }
      // With private targets allowed, http and loopback are accepted.
      await setSetting('security.ssrf_allow_private', true);
      const ok = await post({ url: 'http://127.0.0.1:9/x', events: ['*'], description: null });
      assert.equal(ok.status, 201, ok.text);
      assert.equal(ok.body.description, null);
      await t.del(`/v1/webhook-endpoints/${ok.body.id}`, opts);
    });

    it('updates, rotates the secret, deletes; unknown, malformed and foreign ids answer 404', async () => {
      await setSetting('security.ssrf_allow_private', false);
      const e = await endpoint(owner, 'https://a.example.com/in', ['thread.created']);
      const patch = (body: unknown, id = e.id) => t.patch(`/v1/webhook-endpoints/${id}`, body, opts);
      for (const body of [{}, { enabled: null }, { url: null }, { events: null }, { events: [] }, { enabled: 'yes' }]) {
        const res = await patch(body);
        assert.equal(res.status, 400, JSON.stringify(body) + res.text);
      }
      assert.equal((await patch({ url: 'http://a.example.com/in' })).body.code, 'policy.ssrf_blocked');
      const changed = await patch({ events: ['*'], description: 'd', url: 'https://b.example.com/in' });
      assert.equal(changed.status, 200, changed.text);
      assert.deepEqual([changed.body.events, changed.body.description, changed.body.url], [['*'], 'd', 'https://b.example.com/in']);
      const cleared = await patch({ description: null, enabled: false });
      assert.deepEqual([cleared.body.description, cleared.body.enabled], [null, false]);
      // PUT is PATCH (§1.1).
      assert.equal((await t.put(`/v1/webhook-endpoints/${e.id}`, { enabled: true }, opts)).body.enabled, true);
      const update = await auditRows(t, 'webhook_endpoint.update', e.id);
      assert.equal(update.length, 3);
      assert.deepEqual(update[0].before_state, { url: 'https://a.example.com/in', events: ['thread.created'], enabled: true, description: null });

      const rotated = await t.post(`/v1/webhook-endpoints/${e.id}/rotate-secret`, undefined, opts);
      assert.equal(rotated.status, 200, rotated.text);
      assert.match(rotated.body.secret, /^whsec_/);
      assert.notEqual(rotated.body.secret, e.secret);
      const rot = await auditRows(t, 'webhook_endpoint.rotate_secret', e.id);
      assert.equal(rot.length, 1);
      assert.ok(!JSON.stringify(rot).includes(rotated.body.secret.slice(6)));

      const other = await registerUser(t);
      for (const id of [newId(), 'not-a-uuid', e.id]) {
        const token = id === e.id ? other.token : owner.token;
        for (const res of [
          await t.get(`/v1/webhook-endpoints/${id}`, { token }),
          await t.patch(`/v1/webhook-endpoints/${id}`, { enabled: false }, { token }),
          await t.post(`/v1/webhook-endpoints/${id}/rotate-secret`, undefined, { token }),
          await t.get(`/v1/webhook-endpoints/${id}/deliveries`, { token }),
          await t.del(`/v1/webhook-endpoints/${id}`, { token }),
        ]) {
          assert.equal(res.status, 404, res.text);
          assert.equal(res.body.code, 'webhook_endpoints.not_found');
        }
      }
      const del = await t.del(`/v1/webhook-endpoints/${e.id}`, opts);
      assert.deepEqual([del.status, del.body], [200, { ok: true }]);
      assert.equal((await auditRows(t, 'webhook_endpoint.delete', e.id)).length, 1);
      assert.equal((await t.get(`/v1/webhook-endpoints/${e.id}`, opts)).status, 404);
      assert.equal((await t.del(`/v1/webhook-endpoints/${e.id}`, opts)).status, 404);
    });

    it('lists oldest first; 20 per account, also under concurrent creates; a deleted one frees its place', async () => {
      await setSetting('security.ssrf_allow_private', false);
      const { user, o } = await freshUser();
      const results = await Promise.all(Array.from({ length: 25 }, (_, i) => t.post('/v1/webhook-endpoints', { url: `https://h${i}.example.com/`, events: ['*'] }, o)));
      assert.equal(results.filter((r) => r.status === 201).length, 20);
      const refused = results.filter((r) => r.status !== 201);
      assert.equal(refused.length, 5);
      for (const r of refused) assert.deepEqual([r.status, r.body.code], [409, 'webhooks.limit_reached']);
      const list = (await t.get('/v1/webhook-endpoints', o)).body as any[];
      assert.equal(list.length, 20);
      // Oldest first (creates in the same millisecond may come in either order: created_at is shown to the ms).
      for (let i = 1; i < list.length; i++) assert.ok(list[i - 1].created_at <= list[i].created_at, `${list[i - 1].created_at} then ${list[i].created_at}`);
      assert.equal((await t.del(`/v1/webhook-endpoints/${list[0].id}`, o)).status, 200);
      assert.equal((await t.post('/v1/webhook-endpoints', { url: 'https://again.example.com/', events: ['*'] }, o)).status, 201);
      void user;
    });

    it('needs data.webhooks.manage: a member of a workspace is refused', async () => {
      const ws = await createWorkspace(t, owner);
      const member = await registerUser(t);
      await addMember(t, ws, member, 'member');
      const res = await t.get('/v1/webhook-endpoints', inAccount(member, ws));
      assert.deepEqual([res.status, res.body.code], [403, 'auth.forbidden']);
      assert.equal((await t.get('/v1/webhook-endpoints', inAccount(owner, ws))).status, 200);
    });

    it('the delivery list validates limit, before and status', async () => {
      await setSetting('security.ssrf_allow_private', false);
      const e = await endpoint(owner, 'https://a.example.com/in', ['thread.created']);
      for (const q of ['?limit=0', '?limit=201', '?status=done', `?before=${newId()}`, '?before=xyz']) {
        const res = await t.get(`/v1/webhook-endpoints/${e.id}/deliveries${q}`, opts);
        assert.deepEqual([res.status, res.body.code], [400, 'validation.error'], q);
      }
      assert.deepEqual(await deliveries(e.id, owner, '?status=pending&limit=5'), []);
      await t.del(`/v1/webhook-endpoints/${e.id}`, opts);
    });
  });

  describe('delivery', () => {
    before(async () => undefined);

    it('delivers every event type once, signed per the contract and per Standard Webhooks', async () => {
      await setSetting('security.ssrf_allow_private', true);
      const { user, o } = await freshUser();
      const all = await receiver();
      const onlyRuns = await receiver();
      const e = await endpoint(user, all.url);
      await endpoint(user, onlyRuns.url, ['run.completed']);

      const thread = (await t.post('/v1/threads', { title: 'hooked' }, o)).body;
      const message = (await t.post(`/v1/threads/${thread.id}/messages`, { content: 'hello' }, o)).body;
      const run = (await t.post(`/v1/threads/${thread.id}/runs`, {}, o)).body;
      await waitRun(run.run_id, o);
      const runDetail = (await t.get(`/v1/runs/${run.run_id}`, o)).body;
      const asking = (await t.post('/v1/threads', {}, o)).body;
      await t.post(`/v1/threads/${asking.id}/messages`, { content: JSON.stringify({ stub: { steps: [{ ask_input: 'colour?' }, { text: 'thanks' }] } }) }, o);
      const askRun = (await t.post(`/v1/threads/${asking.id}/runs`, {}, o)).body;
      let asked: any;
      await until(async () => (asked = (await t.get(`/v1/runs/${askRun.run_id}`, o)).body).status === 'waiting_for_input', 'waiting_for_input');
      assert.equal((await t.post(`/v1/runs/${askRun.run_id}:cancel`, {}, o)).status, 200);
      const failing = (await t.post('/v1/threads', {}, o)).body;
      await t.post(`/v1/threads/${failing.id}/messages`, { content: JSON.stringify({ stub: { steps: [{ error: { status: 400, message: 'bad' } }] } }) }, o);
      const failRun = (await t.post(`/v1/threads/${failing.id}/runs`, {}, o)).body;
      await waitRun(failRun.run_id, o);
      await waitRun(askRun.run_id, o);
      assert.equal((await t.del(`/v1/threads/${thread.id}`, o)).status, 204);

      // 3 threads, 3 user messages and 1 assistant message, 3 run ends, 1 pause, 1 delete.
      await all.waitFor(12, 'every event');
      await onlyRuns.waitFor(1, 'run.completed');
      await settle();
      assert.equal(all.received.length, 12, all.received.map((r) => r.json.type).join(', '));
      const count = (type: string) => all.ofType(type).length;
      assert.deepEqual(
        Object.fromEntries(['thread.created', 'message.created', 'run.completed', 'run.failed', 'run.cancelled', 'run.waiting_for_input', 'thread.deleted'].map((k) => [k, count(k)])),
        { 'thread.created': 3, 'message.created': 4, 'run.completed': 1, 'run.failed': 1, 'run.cancelled': 1, 'run.waiting_for_input': 1, 'thread.deleted': 1 },
      );
      assert.deepEqual(onlyRuns.received.map((r) => r.json.type), ['run.completed']);
      assert.equal(new Set(all.received.map((r) => r.json.id)).size, 12, 'every event once');

      // Payloads: the shapes the API answers (§20.1).
      const body = (r: Received) => r.json;
      assert.deepEqual(body(all.ofType('thread.created')[0]).data, thread);
      assert.deepEqual(body(all.ofType('message.created')[0]).data, message);
      const assistant = all.ofType('message.created').find((r) => r.json.data.role === 'assistant')!;
      assert.equal(assistant.json.data.run_id, run.run_id);
      assert.equal(assistant.json.data.content, '[stub] hello');
      const completed = all.ofType('run.completed')[0].json;
      assert.deepEqual(completed.data, runDetail);
      assert.equal(all.ofType('run.waiting_for_input')[0].json.data.run_id, askRun.run_id);
      assert.equal(all.ofType('run.waiting_for_input')[0].json.data.status, 'waiting_for_input');
      assert.equal(asked.status, 'waiting_for_input');
      assert.equal(all.ofType('run.failed')[0].json.data.error_class, 'provider.bad_request');
      assert.equal(all.ofType('run.cancelled')[0].json.data.status, 'cancelled');
      assert.deepEqual(all.ofType('thread.deleted')[0].json.data, { id: thread.id, org_id: user.personalAccountId });
      assert.deepEqual(Object.keys(completed), ['id', 'type', 'created_at', 'org_id', 'data']);
      assert.equal(completed.org_id, user.personalAccountId);
      assert.match(completed.created_at, /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$/);

      // Headers and signatures of every request.
      const wh = new Webhook(Buffer.from(e.secret, 'utf8').toString('base64'));
      for (const r of all.received) {
        const h = r.headers;
        assert.equal(h['content-type'], 'application/json');
        assert.equal(h['user-agent'], 'Arkloop-Webhook/1.0');
        assert.equal(h['x-arkloop-event'], r.json.type);
        assert.equal(h['webhook-id'], h['x-arkloop-delivery']);
        const m = /^t=(\d+),v1=([0-9a-f]{64})$/.exec(String(h['x-arkloop-signature']));
        assert.ok(m, String(h['x-arkloop-signature']));
        assert.equal(m[2], createHmac('sha256', Buffer.from(e.secret, 'utf8')).update(`${m[1]}.${r.body}`).digest('hex'));
        assert.ok(Math.abs(Number(m[1]) - Date.now() / 1000) < 300);
        assert.equal(h['webhook-timestamp'], m[1]);
        assert.deepEqual(wh.verify(r.body, h as Record<string, string>), r.json, 'Standard Webhooks verifies');
      }
      assert.throws(() => new Webhook(Buffer.from('whsec_other', 'utf8').toString('base64')).verify(all.received[0].body, all.received[0].headers as Record<string, string>));

      // The log: one succeeded row per delivery, newest first, with the body as payload.
      const log = await deliveries(e.id, user, '?limit=200');
      assert.equal(log.length, 12);
      for (const d of log) {
        assert.deepEqual([d.status, d.attempts, d.last_status_code, d.last_error, d.next_attempt_at], ['succeeded', 1, 200, null, null]);
        assert.ok(d.delivered_at);
        const sent = all.received.find((r) => r.headers['webhook-id'] === d.id)!;
        assert.deepEqual(d.payload, sent.json);
        assert.equal(d.event_id, sent.json.id);
        assert.equal(d.event_type, sent.json.type);
      }
      const page1 = await deliveries(e.id, user, '?limit=5');
      const page2 = await deliveries(e.id, user, `?limit=5&before=${page1[4].id}`);
      assert.deepEqual([...page1, ...page2].map((d) => d.id), log.slice(0, 10).map((d) => d.id));
      assert.equal((await deliveries(e.id, user, '?status=failed')).length, 0);
    });

    it('retries with growing delays on the controlled clock; redirects are not followed; the same id every time', async () => {
      await setSetting('security.ssrf_allow_private', true);
      const { user, o } = await freshUser();
      const r = await receiver();
      const elsewhere = await receiver();
      r.respond = (_, n) => (n === 1 ? { status: 302, headers: { location: elsewhere.url } } : n === 2 ? { status: 500 } : { status: 204 });
      const e = await endpoint(user, r.url, ['thread.created']);
      await t.post('/v1/threads', {}, o);

      await r.waitFor(1);
      let [d] = await deliveries(e.id, user);
      await until(async () => ([d] = await deliveries(e.id, user)) && d.attempts === 1, 'first attempt recorded');
      assert.deepEqual([d.status, d.last_status_code, d.last_error], ['pending', 302, 'HTTP 302']);
      const delay1 = Date.parse(d.next_attempt_at) - t.ctx.clock.nowMs();
      assert.ok(delay1 > 8_000 && delay1 <= 10_000, `first retry after ~10 s, got ${delay1}`);
      await settle();
      assert.equal(r.received.length, 1, 'no retry before its time');
      assert.equal(elsewhere.received.length, 0, 'the redirect was not followed');

      advance(10_000);
      await r.waitFor(2);
      await until(async () => ([d] = await deliveries(e.id, user)) && d.attempts === 2, 'second attempt recorded');
      assert.deepEqual([d.status, d.last_status_code], ['pending', 500]);
      const delay2 = Date.parse(d.next_attempt_at) - t.ctx.clock.nowMs();
      assert.ok(delay2 > 18_000 && delay2 <= 20_000, `second retry after ~20 s, got ${delay2}`);
      advance(15_000);
      await settle();
      assert.equal(r.received.length, 2, 'not yet');
      advance(5_000);
      await r.waitFor(3);
      await until(async () => ([d] = await deliveries(e.id, user)) && d.status === 'succeeded', 'success recorded');
      assert.deepEqual([d.attempts, d.last_status_code, d.last_error], [3, 204, null]);
      assert.equal(new Set(r.received.map((x) => x.headers['webhook-id'])).size, 1);
      assert.equal(new Set(r.received.map((x) => x.json.id)).size, 1);
      assert.equal(new Set(r.received.map((x) => x.body)).size, 1, 'the same body on every attempt');
      advance(3_600_000);
      await settle();
      assert.equal(r.received.length, 3, 'never re-sent after a success');
    });

    it('honours a longer Retry-After (capped at 1 h)', async () => {
      await setSetting('security.ssrf_allow_private', true);
      const { user, o } = await freshUser();
      const r = await receiver();
      r.respond = (_, n) => (n === 1 ? { status: 503, headers: { 'retry-after': '120' } } : n === 2 ? { status: 429, headers: { 'retry-after': '86400' } } : { status: 200 });
      const e = await endpoint(user, r.url, ['thread.created']);
      await t.post('/v1/threads', {}, o);
      let d: any;
      await until(async () => ([d] = await deliveries(e.id, user)) && d?.attempts === 1, 'first attempt');
      const wait1 = Date.parse(d.next_attempt_at) - t.ctx.clock.nowMs();
      assert.ok(wait1 > 118_000 && wait1 <= 120_000, `Retry-After 120 s, got ${wait1}`);
      advance(10_000);
      await settle();
      assert.equal(r.received.length, 1);
      advance(110_000);
      await until(async () => ([d] = await deliveries(e.id, user)) && d.attempts === 2, 'second attempt');
      const wait2 = Date.parse(d.next_attempt_at) - t.ctx.clock.nowMs();
      assert.ok(wait2 > 3_598_000 && wait2 <= 3_600_000, `capped at 1 h, got ${wait2}`);
      advance(3_600_000);
      await until(async () => ([d] = await deliveries(e.id, user)) && d.status === 'succeeded', 'third attempt succeeds');
    });

    it('gives up after webhook.max_attempts', async () => {
      await setSetting('security.ssrf_allow_private', true);
      await setSetting('webhook.max_attempts', 3);
      await setSetting('webhook.retry_base_delay_ms', 1000);
      const { user, o } = await freshUser();
      const r = await receiver();
      r.respond = () => ({ status: 500, body: 'x'.repeat(5000) });
      const e = await endpoint(user, r.url, ['thread.created']);
      await t.post('/v1/threads', {}, o);
      let d: any;
      await until(async () => ([d] = await deliveries(e.id, user)) && d?.attempts === 1, 'attempt 1');
      advance(1_000);
      await until(async () => ([d] = await deliveries(e.id, user)) && d.attempts === 2, 'attempt 2');
      advance(2_000);
      await until(async () => ([d] = await deliveries(e.id, user)) && d.status === 'failed', 'given up');
      assert.deepEqual([d.attempts, d.last_status_code, d.last_error, d.next_attempt_at, d.delivered_at], [3, 500, 'HTTP 500', null, null]);
      const stored = await t.ctx.db.selectFrom('webhook_deliveries').select('response_body').where('id', '=', d.id).executeTakeFirstOrThrow();
      assert.equal(stored.response_body?.length, 1024, 'the response body is kept truncated');
      advance(3_600_000);
      await settle();
      assert.equal(r.received.length, 3);
      assert.equal((await deliveries(e.id, user, '?status=failed')).length, 1);
      assert.equal((await deliveries(e.id, user, '?status=pending')).length, 0);
    });

    it('410 Gone fails the delivery and disables the endpoint; a disabled endpoint gets nothing new', async () => {
      await setSetting('security.ssrf_allow_private', true);
      const { user, o } = await freshUser();
      const r = await receiver();
      r.respond = (_, n) => (n === 1 ? { status: 500 } : { status: 410 });
      const e = await endpoint(user, r.url, ['thread.created']);
      await t.post('/v1/threads', {}, o); // attempt 1: 500, pending
      await until(async () => (await deliveries(e.id, user))[0]?.attempts === 1, 'attempt 1');
      await t.post('/v1/threads', {}, o); // attempt 1: 410
      await until(async () => (await deliveries(e.id, user, '?status=failed')).length === 2, 'both failed');
      const [second, first] = await deliveries(e.id, user);
      assert.deepEqual([second.status, second.last_status_code], ['failed', 410]);
      assert.deepEqual([first.status, first.last_error], ['failed', 'endpoint disabled']);
      assert.equal((await t.get(`/v1/webhook-endpoints/${e.id}`, { token: user.token })).body.enabled, false);
      // The account's audit log says who disabled it: the platform (no actor), and why.
      const audit = (await t.get(`/v1/audit-logs?action=webhook_endpoint.update&target_id=${e.id}&include=state`, { token: user.token })).body.data;
      assert.equal(audit.length, 1);
      assert.deepEqual([audit[0].actor_user_id, audit[0].before_state.enabled, audit[0].after_state.enabled, audit[0].metadata.delivery_id], [null, true, false, second.id]);
      await t.post('/v1/threads', {}, o);
      advance(3_600_000);
      await settle();
      assert.equal(r.received.length, 2);
      assert.equal((await deliveries(e.id, user)).length, 2, 'no delivery row for a disabled endpoint');
    });

    it('disabling ends pending deliveries as failed; deleting drops them; every attempt passes the SSRF guard', async () => {
      await setSetting('security.ssrf_allow_private', true);
      const { user, o } = await freshUser();
      const r = await receiver();
      r.respond = () => ({ status: 500 });
      const a = await endpoint(user, r.url, ['thread.created']);
      const b = await endpoint(user, r.url, ['thread.created']);
      await t.post('/v1/threads', {}, o);
      await until(async () => (await deliveries(a.id, user))[0]?.attempts === 1 && (await deliveries(b.id, user))[0]?.attempts === 1, 'first attempts');
      assert.equal((await t.patch(`/v1/webhook-endpoints/${a.id}`, { enabled: false }, { token: user.token })).status, 200);
      const [da] = await deliveries(a.id, user);
      assert.deepEqual([da.status, da.last_error, da.next_attempt_at], ['failed', 'endpoint disabled', null]);
      assert.equal((await t.del(`/v1/webhook-endpoints/${b.id}`, { token: user.token })).status, 200);
      const left = await t.ctx.db.selectFrom('webhook_deliveries').select('id').where('endpoint_id', '=', b.id).execute();
      assert.equal(left.length, 0, 'pending deliveries dropped');
      const jobs = await t.ctx.db.selectFrom('jobs').select('id').where('concurrency_key', 'in', [a.id, b.id]).execute();
      assert.equal(jobs.length, 0, 'and their jobs');

      // The stored URL was accepted while private targets were allowed; the next attempt is refused.
      r.respond = () => ({ status: 200 });
      const c = await endpoint(user, r.url, ['thread.created']);
      await setSetting('security.ssrf_allow_private', false);
      const before = r.received.length;
      await t.post('/v1/threads', {}, o);
      let d: any;
      await until(async () => ([d] = await deliveries(c.id, user)) && d?.attempts === 1, 'refused attempt recorded');
      assert.equal(d.status, 'pending');
      assert.match(d.last_error, /^policy\.ssrf_blocked/);
      assert.equal(d.last_status_code, null);
      assert.equal(r.received.length, before, 'nothing reached the private address');
      await setSetting('security.ssrf_allow_private', true);
      advance(10_000);
      await until(async () => ([d] = await deliveries(c.id, user)) && d.status === 'succeeded', 'allowed again');
    });

    it('a receiver that never answers delays neither another endpoint, nor runs, nor the API', async () => {
      await setSetting('security.ssrf_allow_private', true);
      const { user, o } = await freshUser();
      const dead = await receiver();
      dead.respond = () => 'hang';
      const healthy = await receiver();
      const d = await endpoint(user, dead.url, ['thread.created', 'message.created']);
      await endpoint(user, healthy.url, ['thread.created']);
      const started = Date.now();
      const threads = [];
      for (let i = 0; i < 12; i++) threads.push((await t.post('/v1/threads', {}, o)).body);
      await healthy.waitFor(12, 'the healthy endpoint', 5_000);
      const healthyDone = Date.now() - started;
      assert.ok(healthyDone < 5_000, `healthy receiver served in ${healthyDone} ms`);
      await until(() => dead.received.length >= 4, 'the dead receiver holds its slots');
      await settle();
      assert.ok(dead.maxInFlight <= t.ctx.config.workerKeyConcurrency, `at most ${t.ctx.config.workerKeyConcurrency} at once per endpoint, saw ${dead.maxInFlight}`);
      // Runs and the API go on.
      await t.post(`/v1/threads/${threads[0].id}/messages`, { content: 'still here' }, o);
      const apiStart = Date.now();
      const run = (await t.post(`/v1/threads/${threads[0].id}/runs`, {}, o)).body;
      assert.equal((await waitRun(run.run_id, o)).status, 'completed');
      assert.ok(Date.now() - apiStart < 5_000);
      // Clean up: disabling ends its pending deliveries; the hung requests are cut.
      await t.patch(`/v1/webhook-endpoints/${d.id}`, { enabled: false }, { token: user.token });
      dead.respond = () => ({ status: 200 });
      await dead.close();
      await until(async () => (await t.ctx.db.selectFrom('jobs').select('id').where('concurrency_key', '=', d.id).execute()).length === 0, 'dead endpoint jobs gone');
    });

    it('a rolled-back event is never sent (the deliveries are written in its transaction)', async () => {
      await setSetting('security.ssrf_allow_private', true);
      const { user, o } = await freshUser();
      const r = await receiver();
      const e = await endpoint(user, r.url, ['message.created']);
      const thread = (await t.post('/v1/threads', {}, o)).body;
      // A check that fails at COMMIT, after the message and its deliveries were written.
      await sql`CREATE OR REPLACE FUNCTION test_refuse_message() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN IF NEW.content = 'roll me back' THEN RAISE EXCEPTION 'refused at commit'; END IF; RETURN NULL; END $$`.execute(t.ctx.db);
      await sql`CREATE CONSTRAINT TRIGGER test_refuse_message AFTER INSERT ON messages DEFERRABLE INITIALLY DEFERRED
        FOR EACH ROW EXECUTE FUNCTION test_refuse_message()`.execute(t.ctx.db);
      try {
        const res = await t.post(`/v1/threads/${thread.id}/messages`, { content: 'roll me back' }, o);
        assert.equal(res.status, 500, res.text);
        const ok = await t.post(`/v1/threads/${thread.id}/messages`, { content: 'kept' }, o);
        assert.equal(ok.status, 201);
        await r.waitFor(1);
        await settle();
        assert.deepEqual(r.received.map((x) => x.json.data.content), ['kept']);
        assert.equal((await deliveries(e.id, user)).length, 1);
        const msgs = (await t.get(`/v1/threads/${thread.id}/messages`, o)).body as any[];
        assert.deepEqual(msgs.map((m) => m.content), ['kept']);
      } finally {
        await sql`DROP TRIGGER test_refuse_message ON messages`.execute(t.ctx.db);
      }
    });

    it('at least once: a worker gone between the receiver\'s answer and the log update re-sends with the same id; never after a recorded success', async () => {
      await setSetting('security.ssrf_allow_private', true);
      const { user, o } = await freshUser();
      const r = await receiver();
      let stopping: Promise<void> | null = null;
      r.respond = async (_, n) => {
        if (n === 1) {
          // The worker goes away while the receiver handles the request: its answer is never recorded.
          stopping = worker.stop();
          await stopping;
        }
        return { status: 200 };
      };
      const e = await endpoint(user, r.url, ['thread.created']);
      await t.post('/v1/threads', {}, o);
      await r.waitFor(1);
      await until(() => stopping !== null, 'worker stopping');
      await stopping;
      let [d] = await deliveries(e.id, user);
      assert.deepEqual([d.status, d.attempts], ['pending', 0], 'the attempt was not recorded');
      worker = startWorker(t.ctx); // its successor takes the job once the lease expires
      await r.waitFor(2, 'the re-send', 15_000);
      await until(async () => ([d] = await deliveries(e.id, user)) && d.status === 'succeeded', 'success recorded');
      assert.equal(r.received[0].headers['webhook-id'], r.received[1].headers['webhook-id'], 'same webhook-id: the receiver dedupes');
      assert.equal(r.received[0].json.id, r.received[1].json.id);
      assert.equal(d.attempts, 1);

      // A job left behind after the success was recorded (the worker died before deleting it)
      // finds the delivery done and sends nothing.
      await t.ctx.db.insertInto('jobs').values({ id: newId(), type: 'webhook.deliver', payload: JSON.stringify({ v: 1, delivery_id: d.id }), run_at: new Date(), concurrency_key: e.id, created_at: new Date(), updated_at: new Date() }).execute();
      t.ctx.engine.wakeWorkers();
      await until(async () => (await t.ctx.db.selectFrom('jobs').select('id').where('concurrency_key', '=', e.id).execute()).length === 0, 'left-over job done');
      await settle();
      assert.equal(r.received.length, 2, 'never re-sent after a recorded success');
    });
  });
});
