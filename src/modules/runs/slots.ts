// Concurrent-run slots in Redis (api.md §26.6), shared by every API process: one sorted set per
// account, `arkloop:runslots:<org>`, of the ids of its active runs (score = reservation time on
// Redis's clock), plus a marker member that says the set was seeded from the database, so a
// missing key (Redis flushed or restarted, key expired) is told apart from "no active runs".
// Reserve is one Lua script (count, compare, add); release is a ZREM after the run's terminal
// statement commits. `repair` reconciles the sets with the database: the worker's reaper runs it
// every tick, and each process runs it when Redis comes back. Until then, and whenever Redis
// fails, callers count active runs in the database instead (reserve answers null).
import { sql, type Kysely } from 'kysely';
import type { Redis } from 'ioredis';
import type { Logger } from 'pino';
import type { DB } from '../../db/schema.js';
import { connectRedis } from '../../lib/redis.js';
import { runSlotRepairs } from '../../metrics/instruments.js';
import { isUuid } from '../../lib/ids.js';
import { existingAccountIds } from '../accounts/store.js';

export type Reservation = { taken: true } | { taken: false; active: number };

export interface RunSlots {
  /**
   * Takes one of `limit` slots for `runId`; null when the slots cannot be used now (count in
   * the database). `db` seeds a missing set: the caller's transaction (PGlite has one connection).
   */
  reserve(db: Kysely<DB>, orgId: string, runId: string, limit: number): Promise<Reservation | null>;
  /** Gives the slot back (errors are left to the repair). */
  release(orgId: string, runId: string): void;
  /** Reconciles Redis with the database; returns how many members it added or removed. */
  repair(): Promise<number>;
  close(): Promise<void>;
}

const KEY_PREFIX = 'arkloop:runslots:';
const SEEDED = 'seeded';
/** Idle sets expire; a missing set is seeded again from the database on the next reserve. */
const KEY_TTL_MS = 24 * 3_600_000;
/** A reservation younger than this may belong to a create whose transaction has not committed yet. */
export const RESERVATION_GRACE_MS = 30_000;
const ACTIVE = ['running', 'waiting_for_input'] as const;
/** Written out (not bound) so the planner can use the partial index runs_active_idx in a prepared plan. */
const isActive = sql<boolean>`status IN (${sql.raw(ACTIVE.map((s) => `'${s}'`).join(', '))})`;

const NOW_MS = `local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)`;

// KEYS[1] set; ARGV limit, run id, ttl ms. Returns {1, active} taken, {0, active} refused, {-1, 0} not seeded.
const RESERVE_SCRIPT = `
if redis.call('EXISTS', KEYS[1]) == 0 then return {-1, 0} end
local active = redis.call('ZCARD', KEYS[1]) - 1
if redis.call('ZSCORE', KEYS[1], ARGV[2]) then return {1, active} end
if active >= tonumber(ARGV[1]) then return {0, active} end
${NOW_MS}
redis.call('ZADD', KEYS[1], now, ARGV[2])
redis.call('PEXPIRE', KEYS[1], ARGV[3])
return {1, active + 1}
`;

// KEYS[1] set; ARGV ttl ms, seed ('1': a missing set is seeded, else left missing), run ids...
// Adds the runs the set lacks.
const ADD_SCRIPT = `
${NOW_MS}
if redis.call('EXISTS', KEYS[1]) == 0 then
  if ARGV[2] ~= '1' then return 0 end
  redis.call('ZADD', KEYS[1], 0, '${SEEDED}')
end
local added = 0
for i = 3, #ARGV do added = added + redis.call('ZADD', KEYS[1], 'NX', now, ARGV[i]) end
redis.call('PEXPIRE', KEYS[1], ARGV[1])
return added
`;

type WithScripts = Redis & {
  runSlotReserve(key: string, limit: number, runId: string, ttlMs: number): Promise<[number, number]>;
  runSlotAdd(key: string, ttlMs: number, seed: string, ...runIds: string[]): Promise<number>;
};

export class RedisRunSlots implements RunSlots {
  private readonly redis: WithScripts;
  /** Redis is used only once a repair has run since it (re)connected. */
  private synced = false;
  private syncing: Promise<void> | null = null;
  private syncTriedAt = 0;
  private warnedAt = 0;

  private constructor(
    redis: Redis,
    private readonly db: Kysely<DB>,
    private readonly log: Logger,
  ) {
    redis.defineCommand('runSlotReserve', { numberOfKeys: 1, lua: RESERVE_SCRIPT });
    redis.defineCommand('runSlotAdd', { numberOfKeys: 1, lua: ADD_SCRIPT });
    this.redis = redis as WithScripts;
    redis.on('ready', () => void this.resync());
    redis.on('close', () => (this.synced = false));
  }

  static async connect(url: string, db: Kysely<DB>, log: Logger): Promise<RedisRunSlots> {
    const redis = await connectRedis(url, log, 'concurrent-run slots', 'are counted in the database');
    const slots = new RedisRunSlots(redis, db, log);
    if (redis.status === 'ready') await slots.resync();
    return slots;
  }

  /** Runs after every (re)connection: what changed while Redis was away is put right first. */
  private resync(): Promise<void> {
    this.syncTriedAt = Date.now();
    this.syncing ??= this.repair()
      .then(() => {
        this.synced = true;
      })
      .catch((err: Error) => this.warn(err, 'concurrent-run slots not reconciled; counting in the database'))
      .finally(() => {
        this.syncing = null;
      });
    return this.syncing;
  }

  private warn(err: Error, msg: string): void {
    // Connection loss is logged once per outage by connectRedis; anything else at most every 10 s.
    if (this.redis.status !== 'ready' || Date.now() - this.warnedAt < 10_000) return;
    this.warnedAt = Date.now();
    this.log.warn({ err: err.message }, msg);
  }

  async reserve(db: Kysely<DB>, orgId: string, runId: string, limit: number): Promise<Reservation | null> {
    if (!this.synced) {
      // A reconciliation that failed (the database was away too) is tried again, every 5 s at most.
      if (this.redis.status === 'ready' && !this.syncing && Date.now() - this.syncTriedAt > 5_000) void this.resync();
      return null;
    }
    const key = KEY_PREFIX + orgId;
    try {
      let [code, active] = await this.redis.runSlotReserve(key, limit, runId, KEY_TTL_MS);
      if (code === -1) {
        await this.add(key, await activeRunIds(db, orgId), true);
        [code, active] = await this.redis.runSlotReserve(key, limit, runId, KEY_TTL_MS);
      }
      if (code === -1) return null;
      return code === 1 ? { taken: true } : { taken: false, active };
    } catch (err) {
      this.warn(err as Error, 'concurrent-run slot not reserved in redis; counting in the database');
      return null;
    }
  }

  release(orgId: string, runId: string): void {
    this.redis.zrem(KEY_PREFIX + orgId, runId).catch(() => undefined);
  }

  async repair(): Promise<number> {
    // The members, read before the database so a run that commits in between is seen below.
    const [sec, usec] = await this.redis.time();
    const cutoff = Number(sec) * 1000 + Math.floor(Number(usec) / 1000) - RESERVATION_GRACE_MS;
    const members: Array<{ key: string; id: string; at: number }> = [];
    for await (const keys of this.redis.scanStream({ match: `${KEY_PREFIX}*`, count: 500 }) as AsyncIterable<string[]>) {
      if (!keys.length) continue;
      const pipe = this.redis.pipeline();
      for (const key of keys) pipe.zrangebyscore(key, 1, '+inf', 'WITHSCORES');
      const res = (await pipe.exec()) ?? [];
      keys.forEach((key, i) => {
        const [err, flat] = res[i] ?? [null, []];
        if (err) throw err;
        const f = flat as string[];
        for (let j = 0; j < f.length; j += 2) members.push({ key, id: f[j], at: Number(f[j + 1]) });
      });
    }
    const status = new Map<string, string>();
    const ids = members.map((m) => m.id).filter(isUuid);
    for (let i = 0; i < ids.length; i += 1000) {
      const rows = await this.db.selectFrom('runs').select(['id', 'status']).where('id', 'in', ids.slice(i, i + 1000)).execute();
      for (const r of rows) status.set(r.id, r.status);
    }
    const active = await this.db.selectFrom('runs').select(['id', 'org_id']).where(isActive).execute();
    // A run not found is ours to drop only when its account is: another installation sharing this
    // Redis keeps its own sets (account ids are random UUIDs, so the sets never collide).
    const unknownOrgs = [...new Set(members.filter((m) => !status.has(m.id)).map((m) => m.key.slice(KEY_PREFIX.length)).filter(isUuid))];
    const ours = await existingAccountIds(this.db, unknownOrgs);
    let removed = 0;
    for (const m of members) {
      const st = status.get(m.id);
      // An ended run goes at once; a run not found only after the grace (its create may not have committed yet).
      const stale = st === undefined ? m.at < cutoff && ours.has(m.key.slice(KEY_PREFIX.length)) : !(ACTIVE as readonly string[]).includes(st);
      if (stale) removed += await this.redis.zrem(m.key, m.id);
    }
    const byOrg = new Map<string, string[]>();
    for (const r of active) byOrg.set(r.org_id, [...(byOrg.get(r.org_id) ?? []), r.id]);
    // A missing set is seeded by the next reserve (accounts without a limit never get one).
    let added = 0;
    for (const [org, ids] of byOrg) added += await this.add(KEY_PREFIX + org, ids, false);
    if (removed) runSlotRepairs.inc({ kind: 'removed' }, removed);
    if (added) runSlotRepairs.inc({ kind: 'added' }, added);
    if (removed || added) this.log.info({ removed, added }, 'concurrent-run slots repaired');
    return removed + added;
  }

  private add(key: string, runIds: string[], seed: boolean): Promise<number> {
    return this.redis.runSlotAdd(key, KEY_TTL_MS, seed ? '1' : '0', ...runIds);
  }

  async close(): Promise<void> {
    this.redis.disconnect();
  }
}

async function activeRunIds(db: Kysely<DB>, orgId: string): Promise<string[]> {
  const rows = await db.selectFrom('runs').select('id').where('org_id', '=', orgId).where(isActive).execute();
  return rows.map((r) => r.id);
}
