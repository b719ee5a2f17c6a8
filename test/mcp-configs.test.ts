// MCP configs (api.md §13): every endpoint's shape, the transport rules (stdio for platform
// admins, remote behind feature.mcp_remote_enabled and the SSRF check), validation of every
// field, tenancy, audit rows, secrets never returned, and the tools endpoint against real
// servers (server-everything and server-memory over stdio).
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import type { Res, TestUser } from './helpers/app.js';
import { expectError, expectFieldError } from './helpers/assert.js';
import { auditRows, createTeam, type IdentityApp, setSetting, startIdentityApp } from './helpers/identity-app.js';
import { EVERYTHING_BIN, MEMORY_BIN, stdioConfig } from './helpers/mcp.js';
import { decryptSecret } from '../src/lib/crypto.js';
import { closeMcp } from '../src/mcp/runtime.js';

const TOKEN = 'mcp-secret-token-0123456789abcdef';
const ENV_VALUE = 'env-secret-value-9876543210';

const CONFIG_KEYS = ['args', 'call_timeout_ms', 'command', 'created_at', 'cwd', 'env_keys', 'has_auth', 'id', 'inherit_parent_env', 'is_active', 'name', 'org_id', 'transport', 'updated_at', 'url'];

describe('MCP configs', () => {
  let t: IdentityApp;
  let root: TestUser; // platform admin
  let owner: TestUser;
  let member: TestUser;
  let other: TestUser;
  let ws: string;
  /** Every response body seen, to check no secret ever leaves. */
  const seen: string[] = [];
  const as = (u: TestUser, account = ws) => ({ token: u.token, headers: { 'x-account-id': account } });

  async function req(method: string, path: string, body: unknown, opts: { token: string; headers: Record<string, string> }): Promise<Res> {
    const res = await t.request(method, path, body, opts);
    seen.push(res.text);
    return res;
  }
  const post = (body: unknown, u = owner, account = ws) => req('POST', '/v1/mcp-configs', body, as(u, account));
  const patch = (id: string, body: unknown, u = owner, account = ws) => req('PATCH', `/v1/mcp-configs/${id}`, body, as(u, account));
  const del = (id: string, u = owner, account = ws) => req('DELETE', `/v1/mcp-configs/${id}`, undefined, as(u, account));
  const get = (path: string, u = owner, account = ws) => req('GET', path, undefined, as(u, account));

  async function created(res: Res) {
    assert.equal(res.status, 201, res.text);
    return res.body;
  }
  const remote = (name: string, extra: Record<string, unknown> = {}) => ({ name, transport: 'streamable_http', url: 'https://mcp.example.com/mcp', ...extra });
  const setRemote = (on: boolean) => setSetting(t, 'feature.mcp_remote_enabled', on);

  before(async () => {
    t = await startIdentityApp();
    ({ root, owner, member, other, ws } = await createTeam(t));
    await setRemote(true);
  });
  after(async () => {
    await closeMcp(t.ctx);
    await t.close();
  });

  it('creates a stdio config (platform admin): env encrypted at rest, only its names returned, audited without values', async () => {
    const c = await created(await post(stdioConfig('  Everything ', EVERYTHING_BIN, ['stdio'], { env: { API_KEY: ENV_VALUE, MODE: 'x' }, cwd: '/tmp' }), root));
    assert.deepEqual(Object.keys(c).sort(), CONFIG_KEYS);
    assert.equal(c.name, 'Everything');
    assert.equal(c.org_id, ws);
    assert.equal(c.transport, 'stdio');
    assert.equal(c.url, null);
    assert.equal(c.has_auth, false);
    assert.equal(c.command, process.execPath);
    assert.deepEqual(c.args, [EVERYTHING_BIN, 'stdio']);
    assert.equal(c.cwd, '/tmp');
    assert.deepEqual(c.env_keys, ['API_KEY', 'MODE']);
    assert.equal(c.inherit_parent_env, false);
    assert.equal(c.call_timeout_ms, 10000);
    assert.equal(c.is_active, true);
    const row = await t.ctx.db.selectFrom('mcp_configs').selectAll().where('id', '=', c.id).executeTakeFirstOrThrow();
    assert.ok(!JSON.stringify(row).includes(ENV_VALUE), 'env values are not stored in clear');
    assert.deepEqual(JSON.parse(decryptSecret(row.env_enc!, t.ctx.secrets.encryptionKey)), { API_KEY: ENV_VALUE, MODE: 'x' });
    const [audit] = await auditRows(t, { action: 'mcp_config.create', targetId: c.id });
    assert.ok(audit);
    assert.equal(audit.actor_user_id, root.id);
    assert.equal(audit.org_id, ws);
    assert.ok(!JSON.stringify(audit).includes(ENV_VALUE));
    assert.ok(JSON.stringify(audit).includes('API_KEY'), 'the audit row names the env keys');
  });

  it('stdio configs are for platform admins only: create, edit and delete', async () => {
    expectError(await post(stdioConfig('mine', EVERYTHING_BIN)), 403, 'policy.mcp_stdio_forbidden');
    const c = await created(await post(stdioConfig('admin-made', EVERYTHING_BIN), root));
    expectError(await patch(c.id, { call_timeout_ms: 2000 }), 403, 'policy.mcp_stdio_forbidden');
    expectError(await del(c.id), 403, 'policy.mcp_stdio_forbidden');
    // The owner still sees it.
    assert.equal((await get(`/v1/mcp-configs/${c.id}`)).status, 200);
    assert.equal((await patch(c.id, { call_timeout_ms: 2000 }, root)).body.call_timeout_ms, 2000);
    assert.equal((await del(c.id, root)).status, 204);
  });

  it('creates a remote config: the bearer token encrypted, never returned (has_auth), audited without it', async () => {
    const c = await created(await post(remote('remote-a', { bearer_token: TOKEN, transport: 'http_sse' })));
    assert.deepEqual(Object.keys(c).sort(), CONFIG_KEYS);
    assert.equal(c.transport, 'http_sse');
    assert.equal(c.url, 'https://mcp.example.com/mcp');
    assert.equal(c.has_auth, true);
    assert.equal(c.command, null);
    assert.deepEqual(c.args, []);
    assert.deepEqual(c.env_keys, []);
    const row = await t.ctx.db.selectFrom('mcp_configs').selectAll().where('id', '=', c.id).executeTakeFirstOrThrow();
    assert.ok(!JSON.stringify(row).includes(TOKEN));
    assert.equal(decryptSecret(row.bearer_token_enc!, t.ctx.secrets.encryptionKey), TOKEN);
    const [audit] = await auditRows(t, { action: 'mcp_config.create', targetId: c.id });
    assert.ok(audit && !JSON.stringify(audit).includes(TOKEN));
    // A host that does not resolve is accepted when stored (§27.6: no DNS then).
    await created(await post(remote('remote-unresolvable', { url: 'http://no-such-host.invalid/mcp' })));
  });

  it('remote configs need feature.mcp_remote_enabled: create, edit and tools; deleting does not', async () => {
    const c = await created(await post(remote('remote-flag')));
    await setRemote(false);
    try {
      expectError(await post(remote('remote-off')), 403, 'policy.mcp_remote_disabled');
      expectError(await patch(c.id, { name: 'x' }), 403, 'policy.mcp_remote_disabled');
      expectError(await get(`/v1/mcp-configs/${c.id}/tools`), 403, 'policy.mcp_remote_disabled');
      assert.equal((await get(`/v1/mcp-configs/${c.id}`)).status, 200);
      assert.equal((await del(c.id)).status, 204);
    } finally {
      await setRemote(true);
    }
  });

  it('refuses URLs the SSRF guard refuses when stored, unless security.ssrf_allow_private', async () => {
    for (const url of ['http://127.0.0.1:8080/mcp', 'http://localhost/mcp', 'http://10.1.2.3/mcp', 'http://[::1]/mcp', 'http://169.254.169.254/latest', 'http://user:pw@mcp.example.com/mcp']) {
      const res = await post(remote('ssrf', { url }));
      expectError(res, 400, 'policy.ssrf_blocked');
      assert.equal(res.body.details.field, 'url');
    }
    const c = await created(await post(remote('ssrf-ok')));
    expectError(await patch(c.id, { url: 'http://192.168.1.1/mcp' }), 400, 'policy.ssrf_blocked');
    await setSetting(t, 'security.ssrf_allow_private', true);
    try {
      assert.equal((await patch(c.id, { url: 'http://127.0.0.1:9/mcp' })).status, 200);
    } finally {
      await setSetting(t, 'security.ssrf_allow_private', false);
    }
  });

  it('validates every field', async () => {
    const s = (extra: Record<string, unknown>) => stdioConfig('v', EVERYTHING_BIN, [], extra);
    const cases: Array<[Record<string, unknown>, string]> = [
      [{ transport: 'stdio', command: 'x' }, 'name'],
      [{ ...s({}), name: '' }, 'name'],
      [{ ...s({}), name: '   ' }, 'name'],
      [{ ...s({}), name: 'n'.repeat(101) }, 'name'],
      [{ ...s({}), name: 7 }, 'name'],
      [{ name: 'v', command: 'x' }, 'transport'],
      [{ ...s({}), transport: 'websocket' }, 'transport'],
      [{ ...s({}), transport: 'STDIO' }, 'transport'],
      [{ name: 'v', transport: 'streamable_http' }, 'url'],
      [remote('v', { url: 'not a url' }), 'url'],
      [remote('v', { url: 'ftp://mcp.example.com/x' }), 'url'],
      [remote('v', { url: 'https://mcp.example.com/' + 'a'.repeat(2048) }), 'url'],
      [remote('v', { url: 5 }), 'url'],
      [remote('v', { bearer_token: '' }), 'bearer_token'],
      [remote('v', { bearer_token: 'a'.repeat(4097) }), 'bearer_token'],
      [remote('v', { bearer_token: 'has space' }), 'bearer_token'],
      [remote('v', { bearer_token: 'line\nbreak' }), 'bearer_token'],
      [remote('v', { bearer_token: 12 }), 'bearer_token'],
      [{ name: 'v', transport: 'stdio' }, 'command'],
      [{ ...s({}), command: '' }, 'command'],
      [{ ...s({}), command: '   ' }, 'command'],
      [{ ...s({}), command: 'c'.repeat(1001) }, 'command'],
      [{ ...s({}), command: ['node'] }, 'command'],
      [s({ args: 'a b' }), 'args'],
      [s({ args: [1] }), 'args'],
      [s({ args: Array.from({ length: 101 }, () => 'a') }), 'args'],
      [s({ args: ['a'.repeat(201)] }), 'args'],
      [s({ cwd: '' }), 'cwd'],
      [s({ cwd: 'd'.repeat(1001) }), 'cwd'],
      [s({ cwd: 3 }), 'cwd'],
      [s({ env: 'A=1' }), 'env'],
      [s({ env: ['A'] }), 'env'],
      [s({ env: { A: 1 } }), 'env'],
      [s({ env: { '1A': 'x' } }), 'env'],
      [s({ env: { 'A-B': 'x' } }), 'env'],
      [s({ env: { A: 'x'.repeat(17 * 1024) } }), 'env'],
      [s({ inherit_parent_env: 'yes' }), 'inherit_parent_env'],
      [s({ call_timeout_ms: 99 }), 'call_timeout_ms'],
      [s({ call_timeout_ms: 600_001 }), 'call_timeout_ms'],
      [s({ call_timeout_ms: 1.5 }), 'call_timeout_ms'],
      [s({ call_timeout_ms: '1000' }), 'call_timeout_ms'],
      [s({ is_active: 'true' }), 'is_active'],
      // Fields of the other kind of transport.
      [s({ url: 'https://mcp.example.com/mcp' }), 'url'],
      [s({ bearer_token: TOKEN }), 'bearer_token'],
      [remote('v', { command: 'node' }), 'command'],
      [remote('v', { args: ['x'] }), 'args'],
      [remote('v', { cwd: '/tmp' }), 'cwd'],
      [remote('v', { env: { A: 'b' } }), 'env'],
      [remote('v', { inherit_parent_env: true }), 'inherit_parent_env'],
    ];
    for (const [body, field] of cases) {
      const res = await post(body, root);
      assert.equal(res.status, 400, `${JSON.stringify(body).slice(0, 120)} → ${res.status} ${res.text}`);
      expectFieldError(res, field);
    }
    // null on create is absent; the limits themselves pass.
    const ok = await created(await post(s({ name: 'n'.repeat(100), args: Array.from({ length: 100 }, () => 'a'.repeat(200)), env: null, cwd: null, call_timeout_ms: 100, inherit_parent_env: null, url: null, bearer_token: null }), root));
    assert.equal(ok.call_timeout_ms, 100);
    assert.equal((await post(remote('limits', { call_timeout_ms: 600_000, command: null, args: [], env: {}, inherit_parent_env: false }))).status, 201);
  });

  it('names are unique in an account (409 on create and update), not across accounts', async () => {
    const a = await created(await post(remote('dup')));
    expectError(await post(remote(' dup ')), 409, 'mcp_configs.name_taken');
    const b = await created(await post(remote('dup-2')));
    expectError(await patch(b.id, { name: 'dup' }), 409, 'mcp_configs.name_taken');
    await created(await post(remote('dup'), other, other.personalAccountId));
    assert.equal((await patch(a.id, { name: 'dup' })).status, 200, 'its own name again is fine');
  });

  it('lists oldest first and gets one; needs data.secrets; another account sees 404', async () => {
    const list = await get('/v1/mcp-configs');
    assert.equal(list.status, 200);
    assert.ok(list.body.length >= 3);
    const times = list.body.map((c: any) => c.created_at);
    assert.deepEqual(times, [...times].sort());
    for (const c of list.body) assert.deepEqual(Object.keys(c).sort(), CONFIG_KEYS);
    const first = list.body[0];
    assert.deepEqual((await get(`/v1/mcp-configs/${first.id}`)).body, first);
    expectError(await get('/v1/mcp-configs', member), 403, 'auth.forbidden');
    expectError(await get(`/v1/mcp-configs/${first.id}`, member), 403, 'auth.forbidden');
    expectError(await post(remote('member'), member), 403, 'auth.forbidden');
    const stranger = { token: other.token, headers: {} };
    expectError(await req('GET', `/v1/mcp-configs/${first.id}`, undefined, stranger), 404, 'mcp_configs.not_found');
    expectError(await req('PATCH', `/v1/mcp-configs/${first.id}`, { name: 'x' }, stranger), 404, 'mcp_configs.not_found');
    expectError(await req('DELETE', `/v1/mcp-configs/${first.id}`, undefined, stranger), 404, 'mcp_configs.not_found');
    expectError(await req('GET', `/v1/mcp-configs/${first.id}/tools`, undefined, stranger), 404, 'mcp_configs.not_found');
    expectError(await get('/v1/mcp-configs/not-a-uuid'), 404, 'mcp_configs.not_found');
    const theirs = await req('GET', '/v1/mcp-configs', undefined, stranger);
    assert.ok(theirs.body.every((c: any) => c.org_id === other.personalAccountId));
  });

  it('updates: token set and cleared, env replaced, url, timeout, activity; transport fixed; audited before/after without secrets', async () => {
    const c = await created(await post(remote('upd')));
    const u1 = await patch(c.id, { bearer_token: TOKEN, call_timeout_ms: 5000, is_active: false, url: 'https://other.example.com/mcp', name: ' upd2 ' });
    assert.equal(u1.status, 200, u1.text);
    assert.deepEqual(Object.keys(u1.body).sort(), CONFIG_KEYS);
    assert.equal(u1.body.has_auth, true);
    assert.equal(u1.body.call_timeout_ms, 5000);
    assert.equal(u1.body.is_active, false);
    assert.equal(u1.body.url, 'https://other.example.com/mcp');
    assert.equal(u1.body.name, 'upd2');
    assert.ok(u1.body.updated_at > c.updated_at);
    const u2 = await patch(c.id, { bearer_token: null });
    assert.equal(u2.body.has_auth, false);
    expectFieldError(await patch(c.id, { transport: 'http_sse' }), 'transport');
    assert.equal((await patch(c.id, { transport: 'streamable_http', is_active: true })).status, 200, 'the same transport is no change');
    expectFieldError(await patch(c.id, { url: null }), 'url');
    expectFieldError(await patch(c.id, { command: 'node' }), 'command');
    expectFieldError(await patch(c.id, { call_timeout_ms: 50 }), 'call_timeout_ms');
    expectFieldError(await patch(c.id, { name: null }), 'name');
    expectFieldError(await patch(c.id, { is_active: null }), 'is_active');
    expectError(await patch(c.id, {}), 400, 'validation.error');
    expectError(await patch(c.id, { unknown: 1 }), 400, 'validation.error');
    const audits = await auditRows(t, { action: 'mcp_config.update', targetId: c.id });
    assert.ok(audits.length >= 3);
    assert.ok(audits.every((a) => !JSON.stringify(a).includes(TOKEN)));
    const meta = audits[0].metadata as any;
    assert.equal((audits[0].before_state as any).name, 'upd');
    assert.equal((audits[0].after_state as any).name, 'upd2');
    assert.equal(meta.bearer_token_changed, true);

    const s = await created(await post(stdioConfig('upd-stdio', EVERYTHING_BIN, [], { env: { A: 'one', B: 'two' } }), root));
    const s1 = await patch(s.id, { env: { C: ENV_VALUE }, args: ['x'], cwd: '/tmp', inherit_parent_env: true, command: '/usr/bin/env' }, root);
    assert.equal(s1.status, 200, s1.text);
    assert.deepEqual(s1.body.env_keys, ['C']);
    assert.deepEqual(s1.body.args, ['x']);
    assert.equal(s1.body.cwd, '/tmp');
    assert.equal(s1.body.inherit_parent_env, true);
    assert.equal(s1.body.command, '/usr/bin/env');
    assert.equal((await patch(s.id, { cwd: null }, root)).body.cwd, null);
    expectFieldError(await patch(s.id, { url: 'https://mcp.example.com/mcp' }, root), 'url');
    expectFieldError(await patch(s.id, { command: null }, root), 'command');
    expectFieldError(await patch(s.id, { env: null }, root), 'env');
    const row = await t.ctx.db.selectFrom('mcp_configs').selectAll().where('id', '=', s.id).executeTakeFirstOrThrow();
    assert.deepEqual(JSON.parse(decryptSecret(row.env_enc!, t.ctx.secrets.encryptionKey)), { C: ENV_VALUE });
    assert.equal((await patch(s.id, { env: {} }, root)).body.env_keys.length, 0);
  });

  it('deletes: 204, audited, gone afterwards', async () => {
    const c = await created(await post(remote('del')));
    const res = await del(c.id);
    assert.equal(res.status, 204);
    assert.equal(res.text, '');
    expectError(await get(`/v1/mcp-configs/${c.id}`), 404, 'mcp_configs.not_found');
    expectError(await del(c.id), 404, 'mcp_configs.not_found');
    const [audit] = await auditRows(t, { action: 'mcp_config.delete', targetId: c.id });
    assert.ok(audit);
    assert.equal(audit.actor_user_id, owner.id);
  });

  it('GET tools: a fresh discovery from real servers (server-everything, server-memory), named as offered to the model', async () => {
    const e = await created(await post(stdioConfig('Tools Everything!', EVERYTHING_BIN, ['stdio']), root));
    const res = await get(`/v1/mcp-configs/${e.id}/tools`);
    assert.equal(res.status, 200, res.text);
    const echo = res.body.tools.find((x: any) => x.original_name === 'echo');
    assert.ok(echo, res.text);
    assert.deepEqual(Object.keys(echo).sort(), ['description', 'input_schema', 'name', 'original_name']);
    assert.equal(echo.name, 'mcp__tools_everything___echo');
    assert.equal(echo.description, 'Echoes back the input string');
    assert.equal(echo.input_schema.type, 'object');
    assert.ok(echo.input_schema.properties.message);
    assert.ok(res.body.tools.some((x: any) => x.original_name === 'get-sum' && x.name === 'mcp__tools_everything___get-sum'));
    for (const tool of res.body.tools) assert.match(tool.name, /^[A-Za-z0-9_-]{1,64}$/);
    // Again: the same running server answers.
    assert.equal((await get(`/v1/mcp-configs/${e.id}/tools`)).status, 200);

    const m = await created(await post(stdioConfig('memory', MEMORY_BIN, [], { env: { MEMORY_FILE_PATH: '/tmp/arkloop-mcp-memory-test.json' } }), root));
    const mem = await get(`/v1/mcp-configs/${m.id}/tools`);
    assert.equal(mem.status, 200, mem.text);
    const names = mem.body.tools.map((x: any) => x.name);
    assert.ok(names.includes('mcp__memory__create_entities'), names.join(','));
    assert.ok(names.includes('mcp__memory__read_graph'));
  });

  it('GET tools: a server that cannot be reached answers 502 with the MCP class', async () => {
    const missing = await created(await post({ name: 'no-such-command', transport: 'stdio', command: '/nonexistent/mcp-server' }, root));
    const r1 = await get(`/v1/mcp-configs/${missing.id}/tools`);
    expectError(r1, 502, 'mcp.disconnected');
    assert.equal(typeof r1.body.details.message, 'string');
    const exits = await created(await post({ name: 'exits-at-once', transport: 'stdio', command: process.execPath, args: ['-e', 'process.exit(2)'] }, root));
    expectError(await get(`/v1/mcp-configs/${exits.id}/tools`), 502, 'mcp.disconnected');

    await setSetting(t, 'security.ssrf_allow_private', true);
    try {
      const closed = await created(await post(remote('closed-port', { url: 'http://127.0.0.1:1/mcp' })));
      const r2 = await get(`/v1/mcp-configs/${closed.id}/tools`);
      expectError(r2, 502, 'mcp.disconnected');
      assert.equal(typeof r2.body.details.message, 'string');
      // Stored while private targets were allowed; refused at call time once they are not.
      await setSetting(t, 'security.ssrf_allow_private', false);
      expectError(await get(`/v1/mcp-configs/${closed.id}/tools`), 400, 'policy.ssrf_blocked');
    } finally {
      await setSetting(t, 'security.ssrf_allow_private', false);
    }
  });

  it('never returns a secret', () => {
    const all = seen.join('\n');
    assert.ok(!all.includes(TOKEN), 'a bearer token was returned');
    assert.ok(!all.includes(ENV_VALUE), 'an env value was returned');
  });
});
