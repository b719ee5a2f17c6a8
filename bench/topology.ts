// Process launcher of the runs benchmarks (bench/runs.ts): the roles of `bin/arkloop.js` from the
// build, as separate child processes.
//
//   single   one `arkloop serve` (API + in-process worker), optionally an `arkloop gateway` in front
//   multi    `--apis` × `arkloop api` + `--workers` × `arkloop worker` + one `arkloop gateway` in
//            front of every API, on one fresh PostgreSQL database and Redis (the scale-out shape of
//            issue 12); the clients go through the gateway
//
// Every process, the database and the data dirs are registered with the Cleanup the moment they
// exist. RSS and CPU are read from /proc per process.
import { randomBytes } from 'node:crypto';
import { rmSync } from 'node:fs';
import path from 'node:path';
import { Cleanup, cleanEnv, createDatabase, freePort, spawnServer, waitReady, type Server } from './servers.js';

export type Role = 'serve' | 'api' | 'worker' | 'gateway';

export interface Proc {
  role: Role;
  /** e.g. `api#2`. */
  name: string;
  server: Server;
}

export interface Topology {
  /** Where clients send their requests: the gateway when there is one, else the (only) API. */
  origin: string;
  /** The API process(es) the gateway forwards to, in start order. */
  apiOrigins: string[];
  procs: Proc[];
  /** PostgreSQL database name (null on PGlite). */
  dbName: string | null;
  stop(): Promise<void>;
}

export interface TopologyOptions {
  cleanup: Cleanup;
  /** `node` arguments that run bin/arkloop.js (the build's entry, or tsx + src/cli/run.ts). */
  entryArgs: string[];
  /** Extra `node` flags of the API/serve processes (e.g. --cpu-prof). */
  nodeArgs?: string[];
  tmpRoot: string;
  tag: string;
  /** null: PGlite in a data dir (single only). */
  pgAdminUrl: string | null;
  redisUrl?: string | null;
  shape: 'single' | 'multi';
  apis?: number;
  workers?: number;
  /** single only: an `arkloop gateway` process in front (multi always has one). */
  gateway?: boolean;
  /** single only: the gateway inside `serve` (ARKLOOP_SERVE_GATEWAY=1); clients go to its port. */
  serveGateway?: boolean;
  /** Environment of every process (ARKLOOP_* of the bench's shell are never inherited). */
  env: Record<string, string>;
  /** Extra environment of the gateway process. */
  gatewayEnv?: Record<string, string>;
}

export async function startTopology(o: TopologyOptions): Promise<Topology> {
  const releases: Array<() => Promise<void>> = [];
  const stop = async () => {
    // Gateway first, then APIs, then workers: the reverse of start order.
    for (const r of [...releases].reverse()) await r();
  };
  const procs: Proc[] = [];
  const common: Record<string, string> = {
    ARKLOOP_LOG_LEVEL: 'warn',
    ARKLOOP_AUTH_ACCESS_TOKEN_TTL_SECONDS: '86400',
    // Every process must agree on these; PGlite would generate them in the data dir otherwise.
    ARKLOOP_AUTH_JWT_SECRET: randomBytes(48).toString('base64'),
    ARKLOOP_ENCRYPTION_KEY: randomBytes(32).toString('hex'),
    ...o.env,
  };
  const dataDir = path.join(o.tmpRoot, `data-${o.tag}`);
  releases.push(o.cleanup.add(`remove ${dataDir}`, () => rmSync(dataDir, { recursive: true, force: true })));
  common.ARKLOOP_DATA_DIR = dataDir;
  let dbName: string | null = null;
  if (o.pgAdminUrl) {
    dbName = `arkloop_bench_${o.tag}`;
    const db = await createDatabase(o.cleanup, o.pgAdminUrl, dbName);
    releases.push(db.drop);
    common.ARKLOOP_DATABASE_URL = db.url;
  } else if (o.shape === 'multi') throw new Error('the multi topology needs PostgreSQL');
  if (o.redisUrl) common.ARKLOOP_REDIS_URL = o.redisUrl;

  const spawn = async (role: Role, name: string, env: Record<string, string>, origin: string, nodeArgs: string[] = []): Promise<Proc> => {
    const server = spawnServer(name, [...nodeArgs, ...o.entryArgs, role], { env: cleanEnv({ ...common, ...env }), cwd: o.tmpRoot, origin });
    releases.push(o.cleanup.add(`stop ${name}`, async () => void (await server.stop())));
    const p = { role, name, server };
    procs.push(p);
    return p;
  };
  const apiProc = async (role: 'serve' | 'api', name: string) => {
    const port = await freePort();
    return spawn(role, name, { ARKLOOP_API_ADDR: `127.0.0.1:${port}` }, `http://127.0.0.1:${port}`, o.nodeArgs ?? []);
  };

  try {
    const apiOrigins: string[] = [];
    let serveGatewayOrigin: string | null = null;
    if (o.shape === 'single') {
      const gwPort = o.serveGateway ? await freePort() : null;
      if (gwPort) {
        serveGatewayOrigin = `http://127.0.0.1:${gwPort}`;
        Object.assign(common, { ARKLOOP_SERVE_GATEWAY: '1', ARKLOOP_GATEWAY_ADDR: `127.0.0.1:${gwPort}`, ...o.gatewayEnv });
      }
      const p = await apiProc('serve', 'serve');
      await waitReady(p.server);
      if (serveGatewayOrigin) await waitReady({ ...p.server, origin: serveGatewayOrigin }, 90_000, '/healthz');
      apiOrigins.push(p.server.origin);
    } else {
      // The first API migrates the database alone; the others start on the migrated schema.
      const first = await apiProc('api', 'api#1');
      await waitReady(first.server);
      const rest: Proc[] = [];
      for (let i = 2; i <= (o.apis ?? 2); i++) rest.push(await apiProc('api', `api#${i}`));
      for (let i = 1; i <= (o.workers ?? 2); i++) {
        const port = await freePort();
        // The worker's own /healthz listener, so the launcher can tell when it is up.
        rest.push(await spawn('worker', `worker#${i}`, { ARKLOOP_WORKER_METRICS_ADDR: `127.0.0.1:${port}` }, `http://127.0.0.1:${port}`));
      }
      await Promise.all(rest.map((p) => waitReady(p.server, 90_000, p.role === 'worker' ? '/healthz' : '/readyz')));
      apiOrigins.push(first.server.origin, ...rest.filter((p) => p.role === 'api').map((p) => p.server.origin));
    }
    let origin = serveGatewayOrigin ?? apiOrigins[0];
    if (o.shape === 'multi' || o.gateway) {
      const port = await freePort();
      const g = await spawn('gateway', 'gateway', { ARKLOOP_GATEWAY_ADDR: `127.0.0.1:${port}`, ARKLOOP_GATEWAY_UPSTREAM: apiOrigins.join(','), ...o.gatewayEnv }, `http://127.0.0.1:${port}`);
      await waitReady(g.server);
      origin = g.server.origin;
    }
    return { origin, apiOrigins, procs, dbName, stop };
  } catch (err) {
    await stop();
    throw err;
  }
}
