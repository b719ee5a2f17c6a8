// `arkloop gateway`: the gateway alone (api.md §30), until SIGTERM / SIGINT.
import { loadConfig } from '../config.js';
import { startStandaloneGateway } from '../gateway/start.js';
import { createLogger } from '../server.js';

export async function gatewayCommand(): Promise<void> {
  const config = loadConfig();
  const log = createLogger(config);
  const running = await startStandaloneGateway(config, log);
  log.info({ addr: running.address, upstreams: config.gatewayUpstreams, redis: Boolean(config.redisUrl), database: Boolean(config.databaseUrl) }, 'arkloop gateway listening');
  const onSignal = (sig: string) => {
    log.info({ signal: sig }, 'signal received');
    setTimeout(() => process.exit(1), 15_000).unref();
    running.stop().then(
      () => process.exit(0),
      () => process.exit(1),
    );
  };
  process.once('SIGTERM', () => onSignal('SIGTERM'));
  process.once('SIGINT', () => onSignal('SIGINT'));
}
