// Email verification tokens (24 h, single use) and sign-in OTP codes (6 digits, 10 min,
// 5 wrong tries invalidate the code).
import { createHmac, randomInt } from 'node:crypto';
import type { Kysely } from 'kysely';
import type { DB } from '../../db/schema.js';
import { hashToken, randomToken, safeEqual } from '../../lib/crypto.js';
import { newId } from '../../lib/ids.js';

const VERIFY_TTL_MS = 24 * 3600 * 1000;
const OTP_TTL_MS = 10 * 60 * 1000;
const OTP_MAX_FAILURES = 5;

export async function issueVerificationToken(db: Kysely<DB>, userId: string, email: string): Promise<{ token: string; expiresAt: Date }> {
  const token = randomToken();
  const expiresAt = new Date(Date.now() + VERIFY_TTL_MS);
  await db.updateTable('email_verification_tokens').set({ used_at: new Date() }).where('user_id', '=', userId).where('used_at', 'is', null).execute();
  await db
    .insertInto('email_verification_tokens')
    .values({ id: newId(), user_id: userId, email, token_hash: hashToken(token), expires_at: expiresAt })
    .execute();
  return { token, expiresAt };
}

/** Consumes a verification token; returns the user id it verified, or null. */
export async function consumeVerificationToken(db: Kysely<DB>, token: string): Promise<string | null> {
  const row = await db
    .updateTable('email_verification_tokens')
    .set({ used_at: new Date() })
    .where('token_hash', '=', hashToken(token))
    .where('used_at', 'is', null)
    .where('expires_at', '>', new Date())
    .returning(['user_id', 'email'])
    .executeTakeFirst();
  if (!row) return null;
  const user = await db
    .updateTable('users')
    .set({ email_verified: true, updated_at: new Date() })
    .where('id', '=', row.user_id)
    .where('email', '=', row.email)
    .returning('id')
    .executeTakeFirst();
  return user?.id ?? null;
}

function codeHash(secret: Uint8Array, userId: string, code: string): string {
  return createHmac('sha256', secret).update(`${userId}:${code}`).digest('hex');
}

export async function issueOtp(db: Kysely<DB>, secret: Uint8Array, userId: string): Promise<{ code: string; expiresAt: Date }> {
  const code = String(randomInt(0, 1_000_000)).padStart(6, '0');
  const expiresAt = new Date(Date.now() + OTP_TTL_MS);
  await db.updateTable('email_otps').set({ used_at: new Date() }).where('user_id', '=', userId).where('used_at', 'is', null).execute();
  await db
    .insertInto('email_otps')
    .values({ id: newId(), user_id: userId, code_hash: codeHash(secret, userId, code), expires_at: expiresAt })
    .execute();
  return { code, expiresAt };
}

/** Checks a code against the user's live OTP; wrong codes count toward invalidation. */
export async function consumeOtp(db: Kysely<DB>, secret: Uint8Array, userId: string, code: string): Promise<boolean> {
  return db.transaction().execute(async (trx) => {
    const row = await trx
      .selectFrom('email_otps')
      .select(['id', 'code_hash', 'failed_attempts'])
      .where('user_id', '=', userId)
      .where('used_at', 'is', null)
      .where('expires_at', '>', new Date())
      .orderBy('created_at', 'desc')
      .forUpdate()
      .executeTakeFirst();
    if (!row) return false;
    if (safeEqual(row.code_hash, codeHash(secret, userId, code))) {
      await trx.updateTable('email_otps').set({ used_at: new Date() }).where('id', '=', row.id).execute();
      return true;
    }
    const failures = row.failed_attempts + 1;
    await trx
      .updateTable('email_otps')
      .set({ failed_attempts: failures, ...(failures >= OTP_MAX_FAILURES ? { used_at: new Date() } : {}) })
      .where('id', '=', row.id)
      .execute();
    return false;
  });
}

export function maskEmail(email: string): string {
  const [local, domain] = email.split('@');
  return `${local.slice(0, 1)}***@${domain}`;
}
