// Which backend serves a web_search / web_fetch call (api.md §27.5), decided at call time, first
// that applies: the account's active org tool provider → the active platform one → the settings
// (`web_search.provider` + its keys, `web_fetch.provider`, default basic) → none, and the call
// fails with tool.not_configured. Read on every call, so a change applies to the next call.
import type { AppContext } from '../../app-context.js';
import { decryptSecret } from '../../lib/crypto.js';
import type { ToolGroup, ToolProviderName } from '../../modules/tool-providers/catalogue.js';
import { cachedActiveConfig, catalogueEntry, rowConfigured, type ToolProviderRow } from '../../modules/tool-providers/store.js';
import { ToolError } from '../types.js';

export interface Backend {
  provider: ToolProviderName;
  /** Where the configuration came from; only `org` ones go through the SSRF guard (platform and settings are trusted). */
  source: 'org' | 'platform' | 'settings';
  apiKey: string | null;
  baseUrl: string | null;
}

function fromRow(ctx: AppContext, row: ToolProviderRow, source: 'org' | 'platform'): Backend | null {
  const entry = catalogueEntry(row.provider_name);
  if (!entry || !rowConfigured(entry, row)) return null;
  let apiKey: string | null = null;
  if (row.api_key_enc) {
    try {
      apiKey = decryptSecret(row.api_key_enc, ctx.secrets.encryptionKey);
    } catch {
      throw new ToolError('tool.execution_failed', `the stored key of ${row.provider_name} cannot be read`);
    }
  }
  return { provider: entry.name, source, apiKey, baseUrl: row.base_url };
}

async function fromSettings(ctx: AppContext, group: ToolGroup): Promise<Backend | null> {
  const s = (key: string) => ctx.settings.string(key);
  const none = (v: string) => (v.trim() === '' ? null : v.trim());
  if (group === 'web_search') {
    const provider = await s('web_search.provider');
    if (provider === 'tavily') {
      const apiKey = none(await s('web_search.tavily_api_key'));
      return apiKey ? { provider: 'web_search.tavily', source: 'settings', apiKey, baseUrl: null } : null;
    }
    if (provider === 'searxng') {
      const baseUrl = none(await s('web_search.searxng_base_url'));
      return baseUrl ? { provider: 'web_search.searxng', source: 'settings', apiKey: null, baseUrl } : null;
    }
    return null;
  }
  const provider = await s('web_fetch.provider');
  if (provider === 'jina') {
    const apiKey = none(await s('web_fetch.jina_api_key'));
    return apiKey ? { provider: 'web_fetch.jina', source: 'settings', apiKey, baseUrl: null } : null;
  }
  if (provider === 'firecrawl') {
    const apiKey = none(await s('web_fetch.firecrawl_api_key'));
    return apiKey ? { provider: 'web_fetch.firecrawl', source: 'settings', apiKey, baseUrl: none(await s('web_fetch.firecrawl_base_url')) } : null;
  }
  return provider === 'basic' ? { provider: 'web_fetch.basic', source: 'settings', apiKey: null, baseUrl: null } : null;
}

/** The backend of `group` for a call of account `orgId`; ToolError tool.not_configured when there is none. */
export async function resolveBackend(ctx: AppContext, orgId: string, group: ToolGroup): Promise<Backend> {
  const org = await cachedActiveConfig(ctx, orgId, group);
  const fromOrg = org ? fromRow(ctx, org, 'org') : null;
  if (fromOrg) return fromOrg;
  const platform = await cachedActiveConfig(ctx, null, group);
  const fromPlatform = platform ? fromRow(ctx, platform, 'platform') : null;
  if (fromPlatform) return fromPlatform;
  const fromSetting = await fromSettings(ctx, group);
  if (fromSetting) return fromSetting;
  throw new ToolError('tool.not_configured', `no ${group} backend is configured (tool providers or the ${group}.provider setting)`);
}
