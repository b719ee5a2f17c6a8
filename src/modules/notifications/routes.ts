// Notifications (api.md §19.1–19.3): the caller's inbox, whatever the current account.
import type { FastifyInstance } from 'fastify';
import type { AppContext } from '../../app-context.js';
import { notFound } from '../../http/errors.js';
import { registerRoute } from '../../http/route.js';
import { DateTime, Nullable, OkResponse, PageQuery, QueryBool, T, Uuid, badCursor, parseCursor, parseQueryBool } from '../../http/schemas.js';
import { isNotificationCursor, listNotifications, markAllRead, markRead, shapeNotification } from './store.js';

const NotificationSchema = T.Object({
  id: Uuid(),
  user_id: Uuid(),
  org_id: Nullable(Uuid()),
  type: T.String(),
  title: T.String(),
  body: T.String(),
  payload: T.Record(T.String(), T.Unknown()),
  read_at: Nullable(DateTime()),
  created_at: DateTime(),
});

export function notificationRoutes(app: FastifyInstance, ctx: AppContext): void {
  const tags = ['notifications'];

  registerRoute(app, ctx, {
    method: 'GET',
    url: '/v1/notifications',
    caller: 'user',
    summary: "The caller's notifications, newest first",
    tags,
    query: T.Object({
      ...PageQuery().properties,
      unread_only: T.Optional(QueryBool()),
      type: T.Optional(T.String({ minLength: 1, maxLength: 128 })),
    }),
    response: T.Object({ data: T.Array(NotificationSchema) }),
    handler: async (req) => {
      const userId = req.principal!.user.id;
      const before = parseCursor(req.query.before);
      const filter = { unreadOnly: parseQueryBool(req.query.unread_only, false), type: req.query.type ?? null };
      const rows = await listNotifications(ctx.db, userId, filter, { limit: req.query.limit ?? 20, before });
      if (rows.length === 0 && before && !(await isNotificationCursor(ctx.db, userId, before))) throw badCursor();
      return { data: rows.map(shapeNotification) };
    },
  });

  registerRoute(app, ctx, {
    method: 'PATCH',
    url: '/v1/notifications',
    caller: 'user',
    summary: "Mark all the caller's notifications read",
    tags,
    response: T.Object({ ok: T.Boolean(), count: T.Integer() }),
    handler: async (req) => ({ ok: true, count: await markAllRead(ctx.db, req.principal!.user.id) }),
  });

  registerRoute(app, ctx, {
    method: 'PATCH',
    url: '/v1/notifications/:notification_id',
    caller: 'user',
    ids: { notification_id: 'notifications.not_found' },
    summary: 'Mark one of the caller\'s notifications read (an already read one keeps its read_at)',
    tags,
    params: T.Object({ notification_id: T.String() }),
    response: OkResponse,
    handler: async (req) => {
      if (!(await markRead(ctx.db, req.principal!.user.id, req.params.notification_id))) throw notFound('notifications.not_found', 'notification');
      return { ok: true };
    },
  });
}
