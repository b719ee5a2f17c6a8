// Entitlement overrides (api.md §18.2–18.4): one per account and key, optionally expiring.
import type { Kysely, Selectable } from 'kysely';
import type { DB, EntitlementOverridesTable, EntitlementValueType } from '../../db/schema.js';
import { newId } from '../../lib/ids.js';

export type OverrideRow = Selectable<EntitlementOverridesTable>;

export async function listOverrides(db: Kysely<DB>, orgId: string): Promise<OverrideRow[]> {
  return db.selectFrom('entitlement_overrides').selectAll().where('org_id', '=', orgId).orderBy('created_at', 'desc').orderBy('id', 'desc').execute();
}

export async function findOverride(db: Kysely<DB>, id: string): Promise<OverrideRow | undefined> {
  return db.selectFrom('entitlement_overrides').selectAll().where('id', '=', id).executeTakeFirst();
}

/** Replaces the account's override of the key (a new row); returns the new row and the replaced one. */
export async function putOverride(
  db: Kysely<DB>,
  o: { orgId: string; key: string; value: string; valueType: EntitlementValueType; reason: string | null; expiresAt: Date | null; createdByUserId: string },
): Promise<{ row: OverrideRow; replaced: OverrideRow | undefined }> {
  const replaced = await db.deleteFrom('entitlement_overrides').where('org_id', '=', o.orgId).where('key', '=', o.key).returningAll().executeTakeFirst();
  const row = await db
    .insertInto('entitlement_overrides')
    .values({
      id: newId(),
      org_id: o.orgId,
      key: o.key,
      value: o.value,
      value_type: o.valueType,
      reason: o.reason,
      expires_at: o.expiresAt,
      created_by_user_id: o.createdByUserId,
    })
    .returningAll()
    .executeTakeFirstOrThrow();
  return { row, replaced };
}

export async function deleteOverride(db: Kysely<DB>, id: string): Promise<OverrideRow | undefined> {
  return db.deleteFrom('entitlement_overrides').where('id', '=', id).returningAll().executeTakeFirst();
}

export function shapeOverride(o: OverrideRow) {
  return {
    id: o.id,
    org_id: o.org_id,
    key: o.key,
    value: o.value,
    value_type: o.value_type,
    reason: o.reason,
    expires_at: o.expires_at ? o.expires_at.toISOString() : null,
    created_by_user_id: o.created_by_user_id,
    created_at: o.created_at.toISOString(),
  };
}
