// Me (api.md §4): the caller's profile in the current account, usage, credits, invite code,
// redemption and feature flags.
import { entitlementInt } from '../entitlements/resolve.js';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { AppContext } from '../../app-context.js';
import type { CurrentAccount, Principal } from '../../http/request.js';
import { fieldError, validationError } from '../../http/errors.js';
import { registerRoute } from '../../http/route.js';
import { DateTime, Nullable, PageQuery, T, Uuid, badCursor, iso, parseCursor } from '../../http/schemas.js';
import { permissionList } from '../accounts/permissions.js';
import { findPersonalAccount } from '../accounts/store.js';
import { auditedWrite } from '../audit/audited-write.js';
import { auditOrigin } from '../audit/store.js';
import { CreditsViewSchema, creditsView } from '../credits/view.js';
import { currentInviteCode, resetInviteCode, shapeInviteCode } from '../referrals/store.js';
import { InviteCodeSchema } from '../referrals/schemas.js';
import { findUserById, updateUser, type UserRow } from '../users/store.js';
import { redeemCode } from './redeem.js';
import { evaluateFlagsForAccount } from '../feature-flags/evaluate.js';
import { UsageQuery, DailyQuery, usageByModel, usageDaily, usageSummary, UsageSummarySchema, UsageDaySchema, UsageModelSchema, monthOf, dayRange } from './usage.js';

export const MeSchema = T.Object({
  id: Uuid(),
  login: T.String(),
  username: T.String(),
  email: Nullable(T.String()),
  email_verified: T.Boolean(),
  email_verification_required: T.Boolean(),
  locale: T.String(),
  timezone: Nullable(T.String()),
  avatar_url: Nullable(T.String()),
  is_platform_admin: T.Boolean(),
  created_at: DateTime(),
  org_id: Uuid(),
  org_name: T.String(),
  org_slug: T.String(),
  org_type: T.Union([T.Literal('personal'), T.Literal('workspace')]),
  role: T.Union([T.Literal('owner'), T.Literal('admin'), T.Literal('member')]),
  permissions: T.Array(T.String()),
});

/**
 * The IANA name to store, or null when the zone is unknown. Names are matched
 * case-insensitively and stored in their canonical spelling ("europe/paris" → "Europe/Paris");
 * a valid alias ("Asia/Kolkata", "US/Pacific") is kept as sent.
 */
export function timezoneName(tz: string): string | null {
  let resolved: string;
  try {
    resolved = new Intl.DateTimeFormat('en-US', { timeZone: tz }).resolvedOptions().timeZone;
  } catch {
    return null;
  }
  return resolved.toLowerCase() === tz.toLowerCase() ? resolved : tz;
}

export async function shapeMe(ctx: AppContext, user: UserRow, account: CurrentAccount) {
  return {
    id: user.id,
    login: user.login,
    username: user.username,
    email: user.email,
    email_verified: user.email_verified,
    email_verification_required: await ctx.settings.bool('email.verification_required'),
    locale: user.locale,
    timezone: user.timezone,
    avatar_url: user.avatar_url,
    is_platform_admin: user.is_platform_admin,
    created_at: user.created_at.toISOString(),
    org_id: account.id,
    org_name: account.name,
    org_slug: account.slug,
    org_type: account.type,
    role: account.role,
    permissions: permissionList(account.points, user.is_platform_admin),
  };
}

export function meRoutes(app: FastifyInstance, ctx: AppContext): void {
  const tags = ['me'];

  registerRoute(app, ctx, {
    method: 'GET',
    url: '/v1/me',
    caller: 'user',
    emailGateExempt: true,
    summary: 'The caller and their role in the current account',
    tags,
    response: MeSchema,
    handler: async (req) => {
      const user = await findUserById(ctx.db, req.principal!.user.id);
      return shapeMe(ctx, user!, req.account!);
    },
  });

  registerRoute(app, ctx, {
    method: 'PATCH',
    url: '/v1/me',
    caller: 'user',
    emailGateExempt: true,
    summary: 'Update the caller’s profile',
    tags,
    body: T.Object({
      username: T.Optional(T.String({ minLength: 1, maxLength: 64 })),
      locale: T.Optional(T.String({ minLength: 1, maxLength: 16 })),
      timezone: T.Optional(Nullable(T.String({ minLength: 1, maxLength: 64 }))),
      avatar_url: T.Optional(Nullable(T.String({ maxLength: 2048, pattern: '^https?://[^\\s]+$' }))),
    }),
    trim: ['username', 'locale', 'timezone'],
    response: MeSchema,
    handler: async (req) => {
      const b = req.body;
      const patch: Partial<Pick<UserRow, 'username' | 'locale' | 'timezone' | 'avatar_url'>> = {};
      if (b.username !== undefined) patch.username = b.username;
      if (b.locale !== undefined) patch.locale = b.locale;
      if (b.timezone !== undefined) {
        const name = b.timezone === null ? null : timezoneName(b.timezone);
        if (b.timezone !== null && name === null) throw fieldError('timezone', 'must be an IANA time zone name');
        patch.timezone = name;
      }
      if (b.avatar_url !== undefined) {
        if (b.avatar_url !== null) {
          try {
            new URL(b.avatar_url);
          } catch {
            throw fieldError('avatar_url', 'must be an absolute http(s) URL');
          }
        }
        patch.avatar_url = b.avatar_url;
      }
      if (Object.keys(patch).length === 0) throw validationError('at least one of username, locale, timezone, avatar_url is required');
      const userId = req.principal!.user.id;
      const updated = await auditedWrite(ctx.db, auditOrigin(req as FastifyRequest), async (trx) => {
        const before = await findUserById(trx, userId);
        const after = await updateUser(trx, userId, patch);
        const pick = (u: UserRow) => ({ username: u.username, locale: u.locale, timezone: u.timezone, avatar_url: u.avatar_url });
        const personal = req.account!.type === 'personal' && req.account!.isMember ? req.account!.id : null;
        return {
          result: after,
          audit: {
            orgId: personal ?? (await personalAccountId(ctx, trx, userId)),
            actorUserId: userId,
            action: 'user.update',
            targetType: 'user',
            targetId: userId,
            before: pick(before!),
            after: pick(after),
          },
        };
      });
      await ctx.credentials.changed(userId);
      return shapeMe(ctx, updated, req.account!);
    },
  });

  registerRoute(app, ctx, {
    method: 'GET',
    url: '/v1/me/usage',
    caller: 'user',
    summary: 'The caller’s usage in the current account for a month',
    tags,
    query: UsageQuery,
    response: UsageSummarySchema,
    handler: async (req) => {
      const { year, month } = monthOf(req.query);
      return usageSummary(ctx.db, req.account!.id, req.principal!.user.id, year, month);
    },
  });

  registerRoute(app, ctx, {
    method: 'GET',
    url: '/v1/me/usage/daily',
    caller: 'user',
    summary: 'The caller’s usage per day',
    tags,
    query: DailyQuery,
    response: T.Array(UsageDaySchema),
    handler: async (req) => {
      const range = dayRange(req.query);
      return usageDaily(ctx.db, req.account!.id, req.principal!.user.id, range.start, range.end);
    },
  });

  registerRoute(app, ctx, {
    method: 'GET',
    url: '/v1/me/usage/by-model',
    caller: 'user',
    summary: 'The caller’s usage per model for a month',
    tags,
    query: UsageQuery,
    response: T.Array(UsageModelSchema),
    handler: async (req) => {
      const { year, month } = monthOf(req.query);
      return usageByModel(ctx.db, req.account!.id, req.principal!.user.id, year, month);
    },
  });

  registerRoute(app, ctx, {
    method: 'GET',
    url: '/v1/me/credits',
    caller: 'user',
    summary: 'Credit balance and transactions of the current account',
    tags,
    query: PageQuery(),
    response: CreditsViewSchema,
    handler: async (req) => creditsView(ctx.db, req.account!.id, req.query.limit ?? 20, parseCursor(req.query.before)),
  });

  registerRoute(app, ctx, {
    method: 'GET',
    url: '/v1/me/invite-code',
    caller: 'user',
    summary: 'The caller’s invite code (created on first call)',
    tags,
    response: InviteCodeSchema,
    handler: async (req) => {
      const maxUses = await entitlementInt(ctx, req.account!.id, 'invite.default_max_uses');
      const code = await ctx.db.transaction().execute((trx) => currentInviteCode(trx, req.principal!.user.id, maxUses));
      return shapeInviteCode(code);
    },
  });

  registerRoute(app, ctx, {
    method: 'POST',
    url: '/v1/me/invite-code/reset',
    caller: 'user',
    summary: 'Replace the caller’s invite code with a fresh one',
    tags,
    response: InviteCodeSchema,
    handler: async (req) => {
      const userId = req.principal!.user.id;
      const maxUses = await entitlementInt(ctx, req.account!.id, 'invite.default_max_uses');
      const maxActive = await entitlementInt(ctx, req.account!.id, 'invite.max_codes_per_user');
      const code = await auditedWrite(ctx.db, auditOrigin(req as FastifyRequest), async (trx) => {
        const c = await resetInviteCode(trx, userId, maxUses, maxActive);
        return {
          result: c,
          audit: {
            orgId: await personalAccountId(ctx, trx, userId),
            actorUserId: userId,
            action: 'invite_code.reset',
            targetType: 'invite_code',
            targetId: c.id,
          },
        };
      });
      return shapeInviteCode(code);
    },
  });

  registerRoute(app, ctx, {
    method: 'POST',
    url: '/v1/me/redeem',
    caller: 'user',
    summary: 'Redeem a code for credits in the current account',
    tags,
    body: T.Object({ code: T.String({ minLength: 1, maxLength: 64 }) }),
    trim: ['code'],
    response: T.Object({ code: T.String(), type: T.String(), value: T.String(), balance: T.Integer() }),
    handler: async (req) => redeemCode(ctx, req as FastifyRequest, req.principal as Principal, req.account!, req.body.code),
  });

  registerRoute(app, ctx, {
    method: 'GET',
    url: '/v1/me/feature-flags',
    caller: 'user',
    summary: 'Every feature flag evaluated for the current account',
    tags,
    response: T.Object({
      data: T.Array(
        T.Object({
          key: T.String(),
          enabled: T.Boolean(),
          source: T.Union([T.Literal('env'), T.Literal('override'), T.Literal('default')]),
        }),
      ),
    }),
    handler: async (req) => ({ data: await evaluateFlagsForAccount(ctx, req.account!.id) }),
  });
}

async function personalAccountId(_ctx: AppContext, db: AppContext['db'], userId: string): Promise<string | null> {
  return (await findPersonalAccount(db, userId))?.id ?? null;
}
