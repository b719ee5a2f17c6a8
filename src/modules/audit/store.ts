// Audit rows (api.md §22). Written in the caller's transaction so an action and its record
// commit together. Secrets are redacted before anything is stored.
import type { Kysely } from 'kysely';
import type { DB } from '../../db/schema.js';
import { newId } from '../../lib/ids.js';

export interface AuditOrigin {
  traceId: string;
  ip: string | null;
  userAgent: string | null;
}

/** Where a request came from, as its audit rows record it. */
export function auditOrigin(req: { id: string; clientIp: string; headers: Record<string, unknown> }): AuditOrigin {
  const ua = req.headers['user-agent'];
  return { traceId: req.id, ip: req.clientIp || null, userAgent: typeof ua === 'string' ? ua : null };
}

export interface AuditEntry {
  orgId: string | null;
  actorUserId: string | null;
  action: string;
  targetType?: string | null;
  targetId?: string | null;
  metadata?: Record<string, unknown>;
  before?: Record<string, unknown> | null;
  after?: Record<string, unknown> | null;
}

// Keys whose values are secrets (§22: passwords, tokens, key hashes, API keys, bearer tokens,
// SMTP passwords, webhook secrets, env values): the whole value goes, objects included (`env`).
const SECRET_KEYS = /(password|passwd|secret|token|key_hash|api_key|apikey|bearer|smtp_pass|authorization|cookie|env_values|^env$|code_hash|private_key|access_key|_enc$|encrypted)/i;
// The platform's own secrets, recognised by their form wherever they appear: API keys
// (`al_` + 40 base62) and webhook signing secrets (`whsec_` + base64url).
const SECRET_VALUE = /^(al_[0-9A-Za-z]{40}|whsec_[A-Za-z0-9_-]{32,})$/;

/** Replaces values of secret-looking keys, and secret-looking values, by "[redacted]", recursively. */
export function redact(value: unknown): unknown {
  if (typeof value === 'string') return SECRET_VALUE.test(value) ? '[redacted]' : value;
  if (Array.isArray(value)) return value.map(redact);
  if (value && typeof value === 'object' && !(value instanceof Date)) {
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(value)) {
      out[k] = SECRET_KEYS.test(k) && v !== null && v !== undefined && typeof v !== 'boolean' ? '[redacted]' : redact(v);
    }
    return out;
  }
  return value;
}

function asJson(v: Record<string, unknown> | null | undefined): string | null {
  return v === undefined || v === null ? null : JSON.stringify(redact(v));
}

export async function recordAudit(db: Kysely<DB>, origin: AuditOrigin, entry: AuditEntry): Promise<void> {
  await db
    .insertInto('audit_logs')
    .values({
      id: newId(),
      org_id: entry.orgId,
      actor_user_id: entry.actorUserId,
      action: entry.action,
      target_type: entry.targetType ?? null,
      target_id: entry.targetId ?? null,
      trace_id: origin.traceId,
      metadata: JSON.stringify(redact(entry.metadata ?? {})),
      ip_address: origin.ip,
      user_agent: origin.userAgent ? origin.userAgent.slice(0, 512) : null,
      before_state: asJson(entry.before),
      after_state: asJson(entry.after),
    })
    .execute();
}
