// Upstream failures → LlmError (api.md §27.4). Pure functions: the adapters pass in what the
// SDK saw (an HTTP status with its headers and message, or a connection failure) and whether
// any output of the call was already emitted.
import { LlmError, type LlmErrorClass } from './types.js';

/** Upstream messages that mean the prompt does not fit the model's context window. */
const CONTEXT_OVERFLOW =
  /context[_ ]length|context window|maximum context|prompt is too long|input is too long|too many (input )?tokens|exceeds? (the )?(model'?s? )?(max(imum)? )?context|reduce the length of the (messages|prompt)/i;

export function isContextOverflowMessage(message: string | null | undefined): boolean {
  return !!message && CONTEXT_OVERFLOW.test(message);
}

const MAX_RETRY_AFTER_MS = 24 * 3600 * 1000;

/**
 * Retry-After as seconds ("12", "1.5") or an HTTP date; also the non-standard `retry-after-ms`
 * that OpenAI sends. Returns null when absent or unparseable; a date in the past gives 0.
 */
export function parseRetryAfter(
  headers: Headers | Record<string, string | undefined> | null | undefined,
  now: number = Date.now(),
): number | null {
  if (!headers) return null;
  const get = (name: string): string | null => {
    if (typeof (headers as Headers).get === 'function') return (headers as Headers).get(name);
    const rec = headers as Record<string, string | undefined>;
    for (const k of Object.keys(rec)) if (k.toLowerCase() === name) return rec[k] ?? null;
    return null;
  };
  const ms = get('retry-after-ms');
  if (ms != null && /^\s*\d+(\.\d+)?\s*$/.test(ms)) return clampRetry(Number(ms));
  const value = get('retry-after');
  if (value == null || value.trim() === '') return null;
  const trimmed = value.trim();
  if (/^\d+(\.\d+)?$/.test(trimmed)) return clampRetry(Number(trimmed) * 1000);
  const date = Date.parse(trimmed);
  if (Number.isNaN(date)) return null;
  return clampRetry(date - now);
}

function clampRetry(ms: number): number {
  return Math.min(Math.max(0, Math.ceil(ms)), MAX_RETRY_AFTER_MS);
}

/** Error class and retryability of an upstream HTTP status. */
export function classifyStatus(
  status: number,
  message?: string | null,
  code?: string | null,
): { errorClass: LlmErrorClass; retryable: boolean } {
  if (status === 401 || status === 403) return { errorClass: 'provider.auth_failed', retryable: false };
  if (status === 429) return { errorClass: 'provider.rate_limited', retryable: true };
  if (status === 408) return { errorClass: 'provider.timeout', retryable: true };
  // 529 is Anthropic's "overloaded": the same transient condition as 503.
  if (status === 502 || status === 503 || status === 529) return { errorClass: 'provider.unavailable', retryable: true };
  if (status >= 500) return { errorClass: 'provider.unavailable', retryable: false };
  if (code === 'context_length_exceeded' || isContextOverflowMessage(message)) {
    return { errorClass: 'provider.context_length_exceeded', retryable: false };
  }
  return { errorClass: 'provider.bad_request', retryable: false };
}

/** An upstream HTTP error response (status ≥ 400). */
export function httpError(
  status: number,
  message: string | null | undefined,
  headers?: Headers | Record<string, string | undefined> | null,
  code?: string | null,
): LlmError {
  const { errorClass, retryable } = classifyStatus(status, message, code);
  const retryAfterMs = parseRetryAfter(headers);
  return new LlmError(errorClass, message || `upstream answered HTTP ${status}`, {
    status,
    retryAfterMs,
    retryable,
  });
}

/**
 * A failure without an HTTP status: connection refused/reset, timeout, the stream breaking.
 * Before any output it is retryable (timeout or unavailable); after output began it is
 * `provider.stream_interrupted`, which is neither retried nor fallen back.
 */
export function connectionError(message: string, opts: { timedOut: boolean; outputStarted: boolean }): LlmError {
  if (opts.outputStarted) {
    return new LlmError('provider.stream_interrupted', message, { status: null, retryable: false });
  }
  return new LlmError(opts.timedOut ? 'provider.timeout' : 'provider.unavailable', message, {
    status: null,
    retryable: true,
  });
}

export function streamInterrupted(message: string): LlmError {
  return new LlmError('provider.stream_interrupted', message, { status: null, retryable: false });
}

/** What the adapters throw when the caller's signal aborted the call. */
export function abortError(): Error {
  return new DOMException('The model call was aborted', 'AbortError');
}

export function isAbortError(err: unknown): boolean {
  return err instanceof Error && err.name === 'AbortError';
}

/** Resolves after `ms`, or rejects with an AbortError as soon as `signal` aborts. */
export function abortableSleep(ms: number, signal: AbortSignal): Promise<void> {
  if (signal.aborted) return Promise.reject(abortError());
  if (ms <= 0) return Promise.resolve();
  return new Promise((resolve, reject) => {
    const onAbort = () => {
      clearTimeout(timer);
      reject(abortError());
    };
    const timer = setTimeout(() => {
      signal.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    signal.addEventListener('abort', onAbort, { once: true });
  });
}
