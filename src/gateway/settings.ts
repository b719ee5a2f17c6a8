// The gateway's live configuration (api.md §21.11, §28.2): the `gateway.*` settings as one
// GatewayConfig. Read through the settings service where there is a database (environment
// overrides win there too), else from the environment and the defaults alone.
import type { SettingValue } from '../modules/settings/registry.js';
import { SETTINGS } from '../modules/settings/registry.js';
import { parseSettingsEnv } from '../modules/settings/service.js';
import type { IpMode } from './client-ip.js';

export interface GatewayConfig {
  ip_mode: IpMode;
  trusted_cidrs: string[];
  risk_reject_threshold: number;
  ratelimit_capacity: number;
  ratelimit_rate_per_minute: number;
}

/** Setting key of each GatewayConfig field. */
export const GATEWAY_KEYS = {
  ip_mode: 'gateway.ip_mode',
  trusted_cidrs: 'gateway.trusted_cidrs',
  risk_reject_threshold: 'gateway.risk_reject_threshold',
  ratelimit_capacity: 'gateway.ratelimit_capacity',
  ratelimit_rate_per_minute: 'gateway.ratelimit_rate_per_minute',
} as const satisfies Record<keyof GatewayConfig, string>;

export type SettingReader = (key: string) => Promise<SettingValue>;

export function splitCidrs(value: string): string[] {
  return value.split(',').map((s) => s.trim()).filter(Boolean);
}

export async function readGatewayConfig(read: SettingReader): Promise<GatewayConfig> {
  const [mode, cidrs, threshold, capacity, rate] = await Promise.all(Object.values(GATEWAY_KEYS).map(read));
  return {
    ip_mode: mode as IpMode,
    trusted_cidrs: splitCidrs(String(cidrs)),
    risk_reject_threshold: Number(threshold),
    ratelimit_capacity: Number(capacity),
    ratelimit_rate_per_minute: Number(rate),
  };
}

/** The reader of a gateway without a database: environment, then defaults. */
export function envSettingReader(env: Readonly<Record<string, string | undefined>>): SettingReader {
  const forced = parseSettingsEnv(env);
  return async (key) => forced.get(key)?.value ?? SETTINGS.get(key)!.default;
}
