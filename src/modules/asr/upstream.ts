// The call to the speech-to-text provider (api.md §15.6): `POST <base>/audio/transcriptions`,
// the OpenAI wire format Groq also speaks — multipart `file`, `model`, `language?`,
// `response_format=json`, bearer key — answered with JSON `{text}`. Org-scope credentials go
// through the SSRF guard (§27.6); platform ones are trusted. Failures become the contract's
// provider.* / policy.ssrf_blocked errors.
import { randomBytes } from 'node:crypto';
import { AppError } from '../../http/errors.js';
import { decryptSecret } from '../../lib/crypto.js';
import { SsrfBlockedError, guardedFetch } from '../../lib/ssrf.js';
import { DEFAULT_BASE_URLS, type AsrCredentialRow } from './store.js';

/** Upstream timeout (§15.6). */
export const TRANSCRIBE_TIMEOUT_MS = 60_000;

export interface Audio {
  data: Buffer;
  filename: string;
  contentType: string;
}

type FormPart = { name: string; value: string } | { name: string; file: Audio };

/** Quoted-string value of a Content-Disposition parameter, as HTML form encoding writes it. */
function quoted(v: string): string {
  return v.replace(/\r/g, '%0D').replace(/\n/g, '%0A').replace(/"/g, '%22');
}

/** A multipart/form-data body, built here so the exact bytes sent are known (and re-sendable on a redirect). */
export function formData(parts: FormPart[]): { body: Uint8Array<ArrayBuffer>; contentType: string } {
  const boundary = `----arkloop-${randomBytes(12).toString('hex')}`;
  const chunks: Buffer[] = [];
  for (const p of parts) {
    if ('file' in p) {
      chunks.push(
        Buffer.from(`--${boundary}\r\nContent-Disposition: form-data; name="${quoted(p.name)}"; filename="${quoted(p.file.filename)}"\r\nContent-Type: ${p.file.contentType}\r\n\r\n`),
        p.file.data,
        Buffer.from('\r\n'),
      );
    } else {
      chunks.push(Buffer.from(`--${boundary}\r\nContent-Disposition: form-data; name="${quoted(p.name)}"\r\n\r\n${p.value}\r\n`));
    }
  }
  chunks.push(Buffer.from(`--${boundary}--\r\n`));
  const joined = Buffer.concat(chunks); // backed by a plain ArrayBuffer (never a shared one)
  return { body: new Uint8Array(joined.buffer as ArrayBuffer, joined.byteOffset, joined.byteLength), contentType: `multipart/form-data; boundary=${boundary}` };
}

const timeoutError = () => new AppError('provider.timeout', `the speech-to-text provider did not answer within ${TRANSCRIBE_TIMEOUT_MS / 1000} s`);

/** The transcript of `audio` by the credential's provider, or the contract's error. */
export async function transcribe(
  cred: AsrCredentialRow,
  audio: Audio,
  opts: { language?: string; encryptionKey: string; allowPrivate: boolean; timeoutMs?: number },
): Promise<string> {
  const base = (cred.base_url ?? DEFAULT_BASE_URLS[cred.provider]).replace(/\/+$/, '');
  const { body, contentType } = formData([
    { name: 'file', file: audio },
    { name: 'model', value: cred.model },
    ...(opts.language ? [{ name: 'language', value: opts.language }] : []),
    { name: 'response_format', value: 'json' },
  ]);
  const doFetch = cred.scope === 'org' ? guardedFetch({ allowPrivate: opts.allowPrivate }) : fetch;
  const signal = AbortSignal.timeout(opts.timeoutMs ?? TRANSCRIBE_TIMEOUT_MS);
  let res: Response;
  try {
    res = await doFetch(`${base}/audio/transcriptions`, {
      method: 'POST',
      headers: { authorization: `Bearer ${decryptSecret(cred.api_key_enc, opts.encryptionKey)}`, 'content-type': contentType, accept: 'application/json' },
      body,
      signal,
    });
  } catch (err) {
    if (err instanceof SsrfBlockedError) throw new AppError('policy.ssrf_blocked', err.message);
    if ((err as Error).name === 'TimeoutError') throw timeoutError();
    throw new AppError('provider.unavailable', 'the speech-to-text provider could not be reached');
  }
  let text: string;
  try {
    text = await res.text();
  } catch (err) {
    if ((err as Error).name === 'TimeoutError') throw timeoutError();
    throw new AppError('provider.unavailable', 'the speech-to-text provider broke off its answer');
  }
  if (res.status === 401 || res.status === 403) throw new AppError('provider.auth_failed', 'the speech-to-text provider refused the credential', { upstream_status: res.status });
  if (!res.ok) throw new AppError('provider.unavailable', `the speech-to-text provider answered ${res.status}`, { upstream_status: res.status });
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    parsed = null;
  }
  const transcript = (parsed as { text?: unknown } | null)?.text;
  if (typeof transcript !== 'string') throw new AppError('provider.unavailable', 'the speech-to-text provider answered with an unexpected body');
  return transcript;
}
