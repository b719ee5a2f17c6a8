// Request-body limits (api.md §1.1), in one place for the API and the gateway in front of it.

/** Largest JSON body (413 validation.error with details.max_bytes beyond it). */
export const MAX_BODY_BYTES = 1024 * 1024;

/** The audio file of `POST /v1/asr/transcribe` (§15.6, decided: 25 MiB). */
export const MAX_AUDIO_BYTES = 25 * 1024 * 1024;

/** The one route that takes multipart bodies; its form limits are its own (modules/asr/transcribe.ts). */
const MULTIPART_PATH = '/v1/asr/transcribe';

/**
 * The body limit a proxy in front of the API can apply to `path` (no query) by byte count:
 * MAX_BODY_BYTES everywhere but the multipart route, whose parser enforces its own (null).
 */
export function forwardedBodyLimit(path: string): number | null {
  return path === MULTIPART_PATH || path === `${MULTIPART_PATH}/` ? null : MAX_BODY_BYTES;
}
