// Platform settings for platform admins (api.md §21.22–21.26, §28): list, get, put, bulk put and
// delete; every value checked against the type, range and enum of §28.2; env-forced keys;
// sensitive values sealed at rest and redacted everywhere; one audit row per key.
import { after, before, beforeEach, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { registerUser, startTestApp, type TestApp } from './helpers/app.js';
import { adminCast, expectPadminOnly, type AdminCast } from './helpers/admin.js';
import { expectError, expectFieldError } from './helpers/assert.js';
import { SETTINGS, type SettingDef } from '../src/modules/settings/registry.js';
import { newId } from '../src/lib/ids.js';

const MASK = '********';

/** A value of the wrong JSON type for the key. */
function wrongType(def: SettingDef): unknown {
  switch (def.type) {
    case 'int':
      return 1.5;
    case 'number':
      return 'a number';
    case 'bool':
      return 'true';
    case 'string':
      return 12;
    case 'json':
      return [1, 2];
  }
}

describe('platform settings', () => {
  let t: TestApp;
  let cast: AdminCast;
  const put = (key: string, value: unknown) => t.put(`/v1/admin/platform-settings/${key}`, { value }, { token: cast.admin.token });
  const get = (key: string) => t.get(`/v1/admin/platform-settings/${key}`, { token: cast.admin.token });
  /** The key's audit rows written by the running test (ids are time-ordered). */
  let since = newId();
  beforeEach(() => {
    since = newId();
  });
  const auditOf = (key: string) =>
    t.ctx.db.selectFrom('audit_logs').selectAll().where('action', '=', 'platform_setting.update').where('target_id', '=', key).where('id', '>', since).orderBy('created_at').orderBy('id').execute();

  before(async () => {
    t = await startTestApp({ ARKLOOP_CREDIT_PER_USD: '777', ARKLOOP_WEB_SEARCH_TAVILY_API_KEY: 'tvly-from-env' });
    cast = await adminCast(t);
  });
  after(async () => {
    await t.close();
  });

  it('is for platform admins only (access tokens; never API keys)', async () => {
    await expectPadminOnly(t, cast, 'GET', '/v1/admin/platform-settings');
    await expectPadminOnly(t, cast, 'GET', '/v1/admin/platform-settings/credit.initial_grant');
    await expectPadminOnly(t, cast, 'PUT', '/v1/admin/platform-settings/credit.initial_grant', { value: 5 });
    await expectPadminOnly(t, cast, 'PUT', '/v1/admin/platform-settings', { values: { 'credit.initial_grant': 5 } });
    await expectPadminOnly(t, cast, 'DELETE', '/v1/admin/platform-settings/credit.initial_grant');
    assert.equal((await get('credit.initial_grant')).body.is_set, false, 'nothing was written by the refused calls');
  });

  it('lists every key of §28.2 sorted, with its definition; prefix filters', async () => {
    const res = await t.get('/v1/admin/platform-settings', { token: cast.admin.token });
    assert.equal(res.status, 200, res.text);
    const keys = res.body.data.map((s: { key: string }) => s.key);
    assert.deepEqual(keys, [...SETTINGS.keys()].sort());
    const grant = res.body.data.find((s: { key: string }) => s.key === 'credit.initial_grant');
    assert.deepEqual(grant, {
      key: 'credit.initial_grant',
      type: 'int',
      scope: 'platform',
      default: 1000,
      value: null,
      effective: 1000,
      source: 'default',
      sensitive: false,
      is_set: false,
      description: SETTINGS.get('credit.initial_grant')!.description,
      updated_at: null,
    });
    const credit = await t.get('/v1/admin/platform-settings?prefix=credit.', { token: cast.admin.token });
    assert.deepEqual(credit.body.data.map((s: { key: string }) => s.key), keys.filter((k: string) => k.startsWith('credit.')));
    assert.deepEqual((await t.get('/v1/admin/platform-settings?prefix=nothing.', { token: cast.admin.token })).body, { data: [] });
  });

  it('unknown keys answer 404 settings.not_found on every route', async () => {
    expectError(await get('no.such_key'), 404, 'settings.not_found');
    expectError(await put('no.such_key', 1), 404, 'settings.not_found');
    expectError(await t.del('/v1/admin/platform-settings/no.such_key', { token: cast.admin.token }), 404, 'settings.not_found');
    const bulk = await t.put('/v1/admin/platform-settings', { values: { 'credit.initial_grant': 5, 'no.such_key': 1 } }, { token: cast.admin.token });
    expectError(bulk, 404, 'settings.not_found');
    assert.equal((await get('credit.initial_grant')).body.is_set, false);
  });

  it('every key refuses a value of the wrong type (400, details.key) and accepts its default', async () => {
    for (const def of SETTINGS.values()) {
      const res = await put(def.key, wrongType(def));
      expectError(res, 400, 'validation.error');
      assert.equal(res.body.details.key, def.key, res.text);
    }
    const all = Object.fromEntries([...SETTINGS.values()].map((d) => [d.key, d.default]));
    const res = await t.put('/v1/admin/platform-settings', { values: all }, { token: cast.admin.token });
    assert.equal(res.status, 200, res.text);
    assert.equal(res.body.data.length, SETTINGS.size);
    for (const s of res.body.data) {
      assert.equal(s.is_set, true, s.key);
      if (!s.sensitive && s.source === 'db') assert.deepEqual(s.value, SETTINGS.get(s.key)!.default, s.key);
    }
    for (const def of SETTINGS.values()) assert.equal((await t.del(`/v1/admin/platform-settings/${def.key}`, { token: cast.admin.token })).status, 204);
    assert.equal((await t.ctx.db.selectFrom('platform_settings').select('key').execute()).length, 0);
  });

  it('every range and enum of §28.2 is enforced', async () => {
    for (const def of SETTINGS.values()) {
      if (def.min !== undefined) {
        const res = await put(def.key, def.min - 1);
        expectError(res, 400, 'validation.error');
        assert.equal(res.body.details.key, def.key);
        assert.equal((await put(def.key, def.min)).status, 200, def.key);
      }
      if (def.max !== undefined) {
        expectError(await put(def.key, def.max + 1), 400, 'validation.error');
        assert.equal((await put(def.key, def.max)).status, 200, def.key);
      }
      if (def.type === 'int' && def.max === undefined) expectError(await put(def.key, 2 ** 31), 400, 'validation.error');
      if (def.enum) {
        const res = await put(def.key, 'not-an-option');
        expectError(res, 400, 'validation.error');
        assert.match(res.body.details.fields[0].reason, /one of/);
        for (const v of def.enum) assert.equal((await put(def.key, v)).status, 200, `${def.key}=${v}`);
      }
      await t.del(`/v1/admin/platform-settings/${def.key}`, { token: cast.admin.token });
    }
    // Values whose shape the table implies.
    expectError(await put('credit.deduction_policy', { tiers: 'all' }), 400, 'validation.error');
    expectError(await put('credit.deduction_policy', { tiers: [{ multiplier: -1 }] }), 400, 'validation.error');
    assert.equal((await put('credit.deduction_policy', { tiers: [{ up_to_tokens: 10, multiplier: 0 }, { multiplier: 2 }] })).status, 200);
    expectError(await put('turnstile.verify_url', 'ftp://x'), 400, 'validation.error');
    expectError(await put('email.from', 'not an address'), 400, 'validation.error');
    assert.equal((await put('email.from', 'Arkloop <noreply@example.com>')).status, 200);
    expectError(await put('gateway.trusted_cidrs', '10.0.0.0/8, 300.1.1.1'), 400, 'validation.error');
    assert.equal((await put('gateway.trusted_cidrs', '10.0.0.0/8, 2001:db8::/32, 192.168.1.1')).status, 200);
    expectError(await put('turnstile.site_key', 'x'.repeat(2049)), 400, 'validation.error');
    expectFieldError(await t.put('/v1/admin/platform-settings/credit.initial_grant', {}, { token: cast.admin.token }), 'value');
  });

  it('put stores and takes effect at once; null and delete remove; each writes its audit row', async () => {
    const res = await put('credit.initial_grant', 42);
    assert.equal(res.status, 200, res.text);
    assert.equal(res.body.value, 42);
    assert.equal(res.body.effective, 42);
    assert.equal(res.body.source, 'db');
    assert.equal(res.body.is_set, true);
    assert.ok(Date.parse(res.body.updated_at) > 0);
    // The next registration gets the new grant.
    const u = await registerUser(t);
    assert.equal((await t.get('/v1/me/credits', { token: u.token })).body.balance, 42);

    assert.equal((await put('registration.mode', 'disabled')).status, 200);
    expectError(await t.post('/v1/auth/register', { login: 'blocked_user', email: 'blocked@example.com', password: 'correct horse battery' }), 403, 'auth.registration_disabled');
    assert.equal((await t.del('/v1/admin/platform-settings/registration.mode', { token: cast.admin.token })).status, 204);
    assert.equal((await get('registration.mode')).body.source, 'default');

    const cleared = await put('credit.initial_grant', null);
    assert.equal(cleared.status, 200);
    assert.equal(cleared.body.source, 'default');
    assert.equal(cleared.body.value, null);
    assert.equal(cleared.body.effective, 1000);

    const rows = await auditOf('credit.initial_grant');
    assert.deepEqual(rows.map((r) => [r.before_state, r.after_state]), [
      [{ value: null }, { value: 42 }],
      [{ value: 42 }, { value: null }],
    ]);
    assert.equal(rows[0].actor_user_id, cast.admin.id);
    assert.equal(rows[0].org_id, null);
    assert.equal((await auditOf('registration.mode')).length, 2);
  });

  it('bulk put is all or nothing, names every bad key, and writes one audit row per key', async () => {
    const bad = await t.put('/v1/admin/platform-settings', { values: { 'credit.invite_reward': 7, 'llm.retry.max_attempts': 0, 'registration.mode': 'sometimes' } }, { token: cast.admin.token });
    expectError(bad, 400, 'validation.error');
    assert.deepEqual(bad.body.details.fields.map((f: { field: string }) => f.field).sort(), ['llm.retry.max_attempts', 'registration.mode']);
    assert.equal((await get('credit.invite_reward')).body.is_set, false, 'the valid key was not written either');
    expectFieldError(await t.put('/v1/admin/platform-settings', { values: {} }, { token: cast.admin.token }), 'values');
    const many = Object.fromEntries(Array.from({ length: 101 }, (_, i) => [`k${i}`, 1]));
    expectFieldError(await t.put('/v1/admin/platform-settings', { values: many }, { token: cast.admin.token }), 'values');

    const ok = await t.put('/v1/admin/platform-settings', { values: { 'credit.invite_reward': 7, 'llm.retry.max_attempts': 4 } }, { token: cast.admin.token });
    assert.equal(ok.status, 200, ok.text);
    assert.deepEqual(ok.body.data.map((s: { key: string; value: unknown }) => [s.key, s.value]), [['credit.invite_reward', 7], ['llm.retry.max_attempts', 4]]);
    assert.equal(await t.ctx.settings.int('llm.retry.max_attempts'), 4);
    assert.equal((await auditOf('credit.invite_reward')).length, 1);
    assert.equal((await auditOf('llm.retry.max_attempts')).length, 1);
  });

  it('a key forced by the environment keeps source env and its value whatever is stored', async () => {
    const before = await get('credit.per_usd');
    assert.equal(before.body.source, 'env');
    assert.equal(before.body.effective, 777);
    const res = await put('credit.per_usd', 5);
    assert.equal(res.status, 200);
    assert.equal(res.body.source, 'env');
    assert.equal(res.body.effective, 777);
    assert.equal(res.body.value, 5);
    assert.equal(res.body.is_set, true);
    assert.equal(await t.ctx.settings.int('credit.per_usd'), 777);
  });

  it('sensitive values are stored sealed and shown, logged and audited only redacted', async () => {
    const secret = 'turnstile-secret-value-123';
    const res = await put('turnstile.secret_key', secret);
    assert.equal(res.status, 200, res.text);
    assert.equal(res.body.sensitive, true);
    assert.equal(res.body.value, MASK);
    assert.equal(res.body.effective, MASK);
    assert.equal(res.body.default, '');
    const row = await t.ctx.db.selectFrom('platform_settings').select('value').where('key', '=', 'turnstile.secret_key').executeTakeFirstOrThrow();
    assert.ok(!JSON.stringify(row.value).includes(secret), 'stored encrypted');
    assert.match((row.value as { $enc: string }).$enc, /^v1:/);
    assert.equal(await t.ctx.settings.string('turnstile.secret_key'), secret, 'the app reads the plaintext');
    const list = await t.get('/v1/admin/platform-settings?prefix=turnstile.', { token: cast.admin.token });
    assert.ok(!list.text.includes(secret));
    // From the environment: redacted too.
    const env = await get('web_search.tavily_api_key');
    assert.deepEqual([env.body.source, env.body.value, env.body.effective], ['env', null, MASK]);
    // An empty secret counts as unset.
    const cleared = await put('turnstile.secret_key', '');
    assert.deepEqual([cleared.body.value, cleared.body.effective, cleared.body.is_set], [null, null, true]);
    const audit = await auditOf('turnstile.secret_key');
    assert.equal(audit.length, 2);
    assert.ok(!JSON.stringify(audit).includes(secret));
    assert.deepEqual(audit[0].after_state, { value: '[redacted]' });
    assert.deepEqual(audit[1].before_state, { value: '[redacted]' });
  });
});
