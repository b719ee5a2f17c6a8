// Access log of the gateway (api.md §21.13, §30): one entry per request, newest first when
// read. With ARKLOOP_REDIS_URL the entries go to a Redis stream capped near 100 000 entries
// (XADD MAXLEN ~), which every API process reads; without it, to an in-memory ring of 10 000
// entries that only an API in the same process can read (`arkloop serve` with
// ARKLOOP_SERVE_GATEWAY=1). A separate `arkloop gateway` process therefore needs Redis for its
// log to be visible through GET /v1/admin/access-log. Ids are `<ms>-<seq>` in both stores (the
// stream's own ids), so `before` / `since` are positions: a trimmed entry's id still works.
import type { Redis } from 'ioredis';
import type { Logger } from 'pino';
import { connectRedis } from '../lib/redis.js';
import type { UaType } from './risk.js';

export interface AccessLogEntry {
  id: string;
  timestamp: string;
  trace_id: string;
  method: string;
  path: string;
  status_code: number;
  duration_ms: number;
  client_ip: string;
  country: string | null;
  city: string | null;
  user_agent: string;
  ua_type: UaType;
  risk_score: number;
  identity_type: 'anonymous' | 'user' | 'api_key';
  org_id: string | null;
  user_id: string | null;
  username: string | null;
}

export type NewAccessLogEntry = Omit<AccessLogEntry, 'id'>;

export interface AccessLogQuery {
  limit: number;
  before?: string;
  since?: string;
  method?: string;
  path?: string;
  ip?: string;
  country?: string;
  risk_min?: number;
  ua_type?: string;
}

export interface AccessLogPage {
  data: AccessLogEntry[];
  has_more: boolean;
}

export interface AccessLogStore {
  append(entry: NewAccessLogEntry): void;
  list(q: AccessLogQuery): Promise<AccessLogPage>;
  close(): Promise<void>;
}

export const ENTRY_ID = /^\d{1,15}-\d{1,15}$/;

function idParts(id: string): [number, number] {
  const dash = id.indexOf('-');
  return [Number(id.slice(0, dash)), Number(id.slice(dash + 1))];
}

/** Negative when `a` is older than `b`. */
function compareIds(a: string, b: string): number {
  const [am, as] = idParts(a);
  const [bm, bs] = idParts(b);
  return am - bm || as - bs;
}

function matches(e: AccessLogEntry, q: AccessLogQuery): boolean {
  return (
    (q.method === undefined || e.method === q.method.toUpperCase()) &&
    (q.path === undefined || e.path.startsWith(q.path)) &&
    (q.ip === undefined || e.client_ip === q.ip) &&
    (q.country === undefined || e.country === q.country.toUpperCase()) &&
    (q.risk_min === undefined || e.risk_score >= q.risk_min) &&
    (q.ua_type === undefined || e.ua_type === q.ua_type)
  );
}

export class MemoryAccessLog implements AccessLogStore {
  private readonly ring: AccessLogEntry[] = [];
  private next = 0;
  private lastMs = 0;
  private seq = 0;

  constructor(private readonly capacity = 10_000) {}

  append(entry: NewAccessLogEntry): void {
    const ms = Math.max(Date.now(), this.lastMs);
    this.seq = ms === this.lastMs ? this.seq + 1 : 0;
    this.lastMs = ms;
    const full = { id: `${ms}-${this.seq}`, ...entry };
    if (this.ring.length < this.capacity) this.ring.push(full);
    else this.ring[this.next] = full;
    this.next = (this.next + 1) % this.capacity;
  }

  async list(q: AccessLogQuery): Promise<AccessLogPage> {
    const data: AccessLogEntry[] = [];
    const n = this.ring.length;
    // Newest first: walk back from the slot written last.
    for (let i = 0; i < n; i++) {
      const e = this.ring[(this.next - 1 - i + n) % n];
      if (q.before !== undefined && compareIds(e.id, q.before) >= 0) continue;
      if (q.since !== undefined && compareIds(e.id, q.since) <= 0) break;
      if (!matches(e, q)) continue;
      if (data.length === q.limit) return { data, has_more: true };
      data.push(e);
    }
    return { data, has_more: false };
  }

  async close(): Promise<void> {}
}

const STREAM = 'arkloop:gw:access-log';
const STREAM_CAP = 100_000;
const SCAN_PAGE = 500;

export class RedisAccessLog implements AccessLogStore {
  private redis: Promise<Redis> | null = null;
  private warnedAt = 0;

  constructor(
    private readonly url: string,
    private readonly log: Logger,
  ) {}

  /** Connected on first use: an API process that never reads the log holds no connection. */
  private client(): Promise<Redis> {
    return (this.redis ??= connectRedis(this.url, this.log, 'access log entries'));
  }

  append(entry: NewAccessLogEntry): void {
    this.client()
      .then((r) => r.xadd(STREAM, 'MAXLEN', '~', STREAM_CAP, '*', 'e', JSON.stringify(entry)))
      .catch((err: Error) => {
        if (Date.now() - this.warnedAt < 10_000) return;
        this.warnedAt = Date.now();
        this.log.warn({ err: err.message }, 'access log entry dropped: redis unavailable');
      });
  }

  async list(q: AccessLogQuery): Promise<AccessLogPage> {
    const redis = await this.client();
    const data: AccessLogEntry[] = [];
    const start = q.since !== undefined ? `(${q.since}` : '-';
    let end = q.before !== undefined ? `(${q.before}` : '+';
    for (;;) {
      const rows = await redis.xrevrange(STREAM, end, start, 'COUNT', SCAN_PAGE);
      for (const [id, fields] of rows) {
        const e = { id, ...(JSON.parse(fields[1]) as NewAccessLogEntry) };
        if (!matches(e, q)) continue;
        if (data.length === q.limit) return { data, has_more: true };
        data.push(e);
      }
      if (rows.length < SCAN_PAGE) return { data, has_more: false };
      end = `(${rows[rows.length - 1][0]}`;
    }
  }

  async close(): Promise<void> {
    if (this.redis) (await this.redis).disconnect();
  }
}
