// The typed context built once at start and passed down (no DI container): everything the
// API, the worker and every module share. It belongs to neither http/ nor worker/.
import type { Kysely } from 'kysely';
import type { Logger } from 'pino';
import type { Config } from './config.js';
import type { Database } from './db/database.js';
import type { DB } from './db/schema.js';
import type { Secrets } from './lib/secrets.js';
import type { CounterStore } from './lib/ratelimit.js';
import type { Mailer } from './mail/mailer.js';
import type { SettingsService } from './modules/settings/service.js';
import type { CredentialCache, CredentialInvalidator } from './modules/auth/cache.js';
import type { Engine } from './engine/engine.js';
import type { SharedCaches } from './db/shared-cache.js';
import type { Clock } from './lib/clock.js';
import type { AccessLogStore } from './gateway/access-log.js';
import type { RunSlots } from './modules/runs/slots.js';

export interface AppContext {
  config: Config;
  secrets: Secrets;
  database: Database;
  db: Kysely<DB>;
  log: Logger;
  settings: SettingsService;
  mailer: Mailer;
  counters: CounterStore;
  jwtKey: Uint8Array;
  schemaVersion: string;
  /** Resolved credentials, cached briefly; see modules/auth/cache.ts. */
  credentialCache: CredentialCache<unknown>;
  /** Call after any change that can refuse or alter a user's credentials or memberships. */
  credentials: CredentialInvalidator;
  /** Read-through caches dropped in every process on change (db/shared-cache.ts). */
  caches: SharedCaches;
  /** The time billing decisions read; tests advance it (lib/clock.ts). */
  clock: Clock;
  /** Run events hub and job wake-ups, shared by the API and the worker. */
  engine: Engine;
  /** The gateway's access log: a Redis stream, or the ring an in-process gateway writes (gateway/access-log.ts). */
  accessLog: AccessLogStore;
  /** Concurrent-run slots shared in Redis; null without Redis (active runs are counted in the database). */
  runSlots: RunSlots | null;
}
