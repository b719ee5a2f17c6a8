// §1 conventions that hold for every endpoint: bodies, errors, trace ids, aliases, CORS,
// account selection, pagination parameters.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import pino from 'pino';
import { registerUser, startTestApp, TEST_SECRETS, type TestApp, type TestUser } from './helpers/app.js';
import { expectError, expectFieldError } from './helpers/assert.js';
import { loadConfig } from '../src/config.js';
import { buildApp } from '../src/http/app.js';
import { createContext } from '../src/server.js';

describe('conventions', () => {
  let t: TestApp;
  let u: TestUser;
  before(async () => {
    t = await startTestApp();
    await registerUser(t); // the first user is the platform admin; use an ordinary one below
    u = await registerUser(t);
  });
  after(async () => { await t.close(); });

  it('a body over 1 MiB is a 413 with details.max_bytes', async () => {
    const res = await t.post('/v1/auth/login', { login: 'x', password: 'y'.repeat(1024 * 1024 + 10) });
    expectError(res, 413, 'validation.error');
    assert.equal(res.body.details.max_bytes, 1024 * 1024);
  });

  it('an unparseable body, a non-object or a wrong content type is a 422', async () => {
    const headers = { 'content-type': 'application/json' };
    expectError(await t.post('/v1/auth/login', undefined, { raw: '{"login": ', headers }), 422, 'validation.error');
    expectError(await t.post('/v1/auth/login', undefined, { raw: '[1,2]', headers }), 422, 'validation.error');
    expectError(await t.post('/v1/auth/login', undefined, { raw: 'null', headers }), 422, 'validation.error');
    expectError(await t.post('/v1/auth/login', undefined, { raw: '"text"', headers }), 422, 'validation.error');
    expectError(
      await t.post('/v1/auth/login', undefined, { raw: 'login=a&password=b', headers: { 'content-type': 'application/x-www-form-urlencoded' } }),
      422,
      'validation.error',
    );
  });

  it('an empty body counts as {}, with or without a content type', async () => {
    // All body fields of refresh are optional: the empty body reaches the handler.
    expectError(await t.post('/v1/auth/refresh', undefined, { raw: '', headers: { 'content-type': 'application/json' } }), 401, 'auth.refresh_token_invalid');
    expectError(await t.post('/v1/auth/refresh'), 401, 'auth.refresh_token_invalid');
    // Required fields are then missing: 400 naming them.
    expectFieldError(await t.post('/v1/auth/login', undefined, { raw: '', headers: { 'content-type': 'application/json' } }), 'login');
  });

  it('endpoints without a body ignore whatever is sent', async () => {
    const res = await t.post('/v1/me/invite-code/reset', undefined, { token: u.token, raw: 'garbage{', headers: { 'content-type': 'text/plain' } });
    assert.equal(res.status, 200);
  });

  it('validation errors name the field; unknown fields are ignored; wrong types are not coerced', async () => {
    expectFieldError(await t.post('/v1/auth/login', { password: 'x' }), 'login');
    expectFieldError(await t.patch('/v1/me', { username: 42 }, { token: u.token }), 'username');
    expectFieldError(await t.patch('/v1/me', { username: null }, { token: u.token }), 'username');
    expectFieldError(await t.patch('/v1/me', { username: 'x'.repeat(65) }, { token: u.token }), 'username');
    const ok = await t.patch('/v1/me', { username: '  Alice  ', unknown_field: true }, { token: u.token });
    assert.equal(ok.status, 200);
    assert.equal(ok.body.username, 'Alice');
    expectError(await t.patch('/v1/me', {}, { token: u.token }), 400, 'validation.error');
    expectFieldError(await t.patch('/v1/me', { username: '   ' }, { token: u.token }), 'username');
  });

  it('a NUL character anywhere in the input is a 400 naming the field, and nothing is stored', async () => {
    expectFieldError(await t.post('/v1/threads', { title: 'a\u0000b' }, { token: u.token }), 'title');
    expectFieldError(await t.post('/v1/auth/check', { login: 'x\u0000' }), 'login');
    expectFieldError(await t.get('/v1/threads', { token: u.token, query: { q: 'a\u0000' } }), 'q');
    const th = await t.post('/v1/threads', {}, { token: u.token });
    expectFieldError(await t.post(`/v1/threads/${th.body.id}/messages`, { content: 'hi\u0000there' }, { token: u.token }), 'content');
    const msgs = await t.get(`/v1/threads/${th.body.id}/messages`, { token: u.token });
    assert.deepEqual(msgs.body, []);
    const list = await t.get('/v1/threads', { token: u.token });
    assert.ok(!list.body.some((x: { title: string | null }) => x.title === 'a\u0000b'));
  });

  it('unpaired surrogates are a 400 naming the field; deep nesting is a plain validation error', async () => {
    const headers = { 'content-type': 'application/json' };
    expectFieldError(await t.post('/v1/threads', undefined, { token: u.token, raw: '{"title":"a\\ud800b"}', headers }), 'title');
    expectFieldError(await t.post('/v1/threads', undefined, { token: u.token, raw: '{"title":"\\udc00"}', headers }), 'title');
    const ok = await t.post('/v1/threads', { title: 'emoji \u{1F600} ok' }, { token: u.token });
    assert.equal(ok.status, 201);
    assert.equal(ok.body.title, 'emoji \u{1F600} ok');
    const deep = '{"title":' + '['.repeat(20000) + ']'.repeat(20000) + '}';
    expectFieldError(await t.post('/v1/threads', undefined, { token: u.token, raw: deep, headers }), 'title');
  });

  it('router-level URL errors answer the envelope: a malformed escape is a 400, a long id the resource 404', async () => {
    const bad = await t.get('/v1/threads/%E0%A4%A', { token: u.token });
    expectError(bad, 400, 'validation.error');
    assert.ok(bad.headers['x-trace-id']);
    expectError(await t.get('/v1/threads/' + 'a'.repeat(500), { token: u.token }), 404, 'threads.not_found');
    expectError(await t.get('/v1/threads/' + 'a'.repeat(5000), { token: u.token }), 404, 'not_found');
  });

  it('limit outside 1..200 and malformed cursors are 400s', async () => {
    for (const limit of ['0', '201', 'abc', '-1', '1.5']) {
      expectFieldError(await t.get(`/v1/me/credits?limit=${limit}`, { token: u.token }), 'limit');
    }
    expectFieldError(await t.get('/v1/me/credits?before=nope', { token: u.token }), 'before');
    expectFieldError(await t.get('/v1/me/credits?before=01890000-0000-7000-8000-000000000000', { token: u.token }), 'before');
    const ok = await t.get('/v1/me/credits?limit=200', { token: u.token });
    assert.equal(ok.status, 200);
  });

  it('PUT is accepted where PATCH is defined, and GET /v1/auth/me is GET /v1/me', async () => {
    const put = await t.put('/v1/me', { locale: 'de' }, { token: u.token });
    assert.equal(put.status, 200);
    assert.equal(put.body.locale, 'de');
    const a = await t.get('/v1/me', { token: u.token });
    const b = await t.get('/v1/auth/me', { token: u.token });
    assert.equal(b.status, 200);
    assert.deepEqual(a.body, b.body);
  });

  it('X-Account-Id: malformed → 400, unknown or foreign → 404 accounts.not_found', async () => {
    expectFieldError(await t.get('/v1/me', { token: u.token, headers: { 'x-account-id': 'nope' } }), 'X-Account-Id');
    expectError(await t.get('/v1/me', { token: u.token, headers: { 'x-account-id': '01890000-0000-7000-8000-000000000000' } }), 404, 'accounts.not_found');
    const other = await registerUser(t);
    expectError(await t.get('/v1/me', { token: u.token, headers: { 'x-account-id': other.personalAccountId } }), 404, 'accounts.not_found');
    const own = await t.get('/v1/me', { token: u.token, headers: { 'x-account-id': u.personalAccountId } });
    assert.equal(own.status, 200);
    assert.equal(own.body.org_id, u.personalAccountId);
  });

  it('credentials are checked before the body: 401 wins over 422', async () => {
    expectError(await t.patch('/v1/me', undefined, { raw: '{bad', headers: { 'content-type': 'application/json' } }), 401, 'auth.unauthorized');
  });

  it('every response carries X-Trace-Id; incoming ids are kept only when trusted', async () => {
    const res = await t.get('/healthz', { headers: { 'x-trace-id': 'incoming-trace-1234' } });
    assert.match(String(res.headers['x-trace-id']), /^[0-9a-f]{32}$/);
    const trusted = await startTestApp({ ARKLOOP_TRUST_INCOMING_TRACE_ID: '1' });
    try {
      const kept = await trusted.get('/v1/nothing', { headers: { 'x-trace-id': 'incoming-trace-1234' } });
      assert.equal(kept.headers['x-trace-id'], 'incoming-trace-1234');
      assert.equal(kept.body.trace_id, 'incoming-trace-1234');
      const bad = await trusted.get('/healthz', { headers: { 'x-trace-id': 'bad id!' } });
      assert.match(String(bad.headers['x-trace-id']), /^[0-9a-f]{32}$/);
    } finally {
      await trusted.close();
    }
  });

  it('CORS is off by default and on for the configured origins, with credentials', async () => {
    const pre = { origin: 'http://app.example', 'access-control-request-method': 'POST' };
    const off = await t.request('OPTIONS', '/v1/auth/login', undefined, { headers: pre });
    assert.equal(off.headers['access-control-allow-origin'], undefined);
    const c = await startTestApp({ ARKLOOP_CORS_ORIGINS: 'http://app.example' });
    try {
      const on = await c.request('OPTIONS', '/v1/auth/login', undefined, { headers: pre });
      assert.ok(on.status === 204 || on.status === 200);
      assert.equal(on.headers['access-control-allow-origin'], 'http://app.example');
      assert.equal(on.headers['access-control-allow-credentials'], 'true');
      const other = await c.request('OPTIONS', '/v1/auth/login', undefined, { headers: { ...pre, origin: 'http://evil.example' } });
      assert.notEqual(other.headers['access-control-allow-origin'], 'http://evil.example');
    } finally {
      await c.close();
    }
  });

  it('an unexpected failure is a 500 envelope without stack, SQL or message details', async () => {
    const config = loadConfig({ ARKLOOP_LOG_LEVEL: 'silent' });
    const ctx = await createContext({ config, database: t.db.database, secrets: TEST_SECRETS, log: pino({ level: 'silent' }) });
    const app = await buildApp(ctx);
    app.get('/v1/test-boom', async () => {
      throw new Error('SELECT password_hash FROM users WHERE secret');
    });
    await app.ready();
    const res = await app.inject({ method: 'GET', url: '/v1/test-boom' });
    assert.equal(res.statusCode, 500);
    const body = JSON.parse(res.body);
    assert.deepEqual(Object.keys(body).sort(), ['code', 'details', 'error', 'message', 'trace_id']);
    assert.equal(body.code, 'internal_error');
    assert.doesNotMatch(res.body, /SELECT|password_hash|at .*\.ts/);
    await app.close();
  });
});
