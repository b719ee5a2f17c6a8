// Auth (api.md §3.1–§3.7, §3.12 limits) and access-token authentication (§1.2): registration
// and its modes, sign-in, refresh rotation, logout, forged and stale tokens, rate limits,
// captcha.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { SignJWT } from 'jose';
import pino from 'pino';
import { loadConfig } from '../src/config.js';
import { createContext } from '../src/server.js';
import { cookieValue, registerUser, TEST_SECRETS, uniq, type TestUser } from './helpers/app.js';
import { badTokens, expectAuthRequired, expectError, expectFieldError } from './helpers/assert.js';
import {
  REFRESH_COOKIE,
  auditRows,
  deleteSetting,
  jwtPayload,
  randomIp,
  refreshCookieHeader,
  setCookieLine,
  setSetting,
  setUserStatus,
  startIdentityApp,
  type IdentityApp,
} from './helpers/identity-app.js';

const UUID_RE = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
const JWT_KEY = new TextEncoder().encode(TEST_SECRETS.jwtSecret);

function assertTokenResponse(body: Record<string, unknown>, userId?: string): void {
  assert.equal(typeof body.access_token, 'string');
  assert.equal(body.token_type, 'bearer');
  assert.equal(body.expires_in, 900);
  assert.match(String(body.user_id), UUID_RE);
  if (userId) assert.equal(body.user_id, userId);
  const claims = jwtPayload(String(body.access_token));
  assert.equal(claims.typ, 'access');
  assert.equal(claims.sub, body.user_id);
  assert.match(String(claims.sid), UUID_RE);
  assert.equal(Number(claims.exp) - Number(claims.iat), 900);
  const header = JSON.parse(Buffer.from(String(body.access_token).split('.')[0], 'base64url').toString());
  assert.equal(header.alg, 'HS256');
}

/** The refresh cookie of a response, with the attributes the contract fixes. */
function assertRefreshCookie(res: { headers: Record<string, unknown> }, maxAge = 2592000): string {
  const line = setCookieLine(res as never, REFRESH_COOKIE);
  assert.ok(line, 'refresh cookie set');
  const value = /^arkloop_refresh_token=([^;]*)/.exec(line)![1];
  assert.match(value, /^[A-Za-z0-9_-]{43}$/, '32 random bytes, base64url');
  const attrs = line.split(';').slice(1).map((a) => a.trim());
  assert.ok(attrs.includes('HttpOnly'), line);
  assert.ok(attrs.includes('SameSite=Lax'), line);
  assert.ok(attrs.includes('Path=/v1/auth'), line);
  assert.ok(attrs.includes(`Max-Age=${maxAge}`), line);
  assert.ok(!attrs.includes('Secure'), 'not Secure over plain HTTP');
  return value;
}

function assertCookieCleared(res: { headers: Record<string, unknown> }): void {
  const line = setCookieLine(res as never, REFRESH_COOKIE);
  assert.ok(line, 'cookie cleared');
  assert.match(line, /^arkloop_refresh_token=;/);
  assert.ok(line.includes('Max-Age=0'), line);
  assert.ok(line.includes('Path=/v1/auth'), line);
}

async function signWith(
  claims: Record<string, unknown>,
  opts: { alg?: string; key?: Uint8Array; exp?: number | null; iat?: number | null } = {},
): Promise<string> {
  const now = Math.floor(Date.now() / 1000);
  const jwt = new SignJWT(claims).setProtectedHeader({ alg: opts.alg ?? 'HS256', typ: 'JWT' });
  if (opts.iat !== null) jwt.setIssuedAt(opts.iat ?? now);
  if (opts.exp !== null) jwt.setExpirationTime(opts.exp ?? now + 600);
  return jwt.sign(opts.key ?? JWT_KEY);
}

describe('auth', () => {
  let t: IdentityApp;
  let first: TestUser;
  let alice: TestUser;

  const login = (body: unknown, headers: Record<string, string> = {}) => t.post('/v1/auth/login', body, { headers });
  const me = (token: string) => t.get('/v1/me', { token });

  before(async () => {
    t = await startIdentityApp();
  });
  after(async () => {
    await t.close();
  });

  describe('before anyone registered', () => {
    it('reports open registration and no captcha', async () => {
      const mode = await t.get('/v1/auth/registration-mode');
      assert.equal(mode.status, 200);
      assert.deepEqual(mode.body, { mode: 'open' });
      const captcha = await t.get('/v1/auth/captcha-config');
      assert.equal(captcha.status, 200);
      assert.deepEqual(captcha.body, { enabled: false, site_key: null });
    });
  });

  describe('POST /v1/auth/register', () => {
    it('registers the first user as platform admin, with a session and the refresh cookie', async () => {
      const res = await t.post('/v1/auth/register', { login: 'FirstUser', email: 'First@Example.com', password: 'first-password' });
      assert.equal(res.status, 201, res.text);
      assertTokenResponse(res.body);
      assert.equal(res.body.warning, null);
      assert.deepEqual(Object.keys(res.body).sort(), ['access_token', 'expires_in', 'token_type', 'user_id', 'warning']);
      const refresh = assertRefreshCookie(res);
      first = { id: res.body.user_id, login: 'FirstUser', email: 'First@Example.com', password: 'first-password', token: res.body.access_token, refreshCookie: refresh, personalAccountId: '' };
      const m = await me(first.token);
      assert.equal(m.status, 200, m.text);
      assert.equal(m.body.is_platform_admin, true);
      assert.ok(m.body.permissions.includes('platform.admin'));
      assert.equal(m.body.login, 'FirstUser');
      assert.equal(m.body.username, 'FirstUser');
      assert.equal(m.body.email, 'First@Example.com');
      assert.equal(m.body.email_verified, false);
      assert.equal(m.body.locale, 'en');
      assert.equal(m.body.org_type, 'personal');
      assert.equal(m.body.role, 'owner');
      first.personalAccountId = m.body.org_id;
      // The session row matches the token's sid.
      const sid = String(jwtPayload(first.token).sid);
      const session = await t.ctx.db.selectFrom('sessions').selectAll().where('id', '=', sid).executeTakeFirstOrThrow();
      assert.equal(session.user_id, first.id);
      assert.equal(session.revoked_at, null);
      assert.equal(session.ip_address, t.ip);
    });

    it('later users are not platform admins; registration grants the initial credits', async () => {
      const res = await t.post('/v1/auth/register', { login: 'alice', email: 'alice@example.com', password: 'alice-password', locale: 'de' });
      assert.equal(res.status, 201, res.text);
      alice = { id: res.body.user_id, login: 'alice', email: 'alice@example.com', password: 'alice-password', token: res.body.access_token, refreshCookie: cookieValue(res, REFRESH_COOKIE)!, personalAccountId: '' };
      const m = await me(alice.token);
      assert.equal(m.body.is_platform_admin, false);
      assert.ok(!m.body.permissions.includes('platform.admin'));
      assert.equal(m.body.locale, 'de');
      alice.personalAccountId = m.body.org_id;
      const credits = await t.get('/v1/me/credits', { token: alice.token });
      assert.equal(credits.status, 200);
      assert.equal(credits.body.balance, 1000);
      assert.equal(credits.body.transactions.length, 1);
      assert.equal(credits.body.transactions[0].reference_type, 'initial_grant');
      assert.equal(credits.body.transactions[0].amount, 1000);
      const audit = await auditRows(t, { action: 'user.register', targetId: alice.id });
      assert.equal(audit.length, 1);
      assert.equal(audit[0].actor_user_id, alice.id);
      assert.equal(audit[0].org_id, alice.personalAccountId);
      assert.equal(audit[0].target_type, 'user');
      assert.equal(audit[0].trace_id, res.headers['x-trace-id']);
      assert.ok(!JSON.stringify(audit[0]).includes('alice-password'));
    });

    it('refuses taken logins and emails, case-insensitively', async () => {
      expectError(await t.post('/v1/auth/register', { login: 'ALICE', email: 'new1@example.com', password: 'password123' }), 409, 'auth.login_taken');
      expectError(await t.post('/v1/auth/register', { login: 'alice2', email: 'ALICE@EXAMPLE.COM', password: 'password123' }), 409, 'auth.email_taken');
      expectError(await t.post('/v1/auth/register', { login: 'alice3', email: '  alice@example.com ', password: 'password123' }), 409, 'auth.email_taken');
    });

    it('validates every field', async () => {
      const ok = { login: 'valid_login', email: 'valid@example.com', password: 'password123' };
      const reg = (body: unknown) => t.post('/v1/auth/register', body);
      expectFieldError(await reg({ email: ok.email, password: ok.password }), 'login');
      expectFieldError(await reg({ login: ok.login, password: ok.password }), 'email');
      expectFieldError(await reg({ login: ok.login, email: ok.email }), 'password');
      for (const bad of ['ab', '_abc', '-abc', '.abc', 'a b c', 'abc!', 'ab/c', 'a'.repeat(33), 'ü-user', '']) {
        expectFieldError(await reg({ ...ok, login: bad }), 'login');
      }
      expectFieldError(await reg({ ...ok, login: 123 }), 'login');
      expectFieldError(await reg({ ...ok, login: null }), 'login');
      for (const bad of ['short7!', 'x'.repeat(129)]) expectFieldError(await reg({ ...ok, password: bad }), 'password');
      expectFieldError(await reg({ ...ok, password: 12345678 }), 'password');
      for (const bad of ['not-an-email', 'a@b', '@example.com', 'a b@example.com', `${'x'.repeat(245)}@example.com`]) {
        expectFieldError(await reg({ ...ok, email: bad }), 'email');
      }
      expectFieldError(await reg({ ...ok, email: ['a@example.com'] }), 'email');
      expectFieldError(await reg({ ...ok, locale: 'x'.repeat(17) }), 'locale');
      expectFieldError(await reg({ ...ok, locale: 5 }), 'locale');
      expectFieldError(await reg({ ...ok, invite_code: 7 }), 'invite_code');
      expectFieldError(await reg({ ...ok, invite_code: 'x'.repeat(65) }), 'invite_code');
      expectFieldError(await reg({ ...ok, cf_turnstile_token: {} }), 'cf_turnstile_token');
      // Unparseable or non-object bodies are 422.
      const raw = (payload: string, type = 'application/json') => t.post('/v1/auth/register', undefined, { raw: payload, headers: { 'content-type': type } });
      expectError(await raw('{"login":'), 422, 'validation.error');
      expectError(await raw('[]'), 422, 'validation.error');
      expectError(await raw('"text"'), 422, 'validation.error');
      expectError(await raw('login=x', 'text/plain'), 422, 'validation.error');
      const huge = await raw(JSON.stringify({ login: 'big', email: 'big@example.com', password: 'x'.repeat(1024 * 1024 + 10) }));
      expectError(huge, 413, 'validation.error');
      assert.equal(huge.body.details.max_bytes, 1024 * 1024);
      // An empty body counts as {}: the required fields are missing.
      expectFieldError(await raw(''), 'login');
      // None of these created a user.
      assert.equal((await t.post('/v1/auth/check', { login: 'valid_login' })).body.exists, false);
    });

    it('accepts the boundaries and ignores unknown fields', async () => {
      const login = `b${uniq('').slice(0, 30)}`.slice(0, 32);
      const res = await t.post('/v1/auth/register', {
        login,
        email: `${login}@example.com`,
        password: 'p'.repeat(128),
        locale: 'x'.repeat(16),
        is_platform_admin: true,
        status: 'suspended',
      });
      assert.equal(res.status, 201, res.text);
      const m = await me(res.body.access_token);
      assert.equal(m.body.is_platform_admin, false);
      assert.equal(m.body.locale, 'x'.repeat(16));
      const short = await t.post('/v1/auth/register', { login: 'a.b', email: 'abc@example.com', password: '12345678' });
      assert.equal(short.status, 201, short.text);
    });
  });

  describe('POST /v1/auth/check', () => {
    it('tells whether an active user has the login or email', async () => {
      for (const v of ['alice', 'ALICE', 'alice@example.com', ' Alice@Example.com ', 'firstuser']) {
        const res = await t.post('/v1/auth/check', { login: v });
        assert.equal(res.status, 200);
        assert.deepEqual(res.body, { exists: true }, v);
      }
      assert.deepEqual((await t.post('/v1/auth/check', { login: 'nobody-here' })).body, { exists: false });
      const u = await registerUser(t);
      await setUserStatus(t, u.id, 'suspended');
      assert.deepEqual((await t.post('/v1/auth/check', { login: u.login })).body, { exists: false });
      await setUserStatus(t, u.id, 'deleted');
      assert.deepEqual((await t.post('/v1/auth/check', { login: u.email })).body, { exists: false });
    });

    it('validates the body', async () => {
      expectFieldError(await t.post('/v1/auth/check', {}), 'login');
      expectFieldError(await t.post('/v1/auth/check', { login: '' }), 'login');
      expectFieldError(await t.post('/v1/auth/check', { login: 'x'.repeat(255) }), 'login');
      expectFieldError(await t.post('/v1/auth/check', { login: 1 }), 'login');
    });
  });

  describe('POST /v1/auth/login', () => {
    it('signs in by login or email, case-insensitively, with a new session each time', async () => {
      const sids = new Set<string>();
      for (const ident of ['alice', 'ALICE', 'alice@example.com', '  Alice@Example.COM  ']) {
        const res = await login({ login: ident, password: alice.password });
        assert.equal(res.status, 200, `${ident}: ${res.text}`);
        assertTokenResponse(res.body, alice.id);
        assert.equal('warning' in res.body, false);
        assertRefreshCookie(res);
        sids.add(String(jwtPayload(res.body.access_token).sid));
        assert.equal((await me(res.body.access_token)).status, 200);
      }
      assert.equal(sids.size, 4);
      const row = await t.ctx.db.selectFrom('users').select('last_login_at').where('id', '=', alice.id).executeTakeFirstOrThrow();
      assert.ok(row.last_login_at && Date.now() - row.last_login_at.getTime() < 60_000);
      const audit = await auditRows(t, { action: 'user.login', targetId: alice.id });
      assert.ok(audit.length >= 4);
      assert.equal(audit.at(-1)!.actor_user_id, alice.id);
      assert.equal(audit.at(-1)!.org_id, alice.personalAccountId);
      assert.equal((audit.at(-1)!.metadata as Record<string, unknown>).method, 'password');
    });

    it('answers unknown users and wrong passwords identically, and audits the failures', async () => {
      const ghostLogin = uniq('no-such-user-');
      const wrong = await login({ login: 'alice', password: 'not-her-password' });
      const unknown = await login({ login: ghostLogin, password: 'whatever1' });
      expectError(wrong, 401, 'auth.invalid_credentials');
      expectError(unknown, 401, 'auth.invalid_credentials');
      assert.equal(wrong.body.message, unknown.body.message);
      assert.deepEqual(wrong.body.details, unknown.body.details);
      assert.equal(setCookieLine(wrong, REFRESH_COOKIE), null);

      const known = (await auditRows(t, { action: 'user.login_failed', targetId: alice.id })).at(-1)!;
      assert.equal(known.actor_user_id, null);
      assert.equal(known.target_type, 'user');
      assert.equal(known.org_id, alice.personalAccountId);
      assert.equal((known.metadata as Record<string, unknown>).login, 'alice');
      assert.equal(known.trace_id, wrong.headers['x-trace-id']);
      const anon = (await auditRows(t, { action: 'user.login_failed' })).find((r) => (r.metadata as Record<string, unknown>).login === ghostLogin)!;
      assert.ok(anon);
      assert.equal(anon.actor_user_id, null);
      assert.equal(anon.target_id, null);
      assert.equal(anon.target_type, null);
      assert.equal(anon.org_id, null);
      const text = JSON.stringify(await auditRows(t, { action: 'user.login_failed' }));
      assert.ok(!text.includes('not-her-password'));
      assert.ok(!text.includes('whatever1'));
    });

    it('validates the body', async () => {
      expectFieldError(await login({ password: 'x' }), 'login');
      expectFieldError(await login({ login: 'alice' }), 'password');
      expectFieldError(await login({ login: '', password: 'x' }), 'login');
      expectFieldError(await login({ login: 'alice', password: '' }), 'password');
      expectFieldError(await login({ login: 'alice', password: 12345678 }), 'password');
      expectFieldError(await login({ login: 'x'.repeat(255), password: 'x' }), 'login');
      expectError(await t.post('/v1/auth/login', undefined, { raw: '{', headers: { 'content-type': 'application/json' } }), 422, 'validation.error');
    });

    it('a suspended user gets 403 only with the right password, and their tokens stop working', async () => {
      const u = await registerUser(t);
      const session = await login({ login: u.login, password: u.password });
      await setUserStatus(t, u.id, 'suspended');
      expectError(await login({ login: u.login, password: 'wrong-password' }), 401, 'auth.invalid_credentials');
      expectError(await login({ login: u.login, password: u.password }), 403, 'auth.user_suspended');
      expectError(await me(u.token), 401, 'auth.unauthorized');
      expectError(await me(session.body.access_token), 401, 'auth.unauthorized');
      const refresh = await t.post('/v1/auth/refresh', undefined, { headers: refreshCookieHeader(u.refreshCookie) });
      expectError(refresh, 401, 'auth.refresh_token_invalid');
      await setUserStatus(t, u.id, 'active');
      assert.equal((await me(session.body.access_token)).status, 200);
      // A deleted user is not found at all.
      await setUserStatus(t, u.id, 'deleted');
      expectError(await login({ login: u.login, password: u.password }), 401, 'auth.invalid_credentials');
      expectError(await me(session.body.access_token), 401, 'auth.unauthorized');
    });
  });

  describe('POST /v1/auth/refresh', () => {
    it('rotates the cookie within the same session', async () => {
      const u = await registerUser(t);
      const sid = jwtPayload(u.token).sid;
      const res = await t.post('/v1/auth/refresh', undefined, { headers: refreshCookieHeader(u.refreshCookie) });
      assert.equal(res.status, 200, res.text);
      assertTokenResponse(res.body, u.id);
      assert.equal('warning' in res.body, false);
      assert.equal(jwtPayload(res.body.access_token).sid, sid);
      const rotated = assertRefreshCookie(res);
      assert.notEqual(rotated, u.refreshCookie);
      assert.equal((await me(res.body.access_token)).status, 200);
      // Rotated again, from the new cookie.
      const again = await t.post('/v1/auth/refresh', undefined, { headers: refreshCookieHeader(rotated) });
      assert.equal(again.status, 200, again.text);
      // Only hashes are stored.
      const stored = await t.ctx.db.selectFrom('refresh_tokens').select('token_hash').where('session_id', '=', String(sid)).execute();
      assert.equal(stored.length, 3);
      assert.ok(stored.every((r) => r.token_hash !== u.refreshCookie && r.token_hash !== rotated && /^[0-9a-f]{64}$/.test(r.token_hash)));
    });

    it('accepts {refresh_token} in the body from clients without cookies', async () => {
      const u = await registerUser(t);
      const res = await t.post('/v1/auth/refresh', { refresh_token: u.refreshCookie });
      assert.equal(res.status, 200, res.text);
      assertTokenResponse(res.body, u.id);
      const next = assertRefreshCookie(res);
      const again = await t.post('/v1/auth/refresh', { refresh_token: next });
      assert.equal(again.status, 200);
      expectFieldError(await t.post('/v1/auth/refresh', { refresh_token: 5 }), 'refresh_token');
    });

    it('reusing a rotated token revokes the whole family', async () => {
      const u = await registerUser(t);
      const other = await login({ login: u.login, password: u.password }); // a second, unrelated session
      const r1 = await t.post('/v1/auth/refresh', undefined, { headers: refreshCookieHeader(u.refreshCookie) });
      assert.equal(r1.status, 200);
      const newest = cookieValue(r1, REFRESH_COOKIE)!;
      // The already-rotated token comes back (stolen copy): refused, cookie cleared...
      const reuse = await t.post('/v1/auth/refresh', undefined, { headers: refreshCookieHeader(u.refreshCookie) });
      expectError(reuse, 401, 'auth.refresh_token_invalid');
      assertCookieCleared(reuse);
      // ...and the family is dead: the newest refresh token and the session's access tokens too.
      expectError(await t.post('/v1/auth/refresh', undefined, { headers: refreshCookieHeader(newest) }), 401, 'auth.refresh_token_invalid');
      expectError(await me(r1.body.access_token), 401, 'auth.unauthorized');
      expectError(await me(u.token), 401, 'auth.unauthorized');
      // Other sessions of the user are untouched.
      assert.equal((await me(other.body.access_token)).status, 200);
      assert.equal((await t.post('/v1/auth/refresh', { refresh_token: cookieValue(other, REFRESH_COOKIE) })).status, 200);
    });

    it('refuses missing, unknown, expired and revoked tokens and clears the cookie', async () => {
      for (const res of [
        await t.post('/v1/auth/refresh'),
        await t.post('/v1/auth/refresh', {}),
        await t.post('/v1/auth/refresh', { refresh_token: null }),
        await t.post('/v1/auth/refresh', undefined, { headers: refreshCookieHeader('') }),
        await t.post('/v1/auth/refresh', undefined, { headers: refreshCookieHeader('x'.repeat(43)) }),
        await t.post('/v1/auth/refresh', { refresh_token: 'not-a-token' }),
        // An access token is not a refresh token.
        await t.post('/v1/auth/refresh', { refresh_token: alice.token.slice(0, 500) }),
      ]) {
        expectError(res, 401, 'auth.refresh_token_invalid');
        assertCookieCleared(res);
      }
      const u = await registerUser(t);
      await t.ctx.db
        .updateTable('refresh_tokens')
        .set({ expires_at: new Date(Date.now() - 1000) })
        .where('session_id', '=', String(jwtPayload(u.token).sid))
        .execute();
      expectError(await t.post('/v1/auth/refresh', undefined, { headers: refreshCookieHeader(u.refreshCookie) }), 401, 'auth.refresh_token_invalid');
    });

    it('marks the cookie Secure when the client came over HTTPS through the trusted gateway', async () => {
      const u = await registerUser(t);
      const res = await t.post('/v1/auth/refresh', undefined, { headers: { ...refreshCookieHeader(u.refreshCookie), 'x-forwarded-proto': 'https' } });
      assert.equal(res.status, 200);
      assert.ok(setCookieLine(res, REFRESH_COOKIE)!.split(';').map((s) => s.trim()).includes('Secure'));
      const out = await t.post('/v1/auth/logout', undefined, { token: res.body.access_token, headers: { 'x-forwarded-proto': 'https' } });
      assert.ok(setCookieLine(out, REFRESH_COOKIE)!.includes('Secure'));
    });

    it('ignores an Authorization header (the refresh token is the credential)', async () => {
      const u = await registerUser(t);
      const res = await t.post('/v1/auth/refresh', undefined, { token: 'garbage', headers: refreshCookieHeader(u.refreshCookie) });
      assert.equal(res.status, 200, res.text);
    });
  });

  describe('POST /v1/auth/logout', () => {
    it('revokes the session, its refresh tokens and access tokens, and clears the cookie', async () => {
      const u = await registerUser(t);
      const other = await login({ login: u.login, password: u.password });
      const refreshed = await t.post('/v1/auth/refresh', undefined, { headers: refreshCookieHeader(u.refreshCookie) });
      const res = await t.post('/v1/auth/logout', undefined, { token: u.token });
      assert.equal(res.status, 200, res.text);
      assert.deepEqual(res.body, { ok: true });
      assertCookieCleared(res);
      expectError(await me(u.token), 401, 'auth.unauthorized');
      expectError(await me(refreshed.body.access_token), 401, 'auth.unauthorized');
      expectError(
        await t.post('/v1/auth/refresh', undefined, { headers: refreshCookieHeader(cookieValue(refreshed, REFRESH_COOKIE)!) }),
        401,
        'auth.refresh_token_invalid',
      );
      expectError(await t.post('/v1/auth/logout', undefined, { token: u.token }), 401, 'auth.unauthorized');
      assert.equal((await me(other.body.access_token)).status, 200, 'other sessions stay');
      const audit = await auditRows(t, { action: 'user.logout', targetId: u.id });
      assert.equal(audit.length, 1);
      assert.equal(audit[0].actor_user_id, u.id);
      assert.equal(audit[0].org_id, u.personalAccountId);
    });

    it('needs an access token; API keys are refused', async () => {
      await expectAuthRequired(t, 'POST', '/v1/auth/logout');
      const u = await registerUser(t);
      const key = await t.post('/v1/api-keys', { name: 'k' }, { token: u.token });
      expectError(await t.post('/v1/auth/logout', undefined, { token: key.body.key }), 403, 'auth.forbidden');
      assert.equal((await me(u.token)).status, 200);
    });

    it('ignores a body', async () => {
      const u = await registerUser(t);
      const res = await t.post('/v1/auth/logout', { everything: true }, { token: u.token });
      assert.equal(res.status, 200);
    });
  });

  describe('access tokens under attack', () => {
    it('refuses missing, malformed, foreign, alg:none and expired tokens', async () => {
      await expectAuthRequired(t, 'GET', '/v1/me');
      for (const h of ['Basic dXNlcjpwYXNz', 'Bearer', 'Bearer ', `Bearer ${alice.token} extra`, alice.token, `Token ${alice.token}`]) {
        expectError(await t.get('/v1/me', { headers: { authorization: h } }), 401, 'auth.unauthorized');
      }
      // Query tokens are only for the event stream.
      expectError(await t.get(`/v1/me?access_token=${alice.token}`), 401, 'auth.unauthorized');
    });

    it('refuses a tampered signature or payload', async () => {
      const [h, p, s] = alice.token.split('.');
      const i = 10;
      const flipped = s.slice(0, i) + (s[i] === 'A' ? 'B' : 'A') + s.slice(i + 1);
      expectError(await me(`${h}.${p}.${flipped}`), 401, 'auth.unauthorized');
      expectError(await me(`${h}.${p}.`), 401, 'auth.unauthorized');
      const claims = jwtPayload(alice.token);
      const forged = Buffer.from(JSON.stringify({ ...claims, sub: first.id })).toString('base64url');
      expectError(await me(`${h}.${forged}.${s}`), 401, 'auth.unauthorized');
      const longer = Buffer.from(JSON.stringify({ ...claims, exp: Number(claims.exp) + 86400 })).toString('base64url');
      expectError(await me(`${h}.${longer}.${s}`), 401, 'auth.unauthorized');
    });

    it('refuses other algorithms, including none, for real sessions', async () => {
      const claims = jwtPayload(alice.token);
      const b64 = (o: unknown) => Buffer.from(JSON.stringify(o)).toString('base64url');
      expectError(await me(`${b64({ alg: 'none', typ: 'JWT' })}.${b64(claims)}.`), 401, 'auth.unauthorized');
      expectError(await me(`${b64({ alg: 'NONE' })}.${b64(claims)}.`), 401, 'auth.unauthorized');
      const hs512 = await signWith({ sid: claims.sid, typ: 'access', sub: claims.sub }, { alg: 'HS512' });
      expectError(await me(hs512), 401, 'auth.unauthorized');
      const hs384 = await signWith({ sid: claims.sid, typ: 'access', sub: claims.sub }, { alg: 'HS384' });
      expectError(await me(hs384), 401, 'auth.unauthorized');
      // Control: the same claims signed properly work, so the refusals above are about the alg.
      const good = await signWith({ sid: claims.sid, typ: 'access', sub: claims.sub });
      assert.equal((await me(good)).status, 200);
    });

    it('refuses a wrong typ, missing or inconsistent claims, and expired tokens', async () => {
      const { sid, sub } = jwtPayload(alice.token) as { sid: string; sub: string };
      const now = Math.floor(Date.now() / 1000);
      for (const token of [
        await signWith({ sid, sub, typ: 'refresh' }),
        await signWith({ sid, sub }),
        await signWith({ sid, sub, typ: 'ACCESS' }),
        await signWith({ sub, typ: 'access' }),
        await signWith({ sid, typ: 'access' }),
        await signWith({ sid: 'not-a-uuid', sub, typ: 'access' }),
        await signWith({ sid, sub: first.id, typ: 'access' }), // another user's id with alice's session
        await signWith({ sid: jwtPayload(first.token).sid, sub, typ: 'access' }),
        await signWith({ sid, sub, typ: 'access' }, { iat: now - 3600, exp: now - 1 }),
        await signWith({ sid, sub, typ: 'access' }, { exp: null }), // would never expire
        await signWith({ sid, sub, typ: 'access' }, { iat: null }),
        await signWith({ sid, sub, typ: 'access' }, { key: new TextEncoder().encode('x'.repeat(48)) }),
      ]) {
        expectError(await me(token), 401, 'auth.unauthorized');
      }
    });

    it('refuses tokens of deleted, revoked or expired sessions', async () => {
      const u = await registerUser(t);
      const sid = String(jwtPayload(u.token).sid);
      await t.ctx.db.updateTable('sessions').set({ expires_at: new Date(Date.now() - 1000) }).where('id', '=', sid).execute();
      await t.ctx.credentials.changed(u.id);
      expectError(await me(u.token), 401, 'auth.unauthorized');

      const s2 = await login({ login: u.login, password: u.password });
      const sid2 = String(jwtPayload(s2.body.access_token).sid);
      assert.equal((await me(s2.body.access_token)).status, 200);
      await t.ctx.db.deleteFrom('refresh_tokens').where('session_id', '=', sid2).execute();
      await t.ctx.db.deleteFrom('sessions').where('id', '=', sid2).execute();
      await t.ctx.credentials.changed(u.id);
      expectError(await me(s2.body.access_token), 401, 'auth.unauthorized');

      const s3 = await login({ login: u.login, password: u.password });
      await t.ctx.db.updateTable('sessions').set({ revoked_at: new Date() }).where('id', '=', String(jwtPayload(s3.body.access_token).sid)).execute();
      await t.ctx.credentials.changed(u.id);
      expectError(await me(s3.body.access_token), 401, 'auth.unauthorized');
    });

    it('the shared bad tokens are refused on every identity endpoint', async () => {
      for (const [method, path, body] of [
        ['GET', '/v1/auth/me'],
        ['PATCH', '/v1/me', { username: 'x' }],
        ['GET', '/v1/me/usage'],
        ['GET', '/v1/me/credits'],
        ['POST', '/v1/auth/email/verify/send'],
        ['GET', '/v1/api-keys'],
      ] as Array<[string, string, unknown?]>) {
        await expectAuthRequired(t, method, path, body);
      }
      const tokens = await badTokens(alice.id, String(jwtPayload(alice.token).sid));
      for (const [name, token] of Object.entries(tokens)) {
        expectError(await me(token), 401, 'auth.unauthorized');
        assert.ok(name);
      }
    });
  });

  describe('registration mode from platform settings', () => {
    it('invite_only needs a valid code, disabled refuses everyone, open accepts codes too', async () => {
      const inviter = await registerUser(t);
      const code = (await t.get('/v1/me/invite-code', { token: inviter.token })).body.code as string;
      const fresh = () => {
        const l = uniq('m');
        return { login: l, email: `${l}@example.com`, password: 'password123' };
      };

      await setSetting(t, 'registration.mode', 'invite_only');
      assert.deepEqual((await t.get('/v1/auth/registration-mode')).body, { mode: 'invite_only' });
      expectError(await t.post('/v1/auth/register', fresh()), 403, 'auth.invite_code_required');
      expectError(await t.post('/v1/auth/register', { ...fresh(), invite_code: '' }), 403, 'auth.invite_code_required');
      expectError(await t.post('/v1/auth/register', { ...fresh(), invite_code: null }), 403, 'auth.invite_code_required');
      expectError(await t.post('/v1/auth/register', { ...fresh(), invite_code: 'NOPE2345' }), 400, 'auth.invite_code_invalid');
      const withCode = await t.post('/v1/auth/register', { ...fresh(), invite_code: code });
      assert.equal(withCode.status, 201, withCode.text);

      await setSetting(t, 'registration.mode', 'disabled');
      assert.deepEqual((await t.get('/v1/auth/registration-mode')).body, { mode: 'disabled' });
      expectError(await t.post('/v1/auth/register', fresh()), 403, 'auth.registration_disabled');
      expectError(await t.post('/v1/auth/register', { ...fresh(), invite_code: code }), 403, 'auth.registration_disabled');
      // Existing users still sign in.
      assert.equal((await login({ login: alice.login, password: alice.password })).status, 200);

      await setSetting(t, 'registration.mode', 'open');
      expectError(await t.post('/v1/auth/register', { ...fresh(), invite_code: 'NOPE2345' }), 400, 'auth.invite_code_invalid');
      const honoured = await t.post('/v1/auth/register', { ...fresh(), invite_code: code.toLowerCase() });
      assert.equal(honoured.status, 201, honoured.text);
      const referrals = await t.ctx.db.selectFrom('referrals').selectAll().where('inviter_user_id', '=', inviter.id).execute();
      assert.deepEqual(referrals.map((r) => r.invitee_user_id).sort(), [withCode.body.user_id, honoured.body.user_id].sort());
      const inviterCredits = await t.get('/v1/me/credits', { token: inviter.token });
      assert.equal(inviterCredits.body.balance, 1000 + 2 * 500);
      await deleteSetting(t, 'registration.mode');
      assert.deepEqual((await t.get('/v1/auth/registration-mode')).body, { mode: 'open' });
    });
  });

  describe('rate limits', () => {
    it('locks one login after 10 failures, whatever the password, and counts login and email together', async () => {
      const u = await registerUser(t);
      const ip = { 'x-forwarded-for': randomIp() };
      for (let i = 0; i < 5; i++) expectError(await login({ login: u.login, password: `wrong-${i}-pass` }, ip), 401, 'auth.invalid_credentials');
      for (let i = 0; i < 5; i++) expectError(await login({ login: u.email.toUpperCase(), password: `wrong-${i}-pass` }, ip), 401, 'auth.invalid_credentials');
      for (const ident of [u.login, u.email]) {
        const res = await login({ login: ident, password: u.password }, ip);
        expectError(res, 429, 'rate_limit');
        const retry = Number(res.headers['retry-after']);
        assert.ok(Number.isInteger(retry) && retry >= 1 && retry <= 900, `Retry-After ${res.headers['retry-after']}`);
      }
      // From another address too: the limit is per login.
      expectError(await login({ login: u.login, password: u.password }, { 'x-forwarded-for': randomIp() }), 429, 'rate_limit');
      // Other users from the same address are not affected.
      assert.equal((await login({ login: alice.login, password: alice.password }, ip)).status, 200);
    });

    it('locks a client IP after 30 failures across logins', async () => {
      const ip = { 'x-forwarded-for': randomIp() };
      for (let i = 0; i < 30; i++) {
        expectError(await login({ login: `nobody-${i}-${uniq()}`, password: 'wrong-password' }, ip), 401, 'auth.invalid_credentials');
      }
      const blocked = await login({ login: alice.login, password: alice.password }, ip);
      expectError(blocked, 429, 'rate_limit');
      assert.ok(Number(blocked.headers['retry-after']) >= 1);
      assert.equal((await login({ login: alice.login, password: alice.password }, { 'x-forwarded-for': randomIp() })).status, 200);
    });

    it('check and resolve allow 30 requests per IP per minute, before validation', async () => {
      for (const path of ['/v1/auth/check', '/v1/auth/resolve']) {
        const ip = { 'x-forwarded-for': randomIp() };
        for (let i = 0; i < 30; i++) {
          const res = await t.post(path, { login: 'alice' }, { headers: ip });
          assert.equal(res.status, 200, `${path} #${i}: ${res.text}`);
        }
        const limited = await t.post(path, { login: 'alice' }, { headers: ip });
        expectError(limited, 429, 'rate_limit');
        const retry = Number(limited.headers['retry-after']);
        assert.ok(retry >= 1 && retry <= 60, `Retry-After ${retry}`);
        expectError(await t.post(path, {}, { headers: ip }), 429, 'rate_limit');
        assert.equal((await t.post(path, { login: 'alice' }, { headers: { 'x-forwarded-for': randomIp() } })).status, 200);
      }
    });
  });

  it('responses never carry secrets', async () => {
    const l = uniq('s');
    const password = 'very-secret-password-1';
    const reg = await t.post('/v1/auth/register', { login: l, email: `${l}@example.com`, password });
    const log = await login({ login: l, password });
    const ref = await t.post('/v1/auth/refresh', { refresh_token: cookieValue(log, REFRESH_COOKIE) });
    const token = ref.body.access_token;
    const key = await t.post('/v1/api-keys', { name: 'k' }, { token });
    const responses = [
      reg,
      log,
      ref,
      key,
      await me(token),
      await t.patch('/v1/me', { username: 'Secretive' }, { token }),
      await t.get('/v1/api-keys', { token }),
      await t.get('/v1/me/credits', { token }),
      await t.post('/v1/auth/resolve', { login: l }),
      await t.post('/v1/auth/check', { login: l }),
    ];
    const refreshTokens = [cookieValue(reg, REFRESH_COOKIE)!, cookieValue(log, REFRESH_COOKIE)!, cookieValue(ref, REFRESH_COOKIE)!];
    for (const res of responses) {
      assert.ok(res.status < 300, res.text);
      for (const needle of ['"password":', 'password_hash', 'key_hash', 'token_hash', 'code_hash', ...refreshTokens, password]) {
        assert.ok(!res.text.includes(needle), `${needle} in ${res.text}`);
      }
    }
    assert.ok(!responses.filter((r) => r !== key).some((r) => r.text.includes(key.body.key)));
  });
});

describe('auth: registration forced by environment (invite_only) and invite codes', () => {
  let t: IdentityApp;
  before(async () => {
    t = await startIdentityApp({ ARKLOOP_REGISTRATION_MODE: 'invite_only', ARKLOOP_INVITE_DEFAULT_MAX_USES: '2' });
  });
  after(async () => {
    await t.close();
  });

  it('the first user registers without a code; invite codes carry referrals and rewards', async () => {
    assert.deepEqual((await t.get('/v1/auth/registration-mode')).body, { mode: 'open' }, 'open while nobody exists');
    const inviter = await registerUser(t);
    const inviterMe = await t.get('/v1/me', { token: inviter.token });
    assert.equal(inviterMe.body.is_platform_admin, true);
    assert.deepEqual((await t.get('/v1/auth/registration-mode')).body, { mode: 'invite_only' });
    // A stored setting cannot override the environment.
    await setSetting(t, 'registration.mode', 'open');
    assert.deepEqual((await t.get('/v1/auth/registration-mode')).body, { mode: 'invite_only' });

    const reg = (login: string, inviteCode?: string) =>
      t.post('/v1/auth/register', { login, email: `${login}@example.com`, password: 'password123', ...(inviteCode !== undefined ? { invite_code: inviteCode } : {}) });
    expectError(await reg(uniq('b')), 403, 'auth.invite_code_required');
    expectError(await reg(uniq('b'), 'ABCDEFGH'), 400, 'auth.invite_code_invalid');

    const invite = await t.get('/v1/me/invite-code', { token: inviter.token });
    assert.equal(invite.status, 200);
    assert.match(invite.body.code, /^[ABCDEFGHJKLMNPQRSTUVWXYZ23456789]{8}$/);
    assert.equal(invite.body.max_uses, 2);
    assert.equal(invite.body.use_count, 0);
    const code: string = invite.body.code;

    // Case, dashes and spaces do not matter.
    const bLogin = uniq('b');
    const b = await reg(bLogin, ` ${code.slice(0, 4).toLowerCase()}-${code.slice(4)} `);
    assert.equal(b.status, 201, b.text);
    assert.equal((await t.get('/v1/me/invite-code', { token: inviter.token })).body.use_count, 1);

    const inviterCredits = (await t.get('/v1/me/credits', { token: inviter.token })).body;
    assert.equal(inviterCredits.balance, 1500);
    assert.deepEqual(
      inviterCredits.transactions.map((x: Record<string, unknown>) => [x.reference_type, x.amount, x.type, x.balance_after]),
      [['invite_reward', 500, 'credit', 1500], ['initial_grant', 1000, 'credit', 1000]],
    );
    assert.equal(inviterCredits.transactions[0].reference_id, b.body.user_id);
    const bCredits = (await t.get('/v1/me/credits', { token: b.body.access_token })).body;
    assert.equal(bCredits.balance, 1200);
    assert.deepEqual(
      bCredits.transactions.map((x: Record<string, unknown>) => [x.reference_type, x.amount]),
      [['invitee_reward', 200], ['initial_grant', 1000]],
    );
    assert.equal(bCredits.transactions[0].reference_id, invite.body.id);

    const referral = await t.ctx.db.selectFrom('referrals').selectAll().where('invitee_user_id', '=', b.body.user_id).executeTakeFirstOrThrow();
    assert.equal(referral.inviter_user_id, inviter.id);
    assert.equal(referral.invite_code_id, invite.body.id);
    const audit = await auditRows(t, { action: 'user.register', targetId: b.body.user_id });
    assert.equal((audit[0].metadata as Record<string, unknown>).invite_code_used, true);

    // max_uses 2: one more, then the code is used up.
    assert.equal((await reg(uniq('c'), code)).status, 201);
    assert.equal((await t.get('/v1/me/invite-code', { token: inviter.token })).body.use_count, 2);
    const dLogin = uniq('d');
    expectError(await reg(dLogin, code), 400, 'auth.invite_code_invalid');
    assert.deepEqual((await t.post('/v1/auth/check', { login: dLogin })).body, { exists: false });

    // A reset code replaces the old one.
    const reset = await t.post('/v1/me/invite-code/reset', undefined, { token: inviter.token });
    assert.equal(reset.status, 200);
    assert.notEqual(reset.body.code, code);
    assert.equal(reset.body.use_count, 0);
    expectError(await reg(dLogin, code), 400, 'auth.invite_code_invalid');
    assert.equal((await reg(dLogin, reset.body.code)).status, 201);
    assert.equal((await t.get('/v1/me/credits', { token: inviter.token })).body.balance, 1000 + 3 * 500);
    assert.equal(bLogin.length > 0, true);
  });
});

describe('auth: registration disabled by environment, token lifetimes from environment, no trusted proxy', () => {
  let t: IdentityApp;
  before(async () => {
    t = await startIdentityApp({
      ARKLOOP_TRUST_X_FORWARDED_FOR: '0',
      ARKLOOP_REGISTRATION_MODE: 'disabled',
      ARKLOOP_AUTH_ACCESS_TOKEN_TTL_SECONDS: '120',
      ARKLOOP_AUTH_REFRESH_TOKEN_TTL_SECONDS: '3600',
    });
  });
  after(async () => {
    await t.close();
  });

  it('the very first user may register; then nobody', async () => {
    // Two at once: only one of them is the first.
    const race = await Promise.all(['solo', 'rival'].map((l) => t.post('/v1/auth/register', { login: l, email: `${l}@example.com`, password: 'password123' })));
    const firstRes = race.find((r) => r.status === 201)!;
    assert.ok(firstRes, race.map((r) => r.text).join(' | '));
    expectError(race.find((r) => r !== firstRes)!, 403, 'auth.registration_disabled');
    const admins = await t.ctx.db.selectFrom('users').select('id').where('is_platform_admin', '=', true).execute();
    assert.deepEqual(admins.map((r) => r.id), [firstRes.body.user_id]);
    assert.equal(firstRes.body.expires_in, 120);
    const claims = jwtPayload(firstRes.body.access_token);
    assert.equal(Number(claims.exp) - Number(claims.iat), 120);
    assertRefreshCookie(firstRes, 3600);
    assert.deepEqual((await t.get('/v1/auth/registration-mode')).body, { mode: 'disabled' });
    const code = (await t.get('/v1/me/invite-code', { token: firstRes.body.access_token })).body.code;
    expectError(await t.post('/v1/auth/register', { login: 'second', email: 'second@example.com', password: 'password123' }), 403, 'auth.registration_disabled');
    assert.equal((await t.ctx.db.selectFrom('users').select('id').execute()).length, 1);
    expectError(
      await t.post('/v1/auth/register', { login: 'second', email: 'second@example.com', password: 'password123', invite_code: code }),
      403,
      'auth.registration_disabled',
    );
    // Without a trusted gateway, X-Forwarded-Proto is the client's word: no Secure from it.
    const refreshed = await t.post('/v1/auth/refresh', { refresh_token: cookieValue(firstRes, REFRESH_COOKIE) }, { headers: { 'x-forwarded-proto': 'https' } });
    assert.equal(refreshed.body.expires_in, 120);
    assertRefreshCookie(refreshed, 3600);
  });
});

describe('auth: ARKLOOP_BOOTSTRAP_PLATFORM_ADMIN', () => {
  let t: IdentityApp;
  const boss = `boss${uniq('').slice(0, 20)}`;
  before(async () => {
    t = await startIdentityApp({ ARKLOOP_BOOTSTRAP_PLATFORM_ADMIN: boss.toUpperCase() });
  });
  after(async () => {
    await t.close();
  });

  it('names the platform admin instead of the first user, by login, email or id', async () => {
    const alice = await registerUser(t);
    const aliceMe = await t.get('/v1/me', { token: alice.token });
    assert.equal(aliceMe.body.is_platform_admin, false, 'the first user is not admin when the variable names someone else');
    assert.ok(!aliceMe.body.permissions.includes('platform.admin'));
    const b = await registerUser(t, { login: boss });
    const bossMe = await t.get('/v1/me', { token: b.token });
    assert.equal(bossMe.body.is_platform_admin, true);
    assert.deepEqual(bossMe.body.permissions.slice(-1), ['platform.admin']);
    const carol = await registerUser(t);

    // At start, the variable promotes an existing user named by email or id.
    for (const ident of [alice.email.toUpperCase(), carol.id]) {
      const config = loadConfig({ ARKLOOP_LOG_LEVEL: 'silent', ARKLOOP_DATA_DIR: '/tmp/arkloop-test-unused', ARKLOOP_BOOTSTRAP_PLATFORM_ADMIN: ident });
      const ctx = await createContext({ config, database: t.db.database, secrets: TEST_SECRETS, log: pino({ level: 'silent' }) });
      await ctx.credentials.close();
      await ctx.counters.close();
    }
    for (const u of [alice, carol]) {
      await t.ctx.credentials.changed(u.id);
      const m = await t.get('/v1/me', { token: u.token });
      assert.equal(m.body.is_platform_admin, true);
      assert.ok(m.body.permissions.includes('platform.admin'));
    }
  });
});

describe('auth: captcha (Cloudflare Turnstile)', () => {
  let t: IdentityApp;
  let server: Server;
  const seen: Array<Record<string, string>> = [];
  const capt = uniq('capt');

  before(async () => {
    // Answers like Cloudflare's siteverify: form-encoded request, {success, hostname, ...} back.
    server = createServer((req, res) => {
      let body = '';
      req.on('data', (c) => (body += c));
      req.on('end', () => {
        const form = Object.fromEntries(new URLSearchParams(body));
        seen.push({ ...form, method: req.method ?? '', path: req.url ?? '', type: String(req.headers['content-type']) });
        if (form.response === 'crash') {
          res.writeHead(500, { 'content-type': 'text/html' }).end('<html>oops</html>');
          return;
        }
        const ok = form.secret === 'secret-key-test' && (form.response === 'good-token' || form.response === 'other-host');
        res.writeHead(200, { 'content-type': 'application/json' }).end(
          JSON.stringify({
            success: ok,
            challenge_ts: new Date().toISOString(),
            hostname: form.response === 'other-host' ? 'evil.test' : 'app.test',
            'error-codes': ok ? [] : ['invalid-input-response'],
          }),
        );
      });
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const port = (server.address() as AddressInfo).port;
    t = await startIdentityApp({
      ARKLOOP_TURNSTILE_SITE_KEY: 'site-key-test',
      ARKLOOP_TURNSTILE_SECRET_KEY: 'secret-key-test',
      ARKLOOP_TURNSTILE_VERIFY_URL: `http://127.0.0.1:${port}/turnstile/v0/siteverify`,
    });
  });
  after(async () => {
    await t.close();
    await new Promise<void>((r) => server.close(() => r()));
  });

  it('is reported by captcha-config', async () => {
    assert.deepEqual((await t.get('/v1/auth/captcha-config')).body, { enabled: true, site_key: 'site-key-test' });
  });

  it('guards register, login and both OTP sends', async () => {
    const reg = (token?: unknown) => t.post('/v1/auth/register', { login: capt, email: `${capt}@example.com`, password: 'password123', ...(token !== undefined ? { cf_turnstile_token: token } : {}) });
    expectError(await reg(), 400, 'auth.captcha_required');
    expectError(await reg(null), 400, 'auth.captcha_required');
    expectError(await reg(''), 400, 'auth.captcha_required');
    expectError(await reg('bad-token'), 403, 'auth.captcha_failed');
    expectError(await reg('crash'), 403, 'auth.captcha_failed');
    const ok = await reg('good-token');
    assert.equal(ok.status, 201, ok.text);
    const verified = seen.find((s) => s.response === 'good-token')!;
    assert.equal(verified.method, 'POST');
    assert.equal(verified.path, '/turnstile/v0/siteverify');
    assert.equal(verified.secret, 'secret-key-test');
    assert.equal(verified.remoteip, t.ip);
    assert.match(verified.type, /application\/x-www-form-urlencoded/);

    const login = (token?: string) => t.post('/v1/auth/login', { login: capt, password: 'password123', ...(token ? { cf_turnstile_token: token } : {}) });
    expectError(await login(), 400, 'auth.captcha_required');
    expectError(await login('bad-token'), 403, 'auth.captcha_failed');
    assert.equal((await login('good-token')).status, 200);

    for (const [path, body] of [
      ['/v1/auth/email/otp/send', { email: `${capt}@example.com` }],
      ['/v1/auth/resolve/otp/send', { login: capt }],
    ] as const) {
      expectError(await t.post(path, body), 400, 'auth.captcha_required');
      expectError(await t.post(path, { ...body, cf_turnstile_token: 'bad-token' }), 403, 'auth.captcha_failed');
      const res = await t.post(path, { ...body, cf_turnstile_token: 'good-token' });
      assert.equal(res.status, 200, res.text);
    }
    // Refresh, check and resolve do not ask for it.
    assert.equal((await t.post('/v1/auth/refresh', { refresh_token: cookieValue(ok, REFRESH_COOKIE) })).status, 200);
    assert.equal((await t.post('/v1/auth/check', { login: capt })).status, 200);
    assert.equal((await t.post('/v1/auth/resolve', { login: capt })).status, 200);
  });

  it('checks the hostname when turnstile.allowed_host is set', async () => {
    await setSetting(t, 'turnstile.allowed_host', 'app.test');
    const login = (token: string) => t.post('/v1/auth/login', { login: capt, password: 'password123', cf_turnstile_token: token });
    expectError(await login('other-host'), 403, 'auth.captcha_failed');
    assert.equal((await login('good-token')).status, 200);
    await deleteSetting(t, 'turnstile.allowed_host');
    assert.equal((await login('other-host')).status, 200);
  });

  it('captcha failures do not count as failed sign-ins', async () => {
    const ip = { 'x-forwarded-for': randomIp() };
    for (let i = 0; i < 12; i++) {
      expectError(await t.post('/v1/auth/login', { login: capt, password: 'password123', cf_turnstile_token: 'bad-token' }, { headers: ip }), 403, 'auth.captcha_failed');
    }
    assert.equal((await t.post('/v1/auth/login', { login: capt, password: 'password123', cf_turnstile_token: 'good-token' }, { headers: ip })).status, 200);
  });
});
