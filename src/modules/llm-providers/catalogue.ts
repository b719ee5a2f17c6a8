// The upstream model catalogue of a provider (api.md §12.9): OpenAI `GET <base>/models`,
// Anthropic `GET <base>/v1/models`; the stub answers without network. Org-scope providers go
// through the SSRF guard; platform ones are trusted (§12).
import { AppError } from '../../http/errors.js';
import { advancedRequestParts } from '../../llm/index.js';
import { decryptSecret } from '../../lib/crypto.js';
import { SsrfBlockedError, guardedFetch } from '../../lib/ssrf.js';
import type { ProviderRow } from './store.js';

const DEFAULT_TIMEOUT_MS = 10_000;
const OPENAI_BASE = 'https://api.openai.com/v1';
const ANTHROPIC_BASE = 'https://api.anthropic.com';

export interface CatalogueModel {
  id: string;
  name: string;
}

/** The upstream's models, or the contract's provider.* / policy.ssrf_blocked error. */
export async function upstreamModels(p: ProviderRow, opts: { encryptionKey: string; allowPrivate: boolean }): Promise<CatalogueModel[]> {
  if (p.provider === 'stub') return [{ id: 'stub', name: 'stub' }];
  const key = p.api_key_enc ? decryptSecret(p.api_key_enc, opts.encryptionKey) : '';
  const [url, auth] =
    p.provider === 'openai'
      ? [`${(p.base_url ?? OPENAI_BASE).replace(/\/+$/, '')}/models`, { authorization: `Bearer ${key}` }]
      : [`${(p.base_url ?? ANTHROPIC_BASE).replace(/\/+$/, '').replace(/\/v1$/, '')}/v1/models?limit=1000`, { 'x-api-key': key, 'anthropic-version': '2023-06-01' }];
  const doFetch = p.scope === 'org' ? guardedFetch({ allowPrivate: opts.allowPrivate }) : fetch;
  // The provider's advanced_json.timeout_ms bounds this call as it bounds its model calls.
  const configured = (p.advanced_json as Record<string, unknown> | null)?.timeout_ms;
  const timeoutMs = typeof configured === 'number' && configured > 0 ? Math.min(configured, DEFAULT_TIMEOUT_MS) : DEFAULT_TIMEOUT_MS;
  const timedOut = () => new AppError('provider.timeout', `the provider did not answer within ${timeoutMs / 1000} s`);
  let res: Response;
  try {
    res = await doFetch(url, { headers: { accept: 'application/json', ...advancedRequestParts(p.advanced_json as Record<string, unknown> | null).headers, ...auth }, signal: AbortSignal.timeout(timeoutMs) });
  } catch (err) {
    if (err instanceof SsrfBlockedError) throw new AppError('policy.ssrf_blocked', err.message);
    if ((err as Error).name === 'TimeoutError') throw timedOut();
    throw new AppError('provider.unavailable', 'the provider could not be reached');
  }
  let body: unknown;
  try {
    body = await res.json();
  } catch (err) {
    if ((err as Error).name === 'TimeoutError') throw timedOut();
    body = null;
  }
  if (res.status === 401 || res.status === 403) throw new AppError('provider.auth_failed', 'the provider refused the credential', { upstream_status: res.status });
  if (!res.ok) throw new AppError('provider.unavailable', `the provider answered ${res.status}`, { upstream_status: res.status });
  const data = (body as { data?: unknown } | null)?.data;
  if (!Array.isArray(data)) throw new AppError('provider.unavailable', 'the provider answered with an unexpected body');
  const out: CatalogueModel[] = [];
  for (const m of data as Array<{ id?: unknown; display_name?: unknown }>) {
    if (typeof m?.id !== 'string') continue;
    out.push({ id: m.id, name: typeof m.display_name === 'string' ? m.display_name : m.id });
  }
  return out.sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
}
