// Which errors mean "the database could not be reached or the connection broke", as opposed
// to an error of the statement itself. The API answers the first kind with 503
// `service_unavailable` (api.md §1.5); the database layer retries a statement on another
// connection only when the error proves the statement never ran (see `neverExecuted`).

/** Server-side codes of a connection being shut down or refused (PostgreSQL class 57P, 08, 53300). */
const SHUTDOWN_CODES = new Set(['57P01', '57P02', '57P03']);
const CONNECTION_CODES = new Set(['08000', '08001', '08003', '08004', '08006', '08007', '53300', ...SHUTDOWN_CODES]);
const SOCKET_CODES = new Set(['ECONNREFUSED', 'ECONNRESET', 'EPIPE', 'ETIMEDOUT', 'EHOSTUNREACH', 'ENETUNREACH', 'ENOTFOUND', 'EAI_AGAIN', 'ECONNABORTED']);
const CONNECTION_MESSAGES =
  /connection terminated|not queryable|timeout exceeded when trying to connect|connection timeout|database ping timed out|terminating connection|the database system is (starting up|shutting down)|Connection ended unexpectedly/i;

function codeOf(err: unknown): string | undefined {
  const c = (err as { code?: unknown } | null)?.code;
  return typeof c === 'string' ? c : undefined;
}

/** The database is unreachable or the connection broke (whatever the statement was). */
export function isConnectionError(err: unknown): boolean {
  if (!(err instanceof Error)) return false;
  const code = codeOf(err);
  if (code && (CONNECTION_CODES.has(code) || SOCKET_CODES.has(code))) return true;
  if (err instanceof AggregateError && err.errors.some(isConnectionError)) return true;
  return CONNECTION_MESSAGES.test(err.message);
}

/**
 * The statement provably did not run: the server refused or shut the connection down and said
 * so (57P0x), or no connection could be opened at all. Such a statement may be sent again on
 * another connection. A socket that simply broke mid-statement proves nothing (it may have
 * committed), so it is not in this set.
 */
export function neverExecuted(err: unknown): boolean {
  const code = codeOf(err);
  if (code && (SHUTDOWN_CODES.has(code) || code === 'ECONNREFUSED' || code === '53300')) return true;
  if (err instanceof AggregateError) return err.errors.length > 0 && err.errors.every(neverExecuted);
  return err instanceof Error && /timeout exceeded when trying to connect|not queryable/i.test(err.message);
}

/**
 * Runs `fn` until it succeeds or fails with something other than a connection error: waits
 * out a database outage with backoff (100 ms doubling to 2 s). Gives up with the last error
 * when `stop()` says so or after `maxMs`. Only for reads, or writes that are safe to repeat.
 */
export async function untilAvailable<T>(fn: () => Promise<T>, opts: { stop?: () => boolean; maxMs?: number } = {}): Promise<T> {
  const started = Date.now();
  for (let delay = 100; ; delay = Math.min(delay * 2, 2000)) {
    try {
      return await fn();
    } catch (err) {
      if (!isConnectionError(err) || opts.stop?.() || Date.now() - started + delay > (opts.maxMs ?? Infinity)) throw err;
    }
    await new Promise((r) => setTimeout(r, delay));
  }
}
