// web_search backends, speaking the providers' own wire formats:
//   Tavily   POST <base or https://api.tavily.com>/search, `Authorization: Bearer <key>`,
//            JSON {query, max_results, search_depth}; answer {results: [{title, url, content}]}
//   SearXNG  GET <base>/search?q=…&format=json (the instance must enable the json format);
//            answer {results: [{title, url, content}]}
import { ToolError } from '../types.js';
import { fetchJson, str, type HttpPolicy } from './http.js';
import type { Backend } from './resolve.js';

export interface SearchResult {
  title: string;
  url: string;
  snippet: string;
}

export interface SearchQuery {
  query: string;
  maxResults: number;
}

export interface NetContext {
  policy: HttpPolicy;
  signal: AbortSignal;
  timeoutMs: number;
}

export const TAVILY_DEFAULT_BASE = 'https://api.tavily.com';

/** `{title, url, snippet}` of upstream result objects; entries without a URL are dropped. */
function results(body: unknown, upstream: string, snippetKey: string, max: number): SearchResult[] {
  const list = (body as { results?: unknown } | null)?.results;
  if (!Array.isArray(list)) throw new ToolError('tool.execution_failed', `${upstream} answer has no results list`);
  const out: SearchResult[] = [];
  for (const r of list) {
    const url = str((r as Record<string, unknown>)?.url);
    if (!url) continue;
    out.push({ title: str(r.title) ?? '', url, snippet: str(r[snippetKey]) ?? '' });
    if (out.length >= max) break;
  }
  return out;
}

const base = (b: Backend, fallback: string | null) => (b.baseUrl ?? fallback ?? '').replace(/\/+$/, '');

export async function tavilySearch(b: Backend, q: SearchQuery, net: NetContext): Promise<SearchResult[]> {
  const { body } = await fetchJson(net.policy, {
    url: `${base(b, TAVILY_DEFAULT_BASE)}/search`,
    init: {
      method: 'POST',
      headers: { 'content-type': 'application/json', accept: 'application/json', authorization: `Bearer ${b.apiKey ?? ''}` },
      body: JSON.stringify({ query: q.query, max_results: q.maxResults, search_depth: 'basic' }),
    },
    timeoutMs: net.timeoutMs,
    signal: net.signal,
    upstream: 'Tavily',
  });
  return results(body, 'Tavily', 'content', q.maxResults);
}

export async function searxngSearch(b: Backend, q: SearchQuery, net: NetContext): Promise<SearchResult[]> {
  const url = new URL(`${base(b, null)}/search`);
  url.searchParams.set('q', q.query);
  url.searchParams.set('format', 'json');
  const headers: Record<string, string> = { accept: 'application/json' };
  // A key stored for SearXNG is sent as a bearer token, for instances behind an authenticating proxy.
  if (b.apiKey) headers.authorization = `Bearer ${b.apiKey}`;
  const { body } = await fetchJson(net.policy, { url: url.href, init: { method: 'GET', headers }, timeoutMs: net.timeoutMs, signal: net.signal, upstream: 'SearXNG' });
  return results(body, 'SearXNG', 'content', q.maxResults);
}
