// The tool-provider tools of api.md §27.5, always offered; each call resolves its backend
// (resolve.ts). Registered into a run's tool registry by the worker.
import type { AppContext } from '../../app-context.js';
import type { Tool } from '../types.js';
import type { WebToolOptions } from './options.js';
import { webFetchTool } from './web-fetch.js';
import { webSearchTool } from './web-search.js';

export type { WebToolOptions } from './options.js';

/** `web_search` and `web_fetch`; `opts` are test knobs (shorter limits, a stand-in DNS). */
export function webTools(ctx: AppContext, opts: WebToolOptions = {}): Tool[] {
  return [webSearchTool(ctx, opts), webFetchTool(ctx, opts)];
}
