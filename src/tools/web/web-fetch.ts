// The `web_fetch` tool (api.md §27.5): `{url, max_chars? (1000–100000, =20000)}` →
// `{url, final_url, status, content_type, title, content, truncated}`, served by the backend
// resolved at call time. The URL passes the SSRF rules without DNS (§27.6) whatever the backend,
// so a reader service is never pointed at a private target either; basic then checks every
// resolved address and redirect hop itself.
import type { AppContext } from '../../app-context.js';
import { SsrfBlockedError, checkUrl } from '../../lib/ssrf.js';
import { ToolError, type Tool } from '../types.js';
import { basicFetch, firecrawlFetch, jinaFetch } from './fetch-backends.js';
import { WEB_DEFAULTS, type WebToolOptions } from './options.js';
import { resolveBackend } from './resolve.js';
import type { NetContext } from './search-backends.js';

function fetchArgs(args: Record<string, unknown>): { url: URL; maxChars: number } {
  const raw = typeof args.url === 'string' ? args.url.trim() : '';
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    throw new ToolError('tool.invalid_arguments', 'web_fetch needs {"url": "<absolute http(s) URL>"}');
  }
  if (raw.length > 2048) throw new ToolError('tool.invalid_arguments', 'web_fetch: url is longer than 2048 characters');
  const max = args.max_chars ?? 20_000;
  if (typeof max !== 'number' || !Number.isInteger(max) || max < 1000 || max > 100_000) {
    throw new ToolError('tool.invalid_arguments', 'web_fetch: max_chars must be an integer from 1000 to 100000');
  }
  return { url, maxChars: max };
}

export function webFetchTool(ctx: AppContext, opts: WebToolOptions = {}): Tool {
  return {
    name: 'web_fetch',
    description: 'Fetches a web page and returns its readable text (HTML is reduced to the article text), its title, final URL and HTTP status.',
    inputSchema: {
      type: 'object',
      properties: {
        url: { type: 'string', minLength: 1, maxLength: 2048, description: 'Absolute http(s) URL of the page.' },
        max_chars: { type: 'integer', minimum: 1000, maximum: 100000, default: 20000, description: 'Content longer than this is cut (truncated: true).' },
      },
      required: ['url'],
    },
    source: 'provider',
    timeoutMs: WEB_DEFAULTS.toolTimeoutMs,
    async run(args, tctx) {
      const { url, maxChars } = fetchArgs(args);
      const allowPrivate = await ctx.settings.bool('security.ssrf_allow_private');
      try {
        checkUrl(url, { allowPrivate, ...opts.guard });
      } catch (err) {
        if (err instanceof SsrfBlockedError) throw new ToolError('policy.ssrf_blocked', err.message);
        throw err;
      }
      const backend = await resolveBackend(ctx, tctx.orgId, 'web_fetch');
      const net: NetContext = {
        policy: { guarded: backend.source === 'org', allowPrivate, guard: opts.guard },
        signal: tctx.signal,
        timeoutMs: opts.upstreamTimeoutMs ?? WEB_DEFAULTS.upstreamTimeoutMs,
      };
      switch (backend.provider) {
        case 'web_fetch.jina':
          return jinaFetch(backend, url, maxChars, net);
        case 'web_fetch.firecrawl':
          return firecrawlFetch(backend, url, maxChars, net);
        default:
          return basicFetch(url, maxChars, net, {
            timeoutMs: opts.basicTimeoutMs ?? WEB_DEFAULTS.basicTimeoutMs,
            maxBytes: opts.basicMaxBytes ?? WEB_DEFAULTS.basicMaxBytes,
            maxRedirects: opts.basicMaxRedirects ?? WEB_DEFAULTS.basicMaxRedirects,
          });
      }
    },
  };
}
