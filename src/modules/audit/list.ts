// Reading the audit log (api.md §22.1): one filter, a page by offset, and the total of matches.
// Each common filter has its index (migrations 0001, 0016).
import { sql, type Kysely, type Selectable, type SelectQueryBuilder } from 'kysely';
import type { AuditLogsTable, DB } from '../../db/schema.js';
import { iso } from '../../http/schemas.js';

export type AuditLogRow = Selectable<AuditLogsTable>;

const LIST_COLUMNS = ['id', 'org_id', 'actor_user_id', 'action', 'target_type', 'target_id', 'trace_id', 'metadata', 'ip_address', 'user_agent', 'created_at'] as const;
type ListColumn = (typeof LIST_COLUMNS)[number];

export interface AuditFilter {
  /** null: every entry, platform-level ones included (platform admins only). */
  orgId: string | null;
  /** Exact action, or a prefix when `actionPrefix`. */
  action: string | null;
  actionPrefix: boolean;
  actorUserId: string | null;
  targetType: string | null;
  targetId: string | null;
  since: Date | null;
  until: Date | null;
}

/** LIKE pattern for "starts with": the prefix's own `%`, `_` and `\` match themselves. */
function startsWith(prefix: string): string {
  return prefix.replace(/[\\%_]/g, (c) => `\\${c}`) + '%';
}

function filtered<O>(q: SelectQueryBuilder<DB, 'audit_logs', O>, f: AuditFilter): SelectQueryBuilder<DB, 'audit_logs', O> {
  if (f.orgId !== null) q = q.where('org_id', '=', f.orgId);
  if (f.action !== null) q = f.actionPrefix ? q.where('action', 'like', startsWith(f.action)) : q.where('action', '=', f.action);
  if (f.actorUserId !== null) q = q.where('actor_user_id', '=', f.actorUserId);
  if (f.targetType !== null) q = q.where('target_type', '=', f.targetType);
  if (f.targetId !== null) q = q.where('target_id', '=', f.targetId);
  if (f.since !== null) q = q.where('created_at', '>=', f.since);
  if (f.until !== null) q = q.where('created_at', '<=', f.until);
  return q;
}

/** A page of matching entries, newest first, and how many entries match in all. */
export async function listAuditLogs(
  db: Kysely<DB>,
  f: AuditFilter,
  page: { limit: number; offset: number; withState: boolean },
): Promise<{ rows: Array<Partial<AuditLogRow> & Pick<AuditLogRow, ListColumn>>; total: number }> {
  const base = db.selectFrom('audit_logs');
  const columns = page.withState ? [...LIST_COLUMNS, 'before_state' as const, 'after_state' as const] : LIST_COLUMNS;
  const [rows, count] = await Promise.all([
    filtered(base.select(columns), f).orderBy('created_at', 'desc').orderBy('id', 'desc').limit(page.limit).offset(page.offset).execute(),
    filtered(base.select(sql<number>`count(*)::int`.as('n')), f).executeTakeFirstOrThrow(),
  ]);
  return { rows, total: count.n };
}

export function shapeAuditLog(r: Partial<AuditLogRow> & Pick<AuditLogRow, ListColumn>, withState: boolean) {
  return {
    id: r.id,
    org_id: r.org_id,
    actor_user_id: r.actor_user_id,
    action: r.action,
    target_type: r.target_type,
    target_id: r.target_id,
    trace_id: r.trace_id,
    metadata: (r.metadata ?? {}) as Record<string, unknown>,
    ip_address: r.ip_address,
    user_agent: r.user_agent,
    created_at: iso(r.created_at),
    ...(withState
      ? { before_state: (r.before_state ?? null) as Record<string, unknown> | null, after_state: (r.after_state ?? null) as Record<string, unknown> | null }
      : {}),
  };
}
