// The platform_settings rows (api.md §21.22–21.26). Sensitive values are stored sealed
// (`{"$enc": …}`, AES-256-GCM under the platform key); an empty one is stored as "".
import type { Kysely } from 'kysely';
import type { DB } from '../../db/schema.js';
import { encryptSecret } from '../../lib/crypto.js';
import type { SettingDef, SettingValue } from './registry.js';
import { isSealed } from './service.js';

export interface StoredSetting {
  key: string;
  value: unknown;
  updated_at: Date;
}

export async function storedSettings(db: Kysely<DB>, keys?: string[]): Promise<Map<string, StoredSetting>> {
  let q = db.selectFrom('platform_settings').select(['key', 'value', 'updated_at']);
  if (keys) {
    if (keys.length === 0) return new Map();
    q = q.where('key', 'in', keys);
  }
  const rows = await q.execute();
  return new Map(rows.map((r) => [r.key, r]));
}

/** Locks and returns the stored rows of `keys` (for a write's before-state). */
export async function lockSettings(db: Kysely<DB>, keys: string[]): Promise<Map<string, StoredSetting>> {
  const rows = await db.selectFrom('platform_settings').select(['key', 'value', 'updated_at']).where('key', 'in', keys).forUpdate().execute();
  return new Map(rows.map((r) => [r.key, r]));
}

export function sealFor(def: SettingDef, value: SettingValue, encryptionKey: string): unknown {
  return def.sensitive && typeof value === 'string' && value !== '' ? { $enc: encryptSecret(value, encryptionKey) } : value;
}

/** Is a stored value (sealed or not) a non-empty secret? */
export function storedSecretSet(value: unknown): boolean {
  return isSealed(value) || (typeof value === 'string' && value !== '');
}

export async function upsertSetting(db: Kysely<DB>, key: string, stored: unknown, userId: string): Promise<void> {
  const json = JSON.stringify(stored);
  await db
    .insertInto('platform_settings')
    .values({ key, value: json, updated_by_user_id: userId, updated_at: new Date() })
    .onConflict((oc) => oc.column('key').doUpdateSet({ value: json, updated_by_user_id: userId, updated_at: new Date() }))
    .execute();
}

export async function deleteStoredSetting(db: Kysely<DB>, key: string): Promise<boolean> {
  const res = await db.deleteFrom('platform_settings').where('key', '=', key).executeTakeFirst();
  return Number(res.numDeletedRows) > 0;
}
