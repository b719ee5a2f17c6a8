// The flags of an account as evaluation reads them, and the one rule of §24 for a flag:
// the account's override if it has one, else the flag's default. Read on hot paths (every run
// asks feature.byok_enabled), so cached per account and dropped in every process by
// flagsChanged after each write; the TTL (the contract's 10 s) only bounds a lost notification.
import type { AppContext } from '../../app-context.js';
import { ALL_KEYS } from '../../db/shared-cache.js';
import { flagsWithOverridesOf } from './store.js';

interface AccountFlag {
  defaultValue: boolean;
  override: boolean | null;
}
type AccountFlags = ReadonlyMap<string, AccountFlag>;

export interface FlagDecision {
  enabled: boolean;
  source: 'override' | 'default';
}

const CACHE = 'feature_flags';
const TTL_MS = 10_000;
const cache = (ctx: AppContext) => ctx.caches.cache<AccountFlags>(CACHE, TTL_MS);

/** Every flag, with the account's override of it. */
export function accountFlags(ctx: AppContext, orgId: string): Promise<AccountFlags> {
  return cache(ctx).get(orgId, async () => {
    const rows = await flagsWithOverridesOf(ctx.db, orgId);
    return new Map(rows.sort((a, b) => (a.key < b.key ? -1 : 1)).map((r) => [r.key, { defaultValue: r.default_value, override: r.enabled ?? null }]));
  });
}

/** Call after a write to flags (orgId null: a flag itself, every account) or to one account's overrides committed. */
export function flagsChanged(ctx: AppContext, orgId: string | null): Promise<void> {
  return cache(ctx).invalidate(orgId ?? ALL_KEYS);
}

/** The flag `key` for the account: its override, else the flag's default; null when no flag has that key. */
export function decideFlag(flags: AccountFlags, key: string): FlagDecision | null {
  const f = flags.get(key);
  if (!f) return null;
  return f.override !== null ? { enabled: f.override, source: 'override' } : { enabled: f.defaultValue, source: 'default' };
}

export async function accountFlag(ctx: AppContext, orgId: string, key: string): Promise<FlagDecision | null> {
  return decideFlag(await accountFlags(ctx, orgId), key);
}
