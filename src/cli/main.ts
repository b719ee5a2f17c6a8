// The `arkloop` command: server roles and maintenance verbs.
import { ConfigError, loadConfig } from '../config.js';
import { openDatabase } from '../db/database.js';
import { migrate } from '../db/migrator.js';
import { closeContext, createContext, runApi, startWorker } from '../server.js';
import { printStartupLine } from './startup.js';

const HELP = `usage: arkloop <command>

commands:
  serve     run the API and a worker in one process; embedded database by default
  api       run only the API (workers run elsewhere: arkloop worker)
  worker    run only workers (needs ARKLOOP_DATABASE_URL to share the database with API processes)
  gateway   run the gateway (rate limits, access log) in front of ARKLOOP_GATEWAY_UPSTREAM
  migrate   apply database migrations and exit
  help      show this text

configuration comes from ARKLOOP_* environment variables (see README.md).`;

async function serve(withWorker: boolean): Promise<void> {
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
async function workerCommand(): Promise<void> {
  const config = loadConfig();
  const ctx = await createContext({ config, migrate: true });
  const worker = startWorker(ctx);
  ctx.log.info({ worker: worker.id, concurrency: config.workerConcurrency, database: ctx.database.kind }, 'arkloop worker started');
  const onSignal = (sig: string) => {
    ctx.log.info({ signal: sig }, 'signal received');
    const timer = setTimeout(() => process.exit(1), 15_000);
    timer.unref();
    worker
      .stop()
      .then(() => closeContext(ctx))
      .then(
        () => process.exit(0),
        () => process.exit(1),
      );
  };
  process.once('SIGTERM', () => onSignal('SIGTERM'));
  process.once('SIGINT', () => onSignal('SIGINT'));
}

async function migrateCommand(): Promise<void> {
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

export async function main(argv: string[]): Promise<void> {
  const cmd = argv[0] ?? 'serve';
  try {
    switch (cmd) {
      case 'serve':
        await serve(true);
        return;
      case 'api':
        await serve(false);
        return;
      case 'worker':
        await workerCommand();
        return;
      case 'gateway':
        return (await import('./gateway-command.js')).gatewayCommand();
      case 'migrate':
        await migrateCommand();
        return;
      case 'help':
      case '--help':
      case '-h':
        process.stdout.write(HELP + '\n');
        return;
      default:
        process.stderr.write(`unknown command "${cmd}"\n\n${HELP}\n`);
        process.exit(2);
    }
  } catch (err) {
    if (err instanceof ConfigError) {
      process.stderr.write(`arkloop: configuration error: ${err.message}\n`);
      process.exit(2);
    }
    throw err;
  }
}
