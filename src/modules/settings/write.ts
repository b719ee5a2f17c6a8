// Writing platform settings (api.md §21.24–21.26, §21.9): one transaction for every key of a
// request with its audit row(s), then every process re-reads its settings (NOTIFY), and a key
// an account's entitlements fall back to (scope `both`: limit.*, quota.*, feature.*, …) drops
// the entitlement caches too. Sensitive values are sealed before they are stored and
// redacted in audit rows.
import type { AppContext } from '../../app-context.js';
import { auditedWrite } from '../audit/audited-write.js';
import type { AuditEntry, AuditOrigin } from '../audit/store.js';
import { entitlementsChanged } from '../entitlements/resolve.js';
import { SETTINGS, type SettingValue } from './registry.js';
import { deleteStoredSetting, lockSettings, sealFor, storedSecretSet, upsertSetting, type StoredSetting } from './store.js';

/** A key's new value; null removes the stored value. */
export type SettingChanges = ReadonlyMap<string, SettingValue | null>;

const REDACTED = '[redacted]';

/** Keys an account's entitlements fall back to (§18): every `both` key, and limits, quotas and features. */
const feedsEntitlements = (key: string) => SETTINGS.get(key)?.scope === 'both' || /^(limit|quota|feature)\./.test(key);

/** What an audit row shows of a stored value: sensitive ones only as "[redacted]" (or null when unset). */
function auditValue(key: string, stored: unknown): unknown {
  if (stored === undefined) return null;
  if (SETTINGS.get(key)?.sensitive) return storedSecretSet(stored) ? REDACTED : '';
  return stored;
}

export interface WriteOptions {
  actorUserId: string;
  /** The audit rows for the change (default: one `platform_setting.update` per key). */
  audit?: (before: ReadonlyMap<string, StoredSetting>) => AuditEntry[];
}

export async function writeSettings(ctx: AppContext, origin: AuditOrigin, changes: SettingChanges, opts: WriteOptions): Promise<void> {
  const keys = [...changes.keys()].sort(); // one lock order for every writer
  await auditedWrite(ctx.db, origin, async (trx) => {
    const before = await lockSettings(trx, keys);
    const audit: AuditEntry[] = [];
    for (const key of keys) {
      const value = changes.get(key)!;
      const def = SETTINGS.get(key)!;
      const stored = value === null ? undefined : sealFor(def, value, ctx.secrets.encryptionKey);
      if (stored === undefined) await deleteStoredSetting(trx, key);
      else await upsertSetting(trx, key, stored, opts.actorUserId);
      audit.push({
        orgId: null,
        actorUserId: opts.actorUserId,
        action: 'platform_setting.update',
        targetType: 'platform_setting',
        targetId: key,
        metadata: { setting: key, removed: value === null, sensitive: def.sensitive === true },
        before: { value: auditValue(key, before.get(key)?.value) },
        after: { value: auditValue(key, stored) },
      });
    }
    return { result: null, audit: opts.audit ? opts.audit(before) : audit };
  });
  await ctx.settings.changed();
  if (keys.some(feedsEntitlements)) await entitlementsChanged(ctx, null);
}
