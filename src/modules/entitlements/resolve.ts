// The one entitlement resolution (api.md §18, §28.1) every enforcement point reads: for a key
// and an account, first match wins —
//   environment → (feature.* only) a feature flag of that key → a live override → the active
//   subscription's plan → the stored platform setting → the built-in default.
// The account's overrides and active plans are cached (ctx.caches) and dropped in every process
// by entitlementsChanged; expiry is decided at read time against ctx.clock, so an override that
// runs out stops counting on the next request without any write.
import type { AppContext } from '../../app-context.js';
import { ALL_KEYS } from '../../db/shared-cache.js';
import type { EntitlementValueType } from '../../db/schema.js';
import { accountFlag } from '../feature-flags/flags.js';
import { activePlansOf, type PlanEntitlement } from '../plans/store.js';
import { SETTINGS, type SettingValue } from '../settings/registry.js';
import { BUILTIN_DEFAULTS, ENTITLEMENT_KEYS, entitlementTypeOf, stringValue, typedValue } from './keys.js';
import { listOverrides } from './store.js';

export type EntitlementSource = 'env' | 'flag' | 'override' | 'plan' | 'setting' | 'default';
export interface Resolved {
  value: SettingValue;
  source: EntitlementSource;
}

interface Layers {
  overrides: ReadonlyMap<string, PlanEntitlement & { expiresAt: number | null }>;
  plans: ReadonlyArray<{ start: number; end: number; createdAt: number; entitlements: ReadonlyMap<string, PlanEntitlement> }>;
}

const CACHE = 'entitlements';
const TTL_MS = 30_000;
const cache = (ctx: AppContext) => ctx.caches.cache<Layers>(CACHE, TTL_MS);

function layers(ctx: AppContext, orgId: string): Promise<Layers> {
  return cache(ctx).get(orgId, async () => {
    const [overrides, plans] = await Promise.all([listOverrides(ctx.db, orgId), activePlansOf(ctx.db, orgId)]);
    return {
      overrides: new Map(overrides.map((o) => [o.key, { key: o.key, value: o.value, value_type: o.value_type, expiresAt: o.expires_at ? o.expires_at.getTime() : null }])),
      plans: plans.map((p) => ({ ...p, entitlements: new Map(p.entitlements.map((e) => [e.key, e])) })),
    };
  });
}

/** Call after a change of an account's overrides or subscriptions committed (null: a plan changed, every account). */
export function entitlementsChanged(ctx: AppContext, orgId: string | null): Promise<void> {
  return cache(ctx).invalidate(orgId ?? ALL_KEYS);
}

/** The plan values in force at `now`: the newest subscription whose period holds it. */
function planInForce(l: Layers, now: number): ReadonlyMap<string, PlanEntitlement> | null {
  let best: Layers['plans'][number] | null = null;
  for (const p of l.plans) if (p.start <= now && now < p.end && (!best || p.createdAt > best.createdAt)) best = p;
  return best ? best.entitlements : null;
}

function stored(e: PlanEntitlement, key: string): SettingValue {
  // Values were checked against the key's type when written; a free key keeps its own type.
  return typedValue(e.value, entitlementTypeOf(key) ?? e.value_type);
}

/** The effective value of `key` for account `orgId`, and where it came from. */
export async function resolveEntitlement(ctx: AppContext, orgId: string, key: string): Promise<Resolved> {
  const setting = SETTINGS.has(key) ? await ctx.settings.resolve(key) : null;
  if (setting?.source === 'env') return { value: setting.value, source: 'env' };
  if (key.startsWith('feature.')) {
    const flag = await accountFlag(ctx, orgId, key);
    if (flag !== null) return { value: flag.enabled, source: 'flag' };
  }
  const l = await layers(ctx, orgId);
  const now = ctx.clock.nowMs();
  const o = l.overrides.get(key);
  if (o && (o.expiresAt === null || o.expiresAt > now)) return { value: stored(o, key), source: 'override' };
  const plan = planInForce(l, now)?.get(key);
  if (plan) return { value: stored(plan, key), source: 'plan' };
  if (setting) return { value: setting.value, source: setting.source === 'db' ? 'setting' : 'default' };
  return { value: BUILTIN_DEFAULTS.get(key) ?? '', source: 'default' };
}

export async function entitlementInt(ctx: AppContext, orgId: string, key: string): Promise<number> {
  const v = (await resolveEntitlement(ctx, orgId, key)).value;
  return typeof v === 'number' ? v : Number(v) || 0;
}

export async function entitlementBool(ctx: AppContext, orgId: string, key: string): Promise<boolean> {
  return (await resolveEntitlement(ctx, orgId, key)).value === true;
}

export async function entitlementString(ctx: AppContext, orgId: string, key: string): Promise<string> {
  return stringValue((await resolveEntitlement(ctx, orgId, key)).value);
}

/** Every key of §18's table for the account, as GET /v1/entitlements shows it. */
export async function effectiveEntitlements(ctx: AppContext, orgId: string) {
  const out: Array<{ key: string; value: string; value_type: EntitlementValueType; source: EntitlementSource }> = [];
  for (const k of ENTITLEMENT_KEYS) {
    const r = await resolveEntitlement(ctx, orgId, k.key);
    out.push({ key: k.key, value: stringValue(r.value), value_type: k.type, source: r.source });
  }
  return out;
}
