// Redemption codes for platform admins (api.md §21.19–21.21): create a batch, list, (de)activate.
// Users redeem them through POST /v1/me/redeem (me/redeem.ts).
import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { AppContext } from '../../app-context.js';
import { fieldError, notFound } from '../../http/errors.js';
import { registerRoute } from '../../http/route.js';
import { CursorPageQuery, MAX_INT4, DateTime, Nullable, OptNull, T, Uuid, badCursor, iso, parsePageCursor } from '../../http/schemas.js';
import { newId } from '../../lib/ids.js';
import { auditedWrite } from '../audit/audited-write.js';
import { auditOrigin } from '../audit/store.js';
import {
  findRedemptionCode,
  insertRedemptionCodes,
  isRedemptionCodeCursor,
  listRedemptionCodes,
  setRedemptionCodeActive,
  type RedemptionCodeRow,
} from './store.js';

const CodeType = T.Literal('credits');
const BatchId = T.String({ minLength: 1, maxLength: 64 });
const MAX_VALUE = 1_000_000_000;

const RedemptionCodeSchema = T.Object({
  id: Uuid(),
  code: T.String(),
  type: T.String(),
  value: T.String(),
  max_uses: T.Integer(),
  use_count: T.Integer(),
  is_active: T.Boolean(),
  expires_at: Nullable(DateTime()),
  batch_id: Nullable(T.String()),
  created_by_user_id: Nullable(Uuid()),
  created_at: DateTime(),
});

function shapeRedemptionCode(c: RedemptionCodeRow) {
  return {
    id: c.id,
    code: c.code,
    type: c.type,
    value: c.value,
    max_uses: c.max_uses,
    use_count: c.use_count,
    is_active: c.is_active,
    expires_at: iso(c.expires_at),
    batch_id: c.batch_id,
    created_by_user_id: c.created_by_user_id,
    created_at: iso(c.created_at),
  };
}

export function redemptionCodeRoutes(app: FastifyInstance, ctx: AppContext): void {
  const tags = ['admin'];

  registerRoute(app, ctx, {
    method: 'POST',
    url: '/v1/admin/redemption-codes/batch',
    caller: 'padmin',
    status: 201,
    summary: 'Create a batch of redemption codes',
    tags,
    body: T.Object({
      count: T.Integer({ minimum: 1, maximum: 1000 }),
      type: CodeType,
      // An integer 1–10⁹ written without sign, spaces or leading zeros.
      value: T.String({ pattern: '^[1-9][0-9]{0,9}$' }),
      max_uses: OptNull(T.Integer({ minimum: 1, maximum: MAX_INT4 })),
      expires_at: OptNull(DateTime()),
      batch_id: OptNull(BatchId),
    }),
    trim: ['batch_id'],
    response: T.Object({ batch_id: T.String(), count: T.Integer(), codes: T.Array(RedemptionCodeSchema) }),
    handler: async (req) => {
      const b = req.body;
      if (Number(b.value) > MAX_VALUE) throw fieldError('value', `must be an integer from 1 to ${MAX_VALUE}`);
      const expiresAt = b.expires_at ? new Date(b.expires_at) : null;
      if (expiresAt && expiresAt.getTime() <= ctx.clock.nowMs()) throw fieldError('expires_at', 'must be in the future');
      const batchId = b.batch_id ?? newId();
      const actorUserId = req.principal!.user.id;
      const codes = await auditedWrite(ctx.db, auditOrigin(req as FastifyRequest), async (trx) => {
        const rows = await insertRedemptionCodes(trx, {
          count: b.count,
          type: b.type,
          value: b.value,
          maxUses: b.max_uses ?? 1,
          expiresAt,
          batchId,
          createdByUserId: actorUserId,
        });
        return {
          result: rows,
          audit: {
            orgId: null,
            actorUserId,
            action: 'redemption_code.batch_create',
            targetType: 'redemption_code_batch',
            targetId: batchId,
            metadata: { batch_id: batchId, count: rows.length, type: b.type, value: b.value, max_uses: b.max_uses ?? 1, expires_at: iso(expiresAt) },
          },
        };
      });
      return { batch_id: batchId, count: codes.length, codes: codes.map(shapeRedemptionCode) };
    },
  });

  registerRoute(app, ctx, {
    method: 'GET',
    url: '/v1/admin/redemption-codes',
    caller: 'padmin',
    summary: 'List redemption codes, newest first',
    tags,
    query: T.Object({
      ...CursorPageQuery().properties,
      q: T.Optional(T.String({ maxLength: 200 })),
      type: T.Optional(CodeType),
      batch_id: T.Optional(BatchId),
    }),
    response: T.Array(RedemptionCodeSchema),
    handler: async (req) => {
      const cursor = parsePageCursor(req.query);
      const filter = { q: req.query.q || null, type: req.query.type ?? null, batchId: req.query.batch_id ?? null };
      const rows = await listRedemptionCodes(ctx.db, { ...filter, limit: req.query.limit ?? 20, cursor: cursor?.id ?? null });
      if (rows.length === 0 && cursor && !(await isRedemptionCodeCursor(ctx.db, cursor.id, filter))) throw badCursor(cursor.field);
      return rows.map(shapeRedemptionCode);
    },
  });

  registerRoute(app, ctx, {
    method: 'PATCH',
    url: '/v1/admin/redemption-codes/:id',
    caller: 'padmin',
    ids: { id: 'redemption_codes.not_found' },
    summary: 'Activate or deactivate a redemption code',
    tags,
    params: T.Object({ id: T.String() }),
    body: T.Object({ is_active: T.Boolean() }),
    response: RedemptionCodeSchema,
    handler: async (req) => {
      const row = await auditedWrite(ctx.db, auditOrigin(req as FastifyRequest), async (trx) => {
        const before = await findRedemptionCode(trx, req.params.id, true);
        if (!before) throw notFound('redemption_codes.not_found', 'redemption code');
        if (before.is_active === req.body.is_active) return { result: before, audit: null };
        const after = await setRedemptionCodeActive(trx, before.id, req.body.is_active);
        return {
          result: after,
          audit: {
            orgId: null,
            actorUserId: req.principal!.user.id,
            action: 'redemption_code.update',
            targetType: 'redemption_code',
            targetId: after.id,
            before: { is_active: before.is_active },
            after: { is_active: after.is_active },
          },
        };
      });
      return shapeRedemptionCode(row);
    },
  });
}
