// Email verification, one-time sign-in codes and the resolve flow (api.md §3.8–§3.14).
import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { AppContext } from '../../app-context.js';
import { AppError, conflict } from '../../http/errors.js';
import { registerRoute } from '../../http/route.js';
import { Nullable, OkResponse, OptNull, T } from '../../http/schemas.js';
import { auditOrigin, recordAudit } from '../audit/store.js';
import { findPersonalAccount } from '../accounts/store.js';
import { findUserByEmail, findUserById, findUserByLoginOrEmail, updateUser, type UserRow } from '../users/store.js';
import { requireCaptcha } from './captcha.js';
import { consumeOtp, consumeVerificationToken, issueOtp, issueVerificationToken, maskEmail } from './email-codes.js';
import { checkLoginFailures, failureSubject, limitMail, limitPerIp, recordLoginFailure } from './limits.js';
import { Email, TokenResponse, auditLoginFailure, signIn } from './routes.js';
import { emailJob } from '../../mail/email-job.js';

/** Issues a verification token and queues its mail in one transaction (mail/email-job.ts). */
export async function sendVerificationMail(ctx: AppContext, user: Pick<UserRow, 'id' | 'email'>): Promise<void> {
  const email = user.email;
  if (!email) return;
  await ctx.engine.transaction(ctx.db, async (tx) => {
    const { token, expiresAt } = await issueVerificationToken(tx.db, user.id, email);
    const link = `${ctx.config.appBaseUrl.replace(/\/$/, '')}/verify-email?token=${encodeURIComponent(token)}`;
    const mail = {
      to: email,
      subject: 'Verify your email address',
      text: `Confirm your email address for Arkloop by opening this link:\n\n${link}\n\nOr use this token: ${token}\n\nThe link is valid for 24 hours.`,
    };
    await tx.enqueue(emailJob(ctx, mail, expiresAt));
  });
}

/** Issues a sign-in code and queues its mail in one transaction. */
async function sendOtpMail(ctx: AppContext, user: UserRow): Promise<void> {
  const email = user.email;
  if (!email || user.status !== 'active') return;
  await ctx.engine.transaction(ctx.db, async (tx) => {
    const { code, expiresAt } = await issueOtp(tx.db, ctx.jwtKey, user.id);
    const mail = {
      to: email,
      subject: `Your Arkloop sign-in code: ${code}`,
      text: `Your one-time sign-in code is ${code}.\n\nIt is valid for 10 minutes. If you did not ask for it, ignore this mail.`,
    };
    await tx.enqueue(emailJob(ctx, mail, expiresAt));
  });
}

const OtpCode = () => T.String({ pattern: '^[0-9]{6}$' });

export function emailRoutes(app: FastifyInstance, ctx: AppContext): void {
  const tags = ['auth'];

  registerRoute(app, ctx, {
    method: 'POST',
    url: '/v1/auth/email/verify/send',
    caller: 'user',
    emailGateExempt: true,
    summary: 'Mail a verification link to the caller',
    tags,
    response: OkResponse,
    handler: async (req) => {
      const user = await findUserById(ctx.db, req.principal!.user.id);
      if (!user?.email) throw new AppError('validation.error', 'the user has no email address');
      if (user.email_verified) throw conflict('auth.email_already_verified', 'email is already verified');
      await limitMail(ctx, user.email);
      await sendVerificationMail(ctx, user);
      return { ok: true };
    },
  });

  registerRoute(app, ctx, {
    method: 'POST',
    url: '/v1/auth/email/verify/confirm',
    caller: 'anon',
    summary: 'Confirm an email address with the mailed token',
    tags,
    body: T.Object({ token: T.String({ minLength: 1, maxLength: 512 }) }),
    trim: ['token'],
    response: OkResponse,
    handler: async (req) => {
      const userId = await consumeVerificationToken(ctx.db, req.body.token);
      if (!userId) throw new AppError('auth.token_invalid', 'token is unknown, used or expired');
      await ctx.credentials.changed(userId);
      const personal = await findPersonalAccount(ctx.db, userId);
      await recordAudit(ctx.db, auditOrigin(req as FastifyRequest), {
        orgId: personal?.id ?? null,
        actorUserId: userId,
        action: 'user.email_verified',
        targetType: 'user',
        targetId: userId,
      });
      return { ok: true };
    },
  });

  registerRoute(app, ctx, {
    method: 'POST',
    url: '/v1/auth/email/otp/send',
    caller: 'anon',
    summary: 'Mail a one-time sign-in code',
    tags,
    body: T.Object({ email: Email(), cf_turnstile_token: OptNull(T.String({ maxLength: 4096 })) }),
    trim: ['email'],
    response: OkResponse,
    handler: async (req) => {
      await requireCaptcha(ctx, req.body.cf_turnstile_token, req.clientIp);
      await limitMail(ctx, req.body.email);
      const user = await findUserByEmail(ctx.db, req.body.email);
      if (user) await sendOtpMail(ctx, user);
      return { ok: true };
    },
  });

  const verifyOtp = async (req: FastifyRequest, reply: Parameters<Parameters<typeof registerRoute>[2]['handler']>[1], ident: string, otp: string, user: UserRow | undefined) => {
    const subject = failureSubject(ident, user);
    await checkLoginFailures(ctx, subject, req.clientIp);
    const ok = user ? await consumeOtp(ctx.db, ctx.jwtKey, user.id, otp) : false;
    if (!user || !ok) {
      await recordLoginFailure(ctx, subject, req.clientIp);
      await auditLoginFailure(ctx, req, ident, user, 'otp');
      throw new AppError('auth.otp_invalid', 'code is wrong, expired or used');
    }
    if (user.status !== 'active') throw new AppError('auth.user_suspended', 'this user is suspended');
    const tokens = await ctx.db.transaction().execute(async (trx) => {
      const verified = user.email_verified ? user : await updateUser(trx, user.id, { email_verified: true });
      return signIn(ctx, trx, req, reply, verified, 'otp');
    });
    if (!user.email_verified) await ctx.credentials.changed(user.id);
    return tokens;
  };

  registerRoute(app, ctx, {
    method: 'POST',
    url: '/v1/auth/email/otp/verify',
    caller: 'anon',
    summary: 'Sign in with a mailed one-time code',
    tags,
    body: T.Object({ email: Email(), otp: OtpCode() }),
    trim: ['email', 'otp'],
    response: TokenResponse,
    handler: async (req, reply) => {
      const user = await findUserByEmail(ctx.db, req.body.email);
      return verifyOtp(req as FastifyRequest, reply, req.body.email, req.body.otp, user);
    },
  });

  registerRoute(app, ctx, {
    method: 'POST',
    url: '/v1/auth/resolve',
    caller: 'anon',
    summary: 'What sign-in step comes next for a login',
    tags,
    before: (req) => limitPerIp(ctx, 'resolve', req.clientIp),
    body: T.Object({ login: T.String({ minLength: 1, maxLength: 254 }) }),
    trim: ['login'],
    response: T.Object({
      exists: T.Boolean(),
      next_step: T.Union([T.Literal('password'), T.Literal('register')]),
      otp_available: T.Boolean(),
      masked_email: Nullable(T.String()),
    }),
    handler: async (req) => {
      const found = await findUserByLoginOrEmail(ctx.db, req.body.login);
      const user = found && found.status === 'active' ? found : undefined;
      const mail = !!user?.email && (await ctx.mailer.isConfigured());
      return {
        exists: !!user,
        next_step: user ? ('password' as const) : ('register' as const),
        otp_available: mail,
        masked_email: user?.email ? maskEmail(user.email) : null,
      };
    },
  });

  registerRoute(app, ctx, {
    method: 'POST',
    url: '/v1/auth/resolve/otp/send',
    caller: 'anon',
    summary: 'Mail a one-time code to the user with this login',
    tags,
    body: T.Object({ login: T.String({ minLength: 1, maxLength: 254 }), cf_turnstile_token: OptNull(T.String({ maxLength: 4096 })) }),
    trim: ['login'],
    response: OkResponse,
    handler: async (req) => {
      await requireCaptcha(ctx, req.body.cf_turnstile_token, req.clientIp);
      await limitMail(ctx, `login:${req.body.login}`);
      const user = await findUserByLoginOrEmail(ctx.db, req.body.login);
      if (user) await sendOtpMail(ctx, user);
      return { ok: true };
    },
  });

  registerRoute(app, ctx, {
    method: 'POST',
    url: '/v1/auth/resolve/otp/verify',
    caller: 'anon',
    summary: 'Sign in with a one-time code sent to a login',
    tags,
    body: T.Object({ login: T.String({ minLength: 1, maxLength: 254 }), otp: OtpCode() }),
    trim: ['login', 'otp'],
    response: TokenResponse,
    handler: async (req, reply) => {
      const user = await findUserByLoginOrEmail(ctx.db, req.body.login);
      return verifyOtp(req as FastifyRequest, reply, req.body.login, req.body.otp, user);
    },
  });
}
