// API keys (api.md §5): the SQL of the api-keys module. A key is `al_` + 40 base62 chars,
// shown once; only its SHA-256 and its first 7 characters are stored.
import { sql, type Kysely, type Selectable } from 'kysely';
import type { ApiKeysTable, DB } from '../../db/schema.js';
import { hashToken, randomFromAlphabet } from '../../lib/crypto.js';
import { newId } from '../../lib/ids.js';

export type ApiKeyRow = Selectable<ApiKeysTable>;

export const KEY_PREFIX_LENGTH = 7;
export const MAX_ACTIVE_KEYS_PER_USER = 50;

export function generateApiKey(): string {
  return 'al_' + randomFromAlphabet(40);
}

/**
 * Serialises key creation per (account, user) for the rest of the transaction, so two
 * concurrent creates cannot both pass the limit check.
 */
export async function lockUserKeys(trx: Kysely<DB>, orgId: string, userId: string): Promise<void> {
  await sql`SELECT pg_advisory_xact_lock(hashtext(${`api_keys:${orgId}:${userId}`}))`.execute(trx);
}

export async function countActiveKeys(db: Kysely<DB>, orgId: string, userId: string): Promise<number> {
  const row = await db
    .selectFrom('api_keys')
    .select(sql<number>`count(*)::int`.as('n'))
    .where('org_id', '=', orgId)
    .where('user_id', '=', userId)
    .where('revoked_at', 'is', null)
    .executeTakeFirstOrThrow();
  return row.n;
}

export async function insertApiKey(
  db: Kysely<DB>,
  k: { orgId: string; userId: string; name: string; scopes: string[]; key: string },
): Promise<ApiKeyRow> {
  return db
    .insertInto('api_keys')
    .values({
      id: newId(),
      org_id: k.orgId,
      user_id: k.userId,
      name: k.name,
      key_prefix: k.key.slice(0, KEY_PREFIX_LENGTH),
      key_hash: hashToken(k.key),
      scopes: JSON.stringify(k.scopes),
    })
    .returningAll()
    .executeTakeFirstOrThrow();
}

/** Keys of an account, newest first: one user's, or everybody's when `userId` is null. */
export async function listApiKeys(db: Kysely<DB>, orgId: string, userId: string | null): Promise<ApiKeyRow[]> {
  let q = db.selectFrom('api_keys').selectAll().where('org_id', '=', orgId);
  if (userId) q = q.where('user_id', '=', userId);
  return q.orderBy('created_at', 'desc').orderBy('id', 'desc').execute();
}

export async function findApiKey(db: Kysely<DB>, orgId: string, id: string): Promise<ApiKeyRow | undefined> {
  return db.selectFrom('api_keys').selectAll().where('org_id', '=', orgId).where('id', '=', id).executeTakeFirst();
}

/** Revokes a key; returns false when it was already revoked (nothing changed). */
export async function revokeApiKey(db: Kysely<DB>, orgId: string, id: string): Promise<boolean> {
  const res = await db
    .updateTable('api_keys')
    .set({ revoked_at: new Date() })
    .where('org_id', '=', orgId)
    .where('id', '=', id)
    .where('revoked_at', 'is', null)
    .executeTakeFirst();
  return Number(res.numUpdatedRows) === 1;
}

export function shapeApiKey(k: ApiKeyRow) {
  return {
    id: k.id,
    org_id: k.org_id,
    user_id: k.user_id,
    name: k.name,
    key_prefix: k.key_prefix,
    scopes: Array.isArray(k.scopes) ? (k.scopes as string[]) : [],
    revoked_at: k.revoked_at ? k.revoked_at.toISOString() : null,
    last_used_at: k.last_used_at ? k.last_used_at.toISOString() : null,
    created_at: k.created_at.toISOString(),
  };
}

/** Revokes every live key of a user (a deleted user, api.md §21.5). */
export async function revokeUserApiKeys(db: Kysely<DB>, userId: string): Promise<void> {
  await db.updateTable('api_keys').set({ revoked_at: new Date() }).where('user_id', '=', userId).where('revoked_at', 'is', null).execute();
}
