// IP rules (api.md §23): CRUD, validation and normalisation, the 200-rule limit under
// concurrency, would_lock_out / force, audit rows; and enforcement: a matrix of IPv4/IPv6
// rules × client addresses (IPv4-mapped included) × untrusted and trusted X-Forwarded-For, for
// access tokens and API keys, the SSE stream, who is and is not subject, the order of checks,
// the rate-limited `ip_rule.denied` row (also between two app instances on one database), and
// a change seen by the next request.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { registerUser, startTestApp, type TestApp, type TestUser } from './helpers/app.js';
import { createWorkspace, joinAccount } from './helpers/accounts-fixtures.js';
import { expectError, expectFieldError } from './helpers/assert.js';
import { newId } from '../src/lib/ids.js';
import { ipRulesChanged } from '../src/modules/ip-rules/enforce.js';
import { parseCidr } from '../src/modules/ip-rules/cidr.js';

interface CallOpts {
  token?: string;
  account?: string;
  headers?: Record<string, string>;
  /** The socket address the request comes from (default 127.0.0.1). */
  remote?: string;
  xff?: string;
  body?: unknown;
}

async function call(t: TestApp, method: string, url: string, o: CallOpts = {}) {
  const headers: Record<string, string> = { ...(o.headers ?? {}) };
  if (o.token) headers.authorization = `Bearer ${o.token}`;
  if (o.account) headers['x-account-id'] = o.account;
  if (o.xff) headers['x-forwarded-for'] = o.xff;
  if (o.body !== undefined) headers['content-type'] = 'application/json';
  const res = await t.app.inject({
    method: method as 'GET',
    url,
    headers,
    payload: o.body === undefined ? undefined : JSON.stringify(o.body),
    remoteAddress: o.remote ?? '127.0.0.1',
  });
  const json = String(res.headers['content-type'] ?? '').includes('json') && res.body ? JSON.parse(res.body) : undefined;
  return { status: res.statusCode, body: json, headers: res.headers as Record<string, string | string[] | undefined>, text: res.body };
}

async function addRule(t: TestApp, user: TestUser, account: string, type: 'allowlist' | 'blocklist', cidr: string, extra: Record<string, unknown> = {}) {
  const res = await call(t, 'POST', '/v1/ip-rules', { token: user.token, account, body: { type, cidr, force: true, ...extra } });
  assert.equal(res.status, 201, res.text);
  return res.body;
}

const deniedRows = (t: TestApp, orgId: string) =>
  t.ctx.db.selectFrom('audit_logs').selectAll().where('action', '=', 'ip_rule.denied').where('org_id', '=', orgId).orderBy('created_at').execute();

describe('IP rules', () => {
  let t: TestApp;
  let owner: TestUser;
  let member: TestUser;
  let ws: string;

  before(async () => {
    t = await startTestApp();
    await registerUser(t); // the platform admin
    owner = await registerUser(t);
    member = await registerUser(t);
    ws = (await createWorkspace(t, owner)).id;
    await joinAccount(t, owner, ws, member, 'member');
  });
  after(async () => { await t?.close(); });

  describe('CRUD', () => {
    it('create answers the normalised rule; list is oldest first; delete is 204 and then 404', async () => {
      const acct = (await createWorkspace(t, owner)).id;
      const as = { token: owner.token, account: acct };
      const a = await call(t, 'POST', '/v1/ip-rules', { ...as, body: { type: 'blocklist', cidr: '203.0.113.77/24', note: 'scanner' } });
      assert.equal(a.status, 201, a.text);
      assert.deepEqual(Object.keys(a.body).sort(), ['cidr', 'created_at', 'id', 'note', 'org_id', 'type']);
      assert.equal(a.body.cidr, '203.0.113.0/24');
      assert.equal(a.body.org_id, acct);
      assert.equal(a.body.note, 'scanner');
      assert.match(a.body.created_at, /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$/);
      const b = await call(t, 'POST', '/v1/ip-rules', { ...as, body: { type: 'allowlist', cidr: '127.0.0.1' } });
      assert.equal(b.status, 201, b.text);
      assert.equal(b.body.cidr, '127.0.0.1/32');
      assert.equal(b.body.note, null);
      const list = await call(t, 'GET', '/v1/ip-rules', as);
      assert.equal(list.status, 200);
      assert.deepEqual(list.body.map((r: { id: string }) => r.id), [a.body.id, b.body.id]);
      assert.equal((await call(t, 'DELETE', `/v1/ip-rules/${a.body.id}`, as)).status, 204);
      expectError(await call(t, 'DELETE', `/v1/ip-rules/${a.body.id}`, as), 404, 'ip_rules.not_found');
      expectError(await call(t, 'DELETE', '/v1/ip-rules/not-a-uuid', as), 404, 'ip_rules.not_found');
      expectError(await call(t, 'DELETE', `/v1/ip-rules/${newId()}`, as), 404, 'ip_rules.not_found');
      assert.deepEqual((await call(t, 'GET', '/v1/ip-rules', as)).body.map((r: { id: string }) => r.id), [b.body.id]);
    });

    it("another account's rule is a 404 and is not listed", async () => {
      const other = await registerUser(t);
      const theirs = await addRule(t, other, other.personalAccountId, 'blocklist', '198.18.0.0/15');
      expectError(await call(t, 'DELETE', `/v1/ip-rules/${theirs.id}`, { token: owner.token, account: ws }), 404, 'ip_rules.not_found');
      const mine = await call(t, 'GET', '/v1/ip-rules', { token: owner.token, account: ws });
      assert.ok(!mine.body.some((r: { id: string }) => r.id === theirs.id));
      assert.equal((await call(t, 'GET', '/v1/ip-rules', { token: other.token })).body.length, 1);
    });

    it('cidr is normalised to its network address; IPv4-mapped ranges become IPv4', async () => {
      const acct = (await createWorkspace(t, owner)).id;
      const cases: Array<[string, string]> = [
        ['10.1.2.3/8', '10.0.0.0/8'],
        ['192.168.1.7', '192.168.1.7/32'],
        ['  172.16.5.4/12  ', '172.16.0.0/12'],
        ['2001:DB8:0:0::1/32', '2001:db8::/32'],
        ['2001:db8::1', '2001:db8::1/128'],
        ['fe80::1:2:3:4/64', 'fe80::/64'],
        ['::ffff:11.9.8.7/104', '11.0.0.0/8'],
        ['::ffff:192.0.2.1', '192.0.2.1/32'],
        ['::/0', '::/0'],
        ['0.0.0.0/0', '0.0.0.0/0'], // last: it blocks the caller too
      ];
      for (const [input, stored] of cases) {
        const res = await call(t, 'POST', '/v1/ip-rules', { token: owner.token, account: acct, body: { type: 'blocklist', cidr: input, force: true } });
        assert.equal(res.status, 201, `${input}: ${res.text}`);
        assert.equal(res.body.cidr, stored, input);
      }
    });

    it('validation: type, cidr, note and force', async () => {
      const as = { token: owner.token, account: ws };
      const post = (body: unknown) => call(t, 'POST', '/v1/ip-rules', { ...as, body });
      expectFieldError(await post({ cidr: '10.0.0.0/8' }), 'type');
      expectFieldError(await post({ type: 'denylist', cidr: '10.0.0.0/8' }), 'type');
      expectFieldError(await post({ type: 'Blocklist', cidr: '10.0.0.0/8' }), 'type');
      expectFieldError(await post({ type: 'blocklist' }), 'cidr');
      for (const cidr of ['', ' ', '10.0.0.0/33', '10.0.0.0/-1', '10.0.0.0/08', '10.0.0/8', '010.0.0.1', '0x0a.0.0.1', '10.0.0.256', '1.2.3.4/', '/8', '2001:db8::/129', '2001:db8:::1', 'fe80::1%eth0', 'example.com', '10.0.0.0/8/8', 'x'.repeat(101), 42, null]) {
        expectFieldError(await post({ type: 'blocklist', cidr }), 'cidr');
      }
      expectFieldError(await post({ type: 'blocklist', cidr: '10.0.0.0/8', note: 'x'.repeat(201) }), 'note');
      expectFieldError(await post({ type: 'blocklist', cidr: '10.0.0.0/8', note: 5 }), 'note');
      expectFieldError(await post({ type: 'blocklist', cidr: '10.0.0.0/8', force: 'yes' }), 'force');
      assert.equal((await post({ type: 'blocklist', cidr: '198.51.100.0/24', note: 'x'.repeat(200), force: null })).status, 201);
    });

    it('409 ip_rules.exists for the same type and (normalised) cidr; the other type is another rule', async () => {
      const acct = (await createWorkspace(t, owner)).id;
      await addRule(t, owner, acct, 'blocklist', '192.0.2.0/24');
      const again = await call(t, 'POST', '/v1/ip-rules', { token: owner.token, account: acct, body: { type: 'blocklist', cidr: '192.0.2.99/24' } });
      expectError(again, 409, 'ip_rules.exists');
      await addRule(t, owner, acct, 'allowlist', '192.0.2.0/24');
    });

    it('at most 200 rules per account, also when creates race', async () => {
      const acct = (await createWorkspace(t, owner)).id;
      // 198 rules straight into the table (ranges no request comes from), then 6 creates at once.
      const rows = Array.from({ length: 198 }, (_, i) => ({ id: newId(), org_id: acct, type: 'blocklist' as const, cidr: `100.${64 + (i >> 8)}.${i & 255}.0/24`, note: null }));
      await t.ctx.db.insertInto('ip_rules').values(rows).execute();
      await ipRulesChanged(t.ctx, acct);
      const results = await Promise.all(
        Array.from({ length: 6 }, (_, i) => call(t, 'POST', '/v1/ip-rules', { token: owner.token, account: acct, body: { type: 'blocklist', cidr: `198.18.${i}.0/24` } })),
      );
      assert.deepEqual(results.map((r) => r.status).sort(), [201, 201, 409, 409, 409, 409]);
      for (const r of results.filter((x) => x.status === 409)) expectError(r, 409, 'ip_rules.limit_reached');
      assert.equal((await call(t, 'GET', '/v1/ip-rules', { token: owner.token, account: acct })).body.length, 200);
    });

    it('would_lock_out: a rule refusing the caller is a 400 unless force; forced, it locks the caller out', async () => {
      const acct = (await createWorkspace(t, owner)).id;
      const as = { token: owner.token, account: acct };
      expectError(await call(t, 'POST', '/v1/ip-rules', { ...as, body: { type: 'blocklist', cidr: '127.0.0.0/8' } }), 400, 'ip_rules.would_lock_out');
      expectError(await call(t, 'POST', '/v1/ip-rules', { ...as, body: { type: 'allowlist', cidr: '10.0.0.0/8', force: false } }), 400, 'ip_rules.would_lock_out');
      // From 10.1.1.1 the same allowlist rule is fine.
      assert.equal((await call(t, 'POST', '/v1/ip-rules', { ...as, remote: '10.1.1.1', body: { type: 'allowlist', cidr: '10.0.0.0/8' } })).status, 201);
      // ... and now 127.0.0.1 is out: even the IP-rule endpoints refuse it.
      expectError(await call(t, 'GET', '/v1/ip-rules', as), 403, 'policy.ip_not_allowed');
      // An allowlist rule that includes the caller is fine; a blocklist elsewhere too.
      assert.equal((await call(t, 'POST', '/v1/ip-rules', { ...as, remote: '10.1.1.1', body: { type: 'blocklist', cidr: '10.2.0.0/16' } })).status, 201);
      expectError(await call(t, 'POST', '/v1/ip-rules', { ...as, remote: '10.2.3.4', body: { type: 'allowlist', cidr: '10.2.3.4' } }), 403, 'policy.ip_blocked');
      // force: the caller insists and is then refused.
      const forced = await call(t, 'POST', '/v1/ip-rules', { ...as, remote: '10.1.1.1', body: { type: 'blocklist', cidr: '10.1.1.1', force: true } });
      assert.equal(forced.status, 201, forced.text);
      expectError(await call(t, 'GET', '/v1/ip-rules', { ...as, remote: '10.1.1.1' }), 403, 'policy.ip_blocked');
      assert.equal((await call(t, 'GET', '/v1/ip-rules', { ...as, remote: '10.1.1.2' })).status, 200);
    });

    it('needs account.ip_rules.manage: members are refused', async () => {
      expectError(await call(t, 'GET', '/v1/ip-rules', { token: member.token, account: ws }), 403, 'auth.forbidden');
      expectError(await call(t, 'POST', '/v1/ip-rules', { token: member.token, account: ws, body: { type: 'blocklist', cidr: '192.0.2.0/24' } }), 403, 'auth.forbidden');
    });

    it('audit rows: ip_rule.create and ip_rule.delete with the rule', async () => {
      const acct = (await createWorkspace(t, owner)).id;
      const rule = await addRule(t, owner, acct, 'blocklist', '192.0.2.0/24', { note: 'audit me' });
      assert.equal((await call(t, 'DELETE', `/v1/ip-rules/${rule.id}`, { token: owner.token, account: acct })).status, 204);
      const rows = await t.ctx.db.selectFrom('audit_logs').selectAll().where('org_id', '=', acct).where('action', 'like', 'ip_rule.%').orderBy('created_at').execute();
      assert.deepEqual(rows.map((r) => r.action), ['ip_rule.create', 'ip_rule.delete']);
      for (const r of rows) {
        assert.equal(r.actor_user_id, owner.id);
        assert.equal(r.target_type, 'ip_rule');
        assert.equal(r.target_id, rule.id);
        assert.equal(r.ip_address, '127.0.0.1');
      }
      assert.deepEqual(rows[0].metadata, { type: 'blocklist', cidr: '192.0.2.0/24', forced: true });
      assert.deepEqual(rows[0].after_state, rule);
      assert.deepEqual(rows[1].before_state, rule);
    });
  });

  describe('enforcement', () => {
    it('a rule added applies to the next request, and a rule deleted too (cache dropped on change)', async () => {
      const acct = (await createWorkspace(t, owner)).id;
      const as = { token: owner.token, account: acct, remote: '192.0.2.10' };
      assert.equal((await call(t, 'GET', '/v1/threads', as)).status, 200); // cached: no rules
      const rule = await addRule(t, owner, acct, 'blocklist', '192.0.2.0/28');
      expectError(await call(t, 'GET', '/v1/threads', as), 403, 'policy.ip_blocked');
      assert.equal((await call(t, 'DELETE', `/v1/ip-rules/${rule.id}`, { token: owner.token, account: acct })).status, 204);
      assert.equal((await call(t, 'GET', '/v1/threads', as)).status, 200);
    });

    it("only the current account's rules count", async () => {
      const acct = (await createWorkspace(t, owner)).id;
      await addRule(t, owner, acct, 'blocklist', '192.0.2.0/24');
      expectError(await call(t, 'GET', '/v1/threads', { token: owner.token, account: acct, remote: '192.0.2.1' }), 403, 'policy.ip_blocked');
      assert.equal((await call(t, 'GET', '/v1/threads', { token: owner.token, remote: '192.0.2.1' })).status, 200); // personal account
    });

    it('order of checks: credentials, account selection, then IP rules, before the permission point and validation', async () => {
      const acct = (await createWorkspace(t, owner)).id;
      await joinAccount(t, owner, acct, member, 'member');
      await addRule(t, owner, acct, 'blocklist', '192.0.2.0/24');
      const from = { remote: '192.0.2.1' };
      expectError(await call(t, 'GET', '/v1/ip-rules', { ...from, account: acct }), 401, 'auth.unauthorized');
      expectError(await call(t, 'GET', '/v1/ip-rules', { ...from, token: member.token, account: 'nope' }), 400, 'validation.error');
      expectError(await call(t, 'GET', '/v1/ip-rules', { ...from, token: member.token, account: newId() }), 404, 'accounts.not_found');
      // The member lacks the point: the IP rule answers first.
      expectError(await call(t, 'GET', '/v1/ip-rules', { ...from, token: member.token, account: acct }), 403, 'policy.ip_blocked');
      expectError(await call(t, 'POST', '/v1/threads', { ...from, token: member.token, account: acct, body: { title: 7 } }), 403, 'policy.ip_blocked');
      expectError(await call(t, 'GET', '/v1/threads/not-a-uuid', { ...from, token: member.token, account: acct }), 403, 'policy.ip_blocked');
    });

    it('platform admins acting in the account are subject; padmin-only routes and anon routes are not', async () => {
      const t2 = await startTestApp();
      try {
        const admin = await registerUser(t2);
        const user = await registerUser(t2);
        // The admin's own personal account and the user's account both block 192.0.2.0/24.
        await addRule(t2, admin, admin.personalAccountId, 'blocklist', '192.0.2.0/24');
        await addRule(t2, user, user.personalAccountId, 'blocklist', '192.0.2.0/24');
        const from = { remote: '192.0.2.50' };
        expectError(await call(t2, 'GET', '/v1/threads', { ...from, token: admin.token, account: user.personalAccountId }), 403, 'policy.ip_blocked');
        expectError(await call(t2, 'GET', '/v1/ip-rules', { ...from, token: admin.token, account: user.personalAccountId }), 403, 'policy.ip_blocked');
        expectError(await call(t2, 'GET', '/v1/me', { ...from, token: admin.token }), 403, 'policy.ip_blocked');
        // padmin-only routes act platform-wide.
        for (const url of ['/v1/feature-flags', '/v1/admin/credits?org_id=' + user.personalAccountId, '/v1/entitlement-overrides?org_id=' + user.personalAccountId]) {
          const res = await call(t2, 'GET', url, { ...from, token: admin.token });
          assert.equal(res.status, 200, `${url}: ${res.text}`);
          assert.equal((await call(t2, 'GET', url, { ...from, token: admin.token, account: user.personalAccountId })).status, 200, url);
        }
        // anon: login from the blocked address works; what the token then does in the account does not.
        const login = await call(t2, 'POST', '/v1/auth/login', { ...from, body: { login: user.login, password: user.password } });
        assert.equal(login.status, 200, login.text);
        expectError(await call(t2, 'GET', '/v1/me', { ...from, token: login.body.access_token }), 403, 'policy.ip_blocked');
        assert.equal((await call(t2, 'GET', '/v1/auth/registration-mode', from)).status, 200);
      } finally {
        await t2.close();
      }
    });

    it('the SSE stream and the JSON event list are subject, with the token in the header or ?access_token=', async () => {
      const acct = (await createWorkspace(t, owner)).id;
      const as = { token: owner.token, account: acct };
      const th = await call(t, 'POST', '/v1/threads', { ...as, body: {} });
      assert.equal((await call(t, 'POST', `/v1/threads/${th.body.id}/messages`, { ...as, body: { content: 'hi' } })).status, 201);
      const run = await call(t, 'POST', `/v1/threads/${th.body.id}/runs`, { ...as, body: {} });
      assert.equal(run.status, 201, run.text);
      const key = await call(t, 'POST', '/v1/api-keys', { ...as, body: { name: 'sse' } });
      await addRule(t, owner, acct, 'blocklist', '2001:db8::/32');
      const base = `/v1/runs/${run.body.run_id}/events?follow=false`;
      for (const remote of ['2001:db8::7', '2001:db8:ffff::1']) {
        expectError(await call(t, 'GET', base, { ...as, remote }), 403, 'policy.ip_blocked');
        expectError(await call(t, 'GET', `${base}&access_token=${owner.token}`, { account: acct, remote }), 403, 'policy.ip_blocked');
        expectError(await call(t, 'GET', `${base}&access_token=${key.body.key}`, { remote }), 403, 'policy.ip_blocked');
        expectError(await call(t, 'GET', base, { ...as, remote, headers: { accept: 'application/json' } }), 403, 'policy.ip_blocked');
        expectError(await call(t, 'GET', `/v1/runs/${run.body.run_id}`, { ...as, remote, headers: { accept: 'text/event-stream' } }), 403, 'policy.ip_blocked');
      }
      const open = await call(t, 'GET', `${base}&access_token=${key.body.key}`, { remote: '2001:db9::1' });
      assert.equal(open.status, 200, open.text);
      assert.match(String(open.headers['content-type']), /text\/event-stream/);
      assert.match(open.text, /run\.started/);
    });

    it('ip_rule.denied: one row per IP per account per minute, also for concurrent refusals and across two app instances', async () => {
      const acct = (await createWorkspace(t, owner)).id;
      await addRule(t, owner, acct, 'allowlist', '127.0.0.0/8');
      const as = { token: owner.token, account: acct };
      // 12 refusals at once from one address, then 5 more one after another.
      const burst = await Promise.all(Array.from({ length: 12 }, () => call(t, 'GET', '/v1/threads', { ...as, remote: '192.0.2.1' })));
      for (const r of burst) expectError(r, 403, 'policy.ip_not_allowed');
      for (let i = 0; i < 5; i++) expectError(await call(t, 'GET', '/v1/projects', { ...as, remote: '192.0.2.1' }), 403, 'policy.ip_not_allowed');
      let rows = await deniedRows(t, acct);
      assert.equal(rows.length, 1);
      const [row] = rows;
      assert.equal(row.actor_user_id, owner.id);
      assert.equal(row.ip_address, '192.0.2.1');
      assert.equal(row.target_type, 'ip_address');
      assert.equal(row.target_id, '192.0.2.1');
      assert.deepEqual(row.metadata, { reason: 'policy.ip_not_allowed', method: 'GET', path: '/v1/threads' });
      // Another address has its own minute; so does another account.
      expectError(await call(t, 'GET', '/v1/threads', { ...as, remote: '::ffff:192.0.2.2' }), 403, 'policy.ip_not_allowed');
      expectError(await call(t, 'GET', '/v1/threads', { ...as, remote: '192.0.2.2' }), 403, 'policy.ip_not_allowed'); // the same IP
      rows = await deniedRows(t, acct);
      assert.deepEqual(rows.map((r) => r.target_id), ['192.0.2.1', '192.0.2.2']);
      assert.equal(rows[1].ip_address, '::ffff:192.0.2.2'); // the request's address as it came
      // A second app instance on the same database (a second process's caches and memo): still one per minute.
      const t2 = await startTestApp({}, { database: t.db.database });
      try {
        const both = await Promise.all([
          ...Array.from({ length: 6 }, () => call(t2, 'GET', '/v1/threads', { ...as, remote: '192.0.2.1' })),
          ...Array.from({ length: 6 }, () => call(t, 'GET', '/v1/threads', { ...as, remote: '192.0.2.3' })),
          ...Array.from({ length: 6 }, () => call(t2, 'GET', '/v1/threads', { ...as, remote: '192.0.2.3' })),
        ]);
        for (const r of both) expectError(r, 403, 'policy.ip_not_allowed');
        assert.deepEqual((await deniedRows(t, acct)).map((r) => r.target_id), ['192.0.2.1', '192.0.2.2', '192.0.2.3']);
        // A minute later (the clock both instances read is moved, no sleep): one more row per address.
        t.ctx.clock.advance(61_000);
        t2.ctx.clock.advance(61_000);
        await Promise.all(Array.from({ length: 4 }, (_, i) => call(i % 2 ? t : t2, 'GET', '/v1/threads', { ...as, remote: '192.0.2.1' })));
        assert.deepEqual((await deniedRows(t, acct)).map((r) => r.target_id), ['192.0.2.1', '192.0.2.2', '192.0.2.3', '192.0.2.1']);
        // An API key's refusal names the key.
        const key = await call(t, 'POST', '/v1/api-keys', { ...as, body: { name: 'k' } });
        expectError(await call(t, 'GET', '/v1/threads', { token: key.body.key, remote: '192.0.2.9' }), 403, 'policy.ip_not_allowed');
        const keyRow = (await deniedRows(t, acct)).at(-1)!;
        assert.equal(keyRow.ip_address, '192.0.2.9');
        assert.equal((keyRow.metadata as Record<string, unknown>).key_id, key.body.id);
      } finally {
        t.ctx.clock.reset();
        await t2.app.close();
        await t2.ctx.credentials.close().catch(() => undefined);
        await t2.ctx.engine.close().catch(() => undefined);
        await t2.ctx.counters.close();
      }
    });

    it('a rule written through one app instance is enforced by the next request of another', async () => {
      const acct = (await createWorkspace(t, owner)).id;
      const t2 = await startTestApp({}, { database: t.db.database });
      try {
        const as = { token: owner.token, account: acct, remote: '192.0.2.200' };
        assert.equal((await call(t2, 'GET', '/v1/threads', as)).status, 200); // t2 caches "no rules"
        const rule = await addRule(t, owner, acct, 'blocklist', '192.0.2.200');
        let res = await call(t2, 'GET', '/v1/threads', as);
        // The drop travels by NOTIFY: on PostgreSQL it may land a moment after the commit.
        for (let i = 0; i < 100 && res.status === 200; i++) {
          await new Promise((r) => setTimeout(r, 20));
          res = await call(t2, 'GET', '/v1/threads', as);
        }
        expectError(res, 403, 'policy.ip_blocked');
        assert.equal((await call(t, 'DELETE', `/v1/ip-rules/${rule.id}`, { token: owner.token, account: acct })).status, 204);
        res = await call(t2, 'GET', '/v1/threads', as);
        for (let i = 0; i < 100 && res.status === 403; i++) {
          await new Promise((r) => setTimeout(r, 20));
          res = await call(t2, 'GET', '/v1/threads', as);
        }
        assert.equal(res.status, 200);
      } finally {
        await t2.app.close();
        await t2.ctx.credentials.close().catch(() => undefined);
        await t2.ctx.engine.close().catch(() => undefined);
        await t2.ctx.counters.close();
      }
    });
  });
});

// ---- the matrix -------------------------------------------------------------------------------

type Verdict = 'ok' | 'policy.ip_blocked' | 'policy.ip_not_allowed';

const ADDRESSES = ['203.0.113.9', '::ffff:203.0.113.9', '198.51.100.20', '::ffff:198.51.100.20', '10.1.2.3', '10.66.1.1', '::ffff:10.66.1.1', '192.0.2.5', '2001:db8::1', '2001:db8:bad::1', '2001:db9::1', '::1', '127.0.0.1'] as const;

/** Rule sets and, per client address, the verdict §23 gives (addresses left out: allowed). */
const RULE_SETS: Array<{ name: string; rules: Array<['allowlist' | 'blocklist', string]>; verdicts: Partial<Record<(typeof ADDRESSES)[number], Verdict>>; otherwise: Verdict }> = [
  {
    name: 'IPv4 blocklist',
    rules: [['blocklist', '203.0.113.0/24']],
    verdicts: { '203.0.113.9': 'policy.ip_blocked', '::ffff:203.0.113.9': 'policy.ip_blocked' },
    otherwise: 'ok',
  },
  {
    name: 'IPv4 allowlist',
    rules: [['allowlist', '198.51.100.0/24']],
    verdicts: { '198.51.100.20': 'ok', '::ffff:198.51.100.20': 'ok' },
    otherwise: 'policy.ip_not_allowed',
  },
  {
    name: 'IPv4 allowlist with a blocklist inside it (blocklist wins)',
    rules: [['allowlist', '10.0.0.0/8'], ['blocklist', '10.66.0.0/16']],
    verdicts: { '10.1.2.3': 'ok', '10.66.1.1': 'policy.ip_blocked', '::ffff:10.66.1.1': 'policy.ip_blocked' },
    otherwise: 'policy.ip_not_allowed',
  },
  {
    name: 'IPv6 allowlist with an IPv6 blocklist inside it',
    rules: [['allowlist', '2001:db8::/32'], ['blocklist', '2001:db8:bad::/48']],
    verdicts: { '2001:db8::1': 'ok', '2001:db8:bad::1': 'policy.ip_blocked' },
    otherwise: 'policy.ip_not_allowed',
  },
  {
    name: 'an IPv4-mapped allowlist range (stored as IPv4) and a single IPv6 address blocked',
    rules: [['allowlist', '::ffff:192.0.2.0/120'], ['blocklist', '::1']],
    verdicts: { '192.0.2.5': 'ok', '::1': 'policy.ip_blocked' },
    otherwise: 'policy.ip_not_allowed',
  },
  {
    name: 'an IPv6 blocklist does not catch IPv4 clients',
    rules: [['blocklist', '::/0']],
    verdicts: { '2001:db8::1': 'policy.ip_blocked', '2001:db8:bad::1': 'policy.ip_blocked', '2001:db9::1': 'policy.ip_blocked', '::1': 'policy.ip_blocked' },
    otherwise: 'ok',
  },
];

describe('IP rules: enforcement matrix', () => {
  for (const trusted of [false, true]) {
    describe(trusted ? 'X-Forwarded-For trusted (ARKLOOP_TRUST_X_FORWARDED_FOR=1)' : 'X-Forwarded-For not trusted', () => {
      let t: TestApp;
      const sets: Array<{ name: string; acct: string; key: string; user: TestUser; expect: (a: string) => Verdict }> = [];
      before(async () => {
        t = await startTestApp(trusted ? { ARKLOOP_TRUST_X_FORWARDED_FOR: '1' } : {});
        await registerUser(t);
        const user = await registerUser(t);
        for (const s of RULE_SETS) {
          const acct = (await createWorkspace(t, user)).id;
          const key = await call(t, 'POST', '/v1/api-keys', { token: user.token, account: acct, body: { name: 'matrix' } });
          assert.equal(key.status, 201, key.text);
          // Straight into the table: added one by one over HTTP, the first allowlist rule would lock the next request out.
          await t.ctx.db.insertInto('ip_rules').values(s.rules.map(([type, cidr]) => ({ id: newId(), org_id: acct, type, cidr: parseCidr(cidr)!.text, note: null }))).execute();
          await ipRulesChanged(t.ctx, acct);
          const verdicts = s.verdicts as Record<string, Verdict>;
          sets.push({ name: s.name, acct, key: key.body.key, user, expect: (a) => verdicts[a] ?? s.otherwise });
        }
      });
      after(async () => { await t?.close(); });

      it('each rule set × each client address, as an access token and as an API key', async () => {
        const failures: string[] = [];
        let n = 0;
        for (const s of sets) {
          for (const addr of ADDRESSES) {
            // Where the address is presented: the socket, and (with the socket elsewhere) X-Forwarded-For.
            const shapes: Array<{ how: string; remote: string; xff?: string; decides: string }> = [
              { how: 'socket', remote: addr, decides: addr },
              { how: 'socket, with another X-Forwarded-For', remote: addr, xff: '203.0.113.9, 10.66.1.1', decides: trusted ? '203.0.113.9' : addr },
              { how: 'X-Forwarded-For (left-most), socket 127.0.0.1', remote: '127.0.0.1', xff: `${addr}, 127.0.0.1`, decides: trusted ? addr : '127.0.0.1' },
            ];
            for (const sh of shapes) {
              const want = s.expect(sh.decides);
              for (const [who, auth] of [['token', { token: s.user.token, account: s.acct }], ['API key', { token: s.key }]] as const) {
                const res = await call(t, 'GET', '/v1/threads', { ...auth, remote: sh.remote, xff: sh.xff });
                n++;
                const got: Verdict | string = res.status === 200 ? 'ok' : res.status === 403 ? res.body?.code : `${res.status} ${res.text}`;
                if (got !== want) failures.push(`${s.name} | ${addr} via ${sh.how} | ${who}: expected ${want}, got ${got}`);
              }
            }
          }
        }
        assert.ok(n >= 400, `only ${n} requests`);
        assert.deepEqual(failures, []);
      });
    });
  }
});
