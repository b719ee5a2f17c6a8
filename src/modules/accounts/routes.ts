// Accounts and their members (api.md §11.1–§11.8). Paths with {account_id} act in that
// account (registerRoute's accountFrom: 'path' answers 404 accounts.not_found for non-members).
import type { FastifyInstance } from 'fastify';
import type { AppContext } from '../../app-context.js';
import { AppError, conflict, forbidden, notFound, validationError } from '../../http/errors.js';
import { registerRoute } from '../../http/route.js';
import { T } from '../../http/schemas.js';
import { auditedWrite } from '../audit/audited-write.js';
import { changeCredits } from '../credits/store.js';
import { DailyQuery, UsageDaySchema, UsageModelSchema, UsageQuery, UsageSummarySchema, dayRange, monthOf, usageByModel, usageDaily, usageSummary } from '../me/usage.js';
import { callerId, origin } from './acting.js';
import { actingMeta } from '../access/acting.js';
import { findMember, listMembers, lockOwnerCount, removeMember, setMemberRole, shapeMember } from './members-store.js';
import { AccountMemberSchema, AccountRoleSchema, AccountSchema, AccountWithRoleSchema, Name, Slug } from './schemas.js';
import {
  createWorkspaceAccount,
  findAccount,
  isPersonalSlugForm,
  listUserAccounts,
  shapeAccount,
  slugTaken,
  updateAccount,
} from './store.js';

const MemberParams = T.Object({ account_id: T.String(), user_id: T.String() });
const slugTakenError = () => conflict('accounts.slug_taken', 'slug is already taken');
const personalAccountError = () => new AppError('accounts.personal_account', 'a personal account has exactly one member');

export function accountRoutes(app: FastifyInstance, ctx: AppContext): void {
  const tags = ['accounts'];

  registerRoute(app, ctx, {
    method: 'POST',
    url: '/v1/accounts',
    caller: 'user',
    status: 201,
    summary: 'Create a workspace account (the caller becomes its owner)',
    tags,
    body: T.Object({ slug: Slug(), name: Name() }),
    trim: ['name'],
    response: AccountSchema,
    handler: async (req) => {
      const { slug, name } = req.body;
      if (isPersonalSlugForm(slug) || (await slugTaken(ctx.db, slug))) throw slugTakenError();
      const grant = await ctx.settings.int('credit.initial_grant');
      const userId = callerId(req);
      const account = await auditedWrite(
        ctx.db,
        origin(req),
        async (trx) => {
          const a = await createWorkspaceAccount(trx, { slug, name, ownerUserId: userId });
          if (grant > 0) await changeCredits(trx, { orgId: a.id, amount: grant, referenceType: 'initial_grant' });
          return {
            result: a,
            audit: {
              orgId: a.id,
              actorUserId: userId,
              action: 'account.create',
              targetType: 'account',
              targetId: a.id,
              metadata: { slug, name },
              after: shapeAccount(a),
            },
          };
        },
        { unique: slugTakenError },
      );
      await ctx.credentials.changed(userId);
      return shapeAccount(account);
    },
  });

  registerRoute(app, ctx, {
    method: 'GET',
    url: '/v1/accounts/me',
    caller: 'user',
    summary: 'The caller’s accounts with their role (personal first, then by name)',
    tags,
    response: T.Array(AccountWithRoleSchema),
    handler: async (req) => {
      const rows = await listUserAccounts(ctx.db, callerId(req));
      return rows.map((r) => shapeAccount(r, r.role));
    },
  });

  registerRoute(app, ctx, {
    method: 'GET',
    url: '/v1/accounts/:account_id',
    caller: 'user',
    accountFrom: 'path',
    summary: 'One account with the caller’s role',
    tags,
    response: AccountWithRoleSchema,
    handler: async (req) => {
      const account = await findAccount(ctx.db, req.account!.id);
      if (!account) throw notFound('accounts.not_found', 'account');
      return shapeAccount(account, req.account!.role);
    },
  });

  registerRoute(app, ctx, {
    method: 'PATCH',
    url: '/v1/accounts/:account_id',
    caller: 'user',
    accountFrom: 'path',
    perm: 'account.manage',
    summary: 'Rename an account or change its slug',
    tags,
    body: T.Object({ name: T.Optional(Name()), slug: T.Optional(Slug()) }),
    trim: ['name'],
    response: AccountSchema,
    handler: async (req) => {
      const { name, slug } = req.body;
      if (name === undefined && slug === undefined) {
        throw validationError([{ field: 'body', reason: 'at least one of name, slug is required' }]);
      }
      const accountId = req.account!.id;
      const updated = await auditedWrite(
        ctx.db,
        origin(req),
        async (trx) => {
          const before = await findAccount(trx, accountId);
          if (!before) throw notFound('accounts.not_found', 'account');
          if (slug !== undefined && slug !== before.slug && (isPersonalSlugForm(slug) || (await slugTaken(trx, slug, accountId)))) {
            throw slugTakenError();
          }
          const after = await updateAccount(trx, accountId, { ...(name !== undefined ? { name } : {}), ...(slug !== undefined ? { slug } : {}) });
          return {
            result: after,
            audit: {
              orgId: accountId,
              actorUserId: callerId(req),
              action: 'account.update',
              targetType: 'account',
              targetId: accountId,
              metadata: actingMeta(req),
              before: shapeAccount(before),
              after: shapeAccount(after),
            },
          };
        },
        { unique: slugTakenError },
      );
      // Resolved credentials carry the account's name and slug.
      await ctx.credentials.changed('*');
      return shapeAccount(updated);
    },
  });

  registerRoute(app, ctx, {
    method: 'GET',
    url: '/v1/accounts/:account_id/members',
    caller: 'user',
    accountFrom: 'path',
    perm: 'account.members.read',
    summary: 'Members of an account, oldest first',
    tags,
    response: T.Array(AccountMemberSchema),
    handler: async (req) => (await listMembers(ctx.db, req.account!.id)).map(shapeMember),
  });

  registerRoute(app, ctx, {
    method: 'PATCH',
    url: '/v1/accounts/:account_id/members/:user_id',
    caller: 'user',
    accountFrom: 'path',
    perm: 'account.members.manage',
    ids: { user_id: 'account_members.not_found' },
    params: MemberParams,
    summary: 'Change a member’s role',
    tags,
    body: T.Object({ role: AccountRoleSchema }),
    response: AccountMemberSchema,
    handler: async (req) => {
      const account = req.account!;
      if (account.type === 'personal') throw personalAccountError();
      const userId = req.params.user_id;
      const role = req.body.role;
      const member = await auditedWrite(ctx.db, origin(req), async (trx) => {
        const before = await findMember(trx, account.id, userId);
        if (!before) throw notFound('account_members.not_found', 'account member');
        if ((before.role === 'owner' || role === 'owner') && before.role !== role && account.role !== 'owner') {
          throw forbidden('only an owner may grant or remove the owner role');
        }
        if (before.role === 'owner' && role !== 'owner' && (await lockOwnerCount(trx, account.id)) <= 1) {
          throw conflict('accounts.last_owner', 'the account would be left without an owner');
        }
        await setMemberRole(trx, account.id, userId, role);
        const after = { ...before, role };
        return {
          result: after,
          audit: {
            orgId: account.id,
            actorUserId: callerId(req),
            action: 'account.member_update',
            targetType: 'account',
            targetId: account.id,
            metadata: { user_id: userId, role, ...actingMeta(req) },
            before: shapeMember(before),
            after: shapeMember(after),
          },
        };
      });
      await ctx.credentials.changed(userId);
      return shapeMember(member);
    },
  });

  registerRoute(app, ctx, {
    method: 'DELETE',
    url: '/v1/accounts/:account_id/members/:user_id',
    caller: 'user',
    accountFrom: 'path',
    // A member may always leave; removing someone else needs the manage point.
    perm: (req) => (String((req.params as Record<string, string>).user_id).toLowerCase() === req.principal?.user.id ? null : 'account.members.manage'),
    ids: { user_id: 'account_members.not_found' },
    params: MemberParams,
    status: 204,
    summary: 'Remove a member (or leave the account)',
    tags,
    handler: async (req) => {
      const account = req.account!;
      if (account.type === 'personal') throw personalAccountError();
      const userId = req.params.user_id;
      await auditedWrite(ctx.db, origin(req), async (trx) => {
        const before = await findMember(trx, account.id, userId);
        if (!before) throw notFound('account_members.not_found', 'account member');
        if (before.role === 'owner' && account.role !== 'owner') throw forbidden('only an owner may remove an owner');
        if (before.role === 'owner' && (await lockOwnerCount(trx, account.id)) <= 1) {
          throw conflict('accounts.last_owner', 'the account would be left without an owner');
        }
        await removeMember(trx, account.id, userId);
        return {
          result: null,
          audit: {
            orgId: account.id,
            actorUserId: callerId(req),
            action: 'account.member_remove',
            targetType: 'account',
            targetId: account.id,
            metadata: { user_id: userId, self: userId === callerId(req), ...actingMeta(req) },
            before: shapeMember(before),
          },
        };
      });
      await ctx.credentials.changed(userId);
      return null;
    },
  });

  registerRoute(app, ctx, {
    method: 'GET',
    url: '/v1/accounts/:account_id/usage',
    caller: 'user',
    accountFrom: 'path',
    perm: 'account.usage.read',
    summary: 'Usage of the whole account for a month',
    tags,
    query: UsageQuery,
    response: UsageSummarySchema,
    handler: async (req) => {
      const { year, month } = monthOf(req.query);
      return usageSummary(ctx.db, req.account!.id, null, year, month);
    },
  });

  registerRoute(app, ctx, {
    method: 'GET',
    url: '/v1/accounts/:account_id/usage/daily',
    caller: 'user',
    accountFrom: 'path',
    perm: 'account.usage.read',
    summary: 'Usage of the whole account per day',
    tags,
    query: DailyQuery,
    response: T.Array(UsageDaySchema),
    handler: async (req) => {
      const range = dayRange(req.query);
      return usageDaily(ctx.db, req.account!.id, null, range.start, range.end);
    },
  });

  registerRoute(app, ctx, {
    method: 'GET',
    url: '/v1/accounts/:account_id/usage/by-model',
    caller: 'user',
    accountFrom: 'path',
    perm: 'account.usage.read',
    summary: 'Usage of the whole account per model for a month',
    tags,
    query: UsageQuery,
    response: T.Array(UsageModelSchema),
    handler: async (req) => {
      const { year, month } = monthOf(req.query);
      return usageByModel(ctx.db, req.account!.id, null, year, month);
    },
  });
}
