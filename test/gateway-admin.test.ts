// Admin endpoints of the gateway (api.md §21.11–21.13): padmin only, GatewayConfig from the
// gateway.* settings, PUT validation and aliases, the audit row with before/after.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { startTestApp, type TestApp } from './helpers/app.js';
import { adminCast, expectPadminOnly, type AdminCast } from './helpers/admin.js';
import { expectError, expectFieldError } from './helpers/assert.js';

const DEFAULTS = { ip_mode: 'direct', trusted_cidrs: [], risk_reject_threshold: 0, ratelimit_capacity: 600, ratelimit_rate_per_minute: 300 };

describe('admin gateway config and access log', () => {
  let t: TestApp;
  let cast: AdminCast;
  const as = () => ({ token: cast.admin.token });

  before(async () => {
    t = await startTestApp();
    cast = await adminCast(t);
  });
  after(async () => t?.close());

  it('is for platform admins only', async () => {
    await expectPadminOnly(t, cast, 'GET', '/v1/admin/gateway-config');
    await expectPadminOnly(t, cast, 'PUT', '/v1/admin/gateway-config', { risk_reject_threshold: 10 });
    await expectPadminOnly(t, cast, 'GET', '/v1/admin/access-log');
  });

  it('GET answers the defaults; PUT changes any subset, maps the aliases, and answers the new config', async () => {
    const got = await t.get('/v1/admin/gateway-config', as());
    assert.equal(got.status, 200, got.text);
    assert.deepEqual(got.body, DEFAULTS);

    const put = await t.put('/v1/admin/gateway-config', { ip_mode: 'proxy', trusted_cidrs: [' 10.0.0.0/8 ', '192.0.2.1', '2001:db8::/32'] }, as());
    assert.equal(put.status, 200, put.text);
    assert.deepEqual(put.body, { ...DEFAULTS, ip_mode: 'trusted_proxy', trusted_cidrs: ['10.0.0.0/8', '192.0.2.1', '2001:db8::/32'] });
    const cdn = await t.put('/v1/admin/gateway-config', { ip_mode: 'cdn', risk_reject_threshold: 70, ratelimit_capacity: 50, ratelimit_rate_per_minute: 12.5 }, as());
    assert.equal(cdn.status, 200, cdn.text);
    assert.deepEqual(cdn.body, { ip_mode: 'cloudflare', trusted_cidrs: ['10.0.0.0/8', '192.0.2.1', '2001:db8::/32'], risk_reject_threshold: 70, ratelimit_capacity: 50, ratelimit_rate_per_minute: 12.5 });
    assert.deepEqual((await t.get('/v1/admin/gateway-config', as())).body, cdn.body);
    // The settings table sees the same values (§28.2 keys).
    assert.equal((await t.ctx.settings.resolve('gateway.trusted_cidrs')).value, '10.0.0.0/8,192.0.2.1,2001:db8::/32');

    const audit = await t.ctx.db.selectFrom('audit_logs').selectAll().where('action', '=', 'gateway_config.update').orderBy('created_at', 'desc').executeTakeFirstOrThrow();
    assert.equal(audit.target_type, 'gateway_config');
    assert.equal((audit.before_state as { ip_mode: string }).ip_mode, 'trusted_proxy');
    assert.deepEqual(audit.after_state, cdn.body);
    assert.deepEqual((audit.metadata as { fields: string[] }).fields, ['ip_mode', 'ratelimit_capacity', 'ratelimit_rate_per_minute', 'risk_reject_threshold']);

    const reset = await t.put('/v1/admin/gateway-config', { ...DEFAULTS }, as());
    assert.deepEqual(reset.body, DEFAULTS);
  });

  it('refuses invalid values and an empty body', async () => {
    expectError(await t.put('/v1/admin/gateway-config', {}, as()), 400, 'validation.error');
    for (const [field, value] of [
      ['ip_mode', 'magic'],
      ['trusted_cidrs', ['10.0.0.0/33']],
      ['trusted_cidrs', ['not-an-ip']],
      ['trusted_cidrs', '10.0.0.0/8'],
      ['risk_reject_threshold', 101],
      ['risk_reject_threshold', -1],
      ['risk_reject_threshold', 1.5],
      ['ratelimit_capacity', 0],
      ['ratelimit_rate_per_minute', -3],
      ['ratelimit_capacity', 'many'],
    ] as const) {
      expectFieldError(await t.put('/v1/admin/gateway-config', { [field]: value }, as()), field);
    }
    assert.deepEqual((await t.get('/v1/admin/gateway-config', as())).body, DEFAULTS, 'nothing changed');
  });

  it('lists an empty access log when no gateway wrote to it', async () => {
    const res = await t.get('/v1/admin/access-log', as());
    assert.equal(res.status, 200, res.text);
    assert.deepEqual(res.body, { data: [], has_more: false, next_before: null });
  });
});
