// Threads (api.md §6): create, list, search, starred, read, edit, delete, star.
import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { AppContext } from '../../app-context.js';
import { forbidden, notFound, validationError } from '../../http/errors.js';
import { registerRoute } from '../../http/route.js';
import { PageQuery, T, badCursor, parseCursor } from '../../http/schemas.js';
import { newId } from '../../lib/ids.js';
import { auditCtxOf } from '../audit/sql.js';
import { findVisibleProject } from '../projects/store.js';
import { viewerOf, type Viewer } from '../access/visibility.js';
import {
  CreateThreadBody,
  ListThreadsQuery,
  PatchThreadBody,
  SearchThreadsQuery,
  ThreadParams,
  ThreadSchema,
  shapeThread,
} from './schemas.js';
import { auditOrigin } from '../audit/store.js';
import { requestRunCancel } from '../runs/cancel.js';
import { withWebhookEvents } from '../webhooks/outbox.js';
import {
  createThread,
  deleteThread,
  findVisibleThread,
  isThreadListCursor,
  listThreads,
  setStar,
  updateThread,
  type ThreadList,
} from './store.js';

const READ = 'data.threads.read';
const MANAGE = 'data.threads.manage';
const NOT_FOUND = 'threads.not_found';

export function threadRoutes(app: FastifyInstance, ctx: AppContext): void {
  const tags = ['threads'];
  const ids = { thread_id: NOT_FOUND } as const;

  /** One page of a thread list; an empty page tells a bad cursor or an invisible project apart. */
  async function page(v: Viewer, list: ThreadList, query: { limit?: number; before?: string }) {
    const before = parseCursor(query.before);
    const rows = await listThreads(ctx.db, v, list, { limit: query.limit ?? 20, before });
    if (rows.length === 0) {
      if (list.kind === 'project' && !(await findVisibleProject(ctx.db, v, list.projectId))) throw notFound('projects.not_found');
      if (before && !(await isThreadListCursor(ctx.db, v, list, before))) throw badCursor();
    }
    return rows.map(shapeThread);
  }

  registerRoute(app, ctx, {
    method: 'POST',
    url: '/v1/threads',
    caller: 'user+key',
    perm: MANAGE,
    idempotent: true,
    status: 201,
    summary: 'Create a thread',
    tags,
    body: CreateThreadBody,
    trim: ['title'],
    response: ThreadSchema,
    handler: async (req) => {
      const v = viewerOf(req);
      const thread = { id: newId(), title: req.body.title ?? null, projectId: req.body.project_id?.toLowerCase() ?? null, isPrivate: req.body.is_private ?? false };
      const row = await withWebhookEvents(
        ctx,
        v.accountId,
        ['thread.created'],
        (db) => createThread(db, v, auditCtxOf(req as FastifyRequest), thread),
        (created) => (created ? [{ type: 'thread.created', data: shapeThread(created) }] : []),
      );
      if (!row) throw notFound('projects.not_found');
      return shapeThread(row);
    },
  });

  registerRoute(app, ctx, {
    method: 'GET',
    url: '/v1/threads',
    caller: 'user+key',
    perm: READ,
    summary: "List the caller's threads, or the visible threads of a project",
    tags,
    query: ListThreadsQuery,
    response: T.Array(ThreadSchema),
    handler: async (req) => {
      const projectId = req.query.project_id?.toLowerCase();
      return page(viewerOf(req), projectId ? { kind: 'project', projectId } : { kind: 'own' }, req.query);
    },
  });

  registerRoute(app, ctx, {
    method: 'GET',
    url: '/v1/threads/search',
    caller: 'user+key',
    perm: READ,
    summary: 'Search visible threads by title or message content',
    tags,
    query: SearchThreadsQuery,
    response: T.Array(ThreadSchema),
    handler: async (req) => page(viewerOf(req), { kind: 'search', q: req.query.q }, req.query),
  });

  registerRoute(app, ctx, {
    method: 'GET',
    url: '/v1/threads/starred',
    caller: 'user+key',
    perm: READ,
    summary: 'List the threads the caller starred',
    tags,
    query: PageQuery(),
    response: T.Array(ThreadSchema),
    handler: async (req) => page(viewerOf(req), { kind: 'starred' }, req.query),
  });

  registerRoute(app, ctx, {
    method: 'GET',
    url: '/v1/threads/:thread_id',
    caller: 'user+key',
    perm: READ,
    ids,
    summary: 'Get a thread',
    tags,
    params: ThreadParams,
    response: ThreadSchema,
    handler: async (req) => {
      const row = await findVisibleThread(ctx.db, viewerOf(req), req.params.thread_id);
      if (!row) throw notFound(NOT_FOUND);
      return shapeThread(row);
    },
  });

  registerRoute(app, ctx, {
    method: 'PATCH',
    url: '/v1/threads/:thread_id',
    caller: 'user+key',
    perm: MANAGE,
    ids,
    summary: 'Edit a thread (title, project, privacy)',
    tags,
    params: ThreadParams,
    body: PatchThreadBody,
    trim: ['title'],
    response: ThreadSchema,
    handler: async (req) => {
      const b = req.body;
      if (b.title === undefined && b.project_id === undefined && b.is_private === undefined) {
        throw validationError('at least one of title, project_id, is_private is required');
      }
      const res = await updateThread(ctx.db, viewerOf(req), auditCtxOf(req as FastifyRequest), req.params.thread_id, {
        title: b.title,
        projectId: b.project_id === undefined || b.project_id === null ? b.project_id : b.project_id.toLowerCase(),
        isPrivate: b.is_private,
      });
      if (res.kind === 'not_found') throw notFound(NOT_FOUND);
      if (res.kind === 'ref_not_found') throw notFound('projects.not_found');
      if (res.kind === 'forbidden') throw forbidden('only the creator or an owner/admin may edit this thread');
      return shapeThread(res.row);
    },
  });

  registerRoute(app, ctx, {
    method: 'DELETE',
    url: '/v1/threads/:thread_id',
    caller: 'user+key',
    perm: MANAGE,
    ids,
    status: 204,
    summary: 'Delete a thread',
    tags,
    params: ThreadParams,
    handler: async (req) => {
      const v = viewerOf(req);
      const res = await withWebhookEvents(
        ctx,
        v.accountId,
        ['thread.deleted'],
        (db) => deleteThread(db, v, auditCtxOf(req as FastifyRequest), req.params.thread_id),
        (deleted) => (deleted.result === 'ok' ? [{ type: 'thread.deleted', data: { id: req.params.thread_id.toLowerCase(), org_id: v.accountId } }] : []),
      );
      if (res.result === 'not_found') throw notFound(NOT_FOUND);
      if (res.result === 'forbidden') throw forbidden('only the creator or an owner/admin may delete this thread');
      // An active run ends with the thread (§6.7): cancel_requested, then cancelled.
      const runId = res.activeRunId;
      if (runId) {
        await requestRunCancel(ctx, {
          runId,
          threadId: req.params.thread_id,
          orgId: v.accountId,
          userId: v.userId,
          reason: 'thread_deleted',
          origin: auditOrigin(req as FastifyRequest),
        });
      }
      return null;
    },
  });

  for (const method of ['POST', 'DELETE'] as const) {
    registerRoute(app, ctx, {
      method,
      url: '/v1/threads/:thread_id/star',
      caller: 'user+key',
      perm: MANAGE,
      ids,
      status: 204,
      summary: method === 'POST' ? 'Star a thread' : 'Unstar a thread',
      tags,
      params: ThreadParams,
      handler: async (req) => {
        if (!(await setStar(ctx.db, viewerOf(req), req.params.thread_id, method === 'POST'))) throw notFound(NOT_FOUND);
        return null;
      },
    });
  }
}
