// Messages (api.md §7): post a user message to a visible thread, page through a thread.
import type { FastifyInstance } from 'fastify';
import type { AppContext } from '../../app-context.js';
import { notFound, validationError } from '../../http/errors.js';
import { registerRoute } from '../../http/route.js';
import { DateTime, Nullable, PageQuery, T, Uuid, badCursor, byteLength, iso, parseCursor } from '../../http/schemas.js';
import { newId } from '../../lib/ids.js';
import { viewerOf } from '../access/visibility.js';
import { withWebhookEvents } from '../webhooks/outbox.js';
import { addUserMessage, listMessages, messagePageProblem, type MessageRow } from './store.js';

export const MAX_CONTENT_BYTES = 131072;

const MessageSchema = T.Object({
  id: Uuid(),
  org_id: Uuid(),
  thread_id: Uuid(),
  created_by_user_id: Nullable(Uuid()),
  role: T.Union([T.Literal('user'), T.Literal('assistant')]),
  content: T.String(),
  run_id: Nullable(Uuid()),
  created_at: DateTime(),
});

export function shapeMessage(m: MessageRow) {
  return {
    id: m.id,
    org_id: m.org_id,
    thread_id: m.thread_id,
    created_by_user_id: m.created_by_user_id,
    role: m.role,
    content: m.content,
    run_id: m.run_id,
    created_at: iso(m.created_at),
  };
}

const Params = T.Object({ thread_id: T.String() });

export function messageRoutes(app: FastifyInstance, ctx: AppContext): void {
  const tags = ['messages'];
  const ids = { thread_id: 'threads.not_found' } as const;

  registerRoute(app, ctx, {
    method: 'POST',
    url: '/v1/threads/:thread_id/messages',
    caller: 'user+key',
    perm: 'data.threads.manage',
    ids,
    idempotent: true,
    status: 201,
    summary: 'Post a user message to a thread (does not start a run)',
    tags,
    params: Params,
    // maxLength (characters) is a cheap first bound; the limit itself is in UTF-8 bytes.
    body: T.Object({ content: T.String({ minLength: 1, maxLength: MAX_CONTENT_BYTES }) }),
    response: MessageSchema,
    handler: async (req) => {
      const { content } = req.body;
      if (content.trim() === '') throw validationError([{ field: 'content', reason: 'must not be blank' }]);
      if (byteLength(content) > MAX_CONTENT_BYTES) {
        throw validationError([{ field: 'content', reason: `must be at most ${MAX_CONTENT_BYTES} bytes (UTF-8)` }], 400, {
          max_bytes: MAX_CONTENT_BYTES,
        });
      }
      const v = viewerOf(req);
      const row = await withWebhookEvents(
        ctx,
        v.accountId,
        ['message.created'],
        (db) => addUserMessage(db, v, req.params.thread_id, { id: newId(), content }),
        (added) => (added ? [{ type: 'message.created', data: shapeMessage(added) }] : []),
      );
      if (!row) throw notFound('threads.not_found');
      return shapeMessage(row);
    },
  });

  registerRoute(app, ctx, {
    method: 'GET',
    url: '/v1/threads/:thread_id/messages',
    caller: 'user+key',
    perm: 'data.threads.read',
    ids,
    summary: 'List messages of a thread: the newest page, oldest → newest',
    tags,
    params: Params,
    query: PageQuery(50),
    response: T.Array(MessageSchema),
    handler: async (req) => {
      const v = viewerOf(req);
      const threadId = req.params.thread_id;
      const before = parseCursor(req.query.before);
      const rows = await listMessages(ctx.db, v, threadId, { limit: req.query.limit ?? 50, before });
      if (rows.length === 0) {
        const problem = await messagePageProblem(ctx.db, v, threadId, before);
        if (problem === 'thread') throw notFound('threads.not_found');
        if (problem === 'cursor') throw badCursor();
      }
      return rows.reverse().map(shapeMessage);
    },
  });
}
