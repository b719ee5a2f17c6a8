// LLM providers and models (api.md §12.1–12.8): scopes, the encrypted key, BYOK, the SSRF rule on
// base_url, models with their default flag, tenancy and audit rows.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import type { TestUser } from './helpers/app.js';
import { expectError, expectFieldError } from './helpers/assert.js';
import { auditRows, createTeam, type IdentityApp, setSetting, startIdentityApp } from './helpers/identity-app.js';
import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { decryptSecret } from '../src/lib/crypto.js';

const KEY = 'sk-test-0123456789abcdefghijklmnopqrstuvwxyz';

describe('LLM providers', () => {
  let t: IdentityApp;
  let root: TestUser; // platform admin
  let owner: TestUser;
  let member: TestUser;
  let other: TestUser;
  let ws: string;
  const inWs = (u: TestUser) => ({ token: u.token, headers: { 'x-account-id': ws } });

  async function create(u: TestUser, body: Record<string, unknown>, opts = inWs(u)) {
    const res = await t.post('/v1/llm-providers', body, opts);
    assert.equal(res.status, 201, res.text);
    return res.body;
  }

  before(async () => {
    t = await startIdentityApp();
    ({ root, owner, member, other, ws } = await createTeam(t));
  });
  after(async () => {
    await t.close();
  });

  it('creates an org provider: key encrypted at rest, only its prefix returned, audited without the key', async () => {
    const p = await create(owner, { name: '  my-openai ', provider: 'openai', api_key: KEY, base_url: 'https://llm.example.com/v1/', advanced_json: { headers: { 'x-a': '1' } } });
    assert.deepEqual(Object.keys(p).sort(), ['advanced_json', 'base_url', 'created_at', 'id', 'key_prefix', 'models', 'name', 'openai_api_mode', 'org_id', 'provider', 'scope', 'updated_at']);
    assert.equal(p.name, 'my-openai');
    assert.equal(p.scope, 'org');
    assert.equal(p.org_id, ws);
    assert.equal(p.key_prefix, KEY.slice(0, 8));
    assert.equal(p.base_url, 'https://llm.example.com/v1');
    assert.equal(p.openai_api_mode, 'auto');
    assert.deepEqual(p.advanced_json, { headers: { 'x-a': '1' } });
    assert.deepEqual(p.models, []);
    const row = await t.ctx.db.selectFrom('llm_providers').selectAll().where('id', '=', p.id).executeTakeFirstOrThrow();
    assert.ok(!JSON.stringify(row).includes(KEY), 'the key is not stored in clear');
    assert.equal(decryptSecret(row.api_key_enc!, t.ctx.secrets.encryptionKey), KEY);
    const [audit] = await auditRows(t, { action: 'llm_provider.create', targetId: p.id });
    assert.ok(audit);
    assert.ok(!JSON.stringify(audit).includes(KEY), 'the audit row holds no key');
    const got = await t.get(`/v1/llm-providers/${p.id}`, inWs(member));
    assert.equal(got.status, 200);
    assert.ok(!got.text.includes(KEY));
  });

  it('validates the body', async () => {
    expectFieldError(await t.post('/v1/llm-providers', { name: 'a^b', provider: 'openai', api_key: KEY }, inWs(owner)), 'name');
    expectFieldError(await t.post('/v1/llm-providers', { name: '', provider: 'openai', api_key: KEY }, inWs(owner)), 'name');
    expectFieldError(await t.post('/v1/llm-providers', { name: 'x', provider: 'gemini', api_key: KEY }, inWs(owner)), 'provider');
    expectFieldError(await t.post('/v1/llm-providers', { name: 'x', provider: 'openai' }, inWs(owner)), 'api_key');
    expectFieldError(await t.post('/v1/llm-providers', { name: 'x', provider: 'anthropic', api_key: KEY, openai_api_mode: 'responses' }, inWs(owner)), 'openai_api_mode');
    expectFieldError(await t.post('/v1/llm-providers', { name: 'x', provider: 'openai', api_key: KEY, base_url: 'not a url' }, inWs(owner)), 'base_url');
    expectFieldError(await t.post('/v1/llm-providers', { name: 'x', provider: 'openai', api_key: 'k'.repeat(1001) }, inWs(owner)), 'api_key');
    const stub = await create(owner, { name: 'stubby', provider: 'stub' });
    assert.equal(stub.key_prefix, null);
    assert.equal(stub.openai_api_mode, null);
  });

  it('names are unique per scope and account: 409 llm_providers.name_taken', async () => {
    await create(owner, { name: 'dup', provider: 'stub' });
    expectError(await t.post('/v1/llm-providers', { name: 'dup', provider: 'stub' }, inWs(owner)), 409, 'llm_providers.name_taken');
    // Another account and the platform scope may use the name.
    await create(other, { name: 'dup', provider: 'stub' }, { token: other.token, headers: {} as Record<string, string> });
    await create(root, { name: 'dup', provider: 'stub', scope: 'platform' }, { token: root.token, headers: {} as Record<string, string> });
  });

  it('org base_url: loopback and private targets are refused unless security.ssrf_allow_private; platform scope is trusted', async () => {
    for (const base_url of ['http://127.0.0.1:8080/v1', 'http://localhost/v1', 'http://[::1]/', 'http://169.254.169.254/', 'http://10.0.0.5/']) {
      expectError(await t.post('/v1/llm-providers', { name: 'ssrf', provider: 'openai', api_key: KEY, base_url }, inWs(owner)), 400, 'policy.ssrf_blocked');
    }
    await create(root, { name: 'local-platform', provider: 'openai', api_key: KEY, base_url: 'http://127.0.0.1:8080/v1', scope: 'platform' }, { token: root.token, headers: {} as Record<string, string> });
    await setSetting(t, 'security.ssrf_allow_private', true);
    try {
      await create(owner, { name: 'local-org', provider: 'openai', api_key: KEY, base_url: 'http://127.0.0.1:8080/v1' });
    } finally {
      await setSetting(t, 'security.ssrf_allow_private', false);
    }
    const p = await create(owner, { name: 'patch-ssrf', provider: 'openai', api_key: KEY });
    expectError(await t.patch(`/v1/llm-providers/${p.id}`, { base_url: 'http://192.168.1.2/' }, inWs(owner)), 400, 'policy.ssrf_blocked');
  });

  it('feature.byok_enabled off refuses org providers with 403 policy.byok_disabled', async () => {
    await setSetting(t, 'feature.byok_enabled', false);
    try {
      expectError(await t.post('/v1/llm-providers', { name: 'byok', provider: 'stub' }, inWs(owner)), 403, 'policy.byok_disabled');
      await create(root, { name: 'platform-while-byok-off', provider: 'stub', scope: 'platform' }, { token: root.token, headers: {} as Record<string, string> });
    } finally {
      await setSetting(t, 'feature.byok_enabled', true);
    }
  });

  it('rights: members list and read, only data.secrets writes; platform scope is for platform admins', async () => {
    expectError(await t.post('/v1/llm-providers', { name: 'm', provider: 'stub' }, inWs(member)), 403, 'auth.forbidden');
    expectError(await t.post('/v1/llm-providers', { name: 'm', provider: 'stub', scope: 'platform' }, inWs(owner)), 403, 'auth.forbidden');
    expectError(await t.get('/v1/llm-providers?scope=platform', inWs(owner)), 403, 'auth.forbidden');
    expectFieldError(await t.get('/v1/llm-providers?scope=everything', inWs(owner)), 'scope', 400);
    const p = await create(owner, { name: 'rights', provider: 'stub' });
    assert.equal((await t.get('/v1/llm-providers', inWs(member))).status, 200);
    expectError(await t.patch(`/v1/llm-providers/${p.id}`, { name: 'x' }, inWs(member)), 403, 'auth.forbidden');
    expectError(await t.del(`/v1/llm-providers/${p.id}`, inWs(member)), 403, 'auth.forbidden');
    // A platform provider: listed with scope=all for members, without its key prefix; not addressable by id.
    const plat = await create(root, { name: 'shared-openai', provider: 'openai', api_key: KEY, scope: 'platform' }, { token: root.token, headers: {} as Record<string, string> });
    const all = await t.get('/v1/llm-providers?scope=all', inWs(member));
    const listed = all.body.find((x: { id: string }) => x.id === plat.id);
    assert.equal(listed.key_prefix, null);
    assert.equal(all.body.findIndex((x: { scope: string }) => x.scope === 'platform') > all.body.findLastIndex((x: { scope: string }) => x.scope === 'org'), true, 'account providers first');
    expectError(await t.get(`/v1/llm-providers/${plat.id}`, inWs(owner)), 404, 'llm_providers.not_found');
    expectError(await t.patch(`/v1/llm-providers/${plat.id}`, { name: 'x' }, inWs(owner)), 404, 'llm_providers.not_found');
    const asAdmin = await t.get('/v1/llm-providers?scope=platform', { token: root.token });
    assert.equal(asAdmin.body.find((x: { id: string }) => x.id === plat.id).key_prefix, KEY.slice(0, 8));
  });

  it("another account's provider answers 404", async () => {
    const p = await create(owner, { name: 'mine', provider: 'stub' });
    const o = { token: other.token };
    expectError(await t.get(`/v1/llm-providers/${p.id}`, o), 404, 'llm_providers.not_found');
    expectError(await t.patch(`/v1/llm-providers/${p.id}`, { name: 'x' }, o), 404, 'llm_providers.not_found');
    expectError(await t.del(`/v1/llm-providers/${p.id}`, o), 404, 'llm_providers.not_found');
    expectError(await t.post(`/v1/llm-providers/${p.id}/models`, { model: 'm' }, o), 404, 'llm_providers.not_found');
    expectError(await t.get('/v1/llm-providers/not-a-uuid', o), 404, 'llm_providers.not_found');
    assert.equal((await t.get('/v1/llm-providers', o)).body.some((x: { id: string }) => x.id === p.id), false);
  });

  it('updates: a new key replaces the old one, base_url null clears it, audited before/after', async () => {
    const p = await create(owner, { name: 'upd', provider: 'openai', api_key: KEY, base_url: 'https://a.example.com/v1' });
    const NEW = 'sk-new-abcdefghijklmnop';
    const res = await t.patch(`/v1/llm-providers/${p.id}`, { api_key: NEW, base_url: null, name: 'upd2', openai_api_mode: 'chat_completions' }, inWs(owner));
    assert.equal(res.status, 200, res.text);
    assert.equal(res.body.key_prefix, NEW.slice(0, 8));
    assert.equal(res.body.base_url, null);
    assert.equal(res.body.name, 'upd2');
    assert.equal(res.body.openai_api_mode, 'chat_completions');
    const row = await t.ctx.db.selectFrom('llm_providers').selectAll().where('id', '=', p.id).executeTakeFirstOrThrow();
    assert.equal(decryptSecret(row.api_key_enc!, t.ctx.secrets.encryptionKey), NEW);
    const [audit] = await auditRows(t, { action: 'llm_provider.update', targetId: p.id });
    assert.ok(audit);
    assert.ok(!JSON.stringify(audit).includes(NEW) && !JSON.stringify(audit).includes(KEY));
    await create(owner, { name: 'taken', provider: 'stub' });
    expectError(await t.patch(`/v1/llm-providers/${p.id}`, { name: 'taken' }, inWs(owner)), 409, 'llm_providers.name_taken');
    // Switching to a kind that needs a key keeps the stored one.
    const s = await create(owner, { name: 'was-stub', provider: 'stub' });
    expectFieldError(await t.patch(`/v1/llm-providers/${s.id}`, { provider: 'anthropic' }, inWs(owner)), 'api_key');
  });

  describe('models', () => {
    it('creates, orders by priority then age, keeps one default, updates and deletes', async () => {
      const p = await create(owner, { name: 'with-models', provider: 'openai', api_key: KEY });
      const url = `/v1/llm-providers/${p.id}/models`;
      const a = await t.post(url, { model: 'gpt-a', cost_per_1k_input: 0.5, cost_per_1k_output: 1.5, tags: ['fast'], when: { roles: ['owner'] }, is_default: true }, inWs(owner));
      assert.equal(a.status, 201, a.text);
      assert.deepEqual(Object.keys(a.body).sort(), ['advanced_json', 'cost_per_1k_cache_read', 'cost_per_1k_cache_write', 'cost_per_1k_input', 'cost_per_1k_output', 'created_at', 'id', 'is_default', 'model', 'multiplier', 'priority', 'provider_id', 'tags', 'when']);
      assert.equal(a.body.multiplier, 1);
      assert.equal(a.body.cost_per_1k_input, 0.5);
      assert.equal(a.body.cost_per_1k_cache_read, null);
      assert.deepEqual(a.body.when, { roles: ['owner'] });
      const b = await t.post(url, { model: 'gpt-b', priority: 10, is_default: true }, inWs(owner));
      assert.equal(b.status, 201);
      expectError(await t.post(url, { model: 'gpt-a' }, inWs(owner)), 409, 'llm_models.exists');
      expectFieldError(await t.post(url, { model: 'x', multiplier: 0 }, inWs(owner)), 'multiplier');
      expectFieldError(await t.post(url, { model: 'x', priority: 1001 }, inWs(owner)), 'priority');
      expectFieldError(await t.post(url, { model: 'x', cost_per_1k_input: -1 }, inWs(owner)), 'cost_per_1k_input');
      const got = (await t.get(`/v1/llm-providers/${p.id}`, inWs(owner))).body;
      assert.deepEqual(got.models.map((m: { model: string }) => m.model), ['gpt-b', 'gpt-a']);
      assert.deepEqual(got.models.map((m: { is_default: boolean }) => m.is_default), [true, false], 'one default per provider');

      const patched = await t.patch(`${url}/${a.body.id}`, { is_default: true, cost_per_1k_input: null, priority: 20 }, inWs(owner));
      assert.equal(patched.status, 200, patched.text);
      assert.equal(patched.body.cost_per_1k_input, null);
      const again = (await t.get(`/v1/llm-providers/${p.id}`, inWs(owner))).body;
      assert.deepEqual(again.models.map((m: { model: string; is_default: boolean }) => [m.model, m.is_default]), [['gpt-a', true], ['gpt-b', false]]);
      expectError(await t.patch(`${url}/${a.body.id}`, { model: 'gpt-b' }, inWs(owner)), 409, 'llm_models.exists');
      assert.ok((await auditRows(t, { action: 'llm_model.update', targetId: a.body.id })).length === 1);

      // A model id under another provider is not this provider's model.
      const q = await create(owner, { name: 'other-prov', provider: 'stub' });
      expectError(await t.patch(`/v1/llm-providers/${q.id}/models/${a.body.id}`, { priority: 1 }, inWs(owner)), 404, 'llm_models.not_found');
      expectError(await t.del(`/v1/llm-providers/${q.id}/models/${a.body.id}`, inWs(owner)), 404, 'llm_models.not_found');

      assert.equal((await t.del(`${url}/${b.body.id}`, inWs(owner))).status, 204);
      assert.equal((await t.del(`/v1/llm-providers/${p.id}`, inWs(owner))).status, 204);
      assert.equal(await t.ctx.db.selectFrom('llm_models').select('id').where('provider_id', '=', p.id).executeTakeFirst(), undefined, 'its models went with it');
      assert.ok((await auditRows(t, { action: 'llm_provider.delete', targetId: p.id })).length === 1);
      expectError(await t.get(`/v1/llm-providers/${p.id}`, inWs(owner)), 404, 'llm_providers.not_found');
    });
  });
  describe('available-models', () => {
    let upstream: Server;
    let base: string;
    const seen: Array<{ url: string; headers: IncomingHttpHeaders }> = [];
    before(async () => {
      upstream = createServer((req, res) => {
        seen.push({ url: req.url ?? '', headers: req.headers });
        const auth = req.headers.authorization ?? req.headers['x-api-key'];
        if (req.url?.startsWith('/hang')) return; // never answers
        if (auth === 'Bearer bad' || auth === 'bad') {
          res.writeHead(401, { 'content-type': 'application/json' });
          return res.end(JSON.stringify({ error: { message: 'invalid key' } }));
        }
        if (req.url?.startsWith('/broken')) {
          res.writeHead(500);
          return res.end('oops');
        }
        res.writeHead(200, { 'content-type': 'application/json' });
        if (req.url?.startsWith('/anthropic/v1/models')) {
          return res.end(JSON.stringify({ data: [{ type: 'model', id: 'claude-b', display_name: 'Claude B' }, { type: 'model', id: 'claude-a', display_name: 'Claude A' }], has_more: false }));
        }
        res.end(JSON.stringify({ object: 'list', data: [{ id: 'gpt-z', object: 'model' }, { id: 'gpt-a', object: 'model' }] }));
      });
      await new Promise<void>((r) => upstream.listen(0, '127.0.0.1', () => r()));
      base = `http://127.0.0.1:${(upstream.address() as AddressInfo).port}`;
    });
    after(() => {
      upstream.closeAllConnections();
      upstream.close();
    });
    const admin = () => ({ token: root.token, headers: {} as Record<string, string> });
    const platform = (body: Record<string, unknown>) => create(root, { scope: 'platform', ...body }, admin());

    it('asks OpenAI-compatible /models and Anthropic /v1/models with their auth, sorted, marking configured models', async () => {
      const o = await platform({ name: 'cat-openai', provider: 'openai', api_key: 'sk-cat', base_url: `${base}/v1`, advanced_json: { headers: { 'x-org': 'acme' } } });
      await t.post(`/v1/llm-providers/${o.id}/models`, { model: 'gpt-z' }, admin());
      const res = await t.get(`/v1/llm-providers/${o.id}/available-models`, admin());
      assert.equal(res.status, 200, res.text);
      assert.deepEqual(res.body, { models: [{ id: 'gpt-a', name: 'gpt-a', configured: false }, { id: 'gpt-z', name: 'gpt-z', configured: true }] });
      const sent = seen.at(-1)!;
      assert.equal(sent.url, '/v1/models');
      assert.equal(sent.headers.authorization, 'Bearer sk-cat');
      assert.equal(sent.headers['x-org'], 'acme');

      const a = await platform({ name: 'cat-anthropic', provider: 'anthropic', api_key: 'ak-cat', base_url: `${base}/anthropic` });
      const ra = await t.get(`/v1/llm-providers/${a.id}/available-models`, admin());
      assert.equal(ra.status, 200, ra.text);
      assert.deepEqual(ra.body.models.map((m: { id: string; name: string }) => [m.id, m.name]), [['claude-a', 'Claude A'], ['claude-b', 'Claude B']]);
      assert.equal(seen.at(-1)!.headers['x-api-key'], 'ak-cat');
      assert.equal(seen.at(-1)!.headers['anthropic-version'], '2023-06-01');

      const s = await platform({ name: 'cat-stub', provider: 'stub' });
      assert.deepEqual((await t.get(`/v1/llm-providers/${s.id}/available-models`, admin())).body, { models: [{ id: 'stub', name: 'stub', configured: false }] });
    });

    it('upstream failures become provider.* errors; an org provider is held to the SSRF guard at call time', async () => {
      const bad = await platform({ name: 'cat-bad', provider: 'openai', api_key: 'bad', base_url: `${base}/v1` });
      expectError(await t.get(`/v1/llm-providers/${bad.id}/available-models`, admin()), 502, 'provider.auth_failed');
      const broken = await platform({ name: 'cat-broken', provider: 'openai', api_key: 'k', base_url: `${base}/broken` });
      expectError(await t.get(`/v1/llm-providers/${broken.id}/available-models`, admin()), 502, 'provider.unavailable');
      const down = await platform({ name: 'cat-down', provider: 'openai', api_key: 'k', base_url: 'http://127.0.0.1:9/v1' });
      expectError(await t.get(`/v1/llm-providers/${down.id}/available-models`, admin()), 502, 'provider.unavailable');
      // An upstream that never answers: 504 once the provider's own timeout_ms has passed.
      const hung = await platform({ name: 'cat-hung', provider: 'openai', api_key: 'k', base_url: `${base}/hang`, advanced_json: { timeout_ms: 200 } });
      expectError(await t.get(`/v1/llm-providers/${hung.id}/available-models`, admin()), 504, 'provider.timeout');
      // Stored while private targets were allowed, called after they no longer are.
      await setSetting(t, 'security.ssrf_allow_private', true);
      const org = await create(owner, { name: 'cat-org', provider: 'openai', api_key: 'k', base_url: `${base}/v1` });
      assert.equal((await t.get(`/v1/llm-providers/${org.id}/available-models`, inWs(owner))).status, 200);
      await setSetting(t, 'security.ssrf_allow_private', false);
      expectError(await t.get(`/v1/llm-providers/${org.id}/available-models`, inWs(owner)), 400, 'policy.ssrf_blocked');
      expectError(await t.get(`/v1/llm-providers/${org.id}/available-models`, inWs(member)), 403, 'auth.forbidden');
    });
  });
});
