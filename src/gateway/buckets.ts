// The gateway's token buckets, one per identity (api.md §30): capacity C, refilled at R per
// minute, 1 token per request. In Redis the whole take is one Lua script (run by EVALSHA,
// which ioredis falls back from to EVAL once after a SCRIPT FLUSH), timed by Redis's own clock
// so gateways on different machines agree. Redis errors allow the request (fail open) and log
// once per outage through connectRedis.
import type { Redis } from 'ioredis';
import type { Logger } from 'pino';

export interface BucketLimits {
  capacity: number;
  ratePerMinute: number;
}

export interface TakeResult {
  allowed: boolean;
  /** Whole tokens left after this request. */
  remaining: number;
  /** Seconds until the next token, rounded up (0 when allowed). */
  retryAfter: number;
}

export interface BucketStore {
  take(identity: string, limits: BucketLimits): Promise<TakeResult>;
  close(): Promise<void>;
}

/** One take, shared by both stores: refill since `ts`, then spend a token if there is one. */
function takeFrom(tokens: number, ts: number, now: number, { capacity, ratePerMinute }: BucketLimits) {
  const perMs = ratePerMinute / 60_000;
  const level = Math.min(capacity, tokens + Math.max(0, now - ts) * perMs);
  if (level >= 1) return { level: level - 1, result: { allowed: true, remaining: Math.floor(level - 1), retryAfter: 0 } };
  return { level, result: { allowed: false, remaining: 0, retryAfter: Math.max(1, Math.ceil((1 - level) / perMs / 1000)) } };
}

export class MemoryBucketStore implements BucketStore {
  private readonly buckets = new Map<string, { tokens: number; ts: number }>();
  private sweepAt = 0;

  async take(identity: string, limits: BucketLimits): Promise<TakeResult> {
    const now = Date.now();
    if (now >= this.sweepAt) this.sweep(now, limits);
    const b = this.buckets.get(identity);
    const { level, result } = takeFrom(b ? b.tokens : limits.capacity, b ? b.ts : now, now, limits);
    if (b) {
      b.tokens = level;
      b.ts = now;
    } else this.buckets.set(identity, { tokens: level, ts: now });
    return result;
  }

  /** Drops buckets that have refilled completely: they equal a missing one. */
  private sweep(now: number, limits: BucketLimits): void {
    this.sweepAt = now + 60_000;
    const fullAfterMs = (limits.capacity / limits.ratePerMinute) * 60_000;
    for (const [k, b] of this.buckets) if (now - b.ts > fullAfterMs) this.buckets.delete(k);
  }

  async close(): Promise<void> {}
}

// KEYS[1] bucket; ARGV capacity, rate per minute. Returns {allowed, remaining, retry_after_s}.
// Levels are stored as strings: Lua numbers returned to Redis lose their fraction.
const TAKE_SCRIPT = `
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local cap = tonumber(ARGV[1])
local per_ms = tonumber(ARGV[2]) / 60000
local v = redis.call('HMGET', KEYS[1], 'tokens', 'ts')
local tokens = tonumber(v[1]) or cap
local ts = tonumber(v[2]) or now
local level = math.min(cap, tokens + math.max(0, now - ts) * per_ms)
local allowed, retry = 0, 0
if level >= 1 then
  level = level - 1
  allowed = 1
else
  retry = math.max(1, math.ceil((1 - level) / per_ms / 1000))
end
redis.call('HSET', KEYS[1], 'tokens', tostring(level), 'ts', tostring(now))
redis.call('PEXPIRE', KEYS[1], math.ceil(cap / per_ms) + 1000)
return {allowed, math.floor(level), retry}
`;

type WithTake = Redis & { gatewayTake(key: string, capacity: number, rate: number): Promise<[number, number, number]> };

export class RedisBucketStore implements BucketStore {
  private readonly redis: WithTake;
  private warnedAt = 0;

  constructor(
    redis: Redis,
    private readonly log: Logger,
  ) {
    redis.defineCommand('gatewayTake', { numberOfKeys: 1, lua: TAKE_SCRIPT });
    this.redis = redis as WithTake;
  }

  async take(identity: string, limits: BucketLimits): Promise<TakeResult> {
    try {
      const [allowed, remaining, retryAfter] = await this.redis.gatewayTake(`arkloop:gw:bucket:${identity}`, limits.capacity, limits.ratePerMinute);
      return { allowed: allowed === 1, remaining, retryAfter };
    } catch (err) {
      // Connection loss is logged once by connectRedis; anything else at most every 10 s.
      if (this.redis.status === 'ready' && Date.now() - this.warnedAt > 10_000) {
        this.warnedAt = Date.now();
        this.log.warn({ err: (err as Error).message }, 'gateway rate limit unavailable; allowing');
      }
      return { allowed: true, remaining: Math.floor(limits.capacity), retryAfter: 0 };
    }
  }

  async close(): Promise<void> {
    this.redis.disconnect();
  }
}
