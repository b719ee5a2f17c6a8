// The audit log (api.md §22.1): an account's entries for holders of account.audit.read; every
// entry, platform-level ones included, for platform admins.
import type { FastifyInstance } from 'fastify';
import type { AppContext } from '../../app-context.js';
import { fieldError, notFound } from '../../http/errors.js';
import { registerRoute } from '../../http/route.js';
import { DateTime, Limit, Nullable, T, Uuid } from '../../http/schemas.js';
import { findAccount } from '../accounts/store.js';
import { listAuditLogs, shapeAuditLog } from './list.js';

const MAX_OFFSET = 100_000;

const AuditLogSchema = T.Object({
  id: Uuid(),
  org_id: Nullable(Uuid()),
  actor_user_id: Nullable(Uuid()),
  action: T.String(),
  target_type: Nullable(T.String()),
  target_id: Nullable(T.String()),
  trace_id: T.String(),
  metadata: T.Record(T.String(), T.Unknown()),
  ip_address: Nullable(T.String()),
  user_agent: Nullable(T.String()),
  created_at: DateTime(),
  before_state: T.Optional(Nullable(T.Record(T.String(), T.Unknown()))),
  after_state: T.Optional(Nullable(T.Record(T.String(), T.Unknown()))),
});

export function auditLogRoutes(app: FastifyInstance, ctx: AppContext): void {
  registerRoute(app, ctx, {
    method: 'GET',
    url: '/v1/audit-logs',
    caller: 'user',
    // Platform admins read any account's log (and the platform's) from wherever they act.
    perm: (req) => (req.principal?.user.isPlatformAdmin ? null : 'account.audit.read'),
    summary: 'Audit log entries, newest first, with the total of matches',
    tags: ['audit'],
    query: T.Object({
      org_id: T.Optional(Uuid()),
      // An action (`api_key.create`) or a prefix ending in `*` (`api_key.*`).
      action: T.Optional(T.String({ minLength: 1, maxLength: 128, pattern: '^[A-Za-z0-9_.-]*\\*?$' })),
      actor_user_id: T.Optional(Uuid()),
      target_type: T.Optional(T.String({ minLength: 1, maxLength: 64 })),
      target_id: T.Optional(T.String({ minLength: 1, maxLength: 200 })),
      since: T.Optional(DateTime()),
      until: T.Optional(DateTime()),
      limit: T.Optional(Limit(50)),
      offset: T.Optional(T.Integer({ minimum: 0, maximum: MAX_OFFSET, default: 0 })),
      include: T.Optional(T.Literal('state')),
    }),
    response: T.Object({ data: T.Array(AuditLogSchema), total: T.Integer() }),
    handler: async (req) => {
      const q = req.query;
      const isAdmin = req.principal!.user.isPlatformAdmin;
      let orgId: string | null = isAdmin ? null : req.account!.id;
      if (q.org_id !== undefined) {
        const named = q.org_id.toLowerCase();
        // Non-admins read only the current account; any other id is an account they cannot see.
        if (!isAdmin && named !== req.account!.id) throw notFound('accounts.not_found', 'account');
        if (isAdmin && !(await findAccount(ctx.db, named))) throw notFound('accounts.not_found', 'account');
        orgId = named;
      }
      const since = q.since ? new Date(q.since) : null;
      const until = q.until ? new Date(q.until) : null;
      if (since && until && since > until) throw fieldError('until', 'must not be before since');
      const prefix = q.action?.endsWith('*') ?? false;
      const withState = q.include === 'state';
      const { rows, total } = await listAuditLogs(
        ctx.db,
        {
          orgId,
          action: q.action === undefined ? null : prefix ? q.action.slice(0, -1) : q.action,
          actionPrefix: prefix,
          actorUserId: q.actor_user_id?.toLowerCase() ?? null,
          targetType: q.target_type ?? null,
          targetId: q.target_id ?? null,
          since,
          until,
        },
        { limit: q.limit ?? 50, offset: q.offset ?? 0, withState },
      );
      return { data: rows.map((r) => shapeAuditLog(r, withState)), total };
    },
  });
}
