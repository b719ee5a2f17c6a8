// Auth (api.md §3): registration, sign-in, token refresh, logout, captcha and checks.
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { sql, type Kysely } from 'kysely';
import type { AppContext } from '../../app-context.js';
import { AppError, conflict } from '../../http/errors.js';
import { registerRoute } from '../../http/route.js';
import { OkResponse, OptNull, T, Nullable } from '../../http/schemas.js';
import type { DB } from '../../db/schema.js';
import { newId, newIdAt } from '../../lib/ids.js';
import { auditedWrite } from '../audit/audited-write.js';
import { auditOrigin, recordAudit } from '../audit/store.js';
import { createPersonalAccount, findPersonalAccount, personalSlug, slugTaken } from '../accounts/store.js';
import { changeCredits } from '../credits/store.js';
import { findUsableInviteCode, recordReferral } from '../referrals/store.js';
import {
  countUsers,
  emailTaken,
  findUserByLoginOrEmail,
  insertUser,
  loginTaken,
  matchesIdentifier,
  updateUser,
  type UserRow,
} from '../users/store.js';
import { captchaConfig, requireCaptcha } from './captcha.js';
import { checkLoginFailures, clearLoginFailures, failureSubject, limitPerIp, recordLoginFailure } from './limits.js';
import { hashPassword, verifyPassword } from './passwords.js';
import { createSession, revokeSession, rotateRefreshToken } from './sessions.js';
import { signAccessToken } from './tokens.js';
import { emailRoutes, sendVerificationMail } from './email-routes.js';

export const REFRESH_COOKIE = 'arkloop_refresh_token';
export const EMAIL_RE = /^[^\s@]+@[^\s@]+\.[^\s@]+$/;
export const Email = () => T.String({ maxLength: 254, pattern: '^[^\\s@]+@[^\\s@]+\\.[^\\s@]+$' });

export const TokenResponse = T.Object({
  access_token: T.String(),
  token_type: T.Literal('bearer'),
  expires_in: T.Integer(),
  user_id: T.String({ format: 'uuid' }),
});

/**
 * Did the client's request arrive over HTTPS? Behind the gateway (which the API trusts when
 * ARKLOOP_TRUST_X_FORWARDED_FOR=1) the TLS hop ends there, and X-Forwarded-Proto tells.
 */
function isHttps(ctx: AppContext, req: FastifyRequest): boolean {
  if (req.protocol === 'https') return true;
  if (!ctx.config.trustXForwardedFor) return false;
  const proto = req.headers['x-forwarded-proto'];
  const first = (Array.isArray(proto) ? proto[0] : proto)?.split(',')[0]?.trim().toLowerCase();
  return first === 'https';
}

export function setRefreshCookie(ctx: AppContext, req: FastifyRequest, reply: FastifyReply, token: string): void {
  reply.setCookie(REFRESH_COOKIE, token, {
    httpOnly: true,
    sameSite: 'lax',
    path: '/v1/auth',
    maxAge: ctx.config.refreshTokenTtlSeconds,
    secure: isHttps(ctx, req),
  });
}

export function clearRefreshCookie(ctx: AppContext, req: FastifyRequest, reply: FastifyReply): void {
  reply.setCookie(REFRESH_COOKIE, '', { httpOnly: true, sameSite: 'lax', path: '/v1/auth', maxAge: 0, secure: isHttps(ctx, req) });
}

export async function tokenResponse(ctx: AppContext, userId: string, sessionId: string) {
  const ttl = ctx.config.accessTokenTtlSeconds;
  return {
    access_token: await signAccessToken(ctx.jwtKey, userId, sessionId, ttl),
    token_type: 'bearer' as const,
    expires_in: ttl,
    user_id: userId,
  };
}

/** Starts a session for a verified sign-in and answers with tokens and the cookie. */
export async function signIn(
  ctx: AppContext,
  db: Kysely<DB>,
  req: FastifyRequest,
  reply: FastifyReply,
  user: UserRow,
  method: 'password' | 'otp' | 'register',
) {
  const session = await createSession(db, user.id, ctx.config.refreshTokenTtlSeconds, auditOrigin(req));
  if (method !== 'register') {
    await updateUser(db, user.id, { last_login_at: new Date() });
    const personal = await findPersonalAccount(db, user.id);
    await recordAudit(db, auditOrigin(req), {
      orgId: personal?.id ?? null,
      actorUserId: user.id,
      action: 'user.login',
      targetType: 'user',
      targetId: user.id,
      metadata: { method },
    });
  }
  setRefreshCookie(ctx, req, reply, session.refreshToken);
  return tokenResponse(ctx, user.id, session.sessionId);
}

/** Audit row for a failed sign-in: actor null, the named user as target when there is one. */
export async function auditLoginFailure(ctx: AppContext, req: FastifyRequest, login: string, user: UserRow | undefined, method: string) {
  const personal = user ? await findPersonalAccount(ctx.db, user.id) : undefined;
  await recordAudit(ctx.db, auditOrigin(req), {
    orgId: personal?.id ?? null,
    actorUserId: null,
    action: 'user.login_failed',
    targetType: user ? 'user' : null,
    targetId: user?.id ?? null,
    metadata: { login, method },
  });
}

const loginTakenError = () => conflict('auth.login_taken', 'login is already taken');
const emailTakenError = () => conflict('auth.email_taken', 'email is already registered');

export function authRoutes(app: FastifyInstance, ctx: AppContext): void {
  const tags = ['auth'];

  registerRoute(app, ctx, {
    method: 'GET',
    url: '/v1/auth/captcha-config',
    caller: 'anon',
    summary: 'Captcha configuration',
    tags,
    response: T.Object({ enabled: T.Boolean(), site_key: Nullable(T.String()) }),
    handler: async () => {
      const cfg = await captchaConfig(ctx);
      return { enabled: cfg.enabled, site_key: cfg.siteKey };
    },
  });

  registerRoute(app, ctx, {
    method: 'POST',
    url: '/v1/auth/check',
    caller: 'anon',
    summary: 'Does a login or email exist?',
    tags,
    before: (req) => limitPerIp(ctx, 'check', req.clientIp),
    body: T.Object({ login: T.String({ minLength: 1, maxLength: 254 }) }),
    trim: ['login'],
    response: T.Object({ exists: T.Boolean() }),
    handler: async (req) => {
      const user = await findUserByLoginOrEmail(ctx.db, req.body.login);
      return { exists: !!user && user.status === 'active' };
    },
  });

  registerRoute(app, ctx, {
    method: 'GET',
    url: '/v1/auth/registration-mode',
    caller: 'anon',
    summary: 'Registration mode',
    tags,
    response: T.Object({ mode: T.Union([T.Literal('open'), T.Literal('invite_only'), T.Literal('disabled')]) }),
    handler: async () => {
      if ((await countUsers(ctx.db)) === 0) return { mode: 'open' as const };
      return { mode: (await ctx.settings.string('registration.mode')) as 'open' | 'invite_only' | 'disabled' };
    },
  });

  registerRoute(app, ctx, {
    method: 'POST',
    url: '/v1/auth/register',
    caller: 'anon',
    status: 201,
    summary: 'Register a user (and their personal account)',
    tags,
    body: T.Object({
      login: T.String({ pattern: '^[A-Za-z0-9][A-Za-z0-9_.-]{2,31}$' }),
      password: T.String({ minLength: 8, maxLength: 128 }),
      email: Email(),
      invite_code: OptNull(T.String({ maxLength: 64 })),
      locale: OptNull(T.String({ minLength: 1, maxLength: 16 })),
      cf_turnstile_token: OptNull(T.String({ maxLength: 4096 })),
    }),
    trim: ['login', 'email', 'invite_code', 'locale'],
    response: T.Object({ ...TokenResponse.properties, warning: Nullable(T.String()) }),
    handler: async (req, reply) => {
      const body = req.body;
      await requireCaptcha(ctx, body.cf_turnstile_token, req.clientIp);
      const firstUser = (await countUsers(ctx.db)) === 0;
      const mode = await ctx.settings.string('registration.mode');
      const code = body.invite_code ? body.invite_code : null;
      if (!firstUser) {
        if (mode === 'disabled') throw new AppError('auth.registration_disabled', 'registration is disabled');
        if (mode === 'invite_only' && !code) throw new AppError('auth.invite_code_required', 'an invite code is required');
      }
      if (code && !(await findUsableInviteCode(ctx.db, code))) {
        throw new AppError('auth.invite_code_invalid', 'invite code is unknown, inactive or used up');
      }
      if (await loginTaken(ctx.db, body.login)) throw loginTakenError();
      if (await emailTaken(ctx.db, body.email)) throw emailTakenError();

      const passwordHash = await hashPassword(body.password);
      const initialGrant = await ctx.settings.int('credit.initial_grant');
      const inviteReward = await ctx.settings.int('credit.invite_reward');
      const inviteeReward = await ctx.settings.int('credit.invitee_reward');
      const bootstrap = ctx.config.bootstrapPlatformAdmin;

      const user = await auditedWrite(
        ctx.db,
        auditOrigin(req),
        async (trx) => {
          // Registrations queue here so "the very first user" is decided exactly once.
          await sql`SELECT pg_advisory_xact_lock(7244113902)`.execute(trx);
          // Decided again under the lock: of two concurrent "first" registrations only one is.
          const isFirst = (await countUsers(trx)) === 0;
          // The personal slug is the id's first 12 hex digits (its millisecond): two users
          // registered in the same millisecond would share it, so the id moves to a free one
          // (decided under the registration lock, so it holds across processes).
          let userId = newId();
          while (await slugTaken(trx, personalSlug(userId))) userId = newIdAt(parseInt(userId.slice(0, 8) + userId.slice(9, 13), 16) + 1);
          if (!isFirst && mode === 'disabled') throw new AppError('auth.registration_disabled', 'registration is disabled');
          if (!isFirst && mode === 'invite_only' && !code) throw new AppError('auth.invite_code_required', 'an invite code is required');
          const namedByBootstrap = bootstrap ? matchesIdentifier({ id: userId, login: body.login, email: body.email }, bootstrap) : false;
          const isAdmin = namedByBootstrap || (isFirst && !bootstrap);
          const u = await insertUser(trx, {
            id: userId,
            login: body.login,
            email: body.email,
            passwordHash,
            locale: body.locale ?? 'en',
            isPlatformAdmin: isAdmin,
          });
          const personal = await createPersonalAccount(trx, u);
          if (initialGrant > 0) await changeCredits(trx, { orgId: personal.id, amount: initialGrant, referenceType: 'initial_grant' });
          if (code) {
            const invite = await findUsableInviteCode(trx, code);
            if (!invite) throw new AppError('auth.invite_code_invalid', 'invite code is unknown, inactive or used up');
            await recordReferral(trx, invite, u.id);
            const inviterAccount = await findPersonalAccount(trx, invite.user_id);
            if (inviterAccount && inviteReward > 0) {
              await changeCredits(trx, { orgId: inviterAccount.id, amount: inviteReward, referenceType: 'invite_reward', referenceId: u.id });
            }
            if (inviteeReward > 0) {
              await changeCredits(trx, { orgId: personal.id, amount: inviteeReward, referenceType: 'invitee_reward', referenceId: invite.id });
            }
          }
          return {
            result: u,
            audit: {
              orgId: personal.id,
              actorUserId: u.id,
              action: 'user.register',
              targetType: 'user',
              targetId: u.id,
              metadata: { login: u.login, invite_code_used: !!code },
            },
          };
        },
        // A registration racing another one with the same login or email.
        { unique: { users_login_lower_key: loginTakenError, users_email_lower_key: emailTakenError } },
      );

      const tokens = await signIn(ctx, ctx.db, req as FastifyRequest, reply, user, 'register');
      let warning: string | null = null;
      const verificationRequired = await ctx.settings.bool('email.verification_required');
      if (await ctx.mailer.isConfigured()) {
        await sendVerificationMail(ctx, user);
      } else if (verificationRequired) {
        warning = 'email_verification_not_sent';
      }
      return { ...tokens, warning };
    },
  });

  registerRoute(app, ctx, {
    method: 'POST',
    url: '/v1/auth/login',
    caller: 'anon',
    summary: 'Sign in with login (or email) and password',
    tags,
    body: T.Object({
      login: T.String({ minLength: 1, maxLength: 254 }),
      password: T.String({ minLength: 1, maxLength: 1024 }),
      cf_turnstile_token: OptNull(T.String({ maxLength: 4096 })),
    }),
    trim: ['login'],
    response: TokenResponse,
    handler: async (req, reply) => {
      const { login, password } = req.body;
      await requireCaptcha(ctx, req.body.cf_turnstile_token, req.clientIp);
      const user = await findUserByLoginOrEmail(ctx.db, login);
      const subject = failureSubject(login, user);
      await checkLoginFailures(ctx, subject, req.clientIp);
      const ok = await verifyPassword(user?.password_hash ?? null, password);
      if (!user || !ok) {
        await recordLoginFailure(ctx, subject, req.clientIp);
        await auditLoginFailure(ctx, req as FastifyRequest, login, user, 'password');
        throw new AppError('auth.invalid_credentials', 'invalid login or password');
      }
      if (user.status !== 'active') throw new AppError('auth.user_suspended', 'this user is suspended');
      await clearLoginFailures(ctx, subject);
      return ctx.db.transaction().execute((trx) => signIn(ctx, trx, req as FastifyRequest, reply, user, 'password'));
    },
  });

  registerRoute(app, ctx, {
    method: 'POST',
    url: '/v1/auth/refresh',
    caller: 'anon',
    summary: 'Rotate the refresh token and get a new access token',
    tags,
    body: T.Object({ refresh_token: OptNull(T.String({ maxLength: 512 })) }),
    response: TokenResponse,
    handler: async (req, reply) => {
      const token = req.cookies?.[REFRESH_COOKIE] || req.body.refresh_token || null;
      const fail = () => {
        clearRefreshCookie(ctx, req as FastifyRequest, reply);
        return new AppError('auth.refresh_token_invalid', 'refresh token is missing, expired or revoked');
      };
      if (!token) throw fail();
      const res = await rotateRefreshToken(ctx.db, token, ctx.config.refreshTokenTtlSeconds);
      if (!res.ok) {
        // Reuse revoked the whole session: its access tokens must stop working everywhere.
        if (res.reason === 'reused') await ctx.credentials.changed(res.userId);
        throw fail();
      }
      setRefreshCookie(ctx, req as FastifyRequest, reply, res.refreshToken);
      return tokenResponse(ctx, res.userId, res.sessionId);
    },
  });

  registerRoute(app, ctx, {
    method: 'POST',
    url: '/v1/auth/logout',
    caller: 'user',
    emailGateExempt: true,
    summary: 'Sign out: revoke this session and its refresh tokens',
    tags,
    response: OkResponse,
    handler: async (req, reply) => {
      const p = req.principal!;
      await auditedWrite(ctx.db, auditOrigin(req as FastifyRequest), async (trx) => {
        await revokeSession(trx, p.sessionId!);
        const personal = await findPersonalAccount(trx, p.user.id);
        return {
          result: null,
          audit: { orgId: personal?.id ?? null, actorUserId: p.user.id, action: 'user.logout', targetType: 'user', targetId: p.user.id },
        };
      });
      await ctx.credentials.changed(p.user.id);
      clearRefreshCookie(ctx, req as FastifyRequest, reply);
      return { ok: true };
    },
  });

  emailRoutes(app, ctx);
}
