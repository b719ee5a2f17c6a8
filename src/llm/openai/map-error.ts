// openai SDK errors → LlmError / AbortError.
import { APIConnectionTimeoutError, APIError, APIUserAbortError } from 'openai';
import { abortError, connectionError, httpError, isAbortError } from '../errors.js';
import { LlmError } from '../types.js';

export function mapOpenAiError(err: unknown, opts: { signal: AbortSignal; outputStarted: boolean }): Error {
  if (err instanceof LlmError) return err;
  if (opts.signal.aborted || err instanceof APIUserAbortError || isAbortError(err)) return abortError();
  if (err instanceof APIConnectionTimeoutError) {
    return connectionError('timed out waiting for the upstream', { timedOut: true, outputStarted: opts.outputStarted });
  }
  if (err instanceof APIError && typeof err.status === 'number') {
    const body = err.error as { message?: string; code?: string } | undefined;
    return httpError(err.status, body?.message ?? err.message, err.headers ?? null, body?.code ?? null);
  }
  // An error frame inside the stream, a reset connection, a body that stopped mid-way.
  const message = err instanceof Error ? `${err.message}${causeText(err)}` : String(err);
  if (err instanceof APIError && !opts.outputStarted) {
    const body = err.error as { code?: string; type?: string; message?: string } | undefined;
    const code = body?.code ?? body?.type ?? null;
    if (code === 'rate_limit_exceeded') return httpError(429, message, null, code);
    if (code === 'context_length_exceeded') return httpError(400, message, null, code);
  }
  return connectionError(message, { timedOut: false, outputStarted: opts.outputStarted });
}

function causeText(err: Error): string {
  const cause = (err as { cause?: unknown }).cause;
  return cause instanceof Error ? ` (${cause.message})` : '';
}
