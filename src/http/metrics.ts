// Prometheus metrics (api.md §25.3), one registry per app: request counts and latencies by
// route template and status, plus process metrics, the state gauges (metrics/state-gauges.ts)
// and the process's own instruments (metrics/instruments.ts: event-bus lag, jobs executed).
import type { FastifyInstance } from 'fastify';
import { Counter, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import type { AppContext } from '../app-context.js';
import { registerInstruments } from '../metrics/instruments.js';
import { registerStateGauges } from '../metrics/state-gauges.js';

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
  registerStateGauges(registry, ctx);
  registerInstruments(registry);
  // Callback-style (no promise per request); the series of one (method, route, status) is
  // looked up once, not hashed from its labels on every request.
  const series = new Map<string, { requests: ReturnType<typeof requests.labels>; latency: ReturnType<typeof latency.labels> }>();
  app.addHook('onResponse', (req, reply, done) => {
    const route = req.routeOptions.url ?? 'unmatched';
    const status = String(reply.statusCode);
    const key = `${req.method} ${status} ${route}`;
    let s = series.get(key);
    if (!s) {
      const labels = { method: req.method, route, status };
      s = { requests: requests.labels(labels), latency: latency.labels(labels) };
      // Routes are templates, so the key space is bounded by the code; an unmatched URL shares 'unmatched'.
      series.set(key, s);
    }
    s.requests.inc();
    s.latency.observe(reply.elapsedTime / 1000);
    done();
  });
  app.get('/metrics', { schema: { summary: 'Prometheus metrics', tags: ['system'] } }, async (_req, reply) => {
    reply.header('content-type', registry.contentType);
    return registry.metrics();
  });
  return { registry };
}
