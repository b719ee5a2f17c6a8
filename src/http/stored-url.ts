// A URL an account stores for later outbound calls (provider base_url, MCP url, …): it must be an
// absolute http(s) URL and, when the account (not the platform) supplies it, pass the storage-time
// SSRF check of api.md §27.6. The check is repeated at every call by the guarded fetch.
import type { AppContext } from '../app-context.js';
import { SsrfBlockedError, checkUrl } from '../lib/ssrf.js';
import { AppError, fieldError } from './errors.js';

export interface StoredUrlOptions {
  /** The body field named in the error. */
  field: string;
  /** Apply the SSRF check (org-scope resources); platform-scope ones are trusted. */
  ssrfCheck: boolean;
  /** Drop trailing slashes (base URLs are joined with paths later). */
  trimSlash?: boolean;
}

export async function storedHttpUrl(ctx: AppContext, raw: string, opts: StoredUrlOptions): Promise<string> {
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    throw fieldError(opts.field, 'must be an absolute http(s) URL');
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') throw fieldError(opts.field, 'must be an absolute http(s) URL');
  if (opts.ssrfCheck) {
    try {
      checkUrl(url, { allowPrivate: await ctx.settings.bool('security.ssrf_allow_private') });
    } catch (err) {
      if (err instanceof SsrfBlockedError) throw new AppError('policy.ssrf_blocked', err.message, { field: opts.field });
      throw err;
    }
  }
  return opts.trimSlash ? raw.replace(/\/+$/, '') : raw;
}
