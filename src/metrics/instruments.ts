// Process-wide instruments recorded where the work happens (event hub, worker). They belong to
// no registry of their own: every role's registry (API, worker listener) registers them, so a
// process reports what it did whichever roles it runs.
import { Counter, Histogram, type Metric, type Registry } from 'prom-client';

const LAG_BUCKETS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60];

/**
 * Time from an event's `created_at` (the start of the transaction that wrote it, on the
 * database's clock) to its delivery to this process's hub: the writing transaction, commit,
 * NOTIFY and parsing on PostgreSQL; the transaction and in-process publication on PGlite.
 */
export const eventBusLag = new Histogram({
  name: 'arkloop_event_bus_lag_seconds',
  help: 'Delay from a run event being written to its delivery to local subscribers (NOTIFY or in process)',
  buckets: LAG_BUCKETS,
  registers: [],
});

/**
 * Lease delay: when a job was leased from the queue minus when it became due (run_at). Jobs
 * written already leased to a worker of the same process (local dispatch) never wait and are
 * not observed; a job taken again after its lease expired counts from its original run_at.
 */
export const jobLeaseDelay = new Histogram({
  name: 'arkloop_job_lease_delay_seconds',
  help: 'Delay from a job becoming due (run_at) to a worker leasing it, by type',
  labelNames: ['type'] as const,
  buckets: LAG_BUCKETS,
  registers: [],
});

export const jobsExecuted = new Counter({
  name: 'arkloop_jobs_executed_total',
  help: 'Jobs executed by this process, by type and outcome (completed, failed, requeued, aborted)',
  labelNames: ['type', 'outcome'] as const,
  registers: [],
});

/** Concurrent-run slots the repair sweep fixed in Redis (modules/runs/slots.ts). */
export const runSlotRepairs = new Counter({
  name: 'arkloop_run_slot_repairs_total',
  help: 'Concurrent-run slots repaired in Redis: added (an active run was missing) or removed (its run had ended or never committed)',
  labelNames: ['kind'] as const,
  registers: [],
});

export function registerInstruments(registry: Registry): void {
  for (const m of [eventBusLag, jobLeaseDelay, jobsExecuted, runSlotRepairs] as Metric[]) registry.registerMetric(m);
}

/** Seconds since `at` (ISO string or Date), never negative (clocks of two hosts may differ a little). */
export function secondsSince(at: string | Date, nowMs = Date.now()): number {
  const t = typeof at === 'string' ? Date.parse(at) : at.getTime();
  return Number.isFinite(t) ? Math.max(0, (nowMs - t) / 1000) : 0;
}
