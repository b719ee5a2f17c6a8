// Limits of the web tools (api.md §27.5) and the knobs tests turn.
import type { GuardOptions } from '../../lib/ssrf.js';

export interface WebToolOptions {
  /** web_fetch.basic: deadline of the whole fetch, redirects and body included (15 s). */
  basicTimeoutMs?: number;
  /** web_fetch.basic: body bytes read at most; the rest is not read (2 MiB). */
  basicMaxBytes?: number;
  /** web_fetch.basic: redirects followed, each hop checked again (5). */
  basicMaxRedirects?: number;
  /** Deadline of a call to a search or reader API (25 s, inside the tools' 30 s). */
  upstreamTimeoutMs?: number;
  /** Test substitutes for DNS and the address rule of the SSRF guard. */
  guard?: Pick<GuardOptions, 'resolver' | 'isBlocked'>;
}

export const WEB_DEFAULTS = {
  basicTimeoutMs: 15_000,
  basicMaxBytes: 2 * 1024 * 1024,
  basicMaxRedirects: 5,
  upstreamTimeoutMs: 25_000,
  /** The tool timeout of built-ins (§27.5); the limits above end a call before it. */
  toolTimeoutMs: 30_000,
} as const;
