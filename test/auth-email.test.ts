// Email flows (api.md §3.8–§3.14) end to end through a real local SMTP server, the mail rate
// limits (§1.8), the email verification gate (§1.2) and the audit trail of identity actions.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { cookieValue, registerUser, uniq, type TestUser } from './helpers/app.js';
import { expectAuthRequired, expectError, expectFieldError } from './helpers/assert.js';
import {
  REFRESH_COOKIE,
  auditRows,
  deleteSetting,
  setSetting,
  setUserStatus,
  startIdentityApp,
  type IdentityApp,
} from './helpers/identity-app.js';
import { otpOf, startSmtpCapture, verificationTokenOf, type SmtpCapture } from './helpers/smtp.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('email flows over SMTP', () => {
  let t: IdentityApp;
  let smtp: SmtpCapture;

  /** The next mail to `to` after the ones already received. */
  const nextMail = async (to: string, action: () => Promise<unknown>) => {
    const since = smtp.messages.length;
    await action();
    return smtp.waitForTo(to, { since });
  };
  const registerWithMail = async () => {
    const since = smtp.messages.length;
    const u = await registerUser(t);
    const mail = await smtp.waitForTo(u.email, { since });
    return { u, mail };
  };
  const sendOtp = async (email: string) => {
    const mail = await nextMail(email, async () => {
      const res = await t.post('/v1/auth/email/otp/send', { email });
      assert.equal(res.status, 200, res.text);
      assert.deepEqual(res.body, { ok: true });
    });
    return otpOf(mail);
  };
  /** Lets a test send again to the same address within the minute. */
  const resetMinuteLimit = (recipient: string) => t.ctx.counters.reset(`mail:m:${recipient.toLowerCase()}`);
  const wrongCode = (code: string, i = 0) => String((Number(code) + 1 + i) % 1_000_000).padStart(6, '0');

  before(async () => {
    smtp = await startSmtpCapture();
    t = await startIdentityApp({ ...smtp.env(), ARKLOOP_APP_BASE_URL: 'http://app.test' }, { worker: true });
    await registerUser(t); // the platform admin, out of the way
  });
  after(async () => {
    await t.close();
    await smtp.close();
  });

  describe('email verification', () => {
    it('registration mails a verification link; the token verifies the address once', async () => {
      const { u, mail } = await registerWithMail();
      assert.equal(mail.from, 'noreply@arkloop.test');
      assert.deepEqual(mail.to, [u.email.toLowerCase()]);
      assert.match(mail.headers.from, /Arkloop/);
      assert.match(mail.subject, /verify/i);
      const token = verificationTokenOf(mail);
      assert.match(token, /^[A-Za-z0-9_-]{43}$/);
      assert.ok(mail.text.includes(`http://app.test/verify-email?token=${token}`));
      const stored = await t.ctx.db.selectFrom('email_verification_tokens').select('token_hash').where('user_id', '=', u.id).execute();
      assert.deepEqual(stored.map((r) => r.token_hash), [createHash('sha256').update(token).digest('hex')]);

      assert.equal((await t.get('/v1/me', { token: u.token })).body.email_verified, false);
      const res = await t.post('/v1/auth/email/verify/confirm', { token });
      assert.equal(res.status, 200, res.text);
      assert.deepEqual(res.body, { ok: true });
      assert.equal((await t.get('/v1/me', { token: u.token })).body.email_verified, true);
      expectError(await t.post('/v1/auth/email/verify/confirm', { token }), 400, 'auth.token_invalid');
      expectError(await t.post('/v1/auth/email/verify/send', undefined, { token: u.token }), 409, 'auth.email_already_verified');

      const audit = await auditRows(t, { action: 'user.email_verified', targetId: u.id });
      assert.equal(audit.length, 1);
      assert.equal(audit[0].actor_user_id, u.id);
      assert.equal(audit[0].org_id, u.personalAccountId);
      assert.equal(audit[0].target_type, 'user');
    });

    it('verify/send issues a fresh token, kills earlier ones, and sends one mail a minute', async () => {
      const { u, mail: first } = await registerWithMail();
      const second = await nextMail(u.email, async () => {
        const res = await t.post('/v1/auth/email/verify/send', undefined, { token: u.token });
        assert.equal(res.status, 200, res.text);
        assert.deepEqual(res.body, { ok: true });
      });
      const a = verificationTokenOf(first);
      const b = verificationTokenOf(second);
      assert.notEqual(a, b);
      const limited = await t.post('/v1/auth/email/verify/send', undefined, { token: u.token });
      expectError(limited, 429, 'rate_limit');
      const retry = Number(limited.headers['retry-after']);
      assert.ok(retry >= 1 && retry <= 60, `Retry-After ${retry}`);
      expectError(await t.post('/v1/auth/email/verify/confirm', { token: a }), 400, 'auth.token_invalid');
      assert.equal((await t.post('/v1/auth/email/verify/confirm', { token: b })).status, 200);
      assert.equal((await t.get('/v1/me', { token: u.token })).body.email_verified, true);
    });

    it('confirm refuses malformed, unknown and expired tokens', async () => {
      const confirm = (body: unknown) => t.post('/v1/auth/email/verify/confirm', body);
      expectFieldError(await confirm({}), 'token');
      expectFieldError(await confirm({ token: '' }), 'token');
      expectFieldError(await confirm({ token: '   ' }), 'token');
      expectFieldError(await confirm({ token: 42 }), 'token');
      expectFieldError(await confirm({ token: 'x'.repeat(513) }), 'token');
      expectError(await confirm({ token: 'A'.repeat(43) }), 400, 'auth.token_invalid');
      const { u, mail } = await registerWithMail();
      await t.ctx.db.updateTable('email_verification_tokens').set({ expires_at: new Date(Date.now() - 1000) }).where('user_id', '=', u.id).execute();
      expectError(await confirm({ token: verificationTokenOf(mail) }), 400, 'auth.token_invalid');
      assert.equal((await t.get('/v1/me', { token: u.token })).body.email_verified, false);
      // The token is a credential of its own: no access token needed, none misused.
      expectError(await t.post('/v1/auth/email/verify/confirm', { token: u.token }), 400, 'auth.token_invalid');
    });

    it('verify/send needs an access token', async () => {
      await expectAuthRequired(t, 'POST', '/v1/auth/email/verify/send');
    });

    it('registering while verification is required and mail works gives no warning', async () => {
      await setSetting(t, 'email.verification_required', true);
      try {
        const since = smtp.messages.length;
        const l = uniq('w');
        const res = await t.post('/v1/auth/register', { login: l, email: `${l}@example.com`, password: 'password123' });
        assert.equal(res.status, 201, res.text);
        assert.equal(res.body.warning, null);
        await smtp.waitForTo(`${l}@example.com`, { since });
      } finally {
        await deleteSetting(t, 'email.verification_required');
      }
    });
  });

  describe('one-time codes by email', () => {
    it('mails a 6-digit code that signs in once and verifies the address', async () => {
      const { u } = await registerWithMail();
      const since = smtp.messages.length;
      const res = await t.post('/v1/auth/email/otp/send', { email: `  ${u.email.toUpperCase()} ` });
      assert.equal(res.status, 200, res.text);
      const mail = await smtp.waitForTo(u.email, { since });
      const code = otpOf(mail);
      assert.match(code, /^\d{6}$/);
      assert.ok(mail.subject.includes(code));
      const row = await t.ctx.db.selectFrom('email_otps').selectAll().where('user_id', '=', u.id).executeTakeFirstOrThrow();
      assert.notEqual(row.code_hash, code);
      assert.ok(!row.code_hash.includes(code));

      const signIn = await t.post('/v1/auth/email/otp/verify', { email: u.email.toUpperCase(), otp: code });
      assert.equal(signIn.status, 200, signIn.text);
      assert.equal(signIn.body.user_id, u.id);
      assert.equal(signIn.body.token_type, 'bearer');
      assert.ok(cookieValue(signIn, REFRESH_COOKIE));
      const me = await t.get('/v1/me', { token: signIn.body.access_token });
      assert.equal(me.status, 200);
      assert.equal(me.body.email_verified, true);
      expectError(await t.post('/v1/auth/email/otp/verify', { email: u.email, otp: code }), 401, 'auth.otp_invalid');
      const audit = (await auditRows(t, { action: 'user.login', targetId: u.id })).at(-1)!;
      assert.equal((audit.metadata as Record<string, unknown>).method, 'otp');
      assert.equal(audit.actor_user_id, u.id);
      assert.ok(!JSON.stringify(audit).includes(code));
    });

    it('five wrong codes invalidate the code', async () => {
      const { u } = await registerWithMail();
      const code = await sendOtp(u.email);
      for (let i = 0; i < 5; i++) {
        expectError(await t.post('/v1/auth/email/otp/verify', { email: u.email, otp: wrongCode(code, i) }), 401, 'auth.otp_invalid');
      }
      expectError(await t.post('/v1/auth/email/otp/verify', { email: u.email, otp: code }), 401, 'auth.otp_invalid');
      const row = await t.ctx.db.selectFrom('email_otps').selectAll().where('user_id', '=', u.id).executeTakeFirstOrThrow();
      assert.equal(row.failed_attempts, 5);
      assert.ok(row.used_at);
      // Four wrong codes are not enough (another user: u has used up 6 of the 10 failed sign-ins).
      const { u: v } = await registerWithMail();
      const code2 = await sendOtp(v.email);
      for (let i = 0; i < 4; i++) await t.post('/v1/auth/email/otp/verify', { email: v.email, otp: wrongCode(code2, i) });
      assert.equal((await t.post('/v1/auth/email/otp/verify', { email: v.email, otp: code2 })).status, 200);
    });

    it('wrong codes count as failed sign-ins: 10 lock the user out', async () => {
      const { u } = await registerWithMail();
      let live = '';
      for (let i = 0; i < 10; i++) {
        // A code dies after 5 wrong tries; ask for a new one then.
        if (i % 5 === 0) {
          await resetMinuteLimit(u.email);
          live = await sendOtp(u.email);
        }
        expectError(await t.post('/v1/auth/email/otp/verify', { email: u.email, otp: wrongCode(live, i) }), 401, 'auth.otp_invalid');
      }
      await resetMinuteLimit(u.email);
      const code = await sendOtp(u.email);
      const locked = await t.post('/v1/auth/email/otp/verify', { email: u.email, otp: code });
      expectError(locked, 429, 'rate_limit');
      assert.ok(Number(locked.headers['retry-after']) >= 1);
      // The password sign-in of that user shares the allowance.
      expectError(await t.post('/v1/auth/login', { login: u.login, password: u.password }), 429, 'rate_limit');
    });

    it('a new code replaces the earlier one; expired codes are refused', async () => {
      const { u } = await registerWithMail();
      const first = await sendOtp(u.email);
      await resetMinuteLimit(u.email);
      let second = await sendOtp(u.email);
      while (second === first) {
        await resetMinuteLimit(u.email);
        second = await sendOtp(u.email);
      }
      expectError(await t.post('/v1/auth/email/otp/verify', { email: u.email, otp: first }), 401, 'auth.otp_invalid');
      await t.ctx.db.updateTable('email_otps').set({ expires_at: new Date(Date.now() - 1000) }).where('user_id', '=', u.id).execute();
      expectError(await t.post('/v1/auth/email/otp/verify', { email: u.email, otp: second }), 401, 'auth.otp_invalid');
    });

    it('answers ok for unknown, suspended and deleted addresses without mailing; one mail per address per minute', async () => {
      const unknown = `${uniq('ghost')}@example.com`;
      const res = await t.post('/v1/auth/email/otp/send', { email: unknown });
      assert.equal(res.status, 200);
      assert.deepEqual(res.body, { ok: true });
      const again = await t.post('/v1/auth/email/otp/send', { email: unknown.toUpperCase() });
      expectError(again, 429, 'rate_limit');
      assert.ok(Number(again.headers['retry-after']) >= 1);

      const { u: suspended } = await registerWithMail();
      await setUserStatus(t, suspended.id, 'suspended');
      assert.equal((await t.post('/v1/auth/email/otp/send', { email: suspended.email })).status, 200);
      const { u: deleted } = await registerWithMail();
      await setUserStatus(t, deleted.id, 'deleted');
      assert.equal((await t.post('/v1/auth/email/otp/send', { email: deleted.email })).status, 200);
      await sleep(300);
      assert.equal(smtp.to(unknown).length, 0);
      assert.equal(smtp.to(suspended.email).length, 1, 'only the registration mail');
      assert.equal(smtp.to(deleted.email).length, 1, 'only the registration mail');
    });

    it('allows 10 mails per address per hour', async () => {
      const address = `${uniq('hourly')}@example.com`;
      for (let i = 0; i < 10; i++) {
        assert.equal((await t.post('/v1/auth/email/otp/send', { email: address })).status, 200, `mail ${i}`);
        await resetMinuteLimit(address);
      }
      const limited = await t.post('/v1/auth/email/otp/send', { email: address });
      expectError(limited, 429, 'rate_limit');
      const retry = Number(limited.headers['retry-after']);
      assert.ok(retry > 60 && retry <= 3600, `Retry-After ${retry}`);
    });

    it('verify refuses bad input, unknown users and suspended users', async () => {
      const verify = (body: unknown) => t.post('/v1/auth/email/otp/verify', body);
      expectFieldError(await verify({ email: 'a@example.com' }), 'otp');
      expectFieldError(await verify({ otp: '123456' }), 'email');
      for (const otp of ['12345', '1234567', 'abcdef', '12 456', 123456]) expectFieldError(await verify({ email: 'a@example.com', otp }), 'otp');
      expectFieldError(await verify({ email: 'not-an-email', otp: '123456' }), 'email');
      expectFieldError(await t.post('/v1/auth/email/otp/send', { email: 'not-an-email' }), 'email');
      expectFieldError(await t.post('/v1/auth/email/otp/send', {}), 'email');

      const usersBefore = await t.ctx.db.selectFrom('users').select((eb) => eb.fn.countAll<number>().as('n')).executeTakeFirstOrThrow();
      expectError(await verify({ email: `${uniq('nobody')}@example.com`, otp: '123456' }), 401, 'auth.otp_invalid');
      const usersAfter = await t.ctx.db.selectFrom('users').select((eb) => eb.fn.countAll<number>().as('n')).executeTakeFirstOrThrow();
      assert.equal(Number(usersAfter.n), Number(usersBefore.n), 'OTP never creates a user');

      const { u } = await registerWithMail();
      const code = await sendOtp(u.email);
      await setUserStatus(t, u.id, 'suspended');
      expectError(await verify({ email: u.email, otp: code }), 403, 'auth.user_suspended');
    });
  });

  describe('resolve', () => {
    it('tells the next sign-in step without revealing the address', async () => {
      const { u } = await registerWithMail();
      for (const login of [u.login, u.login.toUpperCase(), u.email]) {
        const res = await t.post('/v1/auth/resolve', { login });
        assert.equal(res.status, 200);
        assert.deepEqual(res.body, { exists: true, next_step: 'password', otp_available: true, masked_email: `${u.login[0]}***@example.com` });
      }
      assert.deepEqual((await t.post('/v1/auth/resolve', { login: uniq('nobody') })).body, {
        exists: false,
        next_step: 'register',
        otp_available: false,
        masked_email: null,
      });
      await setUserStatus(t, u.id, 'suspended');
      assert.equal((await t.post('/v1/auth/resolve', { login: u.login })).body.exists, false);
      expectFieldError(await t.post('/v1/auth/resolve', {}), 'login');
      expectFieldError(await t.post('/v1/auth/resolve', { login: '' }), 'login');
      expectFieldError(await t.post('/v1/auth/resolve', { login: 'x'.repeat(255) }), 'login');
    });

    it('mails a code for a login and signs in with it', async () => {
      const { u } = await registerWithMail();
      const mail = await nextMail(u.email, async () => {
        const res = await t.post('/v1/auth/resolve/otp/send', { login: u.login.toUpperCase() });
        assert.equal(res.status, 200, res.text);
        assert.deepEqual(res.body, { ok: true });
      });
      const code = otpOf(mail);
      expectError(await t.post('/v1/auth/resolve/otp/verify', { login: u.login, otp: wrongCode(code) }), 401, 'auth.otp_invalid');
      const res = await t.post('/v1/auth/resolve/otp/verify', { login: u.login, otp: code });
      assert.equal(res.status, 200, res.text);
      assert.equal(res.body.user_id, u.id);
      assert.ok(cookieValue(res, REFRESH_COOKIE));
      assert.equal((await t.get('/v1/me', { token: res.body.access_token })).body.email_verified, true);
      expectError(await t.post('/v1/auth/resolve/otp/verify', { login: u.login, otp: code }), 401, 'auth.otp_invalid');
      // One mail per requested login per minute.
      expectError(await t.post('/v1/auth/resolve/otp/send', { login: u.login }), 429, 'rate_limit');
    });

    it('a suspended user’s code answers 403', async () => {
      const { u } = await registerWithMail();
      const mail = await nextMail(u.email, () => t.post('/v1/auth/resolve/otp/send', { login: u.login }));
      await setUserStatus(t, u.id, 'suspended');
      expectError(await t.post('/v1/auth/resolve/otp/verify', { login: u.login, otp: otpOf(mail) }), 403, 'auth.user_suspended');
    });

    it('answers ok for unknown logins and refuses their codes', async () => {
      const ghost = uniq('ghost');
      const since = smtp.messages.length;
      assert.deepEqual((await t.post('/v1/auth/resolve/otp/send', { login: ghost })).body, { ok: true });
      expectError(await t.post('/v1/auth/resolve/otp/send', { login: ghost }), 429, 'rate_limit');
      expectError(await t.post('/v1/auth/resolve/otp/verify', { login: ghost, otp: '000000' }), 401, 'auth.otp_invalid');
      expectFieldError(await t.post('/v1/auth/resolve/otp/verify', { login: ghost, otp: '0000' }), 'otp');
      expectFieldError(await t.post('/v1/auth/resolve/otp/verify', { otp: '000000' }), 'login');
      expectFieldError(await t.post('/v1/auth/resolve/otp/send', { login: '' }), 'login');
      await sleep(200);
      assert.equal(smtp.messages.length, since);
    });
  });

  it('writes the audit trail of identity actions, without secrets', async () => {
    const { u, mail } = await registerWithMail();
    const verifyToken = verificationTokenOf(mail);
    const failed = await t.post('/v1/auth/login', { login: u.login, password: 'a-wrong-password' });
    expectError(failed, 401, 'auth.invalid_credentials');
    const login = await t.post('/v1/auth/login', { login: u.email, password: u.password }, { headers: { 'user-agent': 'audit-agent/2' } });
    const token = login.body.access_token;
    assert.equal((await t.patch('/v1/me', { username: 'Audited Name', timezone: 'Europe/Paris' }, { token })).status, 200);
    assert.equal((await t.post('/v1/auth/email/verify/confirm', { token: verifyToken })).status, 200);
    const key = await t.post('/v1/api-keys', { name: 'audited' }, { token });
    assert.equal((await t.del(`/v1/api-keys/${key.body.id}`, { token })).status, 204);
    const logout = await t.post('/v1/auth/logout', undefined, { token });
    assert.equal(logout.status, 200);

    const rows = await t.ctx.db
      .selectFrom('audit_logs')
      .selectAll()
      .where((eb) => eb.or([eb('actor_user_id', '=', u.id), eb('target_id', '=', u.id)]))
      .orderBy('created_at')
      .orderBy('id')
      .execute();
    const keyRows = await auditRows(t, { targetId: key.body.id });
    const all = [...rows, ...keyRows];
    const actions = all.map((r) => r.action);
    for (const action of ['user.register', 'user.login_failed', 'user.login', 'user.update', 'user.email_verified', 'api_key.create', 'api_key.revoke', 'user.logout']) {
      assert.ok(actions.includes(action), `${action} missing from ${actions.join(', ')}`);
    }
    for (const r of all) {
      assert.equal(r.org_id, u.personalAccountId, r.action);
      assert.match(String(r.trace_id), /^[0-9a-f]{32}$/, r.action);
      assert.equal(r.ip_address, t.ip, r.action);
      if (r.action === 'user.login_failed') assert.equal(r.actor_user_id, null);
      else assert.equal(r.actor_user_id, u.id, r.action);
    }
    const byAction = (a: string) => all.find((r) => r.action === a)!;
    assert.equal(byAction('user.login').trace_id, login.headers['x-trace-id']);
    assert.equal(byAction('user.login').user_agent, 'audit-agent/2');
    assert.equal(byAction('user.logout').trace_id, logout.headers['x-trace-id']);
    assert.equal(byAction('api_key.create').target_type, 'api_key');
    const update = byAction('user.update');
    const before = (typeof update.before_state === 'string' ? JSON.parse(update.before_state) : update.before_state) as Record<string, unknown>;
    const afterState = (typeof update.after_state === 'string' ? JSON.parse(update.after_state) : update.after_state) as Record<string, unknown>;
    assert.equal(before.username, u.login);
    assert.equal(before.timezone, null);
    assert.equal(afterState.username, 'Audited Name');
    assert.equal(afterState.timezone, 'Europe/Paris');

    const text = JSON.stringify(all);
    const secrets = [
      u.password,
      'a-wrong-password',
      u.token,
      token,
      u.refreshCookie,
      cookieValue(login, REFRESH_COOKIE)!,
      key.body.key,
      createHash('sha256').update(key.body.key).digest('hex'),
      verifyToken,
      createHash('sha256').update(verifyToken).digest('hex'),
    ];
    for (const s of secrets) assert.ok(!text.includes(s), `secret ${s.slice(0, 12)}… in audit rows`);
    assert.ok(!/password_hash|key_hash|token_hash/.test(text));
  });
});

describe('email verification gate', () => {
  let t: IdentityApp;
  let u: TestUser;
  before(async () => {
    t = await startIdentityApp({ ARKLOOP_EMAIL_VERIFICATION_REQUIRED: 'true' }, { probes: true });
    await registerUser(t);
  });
  after(async () => {
    await t.close();
  });

  it('registration warns when the verification mail cannot be sent', async () => {
    const l = uniq('g');
    const res = await t.post('/v1/auth/register', { login: l, email: `${l}@example.com`, password: 'password123' });
    assert.equal(res.status, 201, res.text);
    assert.equal(res.body.warning, 'email_verification_not_sent');
    u = { id: res.body.user_id, login: l, email: `${l}@example.com`, password: 'password123', token: res.body.access_token, refreshCookie: cookieValue(res, REFRESH_COOKIE)!, personalAccountId: '' };
  });

  it('an unverified user may use /v1/auth/*, GET and PATCH /v1/me, and nothing else', async () => {
    const me = await t.get('/v1/me', { token: u.token });
    assert.equal(me.status, 200);
    assert.equal(me.body.email_verification_required, true);
    assert.equal(me.body.email_verified, false);
    assert.equal((await t.get('/v1/auth/me', { token: u.token })).status, 200);
    assert.equal((await t.patch('/v1/me', { locale: 'fr' }, { token: u.token })).status, 200);
    assert.equal((await t.put('/v1/me', { locale: 'fr' }, { token: u.token })).status, 200);
    // Without SMTP the mail is logged, and the request still succeeds.
    assert.equal((await t.post('/v1/auth/email/verify/send', undefined, { token: u.token })).status, 200);
    const refreshed = await t.post('/v1/auth/refresh', { refresh_token: u.refreshCookie });
    assert.equal(refreshed.status, 200);
    assert.equal((await t.post('/v1/auth/login', { login: u.login, password: u.password })).status, 200);

    for (const [method, path, body] of [
      ['POST', '/v1/api-keys', { name: 'k' }],
      ['POST', '/v1/api-keys', {}], // the gate comes before validation
      ['GET', '/v1/api-keys'],
      ['DELETE', '/v1/api-keys/not-a-uuid'],
      ['GET', '/v1/me/usage'],
      ['GET', '/v1/me/usage/daily?start=2024-01-01&end=2024-01-02'],
      ['GET', '/v1/me/usage/by-model'],
      ['GET', '/v1/me/credits'],
      ['GET', '/v1/me/invite-code'],
      ['POST', '/v1/me/invite-code/reset'],
      ['POST', '/v1/me/redeem', { code: 'X' }],
      ['GET', '/v1/me/feature-flags'],
      ['GET', '/v1/_probe/read'],
    ] as Array<[string, string, unknown?]>) {
      expectError(await t.request(method, path, body, { token: refreshed.body.access_token }), 403, 'auth.email_not_verified');
    }
    assert.equal((await t.post('/v1/auth/logout', undefined, { token: u.token })).status, 200);
  });

  it('verification opens the API; API keys of unverified users are gated too', async () => {
    const login = await t.post('/v1/auth/login', { login: u.login, password: u.password });
    const token = login.body.access_token;
    await t.ctx.db.updateTable('users').set({ email_verified: true }).where('id', '=', u.id).execute();
    await t.ctx.credentials.changed(u.id);
    const key = await t.post('/v1/api-keys', { name: 'k' }, { token });
    assert.equal(key.status, 201, key.text);
    assert.equal((await t.get('/v1/_probe/read', { token: key.body.key })).status, 200);
    assert.equal((await t.get('/v1/me/credits', { token })).status, 200);
    await t.ctx.db.updateTable('users').set({ email_verified: false }).where('id', '=', u.id).execute();
    await t.ctx.credentials.changed(u.id);
    expectError(await t.get('/v1/_probe/read', { token: key.body.key }), 403, 'auth.email_not_verified');
    expectError(await t.get('/v1/me/credits', { token }), 403, 'auth.email_not_verified');
  });

  it('without SMTP, resolve offers no code', async () => {
    const res = await t.post('/v1/auth/resolve', { login: u.login });
    assert.deepEqual(res.body, { exists: true, next_step: 'password', otp_available: false, masked_email: `${u.login[0]}***@example.com` });
  });
});
