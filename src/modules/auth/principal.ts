// Turns the request's credential into a Principal and its current account in one query.
// This is the one read that joins identity tables across modules (users, sessions,
// api_keys, accounts, memberships): it runs on every request, so it is a single round trip,
// and its result is cached for a few seconds (see cache.ts for why that stays correct).
import { sql } from 'kysely';
import type { AccountRole } from '../../db/schema.js';
import type { AppContext } from '../../app-context.js';
import type { CurrentAccount, Principal, PrincipalUser } from '../../http/request.js';
import { hashToken } from '../../lib/crypto.js';
import { isUuid } from '../../lib/ids.js';
import { keyPoints, pointsForRole } from '../accounts/permissions.js';
import { verifyAccessToken } from './tokens.js';

export type AccountSelection = { kind: 'personal' } | { kind: 'id'; id: string };

export interface ResolvedCredential {
  principal: Principal;
  /** null when the selected account does not exist or the caller may not act in it. */
  account: CurrentAccount | null;
  /** API keys: the account the key belongs to (X-Account-Id must match it). */
  keyAccountId: string | null;
  /** The account row exists but the caller is not a member (used for the 404). */
}

interface Row {
  user_id: string;
  login: string;
  username: string;
  email: string | null;
  email_verified: boolean;
  is_platform_admin: boolean;
  status: string;
  revoked_at: Date | null;
  cred_expires_at: Date | null;
  account_id: string | null;
  account_type: 'personal' | 'workspace' | null;
  account_name: string | null;
  account_slug: string | null;
  role: AccountRole | null;
  scopes?: string[];
  key_id?: string;
  key_org_id?: string;
  last_used_at?: Date | null;
}

function toUser(row: Row): PrincipalUser {
  return {
    id: row.user_id,
    login: row.login,
    username: row.username,
    email: row.email,
    emailVerified: row.email_verified,
    isPlatformAdmin: row.is_platform_admin,
  };
}

function toAccount(row: Row, isPlatformAdmin: boolean, scopes: string[] | null): CurrentAccount | null {
  if (!row.account_id || !row.account_type) return null;
  const isMember = row.role !== null;
  if (!isMember && !(isPlatformAdmin && scopes === null)) return null;
  const role: AccountRole = row.role ?? 'owner';
  return {
    id: row.account_id,
    type: row.account_type,
    name: row.account_name!,
    slug: row.account_slug!,
    role,
    isMember,
    points: scopes === null ? pointsForRole(role) : keyPoints(role, scopes),
  };
}

interface Cached {
  value: ResolvedCredential;
  /** Access tokens: when the token (or its session) stops being valid, epoch ms. */
  validUntil: number;
  /** API keys: last_used_at as last written, epoch ms. */
  lastUsed: number;
}

function cache(ctx: AppContext) {
  return ctx.credentialCache as import('./cache.js').CredentialCache<Cached>;
}

export async function resolveAccessToken(ctx: AppContext, token: string, sel: AccountSelection): Promise<ResolvedCredential | null> {
  const cacheKey = `t|${sel.kind === 'personal' ? '' : sel.id}|${token}`;
  const hit = cache(ctx).get(cacheKey);
  if (hit && hit.validUntil > Date.now()) return hit.value;
  return cache(ctx).shared(cacheKey, () => loadAccessToken(ctx, token, sel, cacheKey));
}

async function loadAccessToken(ctx: AppContext, token: string, sel: AccountSelection, cacheKey: string): Promise<ResolvedCredential | null> {
  const generation = cache(ctx).generation();
  const claims = await verifyAccessToken(ctx.jwtKey, token);
  if (!claims || !isUuid(claims.sid) || !isUuid(claims.sub)) return null;
  const accountJoin =
    sel.kind === 'personal'
      ? sql`a.type = 'personal' AND a.owner_user_id = u.id`
      : sql`a.id = ${sel.id}`;
  const res = await sql<Row>`
    SELECT u.id AS user_id, u.login, u.username, u.email, u.email_verified, u.is_platform_admin, u.status,
           s.revoked_at, s.expires_at AS cred_expires_at,
           a.id AS account_id, a.type AS account_type, a.name AS account_name, a.slug AS account_slug, m.role
      FROM sessions s
      JOIN users u ON u.id = s.user_id
      LEFT JOIN accounts a ON ${accountJoin}
      LEFT JOIN account_memberships m ON m.account_id = a.id AND m.user_id = u.id
     WHERE s.id = ${claims.sid} AND s.user_id = ${claims.sub}`.execute(ctx.db);
  const row = res.rows[0];
  if (!row || row.revoked_at !== null || row.status !== 'active') return null;
  if (row.cred_expires_at && row.cred_expires_at.getTime() <= Date.now()) return null;
  const resolved: ResolvedCredential = {
    principal: {
      kind: 'user',
      user: toUser(row),
      sessionId: claims.sid,
      apiKeyId: null,
    },
    account: toAccount(row, row.is_platform_admin, null),
    keyAccountId: null,
  };
  const validUntil = Math.min(claims.expMs, row.cred_expires_at?.getTime() ?? Infinity);
  cache(ctx).set(cacheKey, row.user_id, { value: resolved, validUntil, lastUsed: 0 }, generation, validUntil - Date.now());
  return resolved;
}

/** At most once a minute; the condition is repeated in SQL so concurrent requests write once. */
async function touchApiKey(ctx: AppContext, keyId: string): Promise<void> {
  await ctx.db
    .updateTable('api_keys')
    .set({ last_used_at: new Date() })
    .where('id', '=', keyId)
    .where((eb) => eb.or([eb('last_used_at', 'is', null), eb('last_used_at', '<=', new Date(Date.now() - 60_000))]))
    .execute()
    .catch((err: Error) => ctx.log.warn({ err: err.message }, 'api key last_used_at update failed'));
}

export async function resolveApiKey(ctx: AppContext, key: string): Promise<ResolvedCredential | null> {
  const keyHash = hashToken(key);
  const cacheKey = `k|${keyHash}`;
  const hit = cache(ctx).get(cacheKey);
  if (hit) {
    if (Date.now() - hit.lastUsed >= 60_000) {
      hit.lastUsed = Date.now();
      await touchApiKey(ctx, hit.value.principal.apiKeyId!);
    }
    return hit.value;
  }
  return cache(ctx).shared(cacheKey, () => loadApiKey(ctx, keyHash, cacheKey));
}

async function loadApiKey(ctx: AppContext, keyHash: string, cacheKey: string): Promise<ResolvedCredential | null> {
  const generation = cache(ctx).generation();
  const res = await sql<Row>`
    SELECT u.id AS user_id, u.login, u.username, u.email, u.email_verified, u.is_platform_admin, u.status,
           k.revoked_at, NULL::timestamptz AS cred_expires_at, k.id AS key_id, k.org_id AS key_org_id,
           k.scopes, k.last_used_at,
           a.id AS account_id, a.type AS account_type, a.name AS account_name, a.slug AS account_slug, m.role
      FROM api_keys k
      JOIN users u ON u.id = k.user_id
      JOIN accounts a ON a.id = k.org_id
      LEFT JOIN account_memberships m ON m.account_id = k.org_id AND m.user_id = k.user_id
     WHERE k.key_hash = ${keyHash}`.execute(ctx.db);
  const row = res.rows[0];
  if (!row || row.revoked_at !== null || row.status !== 'active' || row.role === null) return null;
  const scopes = Array.isArray(row.scopes) ? row.scopes : [];
  let lastUsed = row.last_used_at ? row.last_used_at.getTime() : 0;
  if (Date.now() - lastUsed >= 60_000) {
    // Awaited: a detached write could outlive the request (and the database on shutdown),
    // and readers right after the request must see it.
    lastUsed = Date.now();
    await touchApiKey(ctx, row.key_id!);
  }
  const resolved: ResolvedCredential = {
    principal: {
      kind: 'api_key',
      user: toUser(row),
      sessionId: null,
      apiKeyId: row.key_id!,
    },
    account: toAccount(row, false, scopes),
    keyAccountId: row.key_org_id!,
  };
  cache(ctx).set(cacheKey, row.user_id, { value: resolved, validUntil: Infinity, lastUsed }, generation);
  return resolved;
}
