// The `web_search` tool (api.md §27.5): `{query (1–400), max_results? (1–10, =5)}` →
// `{results: [{title, url, snippet}]}`, served by the backend resolved at call time.
import type { AppContext } from '../../app-context.js';
import { ToolError, type Tool } from '../types.js';
import { WEB_DEFAULTS, type WebToolOptions } from './options.js';
import { resolveBackend } from './resolve.js';
import { searxngSearch, tavilySearch, type NetContext, type SearchQuery } from './search-backends.js';

/** The arguments, checked again here so a direct call gets the same errors as one through the loop. */
function searchArgs(args: Record<string, unknown>): SearchQuery {
  const query = typeof args.query === 'string' ? args.query.trim() : '';
  if (!query || query.length > 400) throw new ToolError('tool.invalid_arguments', 'web_search needs {"query": "<1–400 characters>"}');
  const max = args.max_results ?? 5;
  if (typeof max !== 'number' || !Number.isInteger(max) || max < 1 || max > 10) throw new ToolError('tool.invalid_arguments', 'web_search: max_results must be an integer from 1 to 10');
  return { query, maxResults: max };
}

export function webSearchTool(ctx: AppContext, opts: WebToolOptions = {}): Tool {
  return {
    name: 'web_search',
    description: 'Searches the web. Returns up to max_results results, each with a title, URL and snippet. Use web_fetch to read a result in full.',
    inputSchema: {
      type: 'object',
      properties: {
        query: { type: 'string', minLength: 1, maxLength: 400, description: 'What to search for.' },
        max_results: { type: 'integer', minimum: 1, maximum: 10, default: 5, description: 'How many results to return.' },
      },
      required: ['query'],
    },
    source: 'provider',
    timeoutMs: WEB_DEFAULTS.toolTimeoutMs,
    async run(args, tctx) {
      const q = searchArgs(args);
      const backend = await resolveBackend(ctx, tctx.orgId, 'web_search');
      const net: NetContext = {
        policy: { guarded: backend.source === 'org', allowPrivate: await ctx.settings.bool('security.ssrf_allow_private'), guard: opts.guard },
        signal: tctx.signal,
        timeoutMs: opts.upstreamTimeoutMs ?? WEB_DEFAULTS.upstreamTimeoutMs,
      };
      const results = backend.provider === 'web_search.tavily' ? await tavilySearch(backend, q, net) : await searxngSearch(backend, q, net);
      return { results };
    },
  };
}
