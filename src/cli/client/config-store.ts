// Where `arkloop login` keeps its session: <dir>/credentials.json, mode 0600, in
// $ARKLOOP_CONFIG_DIR, else $XDG_CONFIG_HOME/arkloop, else ~/.config/arkloop (dir mode 0700).
// The file holds the server, the refresh token and the current access token with its expiry, so
// most invocations need no refresh round trip.
//
// Refresh tokens rotate on every use and presenting a rotated one revokes the whole session, so
// two `arkloop` processes must never refresh with the same token: `withLock` serialises them
// with an exclusive lock file (a small O_EXCL file; no library needed for one lock in one dir).
import { mkdirSync, openSync, closeSync, readFileSync, renameSync, rmSync, statSync, writeFileSync, chmodSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { envValue } from '../../config/env.js';

export interface StoredSession {
  server: string;
  refresh_token: string;
  access_token: string | null;
  /** Epoch ms after which the access token is treated as expired. */
  access_expires_at: number;
  user_id: string | null;
  login: string | null;
}

export function configDir(env: NodeJS.ProcessEnv = process.env): string {
  const dir = envValue(env, 'ARKLOOP_CONFIG_DIR');
  if (dir) return dir;
  return join(env.XDG_CONFIG_HOME || join(homedir(), '.config'), 'arkloop');
}

export function sessionPath(): string {
  return join(configDir(), 'credentials.json');
}

export function readSession(): StoredSession | null {
  let text: string;
  try {
    text = readFileSync(sessionPath(), 'utf8');
  } catch {
    return null;
  }
  try {
    const s = JSON.parse(text) as StoredSession;
    return typeof s.server === 'string' && typeof s.refresh_token === 'string' ? s : null;
  } catch {
    return null;
  }
}

/** Writes atomically (temp file + rename), created with mode 0600 so the token is never world-readable. */
export function writeSession(s: StoredSession): void {
  const dir = configDir();
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const tmp = join(dir, `.credentials.${process.pid}.tmp`);
  writeFileSync(tmp, JSON.stringify(s, null, 2) + '\n', { mode: 0o600 });
  chmodSync(tmp, 0o600);
  renameSync(tmp, sessionPath());
}

export function deleteSession(): void {
  rmSync(sessionPath(), { force: true });
}

const LOCK_STALE_MS = 15_000;

/** Runs `fn` holding <dir>/credentials.lock; a lock older than 15 s is taken to be left by a dead process. */
export async function withLock<T>(fn: () => Promise<T>): Promise<T> {
  const dir = configDir();
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const lock = join(dir, 'credentials.lock');
  const deadline = Date.now() + LOCK_STALE_MS + 5_000;
  for (;;) {
    try {
      closeSync(openSync(lock, 'wx', 0o600));
      break;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
      const age = Date.now() - (statSync(lock, { throwIfNoEntry: false })?.mtimeMs ?? Date.now());
      if (age > LOCK_STALE_MS || Date.now() > deadline) rmSync(lock, { force: true });
      else await new Promise((r) => setTimeout(r, 50));
    }
  }
  try {
    return await fn();
  } finally {
    rmSync(lock, { force: true });
  }
}
