// The identity test files' app: the harness of helpers/app.ts plus
//  - Redis-backed rate-limit counters when ARKLOOP_TEST_REDIS_URL is set (so both counter
//    stores are exercised); because Redis counters are shared by every test file and run,
//    each app trusts X-Forwarded-For and sends its own random client IP by default;
//  - probe routes (test only) declared with registerRoute like real `user+key` routes, so
//    API-key authentication, scopes and account binding can be tested on their own.
import { randomBytes, randomInt } from 'node:crypto';
import pino from 'pino';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { loadConfig } from '../../src/config.js';
import { buildApp } from '../../src/http/app.js';
import type { AppContext } from '../../src/app-context.js';
import { registerRoute } from '../../src/http/route.js';
import { newId } from '../../src/lib/ids.js';
import { permissionList } from '../../src/modules/accounts/permissions.js';
import { createContext, startWorker } from '../../src/server.js';
import { createTestDatabase, registerUser, testClient, TEST_SECRETS, type Res, type TestApp, type TestUser } from './app.js';

export interface IdentityApp extends TestApp {
  /** The client IP every request carries unless it sets X-Forwarded-For itself. */
  ip: string;
}

export function randomIp(): string {
  return `10.${randomInt(256)}.${randomInt(256)}.${randomInt(1, 255)}`;
}

function probeRoutes(app: FastifyInstance, ctx: AppContext): void {
  const describe = (req: FastifyRequest) => ({
    kind: req.principal!.kind,
    user_id: req.principal!.user.id,
    api_key_id: req.principal!.apiKeyId,
    org_id: req.account!.id,
    role: req.account!.role,
    permissions: permissionList(req.account!.points, false),
  });
  registerRoute(app, ctx, {
    method: 'GET',
    url: '/v1/_probe/read',
    caller: 'user+key',
    perm: 'data.threads.read',
    summary: 'test probe',
    tags: ['test'],
    hide: true,
    handler: async (req) => describe(req as never),
  });
  registerRoute(app, ctx, {
    method: 'GET',
    url: '/v1/_probe/secrets',
    caller: 'user+key',
    perm: 'data.secrets',
    summary: 'test probe',
    tags: ['test'],
    hide: true,
    handler: async (req) => describe(req as never),
  });
}

export async function startIdentityApp(env: Record<string, string> = {}, opts: { probes?: boolean; worker?: boolean } = {}): Promise<IdentityApp> {
  const db = await createTestDatabase();
  const redisUrl = process.env.ARKLOOP_TEST_REDIS_URL;
  const config = loadConfig({
    ARKLOOP_LOG_LEVEL: process.env.TEST_LOG_LEVEL ?? 'silent',
    ARKLOOP_DATA_DIR: '/tmp/arkloop-test-unused',
    ARKLOOP_TRUST_X_FORWARDED_FOR: '1',
    ...(redisUrl ? { ARKLOOP_REDIS_URL: redisUrl } : {}),
    ...env,
  });
  const ctx = await createContext({ config, database: db.database, secrets: TEST_SECRETS, log: pino({ level: config.logLevel }) });
  const app = await buildApp(ctx);
  if (opts.probes) probeRoutes(app, ctx);
  await app.ready();
  const ip = randomIp();
  const client = testClient(app, ctx, db, { 'x-forwarded-for': ip });
  // Mail goes out through `email.send` jobs: tests that read mail run a worker.
  if (!opts.worker) return { ...client, ip };
  const worker = startWorker(ctx);
  return { ...client, ip, close: async () => { await worker.stop(); await client.close(); } };
}

/** A workspace account created directly in the database (the accounts endpoints live elsewhere). */
export async function createWorkspace(t: TestApp, ownerUserId: string, name = 'Workspace'): Promise<string> {
  const id = newId();
  await t.ctx.db
    .insertInto('accounts')
    .values({ id, slug: `ws-${randomBytes(5).toString('hex')}`, name, type: 'workspace', owner_user_id: null })
    .execute();
  await addMember(t, id, ownerUserId, 'owner');
  return id;
}

// Direct changes to credentials-related rows tell the app, as the real endpoints do, so a
// credential cache never serves what the database no longer says.
export async function addMember(t: TestApp, accountId: string, userId: string, role: 'owner' | 'admin' | 'member'): Promise<void> {
  await t.ctx.db.insertInto('account_memberships').values({ account_id: accountId, user_id: userId, role }).execute();
  await t.ctx.credentials.changed(userId);
}

export async function setRole(t: TestApp, accountId: string, userId: string, role: 'owner' | 'admin' | 'member'): Promise<void> {
  await t.ctx.db.updateTable('account_memberships').set({ role }).where('account_id', '=', accountId).where('user_id', '=', userId).execute();
  await t.ctx.credentials.changed(userId);
}

export async function removeMember(t: TestApp, accountId: string, userId: string): Promise<void> {
  await t.ctx.db.deleteFrom('account_memberships').where('account_id', '=', accountId).where('user_id', '=', userId).execute();
  await t.ctx.credentials.changed(userId);
}

export async function setUserStatus(t: TestApp, userId: string, status: 'active' | 'suspended' | 'deleted'): Promise<void> {
  await t.ctx.db.updateTable('users').set({ status }).where('id', '=', userId).execute();
  await t.ctx.credentials.changed(userId);
}

/** Stores a platform setting as the admin endpoint would, and drops the settings cache. */
export async function setSetting(t: TestApp, key: string, value: unknown): Promise<void> {
  const json = JSON.stringify(value);
  await t.ctx.db
    .insertInto('platform_settings')
    .values({ key, value: json })
    .onConflict((oc) => oc.column('key').doUpdateSet({ value: json }))
    .execute();
  await t.ctx.settings.invalidate();
}

export async function deleteSetting(t: TestApp, key: string): Promise<void> {
  await t.ctx.db.deleteFrom('platform_settings').where('key', '=', key).execute();
  await t.ctx.settings.invalidate();
}

export async function auditRows(t: TestApp, where: { action?: string; targetId?: string; actorUserId?: string } = {}) {
  let q = t.ctx.db.selectFrom('audit_logs').selectAll();
  if (where.action) q = q.where('action', '=', where.action);
  if (where.targetId) q = q.where('target_id', '=', where.targetId);
  if (where.actorUserId) q = q.where('actor_user_id', '=', where.actorUserId);
  return q.orderBy('created_at').orderBy('id').execute();
}

/** The decoded (unverified) payload of a JWT. */
export function jwtPayload(token: string): Record<string, unknown> {
  return JSON.parse(Buffer.from(token.split('.')[1], 'base64url').toString('utf8'));
}

/** The Set-Cookie line of a cookie, or null. */
export function setCookieLine(res: Res, name: string): string | null {
  const raw = res.headers['set-cookie'];
  const list = Array.isArray(raw) ? raw : raw ? [raw] : [];
  return list.find((c) => c.startsWith(`${name}=`)) ?? null;
}

export const REFRESH_COOKIE = 'arkloop_refresh_token';

export function refreshCookieHeader(value: string): Record<string, string> {
  return { cookie: `${REFRESH_COOKIE}=${value}` };
}

/** The cast of a configuration-module test: `root` (registered first, so the platform admin),
 *  a workspace `ws` with its `owner` and a `member`, and an `other` user outside it. */
export interface Team {
  root: TestUser;
  owner: TestUser;
  member: TestUser;
  other: TestUser;
  ws: string;
}

export async function createTeam(t: TestApp, name = 'Acme'): Promise<Team> {
  const root = await registerUser(t);
  const owner = await registerUser(t);
  const member = await registerUser(t);
  const other = await registerUser(t);
  const ws = await createWorkspace(t, owner.id, name);
  await addMember(t, ws, member.id, 'member');
  return { root, owner, member, other, ws };
}
