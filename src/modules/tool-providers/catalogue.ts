// The tool-provider catalogue of api.md §14: the two groups the model sees (web_search,
// web_fetch) and the backends an account or the platform may pick for each, with what each
// needs before it can be activated.

export type ToolGroup = 'web_search' | 'web_fetch';
export type ToolProviderName = 'web_search.tavily' | 'web_search.searxng' | 'web_fetch.basic' | 'web_fetch.jina' | 'web_fetch.firecrawl';

export interface CatalogueEntry {
  group: ToolGroup;
  name: ToolProviderName;
  requiresApiKey: boolean;
  requiresBaseUrl: boolean;
  /** Takes no credential at all (`web_fetch.basic`). */
  takesNothing: boolean;
}

const entry = (group: ToolGroup, short: string, requiresApiKey: boolean, requiresBaseUrl: boolean, takesNothing = false): CatalogueEntry => ({
  group,
  name: `${group}.${short}` as ToolProviderName,
  requiresApiKey,
  requiresBaseUrl,
  takesNothing,
});

/** Groups in answer order, providers in catalogue order (§14.1). */
export const TOOL_GROUPS: readonly ToolGroup[] = ['web_search', 'web_fetch'];

export const CATALOGUE: readonly CatalogueEntry[] = [
  entry('web_search', 'tavily', true, false),
  entry('web_search', 'searxng', false, true),
  entry('web_fetch', 'basic', false, false, true),
  entry('web_fetch', 'jina', true, false),
  entry('web_fetch', 'firecrawl', true, false),
];

export function providersOf(group: ToolGroup): CatalogueEntry[] {
  return CATALOGUE.filter((e) => e.group === group);
}

/**
 * The catalogue entry a path addresses: `{group}` plus `{provider}` as the full provider_name
 * (`web_search.tavily`) or its short form (`tavily`, decided alias). Null when unknown or not
 * in that group.
 */
export function findEntry(group: string, provider: string): CatalogueEntry | null {
  const name = provider.includes('.') ? provider : `${group}.${provider}`;
  return CATALOGUE.find((e) => e.group === group && e.name === name) ?? null;
}

/** Whether stored fields satisfy what the provider needs (§14.4). */
export function isConfigured(e: CatalogueEntry, state: { hasKey: boolean; baseUrl: string | null }): boolean {
  return (!e.requiresApiKey || state.hasKey) && (!e.requiresBaseUrl || !!state.baseUrl);
}

/** `key_prefix` as shown (§14, decided): first 5 chars + `****` + last 4; short keys only `****`. */
export function maskKey(key: string): string {
  return key.length < 12 ? '****' : `${key.slice(0, 5)}****${key.slice(-4)}`;
}
