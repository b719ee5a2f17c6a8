// Setting resolution (api.md §28.1): environment → (entitlements, for `both` keys; added by
// the billing module) → stored platform setting → default. Stored values are cached; a write
// (settings/write.ts) re-reads them here and NOTIFYs every other process to do the same, and
// a re-read every 10 s bounds staleness if a notification is lost. Sensitive values are
// stored encrypted (`{"$enc": "v1:…"}`) and decrypted here.
import type { Kysely } from 'kysely';
import { ConfigError } from '../../lib/config-error.js';
import { decryptSecret } from '../../lib/crypto.js';
import type { Database } from '../../db/database.js';
import type { DB } from '../../db/schema.js';
import { SETTINGS, envNameFor, parseSettingString, type SettingDef, type SettingValue } from './registry.js';
import { envValue } from '../../config/env.js';

export type SettingSource = 'env' | 'db' | 'default';

const REFRESH_MS = 10_000;
const CHANNEL = 'arkloop_settings';

/** The stored form of a sensitive value: encrypted with the platform key. */
export interface SealedSetting {
  $enc: string;
}

export function isSealed(v: unknown): v is SealedSetting {
  return !!v && typeof v === 'object' && !Array.isArray(v) && typeof (v as SealedSetting).$enc === 'string';
}

/** Settings forced by environment (§28.1), parsed and validated; throws naming the variable. */
export function parseSettingsEnv(env: Readonly<Record<string, string | undefined>>): Map<string, { value: SettingValue; variable: string }> {
  const out = new Map<string, { value: SettingValue; variable: string }>();
  for (const def of SETTINGS.values()) {
    for (const variable of [envNameFor(def.key), ...(def.envAliases ?? [])]) {
      const raw = envValue(env, variable);
      if (raw === undefined) continue;
      try {
        out.set(def.key, { value: parseSettingString(def, raw), variable });
      } catch (err) {
        throw new ConfigError(`${variable} ${(err as Error).message}, got "${def.sensitive ? '***' : raw}"`);
      }
      break;
    }
  }
  return out;
}

export class SettingsService {
  private readonly fromEnv: Map<string, { value: SettingValue; variable: string }>;
  private stored = new Map<string, SettingValue>();
  private loadedAt = 0;
  private loading: Promise<void> | null = null;
  /** Bumped by invalidate(): a load that began before it does not count as fresh. */
  private generation = 0;
  private database: Database | null = null;
  private unlisten: (() => Promise<void>) | null = null;

  constructor(
    private readonly db: Kysely<DB>,
    env: Readonly<Record<string, string>>,
    private readonly encryptionKey: string | null = null,
  ) {
    this.fromEnv = parseSettingsEnv(env);
  }

  /** The environment variable forcing `key`, if any (§28.1 rule 1). */
  envVariable(key: string): string | null {
    return this.fromEnv.get(key)?.variable ?? null;
  }

  /** Re-reads stored values when another process (or this one) announces a change. */
  async listen(database: Database): Promise<void> {
    this.database = database;
    try {
      this.unlisten = await database.listen(CHANNEL, () => void this.refresh());
    } catch {
      // Without a listener, changes from other processes arrive with the 10 s re-read.
    }
    database.onReconnect(() => void this.refresh());
  }

  /** Call after stored settings changed (committed): re-read here, then in every other process. */
  async changed(): Promise<void> {
    await this.refresh();
    await this.database?.notify(CHANNEL, 'changed').catch(() => undefined);
  }

  async close(): Promise<void> {
    await this.unlisten?.().catch(() => undefined);
  }

  private unseal(key: string, value: unknown): SettingValue | undefined {
    if (!SETTINGS.get(key)?.sensitive || !isSealed(value)) return value as SettingValue;
    if (!this.encryptionKey) return undefined;
    try {
      return decryptSecret(value.$enc, this.encryptionKey);
    } catch {
      // Sealed under another key: as if unset (the admin can store it again).
      return undefined;
    }
  }

  def(key: string): SettingDef {
    const def = SETTINGS.get(key);
    if (!def) throw new Error(`unknown setting ${key}`);
    return def;
  }

  private load(): Promise<void> {
    if (!this.loading) {
      const generation = this.generation;
      this.loading = (async () => {
        try {
          const rows = await this.db.selectFrom('platform_settings').select(['key', 'value']).execute();
          const stored = new Map<string, SettingValue>();
          for (const r of rows) {
            const v = this.unseal(r.key, r.value);
            if (v !== undefined) stored.set(r.key, v);
          }
          this.stored = stored;
          // A load that began before the latest invalidate() may have read the old rows: its
          // values stand in meanwhile, but readers waiting on the invalidation read again.
          if (generation === this.generation) this.loadedAt = Date.now();
        } finally {
          this.loading = null;
        }
      })();
    }
    return this.loading;
  }

  /**
   * Only the very first load is waited for (createContext preloads it). Later refreshes run
   * in the background and the current values answer meanwhile: a caller inside a
   * transaction must never wait for a query of its own (on the embedded engine, with one
   * session, that would deadlock).
   */
  private async ensureLoaded(): Promise<void> {
    while (this.loadedAt === 0) await this.load();
    if (Date.now() - this.loadedAt >= REFRESH_MS && !this.loading) {
      this.load().catch(() => undefined);
    }
  }

  /** Loads stored settings at start (errors are left for the first real read to report). */
  async preload(): Promise<void> {
    await this.load().catch(() => undefined);
  }

  /** Re-read stored values now; reads wait for it (tests that write rows directly use this). */
  async invalidate(): Promise<void> {
    this.generation++;
    this.loadedAt = 0;
    await this.refresh();
  }

  /**
   * Re-read stored values now; resolves when done. Readers meanwhile keep the current values
   * rather than wait: one inside a transaction must never wait for a query (see ensureLoaded).
   */
  async refresh(): Promise<void> {
    // A background refresh already under way may have read before the write: wait it out and read again.
    if (this.loading) await this.loading.catch(() => undefined);
    await this.load().catch(() => undefined);
  }

  async resolve(key: string): Promise<{ value: SettingValue; source: SettingSource }> {
    const def = this.def(key);
    const env = this.fromEnv.get(key);
    if (env) return { value: env.value, source: 'env' };
    await this.ensureLoaded();
    if (this.stored.has(key)) return { value: this.stored.get(key)!, source: 'db' };
    return { value: def.default, source: 'default' };
  }

  async get<T extends SettingValue>(key: string): Promise<T> {
    return (await this.resolve(key)).value as T;
  }

  async int(key: string): Promise<number> {
    return this.get<number>(key);
  }

  async bool(key: string): Promise<boolean> {
    return this.get<boolean>(key);
  }

  async string(key: string): Promise<string> {
    return this.get<string>(key);
  }
}
