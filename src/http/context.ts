// The typed context built once at start and passed down (no DI container), and what the
// authentication hook attaches to each request.
import type { Kysely } from 'kysely';
import type { Logger } from 'pino';
import type { Config } from '../config.js';
import type { Database } from '../db/database.js';
import type { AccountRole, DB } from '../db/schema.js';
import type { Secrets } from '../lib/secrets.js';
import type { CounterStore } from '../lib/ratelimit.js';
import type { Mailer } from '../mail/mailer.js';
import type { SettingsService } from '../modules/settings/service.js';
import type { AuditOrigin } from '../modules/audit/store.js';
import type { CredentialCache, CredentialInvalidator } from '../modules/auth/cache.js';
import type { Engine } from '../engine/engine.js';

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
  /** Run events hub and job wake-ups, shared by the API and the worker. */
  engine: Engine;
}

export interface PrincipalUser {
  id: string;
  login: string;
  username: string;
  email: string | null;
  emailVerified: boolean;
  isPlatformAdmin: boolean;
}

export interface Principal {
  kind: 'user' | 'api_key';
  user: PrincipalUser;
  sessionId: string | null;
  apiKeyId: string | null;
}

export interface CurrentAccount {
  id: string;
  type: 'personal' | 'workspace';
  name: string;
  slug: string;
  /** The caller's role; a platform admin who is not a member acts as `owner`. */
  role: AccountRole;
  isMember: boolean;
  points: ReadonlySet<string>;
}

declare module 'fastify' {
  interface FastifyRequest {
    principal: Principal | null;
    account: CurrentAccount | null;
    clientIp: string;
  }
  interface FastifyContextConfig {
    /** The route declares a body schema (decides whether a sent body is parsed at all). */
    hasBody?: boolean;
  }
}

export function auditOrigin(req: { id: string; clientIp: string; headers: Record<string, unknown> }): AuditOrigin {
  const ua = req.headers['user-agent'];
  return { traceId: req.id, ip: req.clientIp || null, userAgent: typeof ua === 'string' ? ua : null };
}
