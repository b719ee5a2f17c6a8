// Gauges read at scrape time from the database and the process: runs by status, job queue
// depth and the age of the oldest due job, webhook backlog, DB pool use, open SSE streams.
// The database figures come from one snapshot (three small aggregate queries) shared by every
// registry of the context and kept SNAPSHOT_TTL_MS, with one read in flight at a time, so a
// scrape storm costs at most one round of queries per interval.
import { Gauge, type Registry } from 'prom-client';
import { sql } from 'kysely';
import type { AppContext } from '../app-context.js';

const SNAPSHOT_TTL_MS = 2000;

interface Snapshot {
  runs: Array<{ status: string; n: number }>;
  jobs: Array<{ type: string; state: string; n: number; oldest_due_s: number | null }>;
  webhooks: { pending: number; oldest_s: number | null };
}

const snapshots = new WeakMap<AppContext, { at: number; value: Promise<Snapshot> }>();

async function readSnapshot(ctx: AppContext): Promise<Snapshot> {
  const [runs, jobs, webhooks] = await Promise.all([
    sql<Snapshot['runs'][number]>`SELECT status, count(*)::int AS n FROM runs GROUP BY status`.execute(ctx.db),
    sql<Snapshot['jobs'][number]>`
      SELECT type, state, count(*)::int AS n,
             extract(epoch FROM now() - min(run_at) FILTER (WHERE state = 'queued' AND run_at <= now()))::float8 AS oldest_due_s
        FROM jobs WHERE state IN ('queued', 'leased') GROUP BY type, state`.execute(ctx.db),
    sql<Snapshot['webhooks']>`
      SELECT count(*)::int AS pending, extract(epoch FROM now() - min(created_at))::float8 AS oldest_s
        FROM webhook_deliveries WHERE status = 'pending'`.execute(ctx.db),
  ]);
  return { runs: runs.rows, jobs: jobs.rows, webhooks: webhooks.rows[0] ?? { pending: 0, oldest_s: null } };
}

function snapshot(ctx: AppContext): Promise<Snapshot> {
  const now = Date.now();
  const cached = snapshots.get(ctx);
  if (cached && now - cached.at < SNAPSHOT_TTL_MS) return cached.value;
  const value = readSnapshot(ctx);
  const entry = { at: now, value };
  snapshots.set(ctx, entry);
  // A failed read is not kept: the next scrape tries again.
  value.catch(() => snapshots.get(ctx) === entry && snapshots.delete(ctx));
  return value;
}

export function registerStateGauges(registry: Registry, ctx: AppContext): void {
  const registers = [registry];
  new Gauge({
    name: 'arkloop_runs',
    help: 'Runs by status',
    labelNames: ['status'] as const,
    registers,
    async collect() {
      const s = await snapshot(ctx);
      this.reset();
      for (const r of s.runs) this.set({ status: r.status }, r.n);
    },
  });
  new Gauge({
    name: 'arkloop_job_queue_depth',
    help: 'Queued and leased jobs by type',
    labelNames: ['type', 'state'] as const,
    registers,
    async collect() {
      const s = await snapshot(ctx);
      this.reset();
      for (const r of s.jobs) this.set({ type: r.type, state: r.state }, r.n);
    },
  });
  new Gauge({
    name: 'arkloop_job_oldest_due_seconds',
    help: 'Age of the oldest queued job that is due (job lag), by type; 0 when none waits',
    labelNames: ['type'] as const,
    registers,
    async collect() {
      const s = await snapshot(ctx);
      this.reset();
      for (const r of s.jobs) if (r.state === 'queued') this.set({ type: r.type }, Math.max(0, r.oldest_due_s ?? 0));
    },
  });
  new Gauge({
    name: 'arkloop_webhook_deliveries_pending',
    help: 'Webhook deliveries not yet succeeded or failed for good',
    registers,
    async collect() {
      this.set((await snapshot(ctx)).webhooks.pending);
    },
  });
  new Gauge({
    name: 'arkloop_webhook_oldest_pending_seconds',
    help: 'Age of the oldest pending webhook delivery; 0 when none',
    registers,
    async collect() {
      this.set(Math.max(0, (await snapshot(ctx)).webhooks.oldest_s ?? 0));
    },
  });
  new Gauge({
    name: 'arkloop_db_pool_connections',
    help: 'Database pool connections by state (in_use, idle, max) and callers waiting for one (waiting); PGlite: one session',
    labelNames: ['state'] as const,
    registers,
    collect() {
      const p = ctx.database.poolStats();
      this.set({ state: 'in_use' }, p.inUse);
      this.set({ state: 'idle' }, p.idle);
      this.set({ state: 'waiting' }, p.waiting);
      this.set({ state: 'max' }, p.max);
    },
  });
  new Gauge({
    name: 'arkloop_sse_streams',
    help: 'Open run event streams in this process',
    registers,
    collect() {
      this.set(ctx.engine.hub.subscriptions);
    },
  });
}
