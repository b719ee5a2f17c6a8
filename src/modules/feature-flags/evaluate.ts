// Whether a feature is on for an account (api.md §24), the one evaluation every caller uses:
// - a key that is also a setting (feature.byok_enabled, feature.mcp_remote_enabled) follows the
//   entitlement chain of §18 / §28.1: environment → the flag (override, else default) → an
//   entitlement override → the plan → the stored setting → the default;
// - any other key: the flag (override, else default), and false when no flag has that key.
import type { AppContext } from '../../app-context.js';
import { entitlementBool } from '../entitlements/resolve.js';
import { SETTINGS } from '../settings/registry.js';
import { accountFlag, accountFlags, decideFlag } from './flags.js';

const isSettingBacked = (key: string) => key.startsWith('feature.') && SETTINGS.has(key);

export async function isFeatureEnabled(ctx: AppContext, orgId: string, key: string): Promise<boolean> {
  if (isSettingBacked(key)) return entitlementBool(ctx, orgId, key);
  return (await accountFlag(ctx, orgId, key))?.enabled ?? false;
}

/** Every flag evaluated for the account, by key (GET /v1/me/feature-flags, §4.10). */
export async function evaluateFlagsForAccount(ctx: AppContext, orgId: string) {
  const flags = await accountFlags(ctx, orgId);
  const out: Array<{ key: string; enabled: boolean; source: 'env' | 'override' | 'default' }> = [];
  for (const key of flags.keys()) {
    const env = isSettingBacked(key) ? await ctx.settings.resolve(key) : null;
    if (env?.source === 'env') out.push({ key, enabled: env.value === true, source: 'env' });
    else out.push({ key, ...decideFlag(flags, key)! });
  }
  return out;
}
