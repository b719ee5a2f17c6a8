// The console's only way to the API. The access token lives in this module's memory, never in
// storage: a reload gets a fresh one through the HttpOnly refresh cookie (POST /v1/auth/refresh).
// A 401 triggers one refresh and one retry; when the refresh fails too (signed out elsewhere,
// suspended, session revoked) the console returns to the sign-in page.

let accessToken = null;
// X-Account-Id of the selected workspace (null = the personal account); kept for this tab's reloads.
const ACCOUNT_KEY = 'arkloop.account';
let account = sessionStorage.getItem(ACCOUNT_KEY);
let refreshing = null;
const signedOutListeners = new Set();

export class ApiError extends Error {
  constructor(status, code, message, details) {
    super(message);
    this.status = status;
    this.code = code;
    this.details = details ?? {};
  }
}

export const isSignedIn = () => accessToken !== null;
export const token = () => accessToken;
export function selectAccount(id) {
  account = id;
  if (id) sessionStorage.setItem(ACCOUNT_KEY, id);
  else sessionStorage.removeItem(ACCOUNT_KEY);
}
export const selectedAccount = () => account;

export function onSignedOut(fn) {
  signedOutListeners.add(fn);
  return () => signedOutListeners.delete(fn);
}

/** Forgets the token and tells the shell to show the sign-in page. */
export function dropSession() {
  const had = accessToken !== null;
  accessToken = null;
  prefetched.clear();
  account = null;
  if (had) for (const fn of signedOutListeners) fn();
}

/** Exchanges the refresh cookie for an access token; concurrent callers share one request. */
export function refresh() {
  refreshing ??= (async () => {
    try {
      const res = await fetch('/v1/auth/refresh', { method: 'POST', credentials: 'same-origin' });
      if (!res.ok) return false;
      accessToken = (await res.json()).access_token;
      return true;
    } catch {
      return false;
    } finally {
      refreshing = null;
    }
  })();
  return refreshing;
}

export function authHeaders() {
  const h = {};
  if (accessToken) h.authorization = `Bearer ${accessToken}`;
  if (account) h['x-account-id'] = account;
  return h;
}

async function errorOf(res) {
  const body = await res.json().catch(() => null);
  return new ApiError(res.status, body?.code ?? 'http_error', body?.message ?? `${res.status} ${res.statusText}`, body?.details);
}

/** fetch with the session's headers, refreshing once on 401; the Response when ok, else an ApiError. */
export async function authedFetch(path, init = {}, retry = true) {
  const res = await fetch(path, { ...init, credentials: 'same-origin', headers: { ...authHeaders(), ...(init.headers ?? {}) } });
  if (res.status === 401 && retry && accessToken !== null) {
    if (await refresh()) return authedFetch(path, init, false);
    dropSession();
  }
  if (!res.ok) throw await errorOf(res);
  return res;
}

const prefetched = new Map(); // path → {pending, at}
const PREFETCH_FRESH_MS = 10_000;

/** Starts a GET now; the first api('GET', path) within 10 s takes its answer instead of asking again. */
export function prefetch(path) {
  const pending = api('GET', path);
  pending.catch(() => undefined); // whoever takes it sees the error
  prefetched.set(path, { pending, at: Date.now() });
}

/** A JSON call: `api('POST', '/v1/threads', {title})`; resolves to the parsed body (null for 204). */
export async function api(method, path, body) {
  const early = method === 'GET' ? prefetched.get(path) : undefined;
  if (early) {
    prefetched.delete(path);
    if (Date.now() - early.at < PREFETCH_FRESH_MS) return early.pending;
  }
  const init = { method };
  if (body !== undefined) {
    init.body = JSON.stringify(body);
    init.headers = { 'content-type': 'application/json' };
  }
  const res = await authedFetch(path, init);
  if (res.status === 204) return null;
  return res.json();
}

/** Sign-in and sign-up answer a token and set the refresh cookie. */
async function tokenCall(path, body) {
  const res = await fetch(path, { method: 'POST', credentials: 'same-origin', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
  if (!res.ok) throw await errorOf(res);
  accessToken = (await res.json()).access_token;
}

export const signIn = (login, password) => tokenCall('/v1/auth/login', { login, password });
export const signUp = (login, email, password, inviteCode) =>
  tokenCall('/v1/auth/register', { login, email, password, ...(inviteCode ? { invite_code: inviteCode } : {}) });

export async function signOut() {
  try {
    await api('POST', '/v1/auth/logout');
  } catch {
    /* already signed out: nothing to revoke */
  }
  dropSession();
}
