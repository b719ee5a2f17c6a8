// `POST /v1/asr/transcribe` (api.md §15.6): a multipart/form-data upload (`file` ≤ 25 MiB,
// `language?`) sent to the default ASR credential — the account's, else the platform's — and
// answered with `{text}`.
//
// @fastify/multipart is registered in an encapsulated scope holding only this route, so every
// other route keeps the app's JSON-only body parsing (a multipart body there is still a 422).
// The file is buffered (at most 25 MiB) before anything is sent upstream, so an oversize upload
// is refused with 413 without contacting the provider.
import multipart, { type Multipart } from '@fastify/multipart';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { AppContext } from '../../app-context.js';
import { AppError, fieldError, validationError } from '../../http/errors.js';
import { registerRoute } from '../../http/route.js';
import { MAX_AUDIO_BYTES } from '../../http/limits.js';
import { T } from '../../http/schemas.js';
import { defaultCredential } from './store.js';
import { transcribe, type Audio } from './upstream.js';

// What a transcription form needs: one file, a language, a little slack for form extras.
const LIMITS = { fileSize: MAX_AUDIO_BYTES, files: 4, fields: 16, fieldSize: 1024, fieldNameSize: 100, parts: 24, headerPairs: 32 };

const LANGUAGE = /^[A-Za-z0-9_-]{2,8}$/;
const MIME = /^[a-z0-9!#$&^_.+-]+\/[a-z0-9!#$&^_.+-]+$/i;

// An upload refused part-way leaves unread bytes on the connection: close it after the answer.
const CLOSE = { connection: 'close' };

const tooLarge = () => new AppError('validation.error', `file too large: at most ${MAX_AUDIO_BYTES} bytes`, { max_bytes: MAX_AUDIO_BYTES, fields: [{ field: 'file', reason: `must be at most ${MAX_AUDIO_BYTES} bytes` }] }, { status: 413, headers: CLOSE });

/** Any failure while reading the multipart body, as the contract's 400 / 413. */
function uploadError(err: unknown): AppError {
  if (err instanceof AppError) return new AppError(err.code, err.message, err.details, { status: err.status, headers: { ...err.headers, ...CLOSE } });
  const code = (err as { code?: unknown } | null)?.code;
  if (code === 'FST_REQ_FILE_TOO_LARGE') return tooLarge();
  if (code === 'FST_FILES_LIMIT' || code === 'FST_FIELDS_LIMIT' || code === 'FST_PARTS_LIMIT') {
    return new AppError('validation.error', 'too many parts in the multipart body', { max_parts: LIMITS.parts, max_files: LIMITS.files, max_fields: LIMITS.fields }, { status: 413, headers: CLOSE });
  }
  // Busboy's parse errors, a truncated body, a field named like a prototype property, a bad JSON field.
  return new AppError('validation.error', 'malformed multipart/form-data body', {}, { status: 400, headers: CLOSE });
}

/** The file part's bytes, refusing (as soon as the limit is passed) anything over MAX_AUDIO_BYTES. */
async function readFile(part: Extract<Multipart, { type: 'file' }>): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of part.file) {
    if (part.file.truncated) throw tooLarge();
    chunks.push(chunk as Buffer);
  }
  if (part.file.truncated) throw tooLarge();
  return Buffer.concat(chunks);
}

function cleanFilename(name: string | undefined): string {
  const clean = (name ?? '').replace(/[\u0000-\u001f\u007f]/g, '').trim().slice(0, 255);
  return clean || 'audio';
}

interface Upload {
  audio: Audio;
  language?: string;
}

/** The validated form: `file` (one file part, not empty), `language?` (2–8). Unknown fields are ignored (§1.1). */
async function readUpload(req: FastifyRequest): Promise<Upload> {
  if (!req.isMultipart()) {
    const sentBytes = Number(req.headers['content-length'] ?? 0) > 0 || req.headers['transfer-encoding'] !== undefined;
    if (sentBytes) throw validationError('unsupported Content-Type: send multipart/form-data', 422);
    throw fieldError('file', 'is required');
  }
  let audio: Audio | undefined;
  let language: unknown;
  try {
    for await (const part of req.parts({ limits: LIMITS })) {
      if (part.type === 'file') {
        if (part.fieldname !== 'file') {
          part.file.resume(); // another file field: read past it
          continue;
        }
        if (audio) throw fieldError('file', 'send exactly one file');
        const data = await readFile(part);
        audio = { data, filename: cleanFilename(part.filename), contentType: MIME.test(part.mimetype) ? part.mimetype : 'application/octet-stream' };
      } else if (part.fieldname === 'file') {
        throw fieldError('file', 'must be a file part (with a filename)');
      } else if (part.fieldname === 'language' && language === undefined) {
        language = part.value;
      }
    }
  } catch (err) {
    throw uploadError(err);
  }
  if (!audio) throw fieldError('file', 'is required');
  if (audio.data.length === 0) throw fieldError('file', 'must not be empty');
  if (language === undefined) return { audio };
  if (typeof language !== 'string' || !LANGUAGE.test(language.trim())) throw fieldError('language', 'must be a language code of 2–8 letters, digits, - or _');
  return { audio, language: language.trim() };
}

export function transcribeRoutes(app: FastifyInstance, ctx: AppContext): void {
  void app.register(async (scope) => {
    await scope.register(multipart, { limits: LIMITS, throwFileSizeLimit: true });
    registerRoute(scope, ctx, {
      method: 'POST',
      url: '/v1/asr/transcribe',
      caller: 'user',
      summary: 'Transcribe an audio file with the default ASR credential',
      description:
        'multipart/form-data: `file` (required, at most 25 MiB) and `language?` (2–8). Uses the account\'s default org credential, else the platform default; ' +
        '409 asr.not_configured when there is neither. Answers `{text}`.',
      tags: ['asr'],
      response: T.Object({ text: T.String() }),
      handler: async (req) => {
        const upload = await readUpload(req as FastifyRequest);
        const cred = (await defaultCredential(ctx.db, req.account!.id)) ?? (await defaultCredential(ctx.db, null));
        if (!cred) throw new AppError('asr.not_configured', 'no default ASR credential in this account or on the platform');
        const text = await transcribe(cred, upload.audio, {
          language: upload.language,
          encryptionKey: ctx.secrets.encryptionKey,
          allowPrivate: await ctx.settings.bool('security.ssrf_allow_private'),
        });
        return { text };
      },
    });
  });
}
