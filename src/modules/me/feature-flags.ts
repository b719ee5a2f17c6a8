// Feature flag evaluation for an account (api.md §24): override, else default; the
// setting-backed keys follow an environment value first.
import type { AppContext } from '../../app-context.js';

const SETTING_BACKED = new Set(['feature.byok_enabled', 'feature.mcp_remote_enabled']);

/** The flags with the account's overrides. */
function flagsWithOverrides(ctx: AppContext, orgId: string) {
  return ctx.db
    .selectFrom('feature_flags as f')
    .leftJoin('feature_flag_overrides as o', (j) => j.onRef('o.flag_key', '=', 'f.key').on('o.org_id', '=', orgId))
    .select(['f.key', 'f.default_value', 'o.enabled']);
}

/** The environment value of a setting-backed key, which wins over flags and overrides; else null. */
async function envValue(ctx: AppContext, key: string): Promise<boolean | null> {
  if (!SETTING_BACKED.has(key)) return null;
  const s = await ctx.settings.resolve(key);
  return s.source === 'env' ? s.value === true : null;
}

export async function evaluateFlagsForAccount(ctx: AppContext, orgId: string) {
  const rows = await flagsWithOverrides(ctx, orgId).orderBy('f.key').execute();
  const out: Array<{ key: string; enabled: boolean; source: 'env' | 'override' | 'default' }> = [];
  for (const r of rows) {
    const env = await envValue(ctx, r.key);
    if (env !== null) out.push({ key: r.key, enabled: env, source: 'env' });
    else if (r.enabled !== null && r.enabled !== undefined) out.push({ key: r.key, enabled: r.enabled, source: 'override' });
    else out.push({ key: r.key, enabled: r.default_value, source: 'default' });
  }
  return out;
}

/**
 * One flag for an account (api.md §24): the environment value of a setting-backed key, else
 * the account's override, else the flag's default; a key without a flag is false, except the
 * setting-backed keys, which then follow the settings chain (§28.1).
 */
export async function isFeatureEnabled(ctx: AppContext, orgId: string, key: string): Promise<boolean> {
  const env = await envValue(ctx, key);
  if (env !== null) return env;
  const row = await flagsWithOverrides(ctx, orgId).where('f.key', '=', key).executeTakeFirst();
  if (row) return row.enabled ?? row.default_value;
  return SETTING_BACKED.has(key) && (await ctx.settings.bool(key)) === true;
}
