// HTTP client of the Arkloop API for the CLI: JSON requests with the caller's credentials, errors
// from the API's envelope (§1.5), and silent access-token refresh for a stored login (§3.6).
// Credentials, in order: ARKLOOP_TOKEN (an access token or an `al_` API key, never refreshed),
// else the session `arkloop login` stored for that server.
import { deleteSession, readSession, withLock, writeSession, type StoredSession } from './config-store.js';
import { httpRequest, type HttpOptions, type HttpResponse } from './http.js';
import { envValue } from '../../config/env.js';

export const DEFAULT_SERVER = 'http://127.0.0.1:19001';
const REFRESH_COOKIE = 'arkloop_refresh_token';
/** Refresh this long before the access token's stated expiry (clock skew, request time). */
const EXPIRY_MARGIN_MS = 30_000;
const REQUEST_TIMEOUT_MS = 30_000;

/** An error the API answered with its envelope, or one of the client's own (status 0). */
export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly details: Record<string, unknown> = {},
    readonly traceId: string | null = null,
  ) {
    super(message);
  }
}

export async function errorFromResponse(res: HttpResponse): Promise<ApiError> {
  const text = await res.text().catch(() => '');
  try {
    const body = JSON.parse(text);
    if (body && typeof body.code === 'string') return new ApiError(res.status, body.code, String(body.message ?? body.code), body.details ?? {}, body.trace_id ?? null);
  } catch {
    /* not the envelope */
  }
  return new ApiError(res.status, `http_${res.status}`, text.slice(0, 200) || `HTTP ${res.status}`);
}

export interface TokenResponse {
  access_token: string;
  expires_in: number;
  user_id: string;
}

function refreshCookieOf(res: HttpResponse): string | null {
  for (const c of res.headers['set-cookie'] ?? []) {
    const m = new RegExp(`^${REFRESH_COOKIE}=([^;]*)`).exec(c);
    if (m && m[1]) return decodeURIComponent(m[1]);
  }
  return null;
}

/** The session to store from a login or refresh answer. */
export async function sessionFrom(server: string, res: HttpResponse, login: string | null): Promise<StoredSession> {
  const refresh = refreshCookieOf(res);
  const body = (await res.json()) as TokenResponse;
  if (!refresh) throw new ApiError(0, 'client.no_refresh_token', 'the server did not return a refresh token');
  return {
    server,
    refresh_token: refresh,
    access_token: body.access_token,
    access_expires_at: Date.now() + body.expires_in * 1000 - EXPIRY_MARGIN_MS,
    user_id: body.user_id,
    login,
  };
}

type Auth = { kind: 'token'; token: string } | { kind: 'session' } | { kind: 'none' };

export class ApiClient {
  constructor(
    readonly server: string,
    private readonly auth: Auth,
  ) {}

  get hasCredentials(): boolean {
    return this.auth.kind !== 'none';
  }

  /** A request with credentials; for a stored session, one silent refresh and retry on 401. */
  async fetch(path: string, init: HttpOptions & { timeoutMs?: number | null } = {}): Promise<HttpResponse> {
    let token = await this.accessToken(null);
    for (let attempt = 0; ; attempt++) {
      const headers = { ...init.headers, authorization: `Bearer ${token}` };
      const timeout = init.timeoutMs === null ? null : AbortSignal.timeout(init.timeoutMs ?? REQUEST_TIMEOUT_MS);
      const signal = timeout && init.signal ? AbortSignal.any([timeout, init.signal]) : (timeout ?? init.signal);
      const res = await httpRequest(this.server + path, { ...init, headers, signal });
      if (res.status !== 401 || this.auth.kind !== 'session' || attempt > 0) return res;
      res.discard();
      token = await this.accessToken(token);
    }
  }

  /** A JSON request; the parsed body, or an ApiError from the envelope. */
  async json<T = any>(method: string, path: string, body?: unknown): Promise<T> {
    const res = await this.fetch(path, {
      method,
      headers: body === undefined ? {} : { 'content-type': 'application/json' },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    if (!res.ok) throw await errorFromResponse(res);
    const text = await res.text();
    return (text ? JSON.parse(text) : null) as T;
  }

  /**
   * A usable access token. `rejected` is a token the API just refused: then a new one is needed
   * even if it has not expired. Refreshing happens under the config dir's lock, after re-reading
   * the file, because another process may have rotated the refresh token meanwhile.
   */
  private async accessToken(rejected: string | null): Promise<string> {
    if (this.auth.kind === 'token') return this.auth.token;
    if (this.auth.kind === 'none') throw notSignedIn();
    const usable = (s: StoredSession | null) => s && s.access_token && s.access_token !== rejected && s.access_expires_at > Date.now();
    const cached = readSession();
    if (usable(cached)) return cached!.access_token!;
    return withLock(async () => {
      const s = readSession();
      if (!s) throw notSignedIn();
      if (usable(s)) return s.access_token!;
      const res = await httpRequest(`${s.server}/v1/auth/refresh`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ refresh_token: s.refresh_token }),
        signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS),
      });
      if (!res.ok) {
        const err = await errorFromResponse(res);
        if (err.code === 'auth.refresh_token_invalid') {
          deleteSession();
          throw new ApiError(err.status, err.code, `${err.message}; run \`arkloop login\` again`, err.details, err.traceId);
        }
        throw err;
      }
      const next = await sessionFrom(s.server, res, s.login);
      writeSession(next);
      return next.access_token!;
    });
  }
}

export function notSignedIn(): ApiError {
  return new ApiError(0, 'client.not_signed_in', 'not signed in: run `arkloop login`, or set ARKLOOP_TOKEN (an access token or an al_ API key)');
}

export function normalizeServer(url: string): string {
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    throw new ApiError(0, 'client.bad_server', `not a URL: ${url}`);
  }
  if (u.protocol !== 'http:' && u.protocol !== 'https:') throw new ApiError(0, 'client.bad_server', `not an http(s) URL: ${url}`);
  return u.origin + u.pathname.replace(/\/+$/, '');
}

/** The client for a command: --server, else ARKLOOP_SERVER, else the stored login's server. */
export function clientFor(serverFlag: string | undefined, env: NodeJS.ProcessEnv = process.env): ApiClient {
  const stored = readSession();
  const server = normalizeServer(serverFlag || envValue(env, 'ARKLOOP_SERVER') || stored?.server || DEFAULT_SERVER);
  const token = envValue(env, 'ARKLOOP_TOKEN');
  if (token) return new ApiClient(server, { kind: 'token', token });
  if (stored && normalizeServer(stored.server) === server) return new ApiClient(server, { kind: 'session' });
  return new ApiClient(server, { kind: 'none' });
}

const NETWORK_ERRORS = new Set(['ECONNREFUSED', 'ECONNRESET', 'ENOTFOUND', 'EAI_AGAIN', 'ETIMEDOUT', 'EHOSTUNREACH', 'ENETUNREACH', 'EPIPE']);

/** The message of an error as the user should read it: the API's message and code, or what failed on the way. */
export function describeError(err: unknown): string {
  if (err instanceof ApiError) return err.status ? `${err.message} (${err.code}, HTTP ${err.status})` : `${err.message} (${err.code})`;
  const e = err as Error & { code?: string; cause?: Error };
  if (e?.name === 'TimeoutError' || e?.cause?.name === 'TimeoutError') return 'the server did not answer in time';
  if (e?.code && NETWORK_ERRORS.has(e.code)) return `cannot reach the server: ${e.code}`;
  return e?.message ?? String(err);
}
