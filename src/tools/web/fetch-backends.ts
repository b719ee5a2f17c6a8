// web_fetch backends:
//   basic      fetches the page itself through the SSRF guard (every hop checked, ≤ 5
//              redirects), reads ≤ 2 MiB of body, reduces HTML to readable text (html-text.ts)
//              and passes other text through (api.md §27.5)
//   Jina       GET <base or https://r.jina.ai>/<url>, `Authorization: Bearer <key>`,
//              `Accept: application/json`; answer {code, data: {title, url, content}}
//   Firecrawl  POST <base or https://api.firecrawl.dev>/v1/scrape, `Authorization: Bearer <key>`,
//              JSON {url, formats: ["markdown"], onlyMainContent: true};
//              answer {success, data: {markdown, metadata: {title, url, sourceURL, statusCode, contentType}}}
import { ToolError } from '../types.js';
import { htmlToText } from './html-text.js';
import { cleanText, cut, fetchJson, httpExchange, str } from './http.js';
import type { Backend } from './resolve.js';
import type { NetContext } from './search-backends.js';

export interface FetchResult {
  url: string;
  final_url: string;
  status: number;
  content_type: string;
  title: string | null;
  content: string;
  truncated: boolean;
}

export const JINA_DEFAULT_BASE = 'https://r.jina.ai';
export const FIRECRAWL_DEFAULT_BASE = 'https://api.firecrawl.dev';

const HTML_TYPES = new Set(['text/html', 'application/xhtml+xml']);
const TEXT_TYPES = /^(text\/|application\/(json|xml|javascript|ecmascript|x-ndjson|ld\+json|rss\+xml|atom\+xml)$|application\/[\w.+-]+\+(json|xml)$)/;

/** What the body is, from its media type; a body sent without one is sniffed. */
function kindOf(mime: string, head: Uint8Array): 'html' | 'text' | 'binary' {
  if (HTML_TYPES.has(mime)) return 'html';
  if (TEXT_TYPES.test(mime)) return 'text';
  if (mime) return 'binary';
  const start = new TextDecoder().decode(head.subarray(0, 512)).trimStart().slice(0, 15).toLowerCase();
  if (start.startsWith('<!doctype html') || start.startsWith('<html')) return 'html';
  return head.subarray(0, 512).includes(0) ? 'binary' : 'text';
}

function decode(bytes: Uint8Array, contentType: string): string {
  const charset = contentType
    .split(';')
    .slice(1)
    .map((p) => p.trim().split('='))
    .find(([k]) => k.trim().toLowerCase() === 'charset')?.[1]
    ?.trim()
    .replace(/^"|"$/g, '');
  try {
    return new TextDecoder(charset || 'utf-8').decode(bytes);
  } catch {
    return new TextDecoder('utf-8').decode(bytes); // unknown charset label
  }
}

export interface BasicLimits {
  timeoutMs: number;
  maxBytes: number;
  maxRedirects: number;
}

export async function basicFetch(url: URL, maxChars: number, net: NetContext, limits: BasicLimits): Promise<FetchResult> {
  const { res, read } = await httpExchange(
    { ...net.policy, guarded: true },
    {
      url: url.href,
      init: { method: 'GET', headers: { accept: 'text/html,application/xhtml+xml,text/plain;q=0.9,*/*;q=0.5', 'user-agent': 'Arkloop-web_fetch/1.0' } },
      timeoutMs: limits.timeoutMs,
      signal: net.signal,
      upstream: url.host,
      maxRedirects: limits.maxRedirects,
    },
  );
  const contentType = res.headers.get('content-type') ?? '';
  const mime = contentType.split(';')[0].trim().toLowerCase();
  const notText = () => new ToolError('tool.execution_failed', `${url.href} is ${mime || 'binary data'}, not text`);
  if (mime && kindOf(mime, new Uint8Array(0)) === 'binary') {
    await res.body?.cancel().catch(() => undefined);
    throw notText();
  }
  const { bytes, truncated: bodyCut } = await read(limits.maxBytes);
  const kind = kindOf(mime, bytes);
  if (kind === 'binary') throw notText();
  const text = decode(bytes, contentType);
  const page = kind === 'html' ? htmlToText(text) : { title: null, text };
  const content = cut(cleanText(page.text), maxChars);
  return {
    url: url.href,
    final_url: res.url || url.href,
    status: res.status,
    content_type: mime || (kind === 'html' ? 'text/html' : 'text/plain'),
    title: page.title ? cleanText(page.title) : null,
    content: content.text,
    truncated: bodyCut || content.cut,
  };
}

const baseOf = (b: Backend, fallback: string) => (b.baseUrl ?? fallback).replace(/\/+$/, '');
const auth = (b: Backend) => ({ authorization: `Bearer ${b.apiKey ?? ''}` });

export async function jinaFetch(b: Backend, url: URL, maxChars: number, net: NetContext): Promise<FetchResult> {
  const { body } = await fetchJson(net.policy, {
    url: `${baseOf(b, JINA_DEFAULT_BASE)}/${url.href}`,
    init: { method: 'GET', headers: { ...auth(b), accept: 'application/json' } },
    timeoutMs: net.timeoutMs,
    signal: net.signal,
    upstream: 'Jina Reader',
  });
  const answer = body as { code?: unknown; data?: Record<string, unknown> } | null;
  const data = answer?.data;
  if (!data || typeof data !== 'object') throw new ToolError('tool.execution_failed', 'Jina Reader answer has no data');
  const content = cut(str(data.content) ?? '', maxChars);
  return {
    url: url.href,
    final_url: str(data.url) || url.href,
    status: typeof answer.code === 'number' ? answer.code : 200,
    content_type: 'text/markdown',
    title: str(data.title) || null,
    content: content.text,
    truncated: content.cut,
  };
}

export async function firecrawlFetch(b: Backend, url: URL, maxChars: number, net: NetContext): Promise<FetchResult> {
  const { body } = await fetchJson(net.policy, {
    url: `${baseOf(b, FIRECRAWL_DEFAULT_BASE)}/v1/scrape`,
    init: {
      method: 'POST',
      headers: { ...auth(b), 'content-type': 'application/json', accept: 'application/json' },
      body: JSON.stringify({ url: url.href, formats: ['markdown'], onlyMainContent: true }),
    },
    timeoutMs: net.timeoutMs,
    signal: net.signal,
    upstream: 'Firecrawl',
  });
  const answer = body as { success?: unknown; error?: unknown; data?: Record<string, unknown> } | null;
  if (answer?.success === false) throw new ToolError('tool.execution_failed', `Firecrawl could not scrape ${url.href}: ${str(answer.error) ?? 'no reason given'}`);
  const data = answer?.data;
  if (!data || typeof data !== 'object') throw new ToolError('tool.execution_failed', 'Firecrawl answer has no data');
  const meta = (data.metadata && typeof data.metadata === 'object' ? data.metadata : {}) as Record<string, unknown>;
  const content = cut(str(data.markdown) ?? '', maxChars);
  return {
    url: url.href,
    final_url: str(meta.url) || str(meta.sourceURL) || url.href,
    status: typeof meta.statusCode === 'number' ? meta.statusCode : 200,
    content_type: str(meta.contentType)?.split(';')[0].trim() || 'text/markdown',
    title: str(meta.title) || null,
    content: content.text,
    truncated: content.cut,
  };
}
