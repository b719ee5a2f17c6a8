// @anthropic-ai/sdk errors → LlmError / AbortError.
import { APIConnectionTimeoutError, APIError, APIUserAbortError } from '@anthropic-ai/sdk';
import { abortError, connectionError, httpError, isAbortError } from '../errors.js';
import { LlmError } from '../types.js';

/** `error.type` of an error event inside the stream → the HTTP status the API uses for it. */
const STATUS_OF_TYPE: Record<string, number> = {
  invalid_request_error: 400,
  authentication_error: 401,
  permission_error: 403,
  not_found_error: 404,
  request_too_large: 413,
  rate_limit_error: 429,
  api_error: 500,
  overloaded_error: 529,
};

export function mapAnthropicError(err: unknown, opts: { signal: AbortSignal; outputStarted: boolean }): Error {
  if (err instanceof LlmError) return err;
  if (opts.signal.aborted || err instanceof APIUserAbortError || isAbortError(err)) return abortError();
  if (err instanceof APIConnectionTimeoutError) {
    return connectionError('timed out waiting for the upstream', { timedOut: true, outputStarted: opts.outputStarted });
  }
  const message = apiMessage(err);
  if (err instanceof APIError && typeof err.status === 'number') return httpError(err.status, message, err.headers ?? null);
  if (err instanceof APIError && !opts.outputStarted) {
    const type = (err.error as { error?: { type?: string } } | undefined)?.error?.type;
    const status = type ? STATUS_OF_TYPE[type] : undefined;
    if (status) return httpError(status, message, null);
  }
  return connectionError(message, { timedOut: false, outputStarted: opts.outputStarted });
}

function apiMessage(err: unknown): string {
  if (err instanceof APIError) {
    const body = err.error as { error?: { message?: string } } | undefined;
    return body?.error?.message ?? err.message;
  }
  if (err instanceof Error) {
    const cause = (err as { cause?: unknown }).cause;
    return cause instanceof Error ? `${err.message} (${cause.message})` : err.message;
  }
  return String(err);
}
