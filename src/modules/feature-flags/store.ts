// Feature flags (api.md §24): the SQL of the feature-flags module (tables feature_flags,
// feature_flag_overrides). Nothing else touches these tables; flags.ts reads them for evaluation.
import { sql, type Kysely, type Selectable } from 'kysely';
import type { DB, FeatureFlagOverridesTable, FeatureFlagsTable } from '../../db/schema.js';
import { newId } from '../../lib/ids.js';

export type FlagRow = Selectable<FeatureFlagsTable>;
export type FlagOverrideRow = Selectable<FeatureFlagOverridesTable>;

export function listFlags(db: Kysely<DB>): Promise<FlagRow[]> {
  return db.selectFrom('feature_flags').selectAll().orderBy('key').execute();
}

export function findFlag(db: Kysely<DB>, key: string): Promise<FlagRow | undefined> {
  return db.selectFrom('feature_flags').selectAll().where('key', '=', key).executeTakeFirst();
}

/** Locks the flag's row for the rest of the transaction (override writes against a concurrent delete). */
export function lockFlag(db: Kysely<DB>, key: string): Promise<FlagRow | undefined> {
  return db.selectFrom('feature_flags').selectAll().where('key', '=', key).forUpdate().executeTakeFirst();
}

export function insertFlag(db: Kysely<DB>, f: { key: string; description: string | null; defaultValue: boolean }): Promise<FlagRow> {
  return db
    .insertInto('feature_flags')
    .values({ id: newId(), key: f.key, description: f.description, default_value: f.defaultValue })
    .returningAll()
    .executeTakeFirstOrThrow();
}

export function updateFlag(db: Kysely<DB>, key: string, patch: { default_value?: boolean; description?: string | null }): Promise<FlagRow | undefined> {
  return db
    .updateTable('feature_flags')
    .set({ ...patch, updated_at: sql`now()` })
    .where('key', '=', key)
    .returningAll()
    .executeTakeFirst();
}

/** Deletes a flag (its overrides go by the foreign key's cascade). */
export function deleteFlag(db: Kysely<DB>, key: string): Promise<FlagRow | undefined> {
  return db.deleteFrom('feature_flags').where('key', '=', key).returningAll().executeTakeFirst();
}

export function listFlagOverrides(db: Kysely<DB>, key: string): Promise<FlagOverrideRow[]> {
  return db.selectFrom('feature_flag_overrides').selectAll().where('flag_key', '=', key).orderBy('created_at').orderBy('org_id').execute();
}

export function findFlagOverride(db: Kysely<DB>, key: string, orgId: string): Promise<FlagOverrideRow | undefined> {
  return db.selectFrom('feature_flag_overrides').selectAll().where('flag_key', '=', key).where('org_id', '=', orgId).executeTakeFirst();
}

/** Creates or replaces the account's override of a flag. */
export function putFlagOverride(db: Kysely<DB>, key: string, orgId: string, enabled: boolean): Promise<FlagOverrideRow> {
  return db
    .insertInto('feature_flag_overrides')
    .values({ flag_key: key, org_id: orgId, enabled })
    .onConflict((oc) => oc.columns(['flag_key', 'org_id']).doUpdateSet({ enabled, created_at: sql`now()` }))
    .returningAll()
    .executeTakeFirstOrThrow();
}

export function deleteFlagOverride(db: Kysely<DB>, key: string, orgId: string): Promise<FlagOverrideRow | undefined> {
  return db.deleteFrom('feature_flag_overrides').where('flag_key', '=', key).where('org_id', '=', orgId).returningAll().executeTakeFirst();
}

/** Every flag with the account's override of it (null when none), for evaluation. */
export function flagsWithOverridesOf(db: Kysely<DB>, orgId: string) {
  return db
    .selectFrom('feature_flags as f')
    .leftJoin('feature_flag_overrides as o', (j) => j.onRef('o.flag_key', '=', 'f.key').on('o.org_id', '=', orgId))
    .select(['f.key', 'f.default_value', 'o.enabled'])
    .execute();
}

export function shapeFlag(f: FlagRow) {
  return { id: f.id, key: f.key, description: f.description, default_value: f.default_value, created_at: f.created_at.toISOString(), updated_at: f.updated_at.toISOString() };
}

export function shapeFlagOverride(o: FlagOverrideRow) {
  return { org_id: o.org_id, flag_key: o.flag_key, enabled: o.enabled, created_at: o.created_at.toISOString() };
}
