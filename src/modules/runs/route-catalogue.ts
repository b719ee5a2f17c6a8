// Loads what route resolution (routing.ts) needs for one account: its providers and the
// platform's with their models, whether BYOK is on, and how a stored provider becomes a
// runtime configuration (key decrypted; account-owned ones call through the SSRF guard).
import type { AppContext } from '../../app-context.js';
import type { ProviderConfig } from '../../llm/index.js';
import { decryptSecret } from '../../lib/crypto.js';
import { guardedFetch } from '../../lib/ssrf.js';
import { cachedRoutableProviders, type ProviderRow } from '../llm-providers/store.js';
import { isFeatureEnabled } from '../feature-flags/evaluate.js';
import type { RouteCatalogue } from './routing.js';

export async function loadRouteCatalogue(ctx: AppContext, orgId: string): Promise<RouteCatalogue> {
  const providers = await cachedRoutableProviders(ctx, orgId);
  if (providers.length === 0) return { providers, byok: false, configOf: () => { throw new Error('no providers'); } };
  const byok = await isFeatureEnabled(ctx, orgId, 'feature.byok_enabled');
  const allowPrivate = await ctx.settings.bool('security.ssrf_allow_private');
  const configOf = (row: ProviderRow): ProviderConfig => ({
    kind: row.provider,
    name: row.name,
    apiKey: row.api_key_enc ? decryptSecret(row.api_key_enc, ctx.secrets.encryptionKey) : null,
    baseUrl: row.base_url,
    // §12: `auto` = the Responses API on OpenAI's own endpoint, Chat Completions elsewhere.
    openaiApiMode: row.openai_api_mode === 'auto' || row.openai_api_mode === null ? (row.base_url ? 'chat_completions' : 'responses') : (row.openai_api_mode as ProviderConfig['openaiApiMode']),
    ...(row.scope === 'org' ? { fetch: guardedFetch({ allowPrivate }) } : {}),
  });
  return { providers, byok, configOf };
}
