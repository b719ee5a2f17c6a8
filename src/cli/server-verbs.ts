// The server side of the `arkloop` command: serve, api, worker, migrate. main.ts loads this file
// lazily, so client verbs (login, chat, ...) never pay for the server's imports.
import { loadConfig } from '../config.js';
import { openDatabase } from '../db/database.js';
import { migrate } from '../db/migrator.js';
import { closeContext, createContext, runApi, startWorker } from '../server.js';
import { printStartupLine } from './startup.js';
import { startWorkerMetricsServer } from '../worker/metrics-server.js';

export async function serve(withWorker: boolean): Promise<void> {
  const config = loadConfig();
  const { app, stop, ctx } = await runApi(config, { worker: withWorker });
  printStartupLine(withWorker ? 'serve' : 'api', config, app.server.address());
  const onSignal = (sig: string) => {
    ctx.log.info({ signal: sig }, 'signal received');
    const timer = setTimeout(() => {
      ctx.log.error('shutdown took too long; exiting');
      process.exit(1);
    }, 15_000);
    timer.unref();
    stop().then(
      () => process.exit(0),
      (err: Error) => {
        ctx.log.error({ err: err.message }, 'shutdown failed');
        process.exit(1);
      },
    );
  };
  process.once('SIGTERM', () => onSignal('SIGTERM'));
  process.once('SIGINT', () => onSignal('SIGINT'));
}

/** `arkloop worker`: workers only, on the configured database (ARKLOOP_WORKER_CONCURRENCY jobs at once). */
export async function workerCommand(): Promise<void> {
  const config = loadConfig();
  const ctx = await createContext({ config, migrate: true });
  // The listener first: an address in use fails the start before any job is leased.
  const m = config.workerMetricsAddr;
  const metrics = m ? await startWorkerMetricsServer(ctx, m.host, m.port) : null;
  const worker = startWorker(ctx);
  const metricsAddr = metrics ? `http://${metrics.address.address}:${metrics.address.port}/metrics` : null;
  ctx.log.info({ worker: worker.id, concurrency: config.workerConcurrency, database: ctx.database.kind, metrics: metricsAddr }, 'arkloop worker started');
  const onSignal = (sig: string) => {
    ctx.log.info({ signal: sig }, 'signal received');
    const timer = setTimeout(() => process.exit(1), 15_000);
    timer.unref();
    worker
      .stop()
      .then(() => metrics?.close())
      .then(() => closeContext(ctx))
      .then(
        () => process.exit(0),
        () => process.exit(1),
      );
  };
  process.once('SIGTERM', () => onSignal('SIGTERM'));
  process.once('SIGINT', () => onSignal('SIGINT'));
}

export async function migrateCommand(): Promise<void> {
  const config = loadConfig();
  const database = await openDatabase({ databaseUrl: config.databaseUrl, dataDir: config.databaseUrl ? null : config.dataDir });
  try {
    const res = await migrate(database);
    process.stdout.write(
      res.applied.length ? `applied ${res.applied.join(', ')}; schema version ${res.version}\n` : `schema is up to date (version ${res.version})\n`,
    );
  } finally {
    await database.close();
  }
}
