// Users for platform admins (api.md §21.2–21.5): search and paging, detail with accounts,
// update (incl. suspension and the platform admin role) and deletion.
//
// Suspension and deletion revoke the user's sessions in the same transaction as the status
// change, and then `ctx.credentials.changed` drops the user's cached credentials here and, by
// NOTIFY, in every other process: the next request with any of their access tokens, refresh
// tokens or API keys is refused wherever it lands (the principal read checks the status).
import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { AppContext } from '../../app-context.js';
import { conflict, fieldError, notFound, validationError } from '../../http/errors.js';
import { registerRoute } from '../../http/route.js';
import { CursorPageQuery, DateTime, Nullable, T, Uuid, badCursor, iso, parsePageCursor } from '../../http/schemas.js';
import { auditedWrite } from '../audit/audited-write.js';
import { auditOrigin } from '../audit/store.js';
import { Email } from '../auth/routes.js';
import { revokeUserSessions } from '../auth/sessions.js';
import { listUserAccounts } from '../accounts/store.js';
import { removeUserMemberships, soleOwnedWorkspacesWithMembers } from '../accounts/members-store.js';
import { revokeUserApiKeys } from '../api-keys/store.js';
import { timezoneName } from '../me/routes.js';
import {
  adminUpdateUser,
  countActiveAdminsExcept,
  findUserById,
  listUsers,
  lockPlatformAdmins,
  lockUser,
  markUserDeleted,
  userExists,
  type AdminUserPatch,
  type UserRow,
} from '../users/store.js';

const UserStatus = T.Union([T.Literal('active'), T.Literal('suspended')]);

export const AdminUserSchema = T.Object({
  id: Uuid(),
  login: T.String(),
  username: T.String(),
  email: Nullable(T.String()),
  email_verified: T.Boolean(),
  status: UserStatus,
  is_platform_admin: T.Boolean(),
  avatar_url: Nullable(T.String()),
  locale: T.String(),
  timezone: Nullable(T.String()),
  last_login_at: Nullable(DateTime()),
  created_at: DateTime(),
});

const AdminUserDetailSchema = T.Object({
  ...AdminUserSchema.properties,
  orgs: T.Array(
    T.Object({
      org_id: Uuid(),
      name: T.String(),
      slug: T.String(),
      type: T.Union([T.Literal('personal'), T.Literal('workspace')]),
      role: T.String(),
      joined_at: DateTime(),
    }),
  ),
});

export function shapeAdminUser(u: UserRow) {
  return {
    id: u.id,
    login: u.login,
    username: u.username,
    email: u.email,
    email_verified: u.email_verified,
    status: u.status as 'active' | 'suspended',
    is_platform_admin: u.is_platform_admin,
    avatar_url: u.avatar_url,
    locale: u.locale,
    timezone: u.timezone,
    last_login_at: iso(u.last_login_at),
    created_at: iso(u.created_at),
  };
}

async function liveUser(ctx: AppContext, id: string): Promise<UserRow> {
  const u = await findUserById(ctx.db, id);
  if (!u || u.status === 'deleted') throw notFound('users.not_found', 'user');
  return u;
}

const emailTaken = () => conflict('auth.email_taken', 'another user has this email address');

export function adminUserRoutes(app: FastifyInstance, ctx: AppContext): void {
  const tags = ['admin'];
  const ids = { user_id: 'users.not_found' } as const;
  const Params = T.Object({ user_id: T.String() });

  registerRoute(app, ctx, {
    method: 'GET',
    url: '/v1/admin/users',
    caller: 'padmin',
    summary: 'Users, newest first (search by login, username or email)',
    tags,
    query: T.Object({ ...CursorPageQuery().properties, q: T.Optional(T.String({ maxLength: 254 })), status: T.Optional(UserStatus) }),
    response: T.Array(AdminUserSchema),
    handler: async (req) => {
      const cursor = parsePageCursor(req.query);
      if (cursor && !(await userExists(ctx.db, cursor.id))) throw badCursor(cursor.field);
      const q = req.query.q?.trim();
      const rows = await listUsers(ctx.db, { q: q || undefined, status: req.query.status, before: cursor?.id ?? null, limit: req.query.limit ?? 20 });
      return rows.map(shapeAdminUser);
    },
  });

  registerRoute(app, ctx, {
    method: 'GET',
    url: '/v1/admin/users/:user_id',
    caller: 'padmin',
    ids,
    summary: 'A user with their accounts',
    tags,
    params: Params,
    response: AdminUserDetailSchema,
    handler: async (req) => {
      const u = await liveUser(ctx, req.params.user_id);
      const accounts = await listUserAccounts(ctx.db, u.id);
      return {
        ...shapeAdminUser(u),
        orgs: accounts.map((a) => ({ org_id: a.id, name: a.name, slug: a.slug, type: a.type, role: a.role, joined_at: iso(a.joined_at) })),
      };
    },
  });

  registerRoute(app, ctx, {
    method: 'PATCH',
    url: '/v1/admin/users/:user_id',
    caller: 'padmin',
    ids,
    summary: 'Update a user: profile, email, status (suspend / reactivate), platform admin role',
    tags,
    params: Params,
    body: T.Object({
      status: T.Optional(UserStatus),
      username: T.Optional(T.String({ minLength: 1, maxLength: 64 })),
      email: T.Optional(Email()),
      email_verified: T.Optional(T.Boolean()),
      locale: T.Optional(T.String({ minLength: 1, maxLength: 16 })),
      timezone: T.Optional(Nullable(T.String({ minLength: 1, maxLength: 64 }))),
      is_platform_admin: T.Optional(T.Boolean()),
    }),
    trim: ['username', 'email', 'locale', 'timezone'],
    response: AdminUserSchema,
    handler: async (req) => {
      const b = req.body;
      const patch: AdminUserPatch = {};
      if (b.status !== undefined) patch.status = b.status;
      if (b.username !== undefined) patch.username = b.username;
      if (b.email !== undefined) patch.email = b.email;
      if (b.email_verified !== undefined) patch.email_verified = b.email_verified;
      if (b.locale !== undefined) patch.locale = b.locale;
      if (b.timezone !== undefined) {
        const name = b.timezone === null ? null : timezoneName(b.timezone);
        if (b.timezone !== null && name === null) throw fieldError('timezone', 'must be an IANA time zone name');
        patch.timezone = name;
      }
      if (b.is_platform_admin !== undefined) patch.is_platform_admin = b.is_platform_admin;
      if (Object.keys(patch).length === 0) throw validationError('at least one of status, username, email, email_verified, locale, timezone, is_platform_admin is required');
      const actorId = req.principal!.user.id;
      const userId = req.params.user_id;
      if (userId === actorId && (patch.status === 'suspended' || patch.is_platform_admin === false)) {
        throw conflict('admin.self_action', 'you cannot suspend yourself or drop your own platform admin role');
      }
      const { user, revoke } = await auditedWrite(
        ctx.db,
        auditOrigin(req as FastifyRequest),
        async (trx) => {
          const losesAdmin = patch.status === 'suspended' || patch.is_platform_admin === false;
          if (losesAdmin) await lockPlatformAdmins(trx);
          const before = await lockUser(trx, userId);
          if (!before) throw notFound('users.not_found', 'user');
          if (losesAdmin && before.is_platform_admin && before.status === 'active' && (await countActiveAdminsExcept(trx, userId)) === 0) {
            throw conflict('admin.last_platform_admin', 'this is the last active platform admin');
          }
          const email = b.email;
          if (email !== undefined && email.toLowerCase() !== (before.email ?? '').toLowerCase() && patch.email_verified === undefined) patch.email_verified = false;
          const after = await adminUpdateUser(trx, userId, patch);
          const suspended = before.status !== 'suspended' && after.status === 'suspended';
          if (suspended) await revokeUserSessions(trx, userId);
          const [was, is] = [shapeAdminUser(before), shapeAdminUser(after)];
          const changed = JSON.stringify(was) !== JSON.stringify(is);
          return {
            result: { user: after, revoke: changed },
            audit: !changed ? null : {
              orgId: null,
              actorUserId: actorId,
              action: 'admin.user_update',
              targetType: 'user',
              targetId: userId,
              metadata: { fields: Object.keys(patch).sort(), ...(suspended ? { sessions_revoked: true } : {}) },
              before: was,
              after: is,
            },
          };
        },
        { unique: { users_email_lower_key: emailTaken } },
      );
      // Cached credentials carry the status, role and profile: dropped in every process.
      if (revoke) await ctx.credentials.changed(userId);
      return shapeAdminUser(user);
    },
  });

  registerRoute(app, ctx, {
    method: 'DELETE',
    url: '/v1/admin/users/:user_id',
    caller: 'padmin',
    ids,
    status: 204,
    summary: 'Delete a user (their login and email become free again)',
    tags,
    params: Params,
    handler: async (req) => {
      const actorId = req.principal!.user.id;
      const userId = req.params.user_id;
      if (userId === actorId) throw conflict('admin.self_action', 'you cannot delete yourself');
      await auditedWrite(ctx.db, auditOrigin(req as FastifyRequest), async (trx) => {
        await lockPlatformAdmins(trx);
        const before = await lockUser(trx, userId);
        if (!before) throw notFound('users.not_found', 'user');
        if (before.is_platform_admin && before.status === 'active' && (await countActiveAdminsExcept(trx, userId)) === 0) {
          throw conflict('admin.last_platform_admin', 'this is the last active platform admin');
        }
        const blocked = await soleOwnedWorkspacesWithMembers(trx, userId);
        if (blocked.length) {
          throw conflict('accounts.last_owner', 'the user is the only owner of workspaces that have other members', { account_ids: blocked });
        }
        await revokeUserSessions(trx, userId);
        await revokeUserApiKeys(trx, userId);
        await removeUserMemberships(trx, userId);
        await markUserDeleted(trx, userId);
        return {
          result: null,
          audit: { orgId: null, actorUserId: actorId, action: 'admin.user_delete', targetType: 'user', targetId: userId, metadata: { login: before.login }, before: shapeAdminUser(before) },
        };
      });
      await ctx.credentials.changed(userId);
      return null;
    },
  });
}
