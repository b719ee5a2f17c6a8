// Feature flags (api.md §24): CRUD and account overrides (padmin only), validation, audit rows;
// the one evaluation (override > default; a setting-backed key follows the settings chain with
// the environment first) as /v1/me/feature-flags, /v1/entitlements and the gates of
// feature.byok_enabled (account LLM providers, and the providers a run may use) and
// feature.mcp_remote_enabled (remote MCP configs) see it; and a change made through one
// `arkloop api` process seen by the next request of another (PostgreSQL).
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { registerUser, startTestApp, TEST_PG_URL, type TestApp, type TestUser } from './helpers/app.js';
import { adminCast, expectPadminOnly, type AdminCast } from './helpers/admin.js';
import { createWorkspace } from './helpers/accounts-fixtures.js';
import { expectError, expectFieldError } from './helpers/assert.js';
import { ProcessPool } from './helpers/processes.js';
import { call, register } from './helpers/run-client.js';
import { newId } from '../src/lib/ids.js';
import { isFeatureEnabled } from '../src/modules/feature-flags/evaluate.js';
import { loadRouteCatalogue } from '../src/modules/runs/route-catalogue.js';

const ISO_MS = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$/;

describe('feature flags', () => {
  let t: TestApp;
  let cast: AdminCast;
  let admin: { token: string };
  let user: TestUser;
  let org: string;

  before(async () => {
    t = await startTestApp();
    cast = await adminCast(t);
    admin = { token: cast.admin.token };
    user = await registerUser(t);
    org = user.personalAccountId;
  });
  after(async () => { await t?.close(); });

  const createFlag = async (key: string, default_value: boolean, description?: string) => {
    const res = await t.post('/v1/feature-flags', { key, default_value, ...(description !== undefined ? { description } : {}) }, admin);
    assert.equal(res.status, 201, res.text);
    return res.body;
  };
  const setOverride = async (key: string, orgId: string, enabled: boolean) => {
    const res = await t.post(`/v1/feature-flags/${key}/org-overrides`, { org_id: orgId, enabled }, admin);
    assert.equal(res.status, 200, res.text);
    return res.body;
  };
  const myFlags = async (u: TestUser, account?: string) => {
    const res = await t.get('/v1/me/feature-flags', { token: u.token, headers: account ? { 'x-account-id': account } : {} });
    assert.equal(res.status, 200, res.text);
    return res.body.data as Array<{ key: string; enabled: boolean; source: string }>;
  };

  describe('CRUD', () => {
    it('create, read, list by key, update, delete (with its overrides)', async () => {
      const f = await createFlag('beta.crud', false, 'the CRUD flag');
      assert.deepEqual(Object.keys(f).sort(), ['created_at', 'default_value', 'description', 'id', 'key', 'updated_at']);
      assert.equal(f.key, 'beta.crud');
      assert.equal(f.default_value, false);
      assert.equal(f.description, 'the CRUD flag');
      assert.match(f.created_at, ISO_MS);
      await createFlag('alpha.crud', true);
      expectError(await t.post('/v1/feature-flags', { key: 'beta.crud', default_value: true }, admin), 409, 'feature_flags.key_taken');

      const list = await t.get('/v1/feature-flags', admin);
      assert.equal(list.status, 200);
      const keys = list.body.map((x: { key: string }) => x.key);
      assert.deepEqual(keys, [...keys].sort());
      assert.ok(keys.includes('alpha.crud') && keys.includes('beta.crud'));
      assert.deepEqual((await t.get('/v1/feature-flags/beta.crud', admin)).body, f);
      expectError(await t.get('/v1/feature-flags/no.such.flag', admin), 404, 'feature_flags.not_found');
      expectError(await t.get('/v1/feature-flags/NOT%20A%20KEY', admin), 404, 'feature_flags.not_found');

      const up = await t.patch('/v1/feature-flags/beta.crud', { default_value: true }, admin);
      assert.equal(up.status, 200, up.text);
      assert.equal(up.body.default_value, true);
      assert.equal(up.body.description, 'the CRUD flag');
      assert.ok(up.body.updated_at >= f.updated_at);
      const cleared = await t.put('/v1/feature-flags/beta.crud', { description: null }, admin);
      assert.equal(cleared.status, 200, cleared.text);
      assert.equal(cleared.body.description, null);
      assert.equal(cleared.body.default_value, true);
      expectError(await t.patch('/v1/feature-flags/no.such.flag', { default_value: true }, admin), 404, 'feature_flags.not_found');

      await setOverride('beta.crud', org, false);
      const del = await t.del('/v1/feature-flags/beta.crud', admin);
      assert.equal(del.status, 200, del.text);
      assert.deepEqual(del.body, { ok: true });
      expectError(await t.get('/v1/feature-flags/beta.crud', admin), 404, 'feature_flags.not_found');
      expectError(await t.del('/v1/feature-flags/beta.crud', admin), 404, 'feature_flags.not_found');
      const left = await t.ctx.db.selectFrom('feature_flag_overrides').selectAll().where('flag_key', '=', 'beta.crud').execute();
      assert.deepEqual(left, []);
      // The key is free again.
      await createFlag('beta.crud', false);
    });

    it('validation of key, default_value, description; PATCH needs a field', async () => {
      const post = (body: unknown) => t.post('/v1/feature-flags', body, admin);
      for (const key of ['', 'Beta', '.beta', '-beta', 'beta flag', 'beta/x', 'b'.repeat(129), 7, null]) expectFieldError(await post({ key, default_value: true }), 'key');
      assert.equal((await post({ key: 'b'.repeat(128), default_value: true })).status, 201);
      expectFieldError(await post({ key: 'v.missing' }), 'default_value');
      expectFieldError(await post({ key: 'v.string', default_value: 'true' }), 'default_value');
      expectFieldError(await post({ key: 'v.desc', default_value: true, description: 'x'.repeat(2001) }), 'description');
      expectFieldError(await post({ key: 'v.desc', default_value: true, description: 5 }), 'description');
      await createFlag('v.patch', false);
      const empty = await t.patch('/v1/feature-flags/v.patch', {}, admin);
      expectError(empty, 400, 'validation.error');
      expectFieldError(await t.patch('/v1/feature-flags/v.patch', { default_value: null }, admin), 'default_value');
      expectFieldError(await t.patch('/v1/feature-flags/v.patch', { default_value: 1 }, admin), 'default_value');
    });

    it('overrides: set (create or replace), list, delete; their 404s and validation', async () => {
      await createFlag('beta.ovr', false);
      const ws = (await createWorkspace(t, user)).id;
      const o = await setOverride('beta.ovr', org, true);
      assert.deepEqual(Object.keys(o).sort(), ['created_at', 'enabled', 'flag_key', 'org_id']);
      assert.deepEqual({ ...o, created_at: undefined }, { org_id: org, flag_key: 'beta.ovr', enabled: true, created_at: undefined });
      assert.equal((await setOverride('beta.ovr', org, false)).enabled, false); // replaced
      await setOverride('beta.ovr', ws, true);
      const list = await t.get('/v1/feature-flags/beta.ovr/org-overrides', admin);
      assert.equal(list.status, 200);
      assert.deepEqual(list.body.map((x: { org_id: string; enabled: boolean }) => [x.org_id, x.enabled]).sort(), [[org, false], [ws, true]].sort());

      expectError(await t.post('/v1/feature-flags/no.flag/org-overrides', { org_id: org, enabled: true }, admin), 404, 'feature_flags.not_found');
      expectError(await t.post('/v1/feature-flags/beta.ovr/org-overrides', { org_id: newId(), enabled: true }, admin), 404, 'accounts.not_found');
      expectFieldError(await t.post('/v1/feature-flags/beta.ovr/org-overrides', { org_id: 'nope', enabled: true }, admin), 'org_id');
      expectFieldError(await t.post('/v1/feature-flags/beta.ovr/org-overrides', { enabled: true }, admin), 'org_id');
      expectFieldError(await t.post('/v1/feature-flags/beta.ovr/org-overrides', { org_id: org }, admin), 'enabled');
      expectFieldError(await t.post('/v1/feature-flags/beta.ovr/org-overrides', { org_id: org, enabled: 'yes' }, admin), 'enabled');
      expectError(await t.get('/v1/feature-flags/no.flag/org-overrides', admin), 404, 'feature_flags.not_found');

      const del = await t.del(`/v1/feature-flags/beta.ovr/org-overrides/${org}`, admin);
      assert.equal(del.status, 200, del.text);
      assert.deepEqual(del.body, { ok: true });
      expectError(await t.del(`/v1/feature-flags/beta.ovr/org-overrides/${org}`, admin), 404, 'feature_flag_overrides.not_found');
      expectError(await t.del('/v1/feature-flags/beta.ovr/org-overrides/not-a-uuid', admin), 404, 'feature_flag_overrides.not_found');
      expectError(await t.del(`/v1/feature-flags/no.flag/org-overrides/${ws}`, admin), 404, 'feature_flags.not_found');
      assert.deepEqual((await t.get('/v1/feature-flags/beta.ovr/org-overrides', admin)).body.map((x: { org_id: string }) => x.org_id), [ws]);
    });

    it('every route is for platform admins only (members and API keys refused)', async () => {
      await createFlag('beta.padmin', false);
      const routes: Array<[string, string, unknown?]> = [
        ['POST', '/v1/feature-flags', { key: 'beta.nope', default_value: true }],
        ['GET', '/v1/feature-flags'],
        ['GET', '/v1/feature-flags/beta.padmin'],
        ['PATCH', '/v1/feature-flags/beta.padmin', { default_value: true }],
        ['DELETE', '/v1/feature-flags/beta.padmin'],
        ['POST', '/v1/feature-flags/beta.padmin/org-overrides', { org_id: org, enabled: true }],
        ['GET', '/v1/feature-flags/beta.padmin/org-overrides'],
        ['DELETE', `/v1/feature-flags/beta.padmin/org-overrides/${org}`],
      ];
      for (const [method, path, body] of routes) await expectPadminOnly(t, cast, method, path, body);
      assert.equal((await t.get('/v1/feature-flags/beta.padmin', admin)).status, 200);
    });

    it('audit rows: create, update (before/after), override_set, override_delete, delete', async () => {
      await createFlag('beta.audit', false, 'a');
      assert.equal((await t.patch('/v1/feature-flags/beta.audit', { default_value: true }, admin)).status, 200);
      await setOverride('beta.audit', org, false);
      await setOverride('beta.audit', org, true);
      assert.equal((await t.del(`/v1/feature-flags/beta.audit/org-overrides/${org}`, admin)).status, 200);
      assert.equal((await t.del('/v1/feature-flags/beta.audit', admin)).status, 200);
      const all = await t.ctx.db.selectFrom('audit_logs').selectAll().where('target_type', '=', 'feature_flag').where('target_id', '=', 'beta.audit').orderBy('created_at').orderBy('id').execute();
      assert.deepEqual(all.map((r) => r.action), ['feature_flag.create', 'feature_flag.update', 'feature_flag.override_set', 'feature_flag.override_set', 'feature_flag.override_delete', 'feature_flag.delete']);
      for (const r of all) {
        assert.equal(r.actor_user_id, cast.admin.id);
        assert.equal((r.metadata as Record<string, unknown>).flag_key, 'beta.audit');
      }
      const [create, update, set1, set2, odel, del] = all;
      assert.equal(create.org_id, null);
      assert.equal((create.after_state as Record<string, unknown>).default_value, false);
      assert.equal(update.org_id, null);
      assert.equal((update.before_state as Record<string, unknown>).default_value, false);
      assert.equal((update.after_state as Record<string, unknown>).default_value, true);
      assert.equal(set1.org_id, org);
      assert.equal(set1.before_state, null);
      assert.equal((set1.after_state as Record<string, unknown>).enabled, false);
      assert.equal((set2.before_state as Record<string, unknown>).enabled, false);
      assert.equal((set2.after_state as Record<string, unknown>).enabled, true);
      assert.equal(odel.org_id, org);
      assert.equal((odel.before_state as Record<string, unknown>).enabled, true);
      assert.equal(del.org_id, null);
      // States are the FeatureFlag shape; its `key` field is redacted by the audit log's name-based rule, hence flag_key in metadata.
      assert.equal((del.before_state as Record<string, unknown>).id, (create.after_state as Record<string, unknown>).id);
    });
  });

  describe('evaluation', () => {
    it('override > default, per account, on the next request after each change; no flag → false', async () => {
      const other = await registerUser(t);
      const seen = async (u: TestUser) => (await myFlags(u)).find((x) => x.key === 'eval.one');
      assert.equal(await seen(user), undefined);
      assert.equal(await isFeatureEnabled(t.ctx, org, 'eval.one'), false);
      await createFlag('eval.one', false);
      assert.deepEqual(await seen(user), { key: 'eval.one', enabled: false, source: 'default' });
      await setOverride('eval.one', org, true);
      assert.deepEqual(await seen(user), { key: 'eval.one', enabled: true, source: 'override' });
      assert.deepEqual(await seen(other), { key: 'eval.one', enabled: false, source: 'default' });
      assert.equal(await isFeatureEnabled(t.ctx, org, 'eval.one'), true);
      assert.equal((await t.patch('/v1/feature-flags/eval.one', { default_value: true }, admin)).status, 200);
      assert.deepEqual(await seen(other), { key: 'eval.one', enabled: true, source: 'default' });
      await setOverride('eval.one', org, false);
      assert.deepEqual(await seen(user), { key: 'eval.one', enabled: false, source: 'override' });
      assert.equal(await isFeatureEnabled(t.ctx, org, 'eval.one'), false);
      assert.equal((await t.del(`/v1/feature-flags/eval.one/org-overrides/${org}`, admin)).status, 200);
      assert.deepEqual(await seen(user), { key: 'eval.one', enabled: true, source: 'default' });
      assert.equal((await t.del('/v1/feature-flags/eval.one', admin)).status, 200);
      assert.equal(await seen(user), undefined);
      assert.equal(await isFeatureEnabled(t.ctx, org, 'eval.one'), false);
    });

    it('feature.byok_enabled: the flag decides account LLM providers and the providers a run may use, over the settings chain', async () => {
      const u = await registerUser(t);
      const acct = u.personalAccountId;
      const createProvider = (name: string) => t.post('/v1/llm-providers', { name, provider: 'stub' }, { token: u.token });
      const entitlement = async () => (await t.get('/v1/entitlements', { token: u.token })).body.entitlements.find((e: { key: string }) => e.key === 'feature.byok_enabled');
      // No flag: the setting's default (true).
      assert.equal((await createProvider('own1')).status, 201);
      assert.deepEqual(await entitlement(), { key: 'feature.byok_enabled', value: 'true', value_type: 'boolean', source: 'default' });
      // A flag off by default: refused, for this account and its runs' routes.
      await createFlag('feature.byok_enabled', false);
      expectError(await createProvider('own2'), 403, 'policy.byok_disabled');
      assert.deepEqual(await entitlement(), { key: 'feature.byok_enabled', value: 'false', value_type: 'boolean', source: 'flag' });
      assert.equal((await loadRouteCatalogue(t.ctx, acct)).byok, false);
      // The flag comes before an entitlement override (§18).
      assert.equal((await t.post('/v1/entitlement-overrides', { org_id: acct, key: 'feature.byok_enabled', value: 'true', value_type: 'boolean' }, admin)).status, 201);
      expectError(await createProvider('own3'), 403, 'policy.byok_disabled');
      // The account's flag override turns it on.
      await setOverride('feature.byok_enabled', acct, true);
      assert.equal((await createProvider('own4')).status, 201);
      assert.equal((await loadRouteCatalogue(t.ctx, acct)).byok, true);
      assert.deepEqual((await myFlags(u)).find((x) => x.key === 'feature.byok_enabled'), { key: 'feature.byok_enabled', enabled: true, source: 'override' });
      // Deleting the flag hands the key back to the chain (the entitlement override: true).
      assert.equal((await t.del('/v1/feature-flags/feature.byok_enabled', admin)).status, 200);
      assert.deepEqual(await entitlement(), { key: 'feature.byok_enabled', value: 'true', value_type: 'boolean', source: 'override' });
    });

    it('feature.mcp_remote_enabled: the flag decides remote MCP configs', async () => {
      const u = await registerUser(t);
      const acct = u.personalAccountId;
      let n = 0;
      const createRemote = () => t.post('/v1/mcp-configs', { name: `remote${n++}`, transport: 'streamable_http', url: 'https://mcp.example.com/mcp' }, { token: u.token });
      expectError(await createRemote(), 403, 'policy.mcp_remote_disabled'); // the setting's default: off
      await createFlag('feature.mcp_remote_enabled', false);
      await setOverride('feature.mcp_remote_enabled', acct, true);
      const on = await createRemote();
      assert.notEqual(on.body?.code, 'policy.mcp_remote_disabled', on.text);
      assert.equal(await isFeatureEnabled(t.ctx, acct, 'feature.mcp_remote_enabled'), true);
      assert.equal((await t.patch('/v1/feature-flags/feature.mcp_remote_enabled', { default_value: true }, admin)).status, 200);
      assert.equal((await t.del(`/v1/feature-flags/feature.mcp_remote_enabled/org-overrides/${acct}`, admin)).status, 200);
      assert.equal(await isFeatureEnabled(t.ctx, acct, 'feature.mcp_remote_enabled'), true); // the default now
      assert.equal((await t.patch('/v1/feature-flags/feature.mcp_remote_enabled', { default_value: false }, admin)).status, 200);
      expectError(await createRemote(), 403, 'policy.mcp_remote_disabled');
      assert.equal((await t.del('/v1/feature-flags/feature.mcp_remote_enabled', admin)).status, 200);
    });

    it('an environment value of a setting-backed key wins over the flag and its overrides', async () => {
      const t2 = await startTestApp({ ARKLOOP_FEATURE_BYOK_ENABLED: 'false', ARKLOOP_FEATURE_MCP_REMOTE_ENABLED: 'true' });
      try {
        const a = await adminCast(t2);
        const u = await registerUser(t2);
        const as = { token: a.admin.token };
        for (const [key, def] of [['feature.byok_enabled', true], ['feature.mcp_remote_enabled', false], ['beta.plain', false]] as const) {
          assert.equal((await t2.post('/v1/feature-flags', { key, default_value: def }, as)).status, 201);
          assert.equal((await t2.post(`/v1/feature-flags/${key}/org-overrides`, { org_id: u.personalAccountId, enabled: def }, as)).status, 200);
        }
        expectError(await t2.post('/v1/llm-providers', { name: 'own', provider: 'stub' }, { token: u.token }), 403, 'policy.byok_disabled');
        assert.equal(await isFeatureEnabled(t2.ctx, u.personalAccountId, 'feature.mcp_remote_enabled'), true);
        const flags = (await t2.get('/v1/me/feature-flags', { token: u.token })).body.data;
        assert.deepEqual(flags, [
          { key: 'beta.plain', enabled: false, source: 'override' },
          { key: 'feature.byok_enabled', enabled: false, source: 'env' },
          { key: 'feature.mcp_remote_enabled', enabled: true, source: 'env' },
        ]);
      } finally {
        await t2.close();
      }
    });
  });
});

describe('feature flags across two API processes', () => {
  const pool = new ProcessPool();
  after(async () => { await pool.cleanup(); });

  it('a flag and an override written through one process decide the next requests of the other', { timeout: 180_000 }, async (tc) => {
    if (!TEST_PG_URL) return tc.skip('needs PostgreSQL (ARKLOOP_TEST_DATABASE_URL): several processes share the database');
    const env = await pool.env({ postgres: true });
    const [a, b] = [(await pool.spawnApi('api', env)).base!, (await pool.spawnApi('api', env)).base!];
    const admin = await register(a);
    const user = await register(b);
    const org = (await call(b, 'GET', '/v1/me', undefined, user)).body.org_id as string;
    let n = 0;
    const createOnB = () => call(b, 'POST', '/v1/llm-providers', { name: `p${n++}`, provider: 'stub' }, user);
    /** B's answers until `ok` holds (the drop reaches B by NOTIFY, a moment after A's commit). */
    const eventually = async (ok: (r: { status: number; body: any }) => boolean) => {
      let r = await createOnB();
      for (let i = 0; i < 100 && !ok(r); i++) {
        await new Promise((res) => setTimeout(res, 20));
        r = await createOnB();
      }
      return r;
    };
    assert.equal((await createOnB()).status, 201); // B caches the account's flags: none
    assert.equal((await call(a, 'POST', '/v1/feature-flags', { key: 'feature.byok_enabled', default_value: false }, admin)).status, 201);
    assert.equal((await eventually((r) => r.status === 403)).body.code, 'policy.byok_disabled');
    assert.equal((await call(a, 'POST', '/v1/feature-flags/feature.byok_enabled/org-overrides', { org_id: org, enabled: true }, admin)).status, 200);
    assert.equal((await eventually((r) => r.status === 201)).status, 201);
    assert.equal((await call(a, 'DELETE', `/v1/feature-flags/feature.byok_enabled/org-overrides/${org}`, undefined, admin)).status, 200);
    assert.equal((await eventually((r) => r.status === 403)).body.code, 'policy.byok_disabled');
    const flagsOnB = (await call(b, 'GET', '/v1/me/feature-flags', undefined, user)).body.data;
    assert.deepEqual(flagsOnB, [{ key: 'feature.byok_enabled', enabled: false, source: 'default' }]);
  });
});
