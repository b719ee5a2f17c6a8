// Sessions and their rotating refresh tokens (api.md §1.2): opaque 32-byte tokens stored
// as hashes; presenting an already-rotated token revokes the whole session family.
import { sql, type Kysely } from 'kysely';
import type { DB } from '../../db/schema.js';
import { hashToken, randomToken } from '../../lib/crypto.js';
import { newId } from '../../lib/ids.js';

export interface IssuedSession {
  sessionId: string;
  refreshToken: string;
}

export async function createSession(
  db: Kysely<DB>,
  userId: string,
  refreshTtlSeconds: number,
  origin: { ip: string | null; userAgent: string | null },
): Promise<IssuedSession> {
  const sessionId = newId();
  const refreshToken = randomToken();
  const expires = new Date(Date.now() + refreshTtlSeconds * 1000);
  await db
    .insertInto('sessions')
    .values({ id: sessionId, user_id: userId, expires_at: expires, ip_address: origin.ip, user_agent: origin.userAgent?.slice(0, 512) ?? null })
    .execute();
  await db
    .insertInto('refresh_tokens')
    .values({ id: newId(), session_id: sessionId, token_hash: hashToken(refreshToken), expires_at: expires })
    .execute();
  return { sessionId, refreshToken };
}

export type RotateResult =
  | { ok: true; userId: string; sessionId: string; refreshToken: string }
  | { ok: false; reason: 'unknown' | 'expired' | 'revoked' | 'inactive_user' }
  | { ok: false; reason: 'reused'; userId: string };

export async function rotateRefreshToken(db: Kysely<DB>, token: string, refreshTtlSeconds: number): Promise<RotateResult> {
  return db.transaction().execute(async (trx) => {
    const row = await trx
      .selectFrom('refresh_tokens as r')
      .innerJoin('sessions as s', 's.id', 'r.session_id')
      .innerJoin('users as u', 'u.id', 's.user_id')
      .select(['r.id', 'r.rotated_at', 'r.expires_at', 's.id as session_id', 's.revoked_at', 's.user_id', 'u.status'])
      .where('r.token_hash', '=', hashToken(token))
      .executeTakeFirst();
    if (!row) return { ok: false, reason: 'unknown' } as const;
    if (row.revoked_at) return { ok: false, reason: 'revoked' } as const;
    // Claim the token atomically; losing the claim means it was already used.
    const claimed = await trx
      .updateTable('refresh_tokens')
      .set({ rotated_at: new Date() })
      .where('id', '=', row.id)
      .where('rotated_at', 'is', null)
      .executeTakeFirst();
    if (row.rotated_at || Number(claimed.numUpdatedRows) !== 1) {
      await trx.updateTable('sessions').set({ revoked_at: new Date() }).where('id', '=', row.session_id).execute();
      return { ok: false, reason: 'reused', userId: row.user_id } as const;
    }
    if (row.expires_at.getTime() <= Date.now()) return { ok: false, reason: 'expired' } as const;
    if (row.status !== 'active') return { ok: false, reason: 'inactive_user' } as const;
    const refreshToken = randomToken();
    const expires = new Date(Date.now() + refreshTtlSeconds * 1000);
    await trx
      .insertInto('refresh_tokens')
      .values({ id: newId(), session_id: row.session_id, token_hash: hashToken(refreshToken), expires_at: expires })
      .execute();
    await trx.updateTable('sessions').set({ expires_at: expires }).where('id', '=', row.session_id).execute();
    return { ok: true, userId: row.user_id, sessionId: row.session_id, refreshToken } as const;
  });
}

export async function revokeSession(db: Kysely<DB>, sessionId: string): Promise<void> {
  await db.updateTable('sessions').set({ revoked_at: sql`coalesce(revoked_at, now())` }).where('id', '=', sessionId).execute();
}

export async function revokeUserSessions(db: Kysely<DB>, userId: string): Promise<void> {
  await db.updateTable('sessions').set({ revoked_at: new Date() }).where('user_id', '=', userId).where('revoked_at', 'is', null).execute();
}
