// LLM providers and models (api.md §12): the SQL of the llm-providers module. The API key is
// stored encrypted (AES-256-GCM, ctx.secrets.encryptionKey); only its first 8 characters are
// kept in clear as `key_prefix`.
import type { Insertable, Kysely, Selectable, Updateable } from 'kysely';
import type { DB, LlmModelsTable, LlmProvidersTable } from '../../db/schema.js';
import { iso } from '../../http/schemas.js';
import { newId } from '../../lib/ids.js';
import type { AppContext } from '../../app-context.js';
import { ALL_KEYS } from '../../db/shared-cache.js';

export type ProviderRow = Selectable<LlmProvidersTable>;
export type ModelRow = Selectable<LlmModelsTable>;
export type ProviderScope = 'org' | 'platform';

export const KEY_PREFIX_LENGTH = 8;

/** Providers of one account (`orgId`) or of the platform (`orgId` null), oldest first. */
export async function listProviders(db: Kysely<DB>, orgId: string | null): Promise<ProviderRow[]> {
  let q = db.selectFrom('llm_providers').selectAll();
  q = orgId === null ? q.where('org_id', 'is', null) : q.where('org_id', '=', orgId);
  return q.orderBy('created_at').orderBy('id').execute();
}

/** A provider the account may address: its own, or a platform one (the caller decides who may see those). */
export async function findProvider(db: Kysely<DB>, orgId: string, id: string): Promise<ProviderRow | undefined> {
  return db
    .selectFrom('llm_providers')
    .selectAll()
    .where('id', '=', id)
    .where((eb) => eb.or([eb('org_id', '=', orgId), eb('org_id', 'is', null)]))
    .executeTakeFirst();
}

export async function insertProvider(db: Kysely<DB>, p: Omit<Insertable<LlmProvidersTable>, 'id'>): Promise<ProviderRow> {
  return db.insertInto('llm_providers').values({ id: newId(), ...p }).returningAll().executeTakeFirstOrThrow();
}

export async function updateProvider(db: Kysely<DB>, id: string, patch: Updateable<LlmProvidersTable>): Promise<ProviderRow> {
  return db.updateTable('llm_providers').set({ ...patch, updated_at: new Date() }).where('id', '=', id).returningAll().executeTakeFirstOrThrow();
}

export async function deleteProvider(db: Kysely<DB>, id: string): Promise<void> {
  await db.deleteFrom('llm_providers').where('id', '=', id).execute();
}

/** Models of the given providers, in the order §2.6 fixes: priority desc, then oldest first. */
export async function modelsOf(db: Kysely<DB>, providerIds: string[]): Promise<ModelRow[]> {
  if (providerIds.length === 0) return [];
  return db
    .selectFrom('llm_models')
    .selectAll()
    .where('provider_id', 'in', providerIds)
    .orderBy('priority', 'desc')
    .orderBy('created_at')
    .orderBy('id')
    .execute();
}

export async function findModel(db: Kysely<DB>, providerId: string, id: string): Promise<ModelRow | undefined> {
  return db.selectFrom('llm_models').selectAll().where('provider_id', '=', providerId).where('id', '=', id).executeTakeFirst();
}

export async function insertModel(db: Kysely<DB>, m: Omit<Insertable<LlmModelsTable>, 'id'>): Promise<ModelRow> {
  return db.insertInto('llm_models').values({ id: newId(), ...m }).returningAll().executeTakeFirstOrThrow();
}

export async function updateModel(db: Kysely<DB>, id: string, patch: Updateable<LlmModelsTable>): Promise<ModelRow> {
  return db.updateTable('llm_models').set(patch).where('id', '=', id).returningAll().executeTakeFirstOrThrow();
}

export async function deleteModel(db: Kysely<DB>, id: string): Promise<void> {
  await db.deleteFrom('llm_models').where('id', '=', id).execute();
}

/** `is_default: true` on one model clears it on the provider's others (§12.6, decided). */
export async function clearDefault(db: Kysely<DB>, providerId: string, exceptId: string | null): Promise<void> {
  let q = db.updateTable('llm_models').set({ is_default: false }).where('provider_id', '=', providerId).where('is_default', '=', true);
  if (exceptId) q = q.where('id', '!=', exceptId);
  await q.execute();
}

export function shapeModel(m: ModelRow) {
  return {
    id: m.id,
    provider_id: m.provider_id,
    model: m.model,
    priority: m.priority,
    is_default: m.is_default,
    tags: m.tags,
    when: m.when_json,
    advanced_json: m.advanced_json,
    multiplier: m.multiplier,
    cost_per_1k_input: m.cost_per_1k_input,
    cost_per_1k_output: m.cost_per_1k_output,
    cost_per_1k_cache_write: m.cost_per_1k_cache_write,
    cost_per_1k_cache_read: m.cost_per_1k_cache_read,
    created_at: iso(m.created_at),
  };
}

/** The LlmProvider object; `hidePrefix` for a non-admin looking at a platform provider. */
export function shapeProvider(p: ProviderRow, models: ModelRow[], hidePrefix = false) {
  return {
    id: p.id,
    org_id: p.org_id,
    scope: p.scope,
    provider: p.provider,
    name: p.name,
    key_prefix: hidePrefix ? null : p.key_prefix,
    base_url: p.base_url,
    openai_api_mode: p.openai_api_mode,
    advanced_json: p.advanced_json,
    created_at: iso(p.created_at),
    updated_at: iso(p.updated_at),
    models: models.filter((m) => m.provider_id === p.id).map(shapeModel),
  };
}

export interface ProviderWithModels {
  row: ProviderRow;
  models: ModelRow[];
}

/**
 * The providers a run of this account may route to, account ones first, then platform ones
 * (§27.3), each with its models in chain order. Account providers are included whatever
 * feature.byok_enabled says: an explicit route to one must fail with policy.byok_disabled.
 */
export async function routableProviders(db: Kysely<DB>, orgId: string): Promise<ProviderWithModels[]> {
  const rows = await db
    .selectFrom('llm_providers')
    .selectAll()
    .where((eb) => eb.or([eb('org_id', '=', orgId), eb('org_id', 'is', null)]))
    .orderBy('created_at')
    .orderBy('id')
    .execute();
  const ordered = [...rows.filter((r) => r.scope === 'org'), ...rows.filter((r) => r.scope === 'platform')];
  const models = await modelsOf(db, ordered.map((r) => r.id));
  return ordered.map((row) => ({
    row,
    // is_default first, then priority desc, then oldest (§27.3 rule 4).
    models: models.filter((m) => m.provider_id === row.id).sort((a, b) => Number(b.is_default) - Number(a.is_default)),
  }));
}

// Every run reads its account's routable providers twice (create, then the worker): cached per
// account, dropped in every process when a provider or model of that account (or, for platform
// ones, of any account) changes. The TTL only bounds a lost notification.
const ROUTES_CACHE = 'llm_routes';
const ROUTES_TTL_MS = 30_000;

/** routableProviders through the shared cache. The result is shared: callers must not mutate it. */
export function cachedRoutableProviders(ctx: AppContext, orgId: string): Promise<ProviderWithModels[]> {
  return ctx.caches.cache<ProviderWithModels[]>(ROUTES_CACHE, ROUTES_TTL_MS).get(orgId, () => routableProviders(ctx.db, orgId));
}

/** Call after a provider or model write committed: `orgId` of an account provider, null for a platform one. */
export function providersChanged(ctx: AppContext, orgId: string | null): Promise<void> {
  return ctx.caches.cache<ProviderWithModels[]>(ROUTES_CACHE, ROUTES_TTL_MS).invalidate(orgId ?? ALL_KEYS);
}
