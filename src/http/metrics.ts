// Prometheus metrics (api.md §25.3), one registry per app: request counts and latencies by
// route template and status, plus process metrics. Later modules add their gauges here.
import type { FastifyInstance } from 'fastify';
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import { sql } from 'kysely';
import type { AppContext } from '../app-context.js';
import { queueDepth } from '../engine/jobs.js';

export interface Metrics {
  registry: Registry;
}

export function installMetrics(app: FastifyInstance, ctx: AppContext): Metrics {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry, prefix: 'arkloop_' });
  const requests = new Counter({
    name: 'arkloop_http_requests_total',
    help: 'HTTP requests by method, route template and status',
    labelNames: ['method', 'route', 'status'] as const,
    registers: [registry],
  });
  const latency = new Histogram({
    name: 'arkloop_http_request_duration_seconds',
    help: 'HTTP request latency by method, route template and status',
    labelNames: ['method', 'route', 'status'] as const,
    buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
    registers: [registry],
  });
  // Read at scrape time: runs by status, job queue depth by type, open event streams.
  new Gauge({
    name: 'arkloop_runs',
    help: 'Runs by status',
    labelNames: ['status'] as const,
    registers: [registry],
    async collect() {
      const res = await sql<{ status: string; n: number }>`SELECT status, count(*)::int AS n FROM runs GROUP BY status`.execute(ctx.db);
      this.reset();
      for (const r of res.rows) this.set({ status: r.status }, r.n);
    },
  });
  new Gauge({
    name: 'arkloop_job_queue_depth',
    help: 'Queued and leased jobs by type',
    labelNames: ['type', 'state'] as const,
    registers: [registry],
    async collect() {
      const rows = await queueDepth(ctx.db);
      this.reset();
      for (const r of rows) this.set({ type: r.type, state: r.state }, r.n);
    },
  });
  new Gauge({
    name: 'arkloop_sse_streams',
    help: 'Open run event streams in this process',
    registers: [registry],
    collect() {
      this.set(ctx.engine.hub.subscriptions);
    },
  });
  app.addHook('onResponse', async (req, reply) => {
    const labels = { method: req.method, route: req.routeOptions.url ?? 'unmatched', status: String(reply.statusCode) };
    requests.inc(labels);
    latency.observe(labels, reply.elapsedTime / 1000);
  });
  app.get('/metrics', { schema: { summary: 'Prometheus metrics', tags: ['system'] } }, async (_req, reply) => {
    reply.header('content-type', registry.contentType);
    return registry.metrics();
  });
  return { registry };
}
