// One Redis client as every shared-state user here wants it: commands fail at once while
// Redis is away (no offline queue), so callers fail open instead of waiting; ioredis keeps
// reconnecting by itself, so recovery needs no restart. One log line when Redis goes, one
// when it is back, not one per reconnect attempt.
import type { Redis } from 'ioredis';
import type { Logger } from 'pino';

/** `meanwhile`: what the users do while Redis is away, for the outage's log line. */
export async function connectRedis(url: string, log: Logger, what: string, meanwhile = 'fail open'): Promise<Redis> {
  const { Redis } = await import('ioredis');
  const redis = new Redis(url, { lazyConnect: true, maxRetriesPerRequest: 1, enableOfflineQueue: false });
  let away = false;
  redis.on('error', (err) => {
    if (away) return;
    away = true;
    log.warn({ err: err.message }, `redis unavailable; ${what} ${meanwhile} until it is back`);
  });
  redis.on('ready', () => {
    if (!away) return;
    away = false;
    log.info(`redis available again; ${what} are shared again`);
  });
  await redis.connect().catch(() => undefined); // reported by the 'error' listener; reconnecting goes on
  return redis;
}
