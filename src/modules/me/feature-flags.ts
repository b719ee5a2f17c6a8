// Feature flag evaluation for an account (api.md §24): override, else default; the
// setting-backed keys follow an environment value first.
import type { AppContext } from '../../app-context.js';
import { ALL_KEYS } from '../../db/shared-cache.js';

const SETTING_BACKED = new Set(['feature.byok_enabled', 'feature.mcp_remote_enabled']);

interface FlagRow {
  key: string;
  default_value: boolean;
  enabled: boolean | null;
}

// Flags are read on hot paths (every run asks feature.byok_enabled): cached per account and
// dropped in every process by flagsChanged. The TTL only bounds a lost notification.
const FLAGS_CACHE = 'feature_flags';
const FLAGS_TTL_MS = 30_000;
const flagCache = (ctx: AppContext) => ctx.caches.cache<readonly FlagRow[]>(FLAGS_CACHE, FLAGS_TTL_MS);

/** The flags with the account's overrides, by key. */
function flagsWithOverrides(ctx: AppContext, orgId: string): Promise<readonly FlagRow[]> {
  return flagCache(ctx).get(orgId, async () => {
    const rows = await ctx.db
      .selectFrom('feature_flags as f')
      .leftJoin('feature_flag_overrides as o', (j) => j.onRef('o.flag_key', '=', 'f.key').on('o.org_id', '=', orgId))
      .select(['f.key', 'f.default_value', 'o.enabled'])
      .orderBy('f.key')
      .execute();
    return rows.map((r) => ({ key: r.key, default_value: r.default_value, enabled: r.enabled ?? null }));
  });
}

/** Call after a write to flags (orgId null: a flag itself) or to one account's overrides committed. */
export function flagsChanged(ctx: AppContext, orgId: string | null): Promise<void> {
  return flagCache(ctx).invalidate(orgId ?? ALL_KEYS);
}

/** The environment value of a setting-backed key, which wins over flags and overrides; else null. */
async function envValue(ctx: AppContext, key: string): Promise<boolean | null> {
  if (!SETTING_BACKED.has(key)) return null;
  const s = await ctx.settings.resolve(key);
  return s.source === 'env' ? s.value === true : null;
}

export async function evaluateFlagsForAccount(ctx: AppContext, orgId: string) {
  const rows = await flagsWithOverrides(ctx, orgId);
  const out: Array<{ key: string; enabled: boolean; source: 'env' | 'override' | 'default' }> = [];
  for (const r of rows) {
    const env = await envValue(ctx, r.key);
    if (env !== null) out.push({ key: r.key, enabled: env, source: 'env' });
    else if (r.enabled !== null && r.enabled !== undefined) out.push({ key: r.key, enabled: r.enabled, source: 'override' });
    else out.push({ key: r.key, enabled: r.default_value, source: 'default' });
  }
  return out;
}

/** The flag `key` for the account (its override, else its default); null when no flag has that key. */
export async function flagValue(ctx: AppContext, orgId: string, key: string): Promise<boolean | null> {
  const row = (await flagsWithOverrides(ctx, orgId)).find((r) => r.key === key);
  return row ? (row.enabled ?? row.default_value) : null;
}
