// IP rules (api.md §23): the SQL of the ip-rules module (tables ip_rules, ip_rule_denials).
import { sql, type Kysely, type Selectable } from 'kysely';
import type { DB, IpRulesTable } from '../../db/schema.js';
import { newId } from '../../lib/ids.js';
import { auditInsertFrom } from '../audit/sql.js';
import type { AuditOrigin } from '../audit/store.js';
import type { IpRuleType } from './cidr.js';

export type IpRuleRow = Selectable<IpRulesTable>;

export const MAX_RULES_PER_ACCOUNT = 200;

/** Serialises rule creation per account for the rest of the transaction (the limit and the lock-out check). */
export async function lockAccountRules(trx: Kysely<DB>, orgId: string): Promise<void> {
  await sql`SELECT pg_advisory_xact_lock(hashtext(${`ip_rules:${orgId}`}))`.execute(trx);
}

/** The account's rules, oldest first. */
export function listRules(db: Kysely<DB>, orgId: string): Promise<IpRuleRow[]> {
  return db.selectFrom('ip_rules').selectAll().where('org_id', '=', orgId).orderBy('created_at').orderBy('id').execute();
}

export function insertRule(db: Kysely<DB>, r: { orgId: string; type: IpRuleType; cidr: string; note: string | null }): Promise<IpRuleRow> {
  return db
    .insertInto('ip_rules')
    .values({ id: newId(), org_id: r.orgId, type: r.type, cidr: r.cidr, note: r.note })
    .returningAll()
    .executeTakeFirstOrThrow();
}

/** Deletes one rule of the account; the deleted row, or undefined when there was none. */
export function deleteRule(db: Kysely<DB>, orgId: string, id: string): Promise<IpRuleRow | undefined> {
  return db.deleteFrom('ip_rules').where('org_id', '=', orgId).where('id', '=', id).returningAll().executeTakeFirst();
}

export function shapeRule(r: IpRuleRow) {
  return { id: r.id, org_id: r.org_id, type: r.type, cidr: r.cidr, note: r.note, created_at: r.created_at.toISOString() };
}

export const DENIAL_WINDOW_MS = 60_000;

/**
 * Writes the `ip_rule.denied` audit row of a refused request unless one was written for this
 * account and IP less than a minute before `nowMs`. One statement: the upsert of the
 * (account, IP) mark succeeds only when the previous mark is a minute old, and the audit row is
 * inserted from the upserted row. Concurrent refusals, in any process, wait on the mark's row
 * lock and then see the fresh mark, so at most one of them writes. Returns whether it wrote.
 */
export async function recordDenial(
  db: Kysely<DB>,
  origin: AuditOrigin,
  d: { orgId: string; ip: string; nowMs: number; actorUserId: string; metadata: Record<string, unknown> },
): Promise<boolean> {
  const now = new Date(d.nowMs);
  const res = await sql`
    WITH mark AS (
      INSERT INTO ip_rule_denials AS m (org_id, ip, last_logged_at) VALUES (${d.orgId}::uuid, ${d.ip}, ${now})
      ON CONFLICT (org_id, ip) DO UPDATE SET last_logged_at = EXCLUDED.last_logged_at
        WHERE m.last_logged_at <= ${new Date(d.nowMs - DENIAL_WINDOW_MS)}
      RETURNING m.org_id)
    ${auditInsertFrom(origin, { orgId: d.orgId, actorUserId: d.actorUserId, action: 'ip_rule.denied', targetType: 'ip_address', targetId: sql`${d.ip}`, metadata: d.metadata, from: sql`mark` })}`.execute(db);
  return Number(res.numAffectedRows ?? 0) > 0;
}

/** Drops marks older than the window (they decide nothing any more). */
export async function pruneDenialMarks(db: Kysely<DB>, nowMs: number): Promise<void> {
  await db.deleteFrom('ip_rule_denials').where('last_logged_at', '<', new Date(nowMs - DENIAL_WINDOW_MS)).execute();
}
