// Email for platform admins (api.md §21.7–21.10) and mail through `email.send` jobs (§26.7),
// against a real SMTP server (smtp-server): status and config (the password sealed, never
// returned), the synchronous test mail, verification and sign-in mails delivered by a worker,
// a mail written while no worker runs delivered by one started later, and an SMTP server that
// is down at first: the queue retries and nothing is lost.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { registerUser, startTestApp, type TestApp } from './helpers/app.js';
import { adminCast, expectPadminOnly, type AdminCast } from './helpers/admin.js';
import { expectError, expectFieldError } from './helpers/assert.js';
import { freePort } from './helpers/processes.js';
import { otpOf, startSmtpCapture, verificationTokenOf, type SmtpCapture } from './helpers/smtp.js';

const BASE = { ARKLOOP_APP_BASE_URL: 'http://app.test' };
const PASSWORD = 'smtp-password-never-shown';

async function until<T>(what: string, probe: () => Promise<T | null | undefined | false>, timeoutMs = 15_000): Promise<T> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const v = await probe();
    if (v) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

describe('admin email and the email.send job', () => {
  let t: TestApp;
  let worker: TestApp | null = null;
  let smtp: SmtpCapture;
  let cast: AdminCast;
  const as = () => ({ token: cast.admin.token });
  const putConfig = (body: unknown) => t.put('/v1/admin/email/config', body, as());
  const startWorkerApp = async () => (worker = await startTestApp(BASE, { database: t.db.database, worker: true }));
  const mailJobs = () => t.ctx.db.selectFrom('jobs').selectAll().where('type', '=', 'email.send').execute();

  before(async () => {
    smtp = await startSmtpCapture();
    t = await startTestApp(BASE);
    cast = await adminCast(t);
  });
  after(async () => {
    await worker?.close();
    await t.close();
    await smtp.close();
  });

  it('every route is for platform admins only', async () => {
    await expectPadminOnly(t, cast, 'GET', '/v1/admin/email/status');
    await expectPadminOnly(t, cast, 'GET', '/v1/admin/email/config');
    await expectPadminOnly(t, cast, 'PUT', '/v1/admin/email/config', { smtp_host: 'evil.example' });
    await expectPadminOnly(t, cast, 'POST', '/v1/admin/email/test', { to: 'x@example.com' });
    assert.equal((await t.get('/v1/admin/email/config', as())).body.smtp_host, '');
  });

  it('unconfigured: status none, default config, the test mail answers email.not_configured', async () => {
    assert.deepEqual((await t.get('/v1/admin/email/status', as())).body, { configured: false, from: null, source: 'none' });
    assert.deepEqual((await t.get('/v1/admin/email/config', as())).body, {
      from: '', smtp_host: '', smtp_port: 587, smtp_user: '', smtp_pass_set: false, smtp_tls_mode: 'starttls',
    });
    expectError(await t.post('/v1/admin/email/test', { to: 'someone@example.com' }, as()), 409, 'email.not_configured');
  });

  it('config validates every field', async () => {
    expectError(await putConfig({}), 400, 'validation.error');
    expectFieldError(await putConfig({ from: 'not an address' }), 'from');
    expectFieldError(await putConfig({ smtp_port: 0 }), 'smtp_port');
    expectFieldError(await putConfig({ smtp_port: 65536 }), 'smtp_port');
    expectFieldError(await putConfig({ smtp_port: '25' }), 'smtp_port');
    expectFieldError(await putConfig({ smtp_tls_mode: 'ssl' }), 'smtp_tls_mode');
    expectFieldError(await putConfig({ smtp_host: 'a b' }), 'smtp_host');
    expectFieldError(await putConfig({ smtp_pass: null }), 'smtp_pass');
    expectFieldError(await t.post('/v1/admin/email/test', { to: 'nope' }, as()), 'to');
  });

  it('stores the config; the password is sealed, never returned, logged or audited; absent keeps it, "" clears it', async () => {
    const res = await putConfig({ from: 'Arkloop <noreply@arkloop.test>', smtp_host: '127.0.0.1', smtp_port: smtp.port, smtp_user: 'mailer', smtp_pass: PASSWORD, smtp_tls_mode: 'none' });
    assert.equal(res.status, 204, res.text);
    const config = await t.get('/v1/admin/email/config', as());
    assert.deepEqual(config.body, { from: 'Arkloop <noreply@arkloop.test>', smtp_host: '127.0.0.1', smtp_port: smtp.port, smtp_user: 'mailer', smtp_pass_set: true, smtp_tls_mode: 'none' });
    assert.deepEqual((await t.get('/v1/admin/email/status', as())).body, { configured: true, from: 'Arkloop <noreply@arkloop.test>', source: 'db' });
    const stored = await t.ctx.db.selectFrom('platform_settings').select('value').where('key', '=', 'email.smtp_pass').executeTakeFirstOrThrow();
    assert.ok(!JSON.stringify(stored.value).includes(PASSWORD));
    assert.equal(await t.ctx.settings.string('email.smtp_pass'), PASSWORD);
    const setting = await t.get('/v1/admin/platform-settings/email.smtp_pass', as());
    assert.equal(setting.body.value, '********');

    // Absent keeps the password; "" clears it.
    assert.equal((await putConfig({ smtp_user: '' })).status, 204);
    assert.equal((await t.get('/v1/admin/email/config', as())).body.smtp_pass_set, true);
    assert.equal((await putConfig({ smtp_pass: '' })).status, 204);
    assert.equal((await t.get('/v1/admin/email/config', as())).body.smtp_pass_set, false);

    const audit = await t.ctx.db.selectFrom('audit_logs').selectAll().where('action', '=', 'email_config.update').orderBy('created_at').orderBy('id').execute();
    assert.equal(audit.length, 3);
    assert.ok(!JSON.stringify(audit).includes(PASSWORD), 'the password is in no audit row');
    assert.deepEqual(audit[0].metadata, { fields: ['from', 'smtp_host', 'smtp_pass', 'smtp_port', 'smtp_tls_mode', 'smtp_user'] });
    assert.equal((audit[0].before_state as { smtp_pass_set: boolean }).smtp_pass_set, false);
    assert.equal((audit[0].after_state as { smtp_pass_set: boolean }).smtp_pass_set, true);
    assert.equal((audit[2].after_state as { smtp_pass_set: boolean }).smtp_pass_set, false);
  });

  it('the test mail is sent synchronously; a refusing server answers email.send_failed', async () => {
    const since = smtp.messages.length;
    const res = await t.post('/v1/admin/email/test', { to: 'Ops@Example.com' }, as());
    assert.equal(res.status, 204, res.text);
    const mail = smtp.messages[since];
    assert.ok(mail, 'accepted by the server before the answer');
    assert.deepEqual(mail.to, ['ops@example.com']);
    assert.equal(mail.from, 'noreply@arkloop.test');
    assert.match(mail.subject, /test/i);

    const closed = await freePort();
    assert.equal((await putConfig({ smtp_port: closed })).status, 204);
    const failed = await t.post('/v1/admin/email/test', { to: 'ops@example.com' }, as());
    expectError(failed, 502, 'email.send_failed');
    assert.equal(typeof failed.body.details.message, 'string');
    assert.equal((await putConfig({ smtp_port: smtp.port })).status, 204);

    const audit = await t.ctx.db.selectFrom('audit_logs').select(['metadata', 'actor_user_id']).where('action', '=', 'email.test').orderBy('created_at').orderBy('id').execute();
    assert.deepEqual(audit.map((a) => (a.metadata as { ok: boolean }).ok), [true, false]);
    assert.equal(audit[0].actor_user_id, cast.admin.id);
  });

  it('a mail written while no worker runs is kept, and delivered by a worker started later', async () => {
    const u = await registerUser(t); // its verification mail is queued; nobody sends it yet
    const jobs = await mailJobs();
    assert.equal(jobs.length, 1);
    assert.equal((jobs[0].payload as { to: string }).to, u.email);
    const payloadText = JSON.stringify(jobs[0].payload);
    const token = (await t.ctx.db.selectFrom('email_verification_tokens').select('token_hash').where('user_id', '=', u.id).executeTakeFirstOrThrow()).token_hash;
    assert.ok(token);

    await startWorkerApp();
    const mail = await smtp.waitForTo(u.email, { timeoutMs: 15_000 });
    assert.match(mail.subject, /verify/i);
    const sent = verificationTokenOf(mail);
    assert.ok(mail.text.includes(`http://app.test/verify-email?token=${sent}`));
    assert.ok(!payloadText.includes(sent), 'the job held no plaintext token');
    assert.equal((await t.post('/v1/auth/email/verify/confirm', { token: sent })).status, 200);
    await until('the job to be removed', async () => (await mailJobs()).length === 0);
  });

  it('verification and sign-in code mails arrive with the right recipient, subject and link or code', async () => {
    if (!worker) await startWorkerApp();
    let since = smtp.messages.length;
    const u = await registerUser(t);
    const verify = await smtp.waitForTo(u.email, { since });
    assert.deepEqual(verify.to, [u.email.toLowerCase()]);
    assert.match(verify.subject, /verify your email/i);
    assert.equal((await t.post('/v1/auth/email/verify/confirm', { token: verificationTokenOf(verify) })).status, 200);

    since = smtp.messages.length;
    assert.equal((await t.post('/v1/auth/email/otp/send', { email: u.email })).status, 200);
    const otpMail = await smtp.waitForTo(u.email, { since });
    assert.match(otpMail.subject, /sign-in code: \d{6}$/);
    const signIn = await t.post('/v1/auth/email/otp/verify', { email: u.email, otp: otpOf(otpMail) });
    assert.equal(signIn.status, 200, signIn.text);
  });

  it('SMTP down: the mails wait and retry; once the server is up they arrive, none lost', async () => {
    if (!worker) await startWorkerApp();
    const port = await freePort();
    assert.equal((await putConfig({ smtp_port: port })).status, 204);
    const a = await registerUser(t); // verification mail
    const b = await registerUser(t);
    assert.equal((await t.post('/v1/auth/email/otp/send', { email: b.email })).status, 200);
    const failing = await until('both mail jobs to fail once', async () => {
      const jobs = await mailJobs();
      const mine = jobs.filter((j) => [a.email, b.email].includes((j.payload as { to: string }).to));
      return mine.length >= 3 && mine.every((j) => j.last_error !== null && j.state !== 'failed') ? mine : null;
    });
    assert.ok(failing.every((j) => j.max_attempts > j.attempts));
    const payloads = JSON.stringify(failing.map((j) => j.payload));

    const late = await startSmtpCapture({ port });
    try {
      const first = await late.waitForTo(a.email, { timeoutMs: 20_000 });
      assert.match(first.subject, /verify/i);
      await late.waitFor((m) => m.to.includes(b.email.toLowerCase()) && /verify/i.test(m.subject), 20_000);
      const code = await late.waitFor((m) => m.to.includes(b.email.toLowerCase()) && /sign-in code/.test(m.subject), 20_000);
      assert.ok(!payloads.includes(otpOf(code)), 'the code was not in the job payload');
      assert.ok(!payloads.includes(verificationTokenOf(first)));
      assert.equal((await t.post('/v1/auth/email/otp/verify', { email: b.email, otp: otpOf(code) })).status, 200);
      await until('the jobs to be removed', async () => (await mailJobs()).length === 0);
    } finally {
      await late.close();
      await putConfig({ smtp_port: smtp.port });
    }
  });
});
