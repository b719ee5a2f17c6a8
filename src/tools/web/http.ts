// Outgoing HTTP of the web tools: one place that picks the SSRF-guarded fetch or the plain one,
// applies a deadline together with the run's abort signal, reads bodies up to a byte limit, and
// turns every failure into the tool error classes of api.md §27.9.
import { SsrfBlockedError, guardedFetch, type GuardOptions } from '../../lib/ssrf.js';
import { ToolError } from '../types.js';

export interface HttpPolicy {
  /** Through the SSRF guard (every resolved address and redirect hop checked): org-scope configurations and web_fetch.basic. */
  guarded: boolean;
  /** security.ssrf_allow_private. */
  allowPrivate: boolean;
  /** Test substitutes for DNS and the address rule of the guard. */
  guard?: Pick<GuardOptions, 'resolver' | 'isBlocked'>;
}

export interface HttpCall {
  url: string;
  init?: RequestInit;
  /** Deadline of the whole exchange, body included. */
  timeoutMs: number;
  /** The run's signal (cancel). */
  signal: AbortSignal;
  /** What the error messages call the other side, e.g. "Tavily". */
  upstream: string;
  maxRedirects?: number;
}

export interface HttpExchange {
  res: Response;
  /** Reads at most `maxBytes` of the body; the rest is not read. */
  read(maxBytes: number): Promise<{ bytes: Uint8Array; truncated: boolean }>;
}

function causeText(err: unknown): string {
  const parts: string[] = [];
  for (let e = err as { message?: string; code?: string; cause?: unknown } | undefined, depth = 0; e && depth < 4; e = e.cause as typeof e, depth++) {
    const piece = e.code ? `${e.code}` : e.message;
    if (piece && !parts.includes(piece)) parts.push(piece);
  }
  return parts.join(': ') || 'unknown error';
}

/**
 * Runs one exchange under `policy`. The returned `read` shares the deadline; a refusal of the
 * guard is `policy.ssrf_blocked`, the deadline `tool.timeout`, anything else
 * `tool.execution_failed`.
 */
export async function httpExchange(policy: HttpPolicy, call: HttpCall): Promise<HttpExchange> {
  const deadline = AbortSignal.timeout(call.timeoutMs);
  const signal = AbortSignal.any([call.signal, deadline]);
  const failure = (err: unknown): ToolError => {
    if (err instanceof ToolError) return err;
    if (err instanceof SsrfBlockedError) return new ToolError('policy.ssrf_blocked', err.message);
    if (deadline.aborted) return new ToolError('tool.timeout', `${call.upstream} did not answer within ${call.timeoutMs} ms`);
    if (call.signal.aborted) return new ToolError('tool.execution_failed', `${call.upstream} request stopped: the run was cancelled`);
    return new ToolError('tool.execution_failed', `${call.upstream} request failed: ${causeText(err)}`);
  };
  const doFetch = policy.guarded
    ? guardedFetch({ allowPrivate: policy.allowPrivate, maxRedirects: call.maxRedirects ?? 5, ...policy.guard })
    : fetch;
  let res: Response;
  try {
    res = await doFetch(call.url, { ...call.init, signal, redirect: policy.guarded ? undefined : 'follow' });
  } catch (err) {
    throw failure(err);
  }
  return {
    res,
    read: async (maxBytes) => {
      const chunks: Uint8Array[] = [];
      let total = 0;
      let truncated = false;
      const reader = res.body?.getReader();
      if (!reader) return { bytes: new Uint8Array(0), truncated };
      try {
        for (;;) {
          const { done, value } = await reader.read();
          if (done) break;
          if (total + value.byteLength > maxBytes) {
            chunks.push(value.subarray(0, maxBytes - total));
            total = maxBytes;
            truncated = true;
            await reader.cancel().catch(() => undefined);
            break;
          }
          chunks.push(value);
          total += value.byteLength;
        }
      } catch (err) {
        throw failure(err);
      }
      const bytes = new Uint8Array(total);
      let at = 0;
      for (const c of chunks) {
        bytes.set(c, at);
        at += c.byteLength;
      }
      return { bytes, truncated };
    },
  };
}

/** Upstream API answers are small; anything beyond this is refused rather than parsed. */
const MAX_API_BYTES = 4 * 1024 * 1024;

/** Sends a request to a search or reader API and parses its JSON answer; a non-2xx status is `tool.execution_failed`. */
export async function fetchJson(policy: HttpPolicy, call: HttpCall): Promise<{ status: number; body: unknown }> {
  const { res, read } = await httpExchange(policy, call);
  const { bytes, truncated } = await read(MAX_API_BYTES);
  const text = new TextDecoder().decode(bytes);
  if (res.status < 200 || res.status > 299) {
    const hint = res.status === 401 || res.status === 403 ? ' (check the API key)' : '';
    throw new ToolError('tool.execution_failed', `${call.upstream} answered HTTP ${res.status}${hint}: ${text.slice(0, 300)}`);
  }
  if (truncated) throw new ToolError('tool.execution_failed', `${call.upstream} answer is larger than ${MAX_API_BYTES} bytes`);
  try {
    return { status: res.status, body: JSON.parse(text) };
  } catch {
    throw new ToolError('tool.execution_failed', `${call.upstream} answer is not JSON`);
  }
}

// PostgreSQL stores run events as jsonb, which refuses NUL characters and unpaired surrogates:
// text from the web is cleaned before it becomes a tool result.
const UNSTORABLE = /\u0000|[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/g;

export function cleanText(s: string): string {
  return s.replace(UNSTORABLE, (m) => (m === '\u0000' ? '' : '\uFFFD'));
}

export const str = (v: unknown): string | null => (typeof v === 'string' ? cleanText(v) : null);

/** Cuts `s` to at most `max` UTF-16 units without splitting a surrogate pair. */
export function cut(s: string, max: number): { text: string; cut: boolean } {
  if (s.length <= max) return { text: s, cut: false };
  let end = max;
  const code = s.charCodeAt(end - 1);
  if (code >= 0xd800 && code <= 0xdbff) end -= 1;
  return { text: s.slice(0, end), cut: true };
}
