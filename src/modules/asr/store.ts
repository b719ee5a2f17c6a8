// ASR credentials (api.md §15): the SQL of the asr module. The API key is stored encrypted
// (AES-256-GCM, ctx.secrets.encryptionKey); only its first 8 characters are kept in clear as
// `key_prefix`. At most one credential per scope and account is the default (partial unique
// indexes); writes that move the flag take a per-scope advisory lock first.
import { sql, type Insertable, type Kysely, type Selectable, type Updateable } from 'kysely';
import type { AsrCredentialsTable, DB } from '../../db/schema.js';
import { iso } from '../../http/schemas.js';
import { newId } from '../../lib/ids.js';

export type AsrCredentialRow = Selectable<AsrCredentialsTable>;
export type AsrScope = 'org' | 'platform';

export const KEY_PREFIX_LENGTH = 8;

/** Where a provider answers when the credential has no `base_url` (§15, decided). */
export const DEFAULT_BASE_URLS: Record<AsrCredentialRow['provider'], string> = {
  openai: 'https://api.openai.com/v1',
  groq: 'https://api.groq.com/openai/v1',
};

/** Credentials of one account (`orgId`) or of the platform (`orgId` null), newest first (§1.7). */
export async function listCredentials(db: Kysely<DB>, orgId: string | null): Promise<AsrCredentialRow[]> {
  let q = db.selectFrom('asr_credentials').selectAll();
  q = orgId === null ? q.where('org_id', 'is', null) : q.where('org_id', '=', orgId);
  return q.orderBy('created_at', 'desc').orderBy('id', 'desc').execute();
}

/** A credential the account may address: its own, or a platform one (the caller decides what may be done with those). */
export async function findCredential(db: Kysely<DB>, orgId: string, id: string): Promise<AsrCredentialRow | undefined> {
  return db
    .selectFrom('asr_credentials')
    .selectAll()
    .where('id', '=', id)
    .where((eb) => eb.or([eb('org_id', '=', orgId), eb('org_id', 'is', null)]))
    .executeTakeFirst();
}

/** The default credential of one account (`orgId`) or of the platform (`orgId` null). */
export async function defaultCredential(db: Kysely<DB>, orgId: string | null): Promise<AsrCredentialRow | undefined> {
  let q = db.selectFrom('asr_credentials').selectAll().where('is_default', '=', true);
  q = orgId === null ? q.where('org_id', 'is', null) : q.where('org_id', '=', orgId);
  return q.executeTakeFirst();
}

/**
 * Serialises the writes that decide the default of one scope/account until the transaction
 * ends, so "first credential" and "clear the others" see each other's rows.
 */
export async function lockScope(db: Kysely<DB>, orgId: string | null): Promise<void> {
  await sql`SELECT pg_advisory_xact_lock(hashtext(${`asr_credentials:${orgId ?? 'platform'}`}))`.execute(db);
}

/** Does the scope/account hold any credential yet? */
export async function scopeHasCredentials(db: Kysely<DB>, orgId: string | null): Promise<boolean> {
  let q = db.selectFrom('asr_credentials').select('id');
  q = orgId === null ? q.where('org_id', 'is', null) : q.where('org_id', '=', orgId);
  return (await q.limit(1).executeTakeFirst()) !== undefined;
}

/** Clears the default flag on the scope's other credentials; returns the ids it cleared. */
export async function clearDefault(db: Kysely<DB>, orgId: string | null, exceptId: string | null): Promise<string[]> {
  let q = db.updateTable('asr_credentials').set({ is_default: false, updated_at: new Date() }).where('is_default', '=', true);
  q = orgId === null ? q.where('org_id', 'is', null) : q.where('org_id', '=', orgId);
  if (exceptId) q = q.where('id', '!=', exceptId);
  return (await q.returning('id').execute()).map((r) => r.id);
}

export async function insertCredential(db: Kysely<DB>, c: Omit<Insertable<AsrCredentialsTable>, 'id'>): Promise<AsrCredentialRow> {
  return db.insertInto('asr_credentials').values({ id: newId(), ...c }).returningAll().executeTakeFirstOrThrow();
}

export async function updateCredential(db: Kysely<DB>, id: string, patch: Updateable<AsrCredentialsTable>): Promise<AsrCredentialRow> {
  return db.updateTable('asr_credentials').set({ ...patch, updated_at: new Date() }).where('id', '=', id).returningAll().executeTakeFirstOrThrow();
}

export async function deleteCredential(db: Kysely<DB>, id: string): Promise<void> {
  await db.deleteFrom('asr_credentials').where('id', '=', id).execute();
}

/** The AsrCredential object (§2.6): never the key, only its prefix. */
export function shapeCredential(c: AsrCredentialRow) {
  return {
    id: c.id,
    org_id: c.org_id,
    scope: c.scope,
    provider: c.provider,
    name: c.name,
    key_prefix: c.key_prefix,
    base_url: c.base_url,
    model: c.model,
    is_default: c.is_default,
    created_at: iso(c.created_at),
    updated_at: iso(c.updated_at),
  };
}

/** What an audit row records of a credential (no key, no ciphertext). */
export function auditView(c: AsrCredentialRow) {
  return { scope: c.scope, provider: c.provider, name: c.name, key_prefix: c.key_prefix, base_url: c.base_url, model: c.model, is_default: c.is_default };
}
