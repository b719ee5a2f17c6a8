// The shape of every audited change of an account- or platform-scoped resource: one
// transaction, the write, its audit row(s) in the same transaction, and a lost race against a
// unique constraint answered with the module's 409.
import type { Kysely, Transaction } from 'kysely';
import type { DB } from '../../db/schema.js';
import type { AppError } from '../../http/errors.js';
import { recordAudit, type AuditEntry, type AuditOrigin } from './store.js';

/** What a write returns: its result, and the audit row(s) recording it (null: nothing changed). */
export interface Audited<T> {
  result: T;
  audit: AuditEntry | AuditEntry[] | null;
}

export interface AuditedWriteOptions {
  /**
   * The module's 409 for a unique violation: one error whatever the constraint, or one per
   * constraint (index) name, in which case a violation of any other constraint is rethrown.
   */
  unique?: (() => AppError) | Readonly<Record<string, () => AppError>>;
}

/** PostgreSQL unique_violation (SQLSTATE 23505), e.g. a race lost against another insert. */
export function isUniqueViolation(err: unknown): err is { code: '23505'; constraint?: string } {
  return (err as { code?: unknown } | null)?.code === '23505';
}

/**
 * Runs `write` in a transaction and records the audit row(s) it returns in that same
 * transaction, so a change and its record commit together. Anything `write` throws rolls both
 * back and reaches the caller unchanged, except a unique violation that `opts.unique` maps.
 */
export async function auditedWrite<T>(
  db: Kysely<DB>,
  origin: AuditOrigin,
  write: (trx: Transaction<DB>) => Promise<Audited<T>>,
  opts: AuditedWriteOptions = {},
): Promise<T> {
  try {
    return await db.transaction().execute(async (trx) => {
      const { result, audit } = await write(trx);
      for (const entry of audit === null ? [] : Array.isArray(audit) ? audit : [audit]) await recordAudit(trx, origin, entry);
      return result;
    });
  } catch (err) {
    const unique = opts.unique;
    if (unique && isUniqueViolation(err)) {
      const toError = typeof unique === 'function' ? unique : err.constraint !== undefined ? unique[err.constraint] : undefined;
      if (toError) throw toError();
    }
    throw err;
  }
}
