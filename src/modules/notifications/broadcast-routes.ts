// Admin broadcasts (api.md §19.4–19.7): create (202; the fan-out is a job written in the same
// transaction), list, get, delete (withdraws its notifications).
import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { AppContext } from '../../app-context.js';
import { fieldError, notFound } from '../../http/errors.js';
import { registerRoute } from '../../http/route.js';
import { CursorPageQuery, DateTime, Nullable, OptNull, T, Uuid, badCursor, byteLength, parsePageCursor } from '../../http/schemas.js';
import { isUuid } from '../../lib/ids.js';
import { auditedWrite } from '../audit/audited-write.js';
import { auditOrigin, recordAudit } from '../audit/store.js';
import { findAccount } from '../accounts/store.js';
import { BROADCAST_FANOUT_JOB, deleteBroadcast, findBroadcast, insertBroadcast, listBroadcasts, shapeBroadcast } from './broadcasts-store.js';

const PAYLOAD_MAX_BYTES = 16 * 1024;

const BroadcastSchema = T.Object({
  id: Uuid(),
  type: T.String(),
  title: T.String(),
  body: T.String(),
  target_type: T.Union([T.Literal('all'), T.Literal('org')]),
  target_id: Nullable(Uuid()),
  payload: T.Record(T.String(), T.Unknown()),
  status: T.Union([T.Literal('pending'), T.Literal('sending'), T.Literal('sent'), T.Literal('failed')]),
  sent_count: T.Integer(),
  created_by: Uuid(),
  created_at: DateTime(),
  completed_at: Nullable(DateTime()),
});

export function broadcastRoutes(app: FastifyInstance, ctx: AppContext): void {
  const tags = ['admin'];

  registerRoute(app, ctx, {
    method: 'POST',
    url: '/v1/admin/notifications/broadcasts',
    caller: 'padmin',
    status: 202,
    summary: 'Broadcast a notification to every active user or to the members of one account',
    tags,
    body: T.Object({
      type: T.String({ pattern: '^[a-z0-9][a-z0-9._-]{0,63}$' }),
      title: T.String({ minLength: 1, maxLength: 200 }),
      body: T.String({ minLength: 1, maxLength: 10_000, pattern: '\\S' }),
      target: T.String({ maxLength: 100 }),
      payload: OptNull(T.Record(T.String(), T.Unknown())),
    }),
    trim: ['title'],
    response: BroadcastSchema,
    handler: async (req) => {
      const b = req.body;
      if (b.target !== 'all' && !isUuid(b.target)) throw fieldError('target', 'must be "all" or an account id');
      const payload = b.payload ?? {};
      if (byteLength(JSON.stringify(payload)) > PAYLOAD_MAX_BYTES) throw fieldError('payload', `must be at most ${PAYLOAD_MAX_BYTES} bytes as JSON`);
      const targetId = b.target === 'all' ? null : b.target.toLowerCase();
      if (targetId && !(await findAccount(ctx.db, targetId))) throw notFound('accounts.not_found', 'account');
      const actorUserId = req.principal!.user.id;
      const row = await ctx.engine.transaction(ctx.db, async (tx) => {
        const created = await insertBroadcast(tx.db, { type: b.type, title: b.title, body: b.body, targetId, payload, createdBy: actorUserId });
        await tx.enqueue({ type: BROADCAST_FANOUT_JOB, payload: { v: 1, broadcast_id: created.id } });
        await recordAudit(tx.db, auditOrigin(req as FastifyRequest), {
          orgId: null,
          actorUserId,
          action: 'broadcast.create',
          targetType: 'broadcast',
          targetId: created.id,
          metadata: { type: created.type, target_type: created.target_type, target_id: created.target_id },
          after: shapeBroadcast(created),
        });
        return created;
      });
      return shapeBroadcast(row);
    },
  });

  registerRoute(app, ctx, {
    method: 'GET',
    url: '/v1/admin/notifications/broadcasts',
    caller: 'padmin',
    summary: 'List broadcasts, newest first',
    tags,
    query: CursorPageQuery(),
    response: T.Object({ data: T.Array(BroadcastSchema), next_cursor: Nullable(T.String()) }),
    handler: async (req) => {
      const cursor = parsePageCursor(req.query);
      const limit = req.query.limit ?? 20;
      const rows = await listBroadcasts(ctx.db, { limit, cursor: cursor?.id ?? null });
      if (rows.length === 0 && cursor && !(await findBroadcast(ctx.db, cursor.id, true))) throw badCursor(cursor.field);
      const page = rows.slice(0, limit);
      return { data: page.map(shapeBroadcast), next_cursor: rows.length > limit ? page[page.length - 1].id : null };
    },
  });

  registerRoute(app, ctx, {
    method: 'GET',
    url: '/v1/admin/notifications/broadcasts/:broadcast_id',
    caller: 'padmin',
    ids: { broadcast_id: 'broadcasts.not_found' },
    summary: 'Get a broadcast and its progress',
    tags,
    params: T.Object({ broadcast_id: T.String() }),
    response: BroadcastSchema,
    handler: async (req) => {
      const row = await findBroadcast(ctx.db, req.params.broadcast_id);
      if (!row) throw notFound('broadcasts.not_found', 'broadcast');
      return shapeBroadcast(row);
    },
  });

  registerRoute(app, ctx, {
    method: 'DELETE',
    url: '/v1/admin/notifications/broadcasts/:broadcast_id',
    caller: 'padmin',
    ids: { broadcast_id: 'broadcasts.not_found' },
    status: 204,
    summary: 'Delete a broadcast and withdraw the notifications it created',
    tags,
    params: T.Object({ broadcast_id: T.String() }),
    handler: async (req) => {
      await auditedWrite(ctx.db, auditOrigin(req as FastifyRequest), async (trx) => {
        const before = await deleteBroadcast(trx, req.params.broadcast_id);
        if (!before) throw notFound('broadcasts.not_found', 'broadcast');
        return {
          result: null,
          audit: {
            orgId: null,
            actorUserId: req.principal!.user.id,
            action: 'broadcast.delete',
            targetType: 'broadcast',
            targetId: before.id,
            metadata: { type: before.type, target_type: before.target_type, target_id: before.target_id, sent_count: before.sent_count },
            before: shapeBroadcast(before),
          },
        };
      });
      return null;
    },
  });
}
