// What `arkloop serve` / `arkloop api` print once the API listens: the line a person opens the
// console from (issue 11: `Arkloop ready: console http://127.0.0.1:19001/ · API /v1 · docs /docs`),
// then one line saying which database holds the data. Both go to stderr so stdout stays JSON log
// lines only, and are left out when ARKLOOP_LOG_LEVEL is warn, error or silent.
import type { AddressInfo } from 'node:net';
import type { Config } from '../config.js';

/** An address a browser on this machine can open (an all-interfaces bind is reached on loopback). */
function apiOrigin(host: string, port: number): { origin: string; allInterfaces: boolean } {
  const allInterfaces = host === '0.0.0.0' || host === '::' || host === '';
  const shown = host === '0.0.0.0' || host === '' ? '127.0.0.1' : host === '::' ? '::1' : host;
  return { origin: `http://${shown.includes(':') ? `[${shown}]` : shown}:${port}`, allInterfaces };
}

/** `host:port/database` of a PostgreSQL URL, never its user or password. */
export function describePostgres(url: string): string {
  try {
    const u = new URL(url);
    const host = u.host || u.searchParams.get('host') || 'localhost';
    const db = decodeURIComponent(u.pathname.replace(/^\//, '')) || '(default database)';
    return `${host}/${db}`;
  } catch {
    return '(unparsable URL)';
  }
}

export function startupLine(command: string, config: Config, address: AddressInfo | string | null): string {
  const port = address && typeof address === 'object' ? address.port : config.apiPort;
  const { origin, allInterfaces } = apiOrigin(config.apiHost, port);
  const database = config.databaseUrl
    ? `PostgreSQL at ${describePostgres(config.databaseUrl)}`
    : `embedded PGlite, data in ${config.dataDir}`;
  return (
    `Arkloop ready: console ${origin}/ · API /v1 · docs /docs${allInterfaces ? ' (listening on all interfaces)' : ''}\n` +
    `arkloop ${command}: ${database}`
  );
}

export function printStartupLine(command: string, config: Config, address: AddressInfo | string | null): void {
  if (config.logLevel !== 'info' && config.logLevel !== 'debug') return;
  process.stderr.write(startupLine(command, config, address) + '\n');
}
