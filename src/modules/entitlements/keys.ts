// The entitlement keys (api.md §18) and the rules a stored value must follow. Shared by plan
// entitlements and overrides, so a value that could not be enforced is refused when written.
import type { EntitlementValueType } from '../../db/schema.js';
import { SETTINGS, type SettingDef } from '../settings/registry.js';

/** The keys the platform enforces, in the order GET /v1/entitlements lists them. */
export const ENTITLEMENT_KEYS: ReadonlyArray<{ key: string; type: EntitlementValueType }> = [
  { key: 'quota.runs_per_month', type: 'integer' },
  { key: 'quota.tokens_per_month', type: 'integer' },
  { key: 'limit.concurrent_runs', type: 'integer' },
  { key: 'limit.team_members', type: 'integer' },
  { key: 'limit.agent_reasoning_iterations', type: 'integer' },
  { key: 'limit.tool_continuation_budget', type: 'integer' },
  { key: 'limit.max_input_content_bytes', type: 'integer' },
  { key: 'credits.monthly_grant', type: 'integer' },
  { key: 'feature.byok_enabled', type: 'boolean' },
  { key: 'feature.mcp_remote_enabled', type: 'boolean' },
];

/** Keys of the table that are not platform settings, with their built-in default. */
export const BUILTIN_DEFAULTS: ReadonlyMap<string, number | boolean | string> = new Map([['credits.monthly_grant', 0]]);

const MAX_INTEGER = 1_000_000_000_000_000;

const SETTING_TYPE: Record<string, EntitlementValueType | undefined> = { int: 'integer', bool: 'boolean', string: 'string' };

/** The type a key's value must have when the platform reads it (an enforced key or a `both` setting); null for free keys. */
export function entitlementTypeOf(key: string): EntitlementValueType | null {
  const enforced = ENTITLEMENT_KEYS.find((k) => k.key === key);
  if (enforced) return enforced.type;
  const def = SETTINGS.get(key);
  return def && def.scope === 'both' ? (SETTING_TYPE[def.type] ?? null) : null;
}

/** A stored string as the typed value the platform reads. */
export function typedValue(value: string, type: EntitlementValueType): number | boolean | string {
  if (type === 'integer') return Number(value);
  if (type === 'boolean') return value === 'true';
  return value;
}

export function stringValue(value: unknown): string {
  return typeof value === 'string' ? value : typeof value === 'object' ? JSON.stringify(value) : String(value);
}

/**
 * Why `value` of `valueType` cannot be stored for `key`, or null when it can: it must parse as
 * its type (§17.3) and, for a key the platform reads, have that key's type and range (decided).
 */
export function entitlementValueProblem(key: string, value: string, valueType: EntitlementValueType): string | null {
  if (valueType === 'integer') {
    if (!/^-?[0-9]+$/.test(value)) return 'must be an integer';
    if (Math.abs(Number(value)) > MAX_INTEGER) return `must be within ±${MAX_INTEGER}`;
  } else if (valueType === 'boolean') {
    if (value !== 'true' && value !== 'false') return 'must be true or false';
  } else if (value.length > 1000) return 'must be at most 1000 characters';
  const expected = entitlementTypeOf(key);
  if (expected && expected !== valueType) return `${key} takes a value of type ${expected}`;
  const def: SettingDef | undefined = SETTINGS.get(key);
  if (valueType === 'integer') {
    const n = Number(value);
    const min = def?.min ?? (BUILTIN_DEFAULTS.has(key) ? 0 : undefined);
    if (min !== undefined && n < min) return `must be ≥ ${min}`;
    if (def?.max !== undefined && n > def.max) return `must be ≤ ${def.max}`;
  }
  if (valueType === 'string' && def?.enum && !def.enum.includes(value)) return `must be one of ${def.enum.filter(Boolean).join(', ')}`;
  return null;
}
