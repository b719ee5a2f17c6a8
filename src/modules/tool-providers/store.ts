// Tool providers (api.md §14): the SQL of the tool-providers module. One row per scope +
// provider, created on the first write that needs it. The API key is stored encrypted
// (AES-256-GCM, ctx.secrets.encryptionKey); only its masked form is kept in clear.
import type { Kysely, Selectable, Transaction, Updateable } from 'kysely';
import type { DB, ToolProviderConfigsTable } from '../../db/schema.js';
import { newId } from '../../lib/ids.js';
import type { AppContext } from '../../app-context.js';
import { ALL_KEYS, ttlSecondsFromEnv } from '../../db/shared-cache.js';
import { CATALOGUE, TOOL_GROUPS, isConfigured, providersOf, type CatalogueEntry, type ToolGroup } from './catalogue.js';

export type ToolProviderRow = Selectable<ToolProviderConfigsTable>;
export type ToolProviderScope = 'org' | 'platform';

/** Rows of one account (`orgId`) or of the platform (`orgId` null). */
export async function listConfigs(db: Kysely<DB>, orgId: string | null): Promise<ToolProviderRow[]> {
  let q = db.selectFrom('tool_provider_configs').selectAll();
  q = orgId === null ? q.where('org_id', 'is', null) : q.where('org_id', '=', orgId);
  return q.execute();
}

/**
 * Creates the missing rows of `entries` in the scope, then locks them (in provider order, so
 * concurrent writers queue instead of deadlocking) and returns them by provider name.
 */
async function lockRows(trx: Transaction<DB>, orgId: string | null, entries: CatalogueEntry[]): Promise<Map<string, ToolProviderRow>> {
  const ordered = [...entries].sort((a, b) => a.name.localeCompare(b.name));
  await trx
    .insertInto('tool_provider_configs')
    .values(ordered.map((e) => ({ id: newId(), org_id: orgId, scope: orgId === null ? ('platform' as const) : ('org' as const), group_name: e.group, provider_name: e.name })))
    .onConflict((oc) => oc.doNothing())
    .execute();
  let q = trx.selectFrom('tool_provider_configs').selectAll().where('provider_name', 'in', ordered.map((e) => e.name));
  q = orgId === null ? q.where('org_id', 'is', null) : q.where('org_id', '=', orgId);
  const rows = await q.orderBy('provider_name').forUpdate().execute();
  return new Map(rows.map((r) => [r.provider_name, r]));
}

/** Locks every provider row of a group in the scope (activation switches among them). */
export function lockGroup(trx: Transaction<DB>, orgId: string | null, group: ToolGroup): Promise<Map<string, ToolProviderRow>> {
  return lockRows(trx, orgId, providersOf(group));
}

/** Locks one provider row of the scope, creating it when missing. */
export async function lockOne(trx: Transaction<DB>, orgId: string | null, entry: CatalogueEntry): Promise<ToolProviderRow> {
  return (await lockRows(trx, orgId, [entry])).get(entry.name)!;
}

export async function updateConfig(trx: Transaction<DB>, id: string, patch: Updateable<ToolProviderConfigsTable>): Promise<ToolProviderRow> {
  return trx.updateTable('tool_provider_configs').set({ ...patch, updated_at: new Date() }).where('id', '=', id).returningAll().executeTakeFirstOrThrow();
}

/** The active provider of a group in a scope, if any. */
export async function activeConfig(db: Kysely<DB>, orgId: string | null, group: ToolGroup): Promise<ToolProviderRow | undefined> {
  let q = db.selectFrom('tool_provider_configs').selectAll().where('group_name', '=', group).where('is_active', '=', true);
  q = orgId === null ? q.where('org_id', 'is', null) : q.where('org_id', '=', orgId);
  return q.executeTakeFirst();
}

export function rowConfigured(entry: CatalogueEntry, row: ToolProviderRow | undefined): boolean {
  return isConfigured(entry, { hasKey: !!row?.api_key_enc, baseUrl: row?.base_url ?? null });
}

/** The ToolProvider object (§2.6) of a catalogue entry in a scope, whether or not a row exists. */
export function shapeProvider(entry: CatalogueEntry, row: ToolProviderRow | undefined) {
  return {
    group_name: entry.group,
    provider_name: entry.name,
    is_active: row?.is_active ?? false,
    key_prefix: row?.key_prefix ?? null,
    base_url: row?.base_url ?? null,
    requires_api_key: entry.requiresApiKey,
    requires_base_url: entry.requiresBaseUrl,
    configured: rowConfigured(entry, row),
  };
}

export const catalogueEntry = (name: string): CatalogueEntry | undefined => CATALOGUE.find((e) => e.name === name);

// Every web tool call resolves its backend (org, then platform): cached per scope and group for
// ARKLOOP_TOOL_PROVIDER_CACHE_TTL_SECONDS (§29), dropped in every process by toolProvidersChanged.
const TOOL_PROVIDERS_CACHE = 'tool_providers';
const cacheOf = (ctx: AppContext) =>
  ctx.caches.cache<ToolProviderRow | null>(TOOL_PROVIDERS_CACHE, ttlSecondsFromEnv(ctx.config.env, ctx.log, 'ARKLOOP_TOOL_PROVIDER_CACHE_TTL_SECONDS', 60) * 1000);
const cacheKey = (orgId: string | null, group: ToolGroup) => `${orgId ?? 'platform'}:${group}`;

/** activeConfig through the shared cache (null when the scope has no active provider of the group). */
export async function cachedActiveConfig(ctx: AppContext, orgId: string | null, group: ToolGroup): Promise<ToolProviderRow | null> {
  return cacheOf(ctx).get(cacheKey(orgId, group), async () => (await activeConfig(ctx.db, orgId, group)) ?? null);
}

/** Call after a write to a scope's tool providers committed (`orgId` null: the platform's; ALL_KEYS: every scope). */
export async function toolProvidersChanged(ctx: AppContext, orgId: string | null): Promise<void> {
  if (orgId === ALL_KEYS) return cacheOf(ctx).invalidate(ALL_KEYS);
  for (const g of TOOL_GROUPS) await cacheOf(ctx).invalidate(cacheKey(orgId, g));
}
