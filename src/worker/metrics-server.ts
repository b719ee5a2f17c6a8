// The worker role's small HTTP listener (ARKLOOP_WORKER_METRICS_ADDR): GET /metrics in the
// Prometheus text format and GET /healthz; everything else is 404. Plain node:http, since two
// fixed paths need no framework. Under `arkloop serve` the API's /metrics covers the in-process
// worker, so only `arkloop worker` starts this.
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { Registry, collectDefaultMetrics } from 'prom-client';
import type { AppContext } from '../app-context.js';
import { registerInstruments } from '../metrics/instruments.js';
import { registerStateGauges } from '../metrics/state-gauges.js';

export interface WorkerMetricsServer {
  address: AddressInfo;
  close(): Promise<void>;
}

export async function startWorkerMetricsServer(ctx: AppContext, host: string, port: number): Promise<WorkerMetricsServer> {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry, prefix: 'arkloop_' });
  registerStateGauges(registry, ctx);
  registerInstruments(registry);
  const server = http.createServer((req, res) => {
    const path = (req.url ?? '/').split('?')[0];
    if (req.method !== 'GET' && req.method !== 'HEAD') return send(res, 405, 'application/json', '{"status":"method not allowed"}');
    if (path === '/healthz') return send(res, 200, 'application/json', '{"status":"ok"}');
    if (path !== '/metrics') return send(res, 404, 'application/json', '{"status":"not found"}');
    registry.metrics().then(
      (text) => send(res, 200, registry.contentType, text),
      (err: Error) => {
        ctx.log.warn({ err: err.message }, 'metrics collection failed');
        send(res, 503, 'text/plain', 'metrics unavailable\n');
      },
    );
  });
  server.keepAliveTimeout = 65_000; // longer than a typical scraper's idle connection
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => resolve());
  });
  return {
    address: server.address() as AddressInfo,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

function send(res: http.ServerResponse, status: number, type: string, body: string): void {
  res.writeHead(status, { 'content-type': type, 'content-length': Buffer.byteLength(body) });
  res.end(body);
}
