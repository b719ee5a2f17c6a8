// Invite codes and referrals for platform admins (api.md §21.14–21.18).
import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { AppContext } from '../../app-context.js';
import { notFound, validationError } from '../../http/errors.js';
import { registerRoute } from '../../http/route.js';
import { CursorPageQuery, MAX_INT4, T, Uuid, badCursor, parsePageCursor } from '../../http/schemas.js';
import { auditedWrite } from '../audit/audited-write.js';
import { auditOrigin } from '../audit/store.js';
import { findInviteCode, isInviteCodeCursor, isReferralCursor, listInviteCodes, listReferrals, referralTree, updateInviteCode } from './admin-store.js';
import { AdminInviteCodeSchema, ReferralNodeSchema, ReferralSchema, shapeAdminInviteCode, shapeReferral, shapeReferralNode } from './schemas.js';


export function adminReferralRoutes(app: FastifyInstance, ctx: AppContext): void {
  const tags = ['admin'];
  const ids = { id: 'invite_codes.not_found' } as const;

  registerRoute(app, ctx, {
    method: 'GET',
    url: '/v1/admin/invite-codes',
    caller: 'padmin',
    summary: 'List every invite code with its owner, newest first',
    tags,
    query: T.Object({ ...CursorPageQuery().properties, q: T.Optional(T.String({ maxLength: 200 })) }),
    response: T.Array(AdminInviteCodeSchema),
    handler: async (req) => {
      const cursor = parsePageCursor(req.query);
      const q = req.query.q || null;
      const rows = await listInviteCodes(ctx.db, { q, limit: req.query.limit ?? 20, cursor: cursor?.id ?? null });
      if (rows.length === 0 && cursor && !(await isInviteCodeCursor(ctx.db, cursor.id, q))) throw badCursor(cursor.field);
      return rows.map(shapeAdminInviteCode);
    },
  });

  registerRoute(app, ctx, {
    method: 'GET',
    url: '/v1/admin/invite-codes/:id',
    caller: 'padmin',
    ids,
    summary: 'One invite code with its owner',
    tags,
    params: T.Object({ id: T.String() }),
    response: AdminInviteCodeSchema,
    handler: async (req) => {
      const row = await findInviteCode(ctx.db, req.params.id);
      if (!row) throw notFound('invite_codes.not_found', 'invite code');
      return shapeAdminInviteCode(row);
    },
  });

  registerRoute(app, ctx, {
    method: 'PATCH',
    url: '/v1/admin/invite-codes/:id',
    caller: 'padmin',
    ids,
    summary: 'Change an invite code’s use limit or deactivate it',
    tags,
    params: T.Object({ id: T.String() }),
    body: T.Object({
      max_uses: T.Optional(T.Integer({ minimum: 0, maximum: MAX_INT4, description: '0 = unlimited' })),
      is_active: T.Optional(T.Boolean()),
    }),
    response: AdminInviteCodeSchema,
    handler: async (req) => {
      const { max_uses, is_active } = req.body;
      if (max_uses === undefined && is_active === undefined) throw validationError('at least one of max_uses, is_active is required');
      const row = await auditedWrite(ctx.db, auditOrigin(req as FastifyRequest), async (trx) => {
        const before = await findInviteCode(trx, req.params.id, true);
        if (!before) throw notFound('invite_codes.not_found', 'invite code');
        const after = { ...before, max_uses: max_uses ?? before.max_uses, is_active: is_active ?? before.is_active };
        if (after.max_uses === before.max_uses && after.is_active === before.is_active) return { result: before, audit: null };
        await updateInviteCode(trx, before.id, { max_uses: after.max_uses, is_active: after.is_active });
        const view = (c: typeof before) => ({ max_uses: c.max_uses, is_active: c.is_active });
        return {
          result: after,
          audit: {
            orgId: null,
            actorUserId: req.principal!.user.id,
            action: 'invite_code.update',
            targetType: 'invite_code',
            targetId: before.id,
            metadata: { owner_user_id: before.user_id },
            before: view(before),
            after: view(after),
          },
        };
      });
      return shapeAdminInviteCode(row);
    },
  });

  registerRoute(app, ctx, {
    method: 'GET',
    url: '/v1/admin/referrals',
    caller: 'padmin',
    summary: 'List referrals (of one inviter, when given), newest first',
    tags,
    query: T.Object({ ...CursorPageQuery().properties, inviter_user_id: T.Optional(Uuid()) }),
    response: T.Array(ReferralSchema),
    handler: async (req) => {
      const cursor = parsePageCursor(req.query);
      const inviterUserId = req.query.inviter_user_id?.toLowerCase() ?? null;
      const rows = await listReferrals(ctx.db, { inviterUserId, limit: req.query.limit ?? 20, cursor: cursor?.id ?? null });
      if (rows.length === 0 && cursor && !(await isReferralCursor(ctx.db, cursor.id, inviterUserId))) throw badCursor(cursor.field);
      return rows.map(shapeReferral);
    },
  });

  registerRoute(app, ctx, {
    method: 'GET',
    url: '/v1/admin/referrals/tree',
    caller: 'padmin',
    summary: 'A user and everyone they invited, recursively (breadth-first, 10 levels)',
    tags,
    query: T.Object({ user_id: Uuid() }),
    response: T.Array(ReferralNodeSchema),
    handler: async (req) => {
      const nodes = await referralTree(ctx.db, req.query.user_id.toLowerCase());
      if (nodes.length === 0) throw notFound('users.not_found', 'user');
      return nodes.map(shapeReferralNode);
    },
  });
}
