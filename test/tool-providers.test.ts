// Tool providers (api.md §14.1–14.5): the two scopes and who may use them, the catalogue answer,
// credentials (encrypted key, masked prefix, base_url with the SSRF rule, required fields),
// activation (one active provider per scope + group, switched in one transaction), clearing,
// tenancy and the audit rows.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import type { TestUser } from './helpers/app.js';
import { expectError, expectFieldError } from './helpers/assert.js';
import { auditRows, createTeam, type IdentityApp, setSetting, startIdentityApp } from './helpers/identity-app.js';
import { decryptSecret } from '../src/lib/crypto.js';

const TAVILY_KEY = 'tvly-secret-0123456789abcdefWXYZ';
const JINA_KEY = 'jina_secret_abcdefghijklmnop9876';

describe('tool providers', () => {
  let t: IdentityApp;
  let root: TestUser; // platform admin
  let owner: TestUser;
  let member: TestUser;
  let other: TestUser;
  let ws: string;
  const inWs = (u: TestUser) => ({ token: u.token, headers: { 'x-account-id': ws } });
  const asRoot = () => ({ token: root.token });
  const base = '/v1/tool-providers';

  async function list(opts: { token: string; headers?: Record<string, string> }, scope?: string) {
    const res = await t.get(scope ? `${base}?scope=${scope}` : base, opts);
    assert.equal(res.status, 200, res.text);
    return res.body as { groups: Array<{ group_name: string; providers: any[] }> };
  }
  const provider = (body: { groups: Array<{ providers: any[] }> }, name: string) => body.groups.flatMap((g) => g.providers).find((p) => p.provider_name === name);

  async function put(path: string, body: unknown, opts: { token: string; headers?: Record<string, string> }, scope?: string) {
    return t.put(`${base}/${path}${scope ? `?scope=${scope}` : ''}`, body, opts);
  }
  async function ok(p: Promise<{ status: number; text: string }>) {
    const res = await p;
    assert.equal(res.status, 204, res.text);
  }
  async function rowOf(orgId: string | null, name: string) {
    let q = t.ctx.db.selectFrom('tool_provider_configs').selectAll().where('provider_name', '=', name);
    q = orgId === null ? q.where('org_id', 'is', null) : q.where('org_id', '=', orgId);
    return q.executeTakeFirst();
  }

  before(async () => {
    t = await startIdentityApp();
    ({ root, owner, member, other, ws } = await createTeam(t));
  });
  after(async () => {
    await t.close();
  });

  it('lists both groups in catalogue order with the state of the chosen scope', async () => {
    const body = await list(asRoot());
    assert.deepEqual(Object.keys(body), ['groups']);
    assert.deepEqual(body.groups.map((g) => g.group_name), ['web_search', 'web_fetch']);
    assert.deepEqual(body.groups.map((g) => g.providers.map((p) => p.provider_name)), [
      ['web_search.tavily', 'web_search.searxng'],
      ['web_fetch.basic', 'web_fetch.jina', 'web_fetch.firecrawl'],
    ]);
    const tavily = provider(body, 'web_search.tavily');
    assert.deepEqual(tavily, {
      group_name: 'web_search',
      provider_name: 'web_search.tavily',
      is_active: false,
      key_prefix: null,
      base_url: null,
      requires_api_key: true,
      requires_base_url: false,
      configured: false,
    });
    const flags = (n: string) => [provider(body, n).requires_api_key, provider(body, n).requires_base_url, provider(body, n).configured];
    assert.deepEqual(flags('web_search.searxng'), [false, true, false]);
    assert.deepEqual(flags('web_fetch.basic'), [false, false, true]);
    assert.deepEqual(flags('web_fetch.jina'), [true, false, false]);
    assert.deepEqual(flags('web_fetch.firecrawl'), [true, false, false]);
    assert.deepEqual(await list(inWs(owner), 'org'), body, 'a fresh account looks the same');
  });

  it('scope: platform (default) needs a platform admin, org needs data.secrets; anything else is a 400', async () => {
    expectError(await t.get(base, inWs(owner)), 403, 'auth.forbidden');
    expectError(await t.get(`${base}?scope=platform`, inWs(owner)), 403, 'auth.forbidden');
    expectError(await put('web_fetch/web_fetch.basic/activate', undefined, inWs(owner)), 403, 'auth.forbidden');
    expectError(await t.get(`${base}?scope=org`, inWs(member)), 403, 'auth.forbidden');
    expectError(await put('web_fetch/web_fetch.basic/activate', undefined, inWs(member), 'org'), 403, 'auth.forbidden');
    expectError(await put('web_search/web_search.tavily/credential', { api_key: TAVILY_KEY }, inWs(member), 'org'), 403, 'auth.forbidden');
    expectError(await t.del(`${base}/web_search/web_search.tavily/credential?scope=org`, inWs(member)), 403, 'auth.forbidden');
    for (const bad of ['all', 'ORG', '', 'org&scope=platform']) {
      expectFieldError(await t.get(`${base}?scope=${bad}`, inWs(owner)), 'scope');
      expectFieldError(await t.get(`${base}?scope=${bad}`, inWs(member)), 'scope');
    }
    expectFieldError(await put('web_fetch/web_fetch.basic/activate?scope=x', undefined, inWs(owner)), 'scope');
    assert.equal((await t.get(`${base}?scope=org`, inWs(owner))).status, 200);
    // Platform admins act on the platform scope from any account, and on their own account's.
    assert.equal((await t.get(`${base}?scope=platform`, asRoot())).status, 200);
    assert.equal((await t.get(`${base}?scope=org`, asRoot())).status, 200);
    // API keys are not accepted.
    const key = await t.post('/v1/api-keys', { name: 'k' }, inWs(owner));
    assert.equal(key.status, 201, key.text);
    expectError(await t.get(`${base}?scope=org`, { token: key.body.key }), 403, 'auth.forbidden');
  });

  it('credential PUT: the key is stored encrypted, shown only masked, audited without it', async () => {
    await ok(put('web_search/web_search.tavily/credential', { api_key: TAVILY_KEY }, inWs(owner), 'org'));
    const body = await list(inWs(owner), 'org');
    const p = provider(body, 'web_search.tavily');
    assert.equal(p.key_prefix, 'tvly-****WXYZ');
    assert.equal(p.configured, true);
    assert.equal(p.is_active, false);
    assert.ok(!JSON.stringify(body).includes(TAVILY_KEY.slice(5, -4)), 'no part of the key beyond the mask');
    const row = (await rowOf(ws, 'web_search.tavily'))!;
    assert.equal(row.scope, 'org');
    assert.ok(!JSON.stringify(row).includes(TAVILY_KEY), 'the key is not stored in clear');
    assert.equal(decryptSecret(row.api_key_enc!, t.ctx.secrets.encryptionKey), TAVILY_KEY);
    const [audit] = await auditRows(t, { action: 'tool_provider.credential_set', targetId: row.id });
    assert.ok(audit);
    assert.equal(audit.org_id, ws);
    assert.equal(audit.actor_user_id, owner.id);
    assert.equal(audit.target_type, 'tool_provider');
    assert.ok(!JSON.stringify(audit).includes(TAVILY_KEY), 'the audit row holds no key');
    assert.equal((audit.metadata as any).provider_name, 'web_search.tavily');
    // A key shorter than 12 characters shows only ****.
    await ok(put('web_fetch/web_fetch.jina/credential', { api_key: 'short-key' }, inWs(owner), 'org'));
    assert.equal(provider(await list(inWs(owner), 'org'), 'web_fetch.jina').key_prefix, '****');
    // The other scope is untouched.
    assert.equal(provider(await list(asRoot()), 'web_search.tavily').configured, false);
  });

  it('credential PUT validates every field and what the provider needs', async () => {
    const path = 'web_search/web_search.tavily/credential';
    const o = inWs(owner);
    expectFieldError(await put(path, { api_key: 'k'.repeat(1001) }, o, 'org'), 'api_key');
    expectFieldError(await put(path, { api_key: '' }, o, 'org'), 'api_key');
    expectFieldError(await put(path, { api_key: 42 }, o, 'org'), 'api_key');
    expectFieldError(await put(path, { api_key: TAVILY_KEY, base_url: 'not a url' }, o, 'org'), 'base_url');
    expectFieldError(await put(path, { api_key: TAVILY_KEY, base_url: 'ftp://example.com/' }, o, 'org'), 'base_url');
    expectFieldError(await put(path, { api_key: TAVILY_KEY, base_url: `https://example.com/${'a'.repeat(2048)}` }, o, 'org'), 'base_url');
    expectFieldError(await put(path, { api_key: TAVILY_KEY, base_url: 7 }, o, 'org'), 'base_url');
    // Required fields of the result: SearXNG needs base_url, Jina/Firecrawl/Tavily an api_key; basic takes nothing.
    expectFieldError(await put('web_search/web_search.searxng/credential', { api_key: 'abcdefghijklmnop' }, o, 'org'), 'base_url');
    expectFieldError(await put('web_fetch/web_fetch.firecrawl/credential', { base_url: 'https://fc.example.com' }, o, 'org'), 'api_key');
    expectFieldError(await put('web_fetch/web_fetch.basic/credential', { api_key: 'abcdefghijklmnop' }, o, 'org'), 'api_key');
    expectFieldError(await put('web_fetch/web_fetch.basic/credential', { base_url: 'https://example.com' }, o, 'org'), 'base_url');
    assert.equal(await rowOf(ws, 'web_fetch.firecrawl').then((r) => r?.base_url ?? null), null, 'a refused PUT stores nothing');
    // Nothing given (or nulls): 204 and nothing changes, no audit row.
    const before = (await auditRows(t, { action: 'tool_provider.credential_set' })).length;
    await ok(put('web_fetch/web_fetch.firecrawl/credential', {}, o, 'org'));
    await ok(put('web_fetch/web_fetch.firecrawl/credential', { api_key: null, base_url: null }, o, 'org'));
    await ok(put('web_fetch/web_fetch.firecrawl/credential', undefined, o, 'org'));
    assert.equal((await auditRows(t, { action: 'tool_provider.credential_set' })).length, before);
    assert.equal(provider(await list(o, 'org'), 'web_fetch.firecrawl').configured, false);
  });

  it('base_url: trailing / removed; org scope refuses private targets unless security.ssrf_allow_private; platform scope is trusted', async () => {
    const o = inWs(owner);
    await ok(put('web_search/web_search.searxng/credential', { base_url: '  https://search.example.com/searx//  ' }, o, 'org'));
    assert.equal(provider(await list(o, 'org'), 'web_search.searxng').base_url, 'https://search.example.com/searx');
    assert.equal(provider(await list(o, 'org'), 'web_search.searxng').configured, true);
    for (const url of ['http://127.0.0.1:8888', 'http://localhost/', 'http://[::1]/', 'http://169.254.169.254/', 'http://10.1.2.3/', 'http://metadata.google.internal/']) {
      const res = await put('web_search/web_search.searxng/credential', { base_url: url }, o, 'org');
      expectError(res, 400, 'policy.ssrf_blocked');
      assert.equal(res.body.details.field, 'base_url');
    }
    assert.equal(provider(await list(o, 'org'), 'web_search.searxng').base_url, 'https://search.example.com/searx', 'a refused URL is not stored');
    await ok(put('web_search/web_search.searxng/credential', { base_url: 'http://127.0.0.1:8888/' }, asRoot()));
    assert.equal(provider(await list(asRoot()), 'web_search.searxng').base_url, 'http://127.0.0.1:8888');
    await setSetting(t, 'security.ssrf_allow_private', true);
    try {
      await ok(put('web_search/web_search.searxng/credential', { base_url: 'http://127.0.0.1:8888' }, o, 'org'));
    } finally {
      await setSetting(t, 'security.ssrf_allow_private', false);
    }
    assert.equal(provider(await list(o, 'org'), 'web_search.searxng').base_url, 'http://127.0.0.1:8888');
  });

  it('activate: one active provider per scope and group, switched in one write; unconfigured → 409', async () => {
    const o = inWs(owner);
    expectError(await put('web_fetch/web_fetch.firecrawl/activate', undefined, o, 'org'), 409, 'tool_providers.not_configured');
    await ok(put('web_fetch/web_fetch.basic/activate', undefined, o, 'org'));
    let body = await list(o, 'org');
    assert.equal(provider(body, 'web_fetch.basic').is_active, true);
    await ok(put('web_fetch/web_fetch.jina/credential', { api_key: JINA_KEY }, o, 'org'));
    await ok(put('web_fetch/web_fetch.jina/activate', undefined, o, 'org'));
    body = await list(o, 'org');
    assert.deepEqual(body.groups[1].providers.map((p) => [p.provider_name, p.is_active]), [
      ['web_fetch.basic', false],
      ['web_fetch.jina', true],
      ['web_fetch.firecrawl', false],
    ]);
    const jina = (await rowOf(ws, 'web_fetch.jina'))!;
    const [audit] = await auditRows(t, { action: 'tool_provider.activate', targetId: jina.id });
    assert.equal(audit.org_id, ws);
    assert.deepEqual((audit.metadata as any).deactivated, ['web_fetch.basic']);
    // Activating the active one again changes nothing and writes no row.
    await ok(put('web_fetch/web_fetch.jina/activate', undefined, o, 'org'));
    assert.equal((await auditRows(t, { action: 'tool_provider.activate', targetId: jina.id })).length, 1);
    // The other group and the platform scope are independent.
    await ok(put('web_search/web_search.tavily/activate', undefined, o, 'org'));
    body = await list(o, 'org');
    assert.equal(provider(body, 'web_search.tavily').is_active, true);
    assert.equal(provider(body, 'web_fetch.jina').is_active, true);
    assert.equal(provider(await list(asRoot()), 'web_fetch.jina').is_active, false);
    // The short provider name is accepted as an alias in the path.
    await ok(put('web_fetch/basic/activate', undefined, o, 'org'));
    assert.equal(provider(await list(o, 'org'), 'web_fetch.basic').is_active, true);
    assert.equal(provider(await list(o, 'org'), 'web_fetch.jina').is_active, false);
  });

  it('concurrent activations leave exactly one active provider', async () => {
    const o = { token: root.token };
    await ok(put('web_fetch/web_fetch.jina/credential', { api_key: JINA_KEY }, o));
    await ok(put('web_fetch/web_fetch.firecrawl/credential', { api_key: JINA_KEY }, o));
    const names = ['basic', 'jina', 'firecrawl'];
    const results = await Promise.all(Array.from({ length: 12 }, (_, i) => put(`web_fetch/web_fetch.${names[i % 3]}/activate`, undefined, o)));
    assert.deepEqual(results.map((r) => r.status), results.map(() => 204), results.map((r) => r.text).join(' '));
    const active = await t.ctx.db.selectFrom('tool_provider_configs').select('provider_name').where('org_id', 'is', null).where('group_name', '=', 'web_fetch').where('is_active', '=', true).execute();
    assert.equal(active.length, 1);
    assert.equal(provider(await list(o), active[0].provider_name).is_active, true);
  });

  it('deactivate: 204, also when already inactive; audited only when it changed something', async () => {
    const o = inWs(owner);
    await ok(put('web_search/web_search.tavily/activate', undefined, o, 'org'));
    await ok(put('web_search/web_search.tavily/deactivate', undefined, o, 'org'));
    assert.equal(provider(await list(o, 'org'), 'web_search.tavily').is_active, false);
    const row = (await rowOf(ws, 'web_search.tavily'))!;
    const n = (await auditRows(t, { action: 'tool_provider.deactivate', targetId: row.id })).length;
    assert.equal(n, 1);
    await ok(put('web_search/web_search.tavily/deactivate', undefined, o, 'org'));
    await ok(put('web_search/searxng/deactivate', undefined, o, 'org'));
    assert.equal((await auditRows(t, { action: 'tool_provider.deactivate', targetId: row.id })).length, 1);
  });

  it('credential DELETE: key and prefix removed, base_url kept, an active provider left unconfigured is deactivated', async () => {
    const o = inWs(owner);
    await ok(put('web_search/web_search.tavily/credential', { api_key: TAVILY_KEY, base_url: 'https://tavily.example.com/' }, o, 'org'));
    await ok(put('web_search/web_search.tavily/activate', undefined, o, 'org'));
    assert.equal((await t.del(`${base}/web_search/web_search.tavily/credential?scope=org`, o)).status, 204);
    const p = provider(await list(o, 'org'), 'web_search.tavily');
    assert.deepEqual([p.key_prefix, p.base_url, p.configured, p.is_active], [null, 'https://tavily.example.com', false, false]);
    const row = (await rowOf(ws, 'web_search.tavily'))!;
    assert.equal(row.api_key_enc, null);
    const [audit] = await auditRows(t, { action: 'tool_provider.credential_clear', targetId: row.id });
    assert.equal((audit.metadata as any).deactivated, true);
    // SearXNG with a key and its base_url stays configured, so stays active.
    await ok(put('web_search/web_search.searxng/credential', { api_key: 'searx-token-123456789', base_url: 'https://searx.example.com' }, o, 'org'));
    await ok(put('web_search/web_search.searxng/activate', undefined, o, 'org'));
    assert.equal((await t.del(`${base}/web_search/web_search.searxng/credential?scope=org`, o)).status, 204);
    const s = provider(await list(o, 'org'), 'web_search.searxng');
    assert.deepEqual([s.key_prefix, s.base_url, s.configured, s.is_active], [null, 'https://searx.example.com', true, true]);
    // Again: nothing left to clear, 204 and no audit row.
    const n = (await auditRows(t, { action: 'tool_provider.credential_clear' })).length;
    assert.equal((await t.del(`${base}/web_search/web_search.searxng/credential?scope=org`, o)).status, 204);
    assert.equal((await auditRows(t, { action: 'tool_provider.credential_clear' })).length, n);
  });

  it('unknown group or provider, or a provider of another group: 404 tool_providers.not_found', async () => {
    const o = inWs(owner);
    for (const path of ['web_browse/web_browse.x', 'web_search/web_search.bing', 'web_search/web_fetch.basic', 'web_fetch/tavily', 'web_search/web_fetch.jina', 'WEB_SEARCH/tavily']) {
      expectError(await put(`${path}/activate`, undefined, o, 'org'), 404, 'tool_providers.not_found');
      expectError(await put(`${path}/deactivate`, undefined, o, 'org'), 404, 'tool_providers.not_found');
      expectError(await put(`${path}/credential`, { api_key: TAVILY_KEY }, o, 'org'), 404, 'tool_providers.not_found');
      expectError(await t.del(`${base}/${path}/credential?scope=org`, o), 404, 'tool_providers.not_found');
    }
  });

  it("tenancy: another account's configuration is invisible and untouched", async () => {
    const mine = await list(inWs(owner), 'org');
    assert.ok(provider(mine, 'web_search.tavily').configured || provider(mine, 'web_search.searxng').configured);
    const theirs = await list({ token: other.token }, 'org');
    const fresh = await list({ token: owner.token }, 'org'); // the owner's personal account
    for (const view of [theirs, fresh]) {
      for (const p of view.groups.flatMap((g) => g.providers)) {
        assert.equal(p.key_prefix, null, p.provider_name);
        assert.equal(p.base_url, null, p.provider_name);
        assert.equal(p.is_active, false, p.provider_name);
      }
    }
    // The other account's writes land in its own rows only.
    await ok(put('web_search/web_search.tavily/credential', { api_key: 'tvly-other-account-key-0000' }, { token: other.token }, 'org'));
    assert.equal(decryptSecret((await rowOf(ws, 'web_fetch.jina'))!.api_key_enc!, t.ctx.secrets.encryptionKey), JINA_KEY);
    assert.equal(provider(await list(inWs(owner), 'org'), 'web_search.tavily').key_prefix, null, 'owner cleared it earlier; still cleared');
    const otherAudit = await auditRows(t, { actorUserId: other.id, action: 'tool_provider.credential_set' });
    assert.equal(otherAudit[0].org_id, other.personalAccountId);
  });

  it('platform scope writes are audited with no account', async () => {
    await ok(put('web_search/web_search.tavily/credential', { api_key: TAVILY_KEY }, asRoot(), 'platform'));
    await ok(put('web_search/web_search.tavily/activate', undefined, asRoot()));
    const row = (await rowOf(null, 'web_search.tavily'))!;
    assert.equal(row.scope, 'platform');
    for (const action of ['tool_provider.credential_set', 'tool_provider.activate']) {
      const [audit] = await auditRows(t, { action, targetId: row.id });
      assert.ok(audit, action);
      assert.equal(audit.org_id, null);
      assert.equal(audit.actor_user_id, root.id);
      assert.equal((audit.metadata as any).scope, 'platform');
    }
    const body = await list(asRoot());
    assert.equal(provider(body, 'web_search.tavily').key_prefix, 'tvly-****WXYZ');
    assert.ok(!JSON.stringify(body).includes(TAVILY_KEY));
  });
});
