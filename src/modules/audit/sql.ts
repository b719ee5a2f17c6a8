// The audit row of a change as a fragment of the statement that makes the change (a
// data-modifying CTE): the change and its record commit together without the BEGIN/COMMIT
// round trips of an explicit transaction (threads and projects write this way). Same columns
// and redaction as recordAudit() in store.ts.
import type { FastifyRequest } from 'fastify';
import { sql, type RawBuilder } from 'kysely';
import { newId } from '../../lib/ids.js';
import { actingMeta } from '../access/acting.js';
import { auditOrigin, redact, type AuditOrigin } from './store.js';

/** What the audit row of a change needs besides the change itself. */
export interface AuditCtx {
  origin: AuditOrigin;
  metadata: Record<string, unknown>;
}

export interface AuditFromRow {
  orgId: string;
  actorUserId: string;
  action: string;
  targetType: string;
  metadata?: Record<string, unknown>;
  /** SQL over `from` for the target id, and the JSON states (updates and deletes). */
  targetId: RawBuilder<unknown>;
  before?: RawBuilder<unknown>;
  after?: RawBuilder<unknown>;
  /** The CTE (or join of CTEs) whose row is audited; it yields at most one row. */
  from: RawBuilder<unknown>;
}

export function auditInsertFrom(origin: AuditOrigin, e: AuditFromRow): RawBuilder<unknown> {
  const ua = origin.userAgent ? origin.userAgent.slice(0, 512) : null;
  return sql`INSERT INTO audit_logs
      (id, org_id, actor_user_id, action, target_type, target_id, trace_id, metadata, ip_address, user_agent, before_state, after_state)
    SELECT ${newId()}::uuid, ${e.orgId}::uuid, ${e.actorUserId}::uuid, ${e.action}::text, ${e.targetType}::text, (${e.targetId})::text,
           ${origin.traceId}::text, ${JSON.stringify(redact(e.metadata ?? {}))}::jsonb, ${origin.ip}::text, ${ua}::text,
           ${e.before ?? sql`NULL`}::jsonb, ${e.after ?? sql`NULL`}::jsonb
      FROM ${e.from}`;
}

/** The origin and base metadata of the audit rows a request writes. */
export function auditCtxOf(req: FastifyRequest): AuditCtx {
  return { origin: auditOrigin(req), metadata: actingMeta(req) };
}
