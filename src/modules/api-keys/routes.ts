// API keys (api.md §5): create (shown once), list, revoke.
import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { AppContext } from '../../app-context.js';
import { AppError, forbidden, notFound, validationError, type FieldError } from '../../http/errors.js';
import { registerRoute } from '../../http/route.js';
import { DateTime, Nullable, OptNull, QueryBool, T, Uuid, parseQueryBool } from '../../http/schemas.js';
import { isPermissionPoint } from '../accounts/permissions.js';
import { isManagerRole } from '../accounts/store.js';
import { auditedWrite } from '../audit/audited-write.js';
import { auditOrigin } from '../audit/store.js';
import {
  MAX_ACTIVE_KEYS_PER_USER,
  countActiveKeys,
  findApiKey,
  generateApiKey,
  insertApiKey,
  listApiKeys,
  lockUserKeys,
  revokeApiKey,
  shapeApiKey,
} from './store.js';

const ApiKeySchema = T.Object({
  id: Uuid(),
  org_id: Uuid(),
  user_id: Uuid(),
  name: T.String(),
  key_prefix: T.String(),
  scopes: T.Array(T.String()),
  revoked_at: Nullable(DateTime()),
  last_used_at: Nullable(DateTime()),
  created_at: DateTime(),
});

const PERM = 'data.api_keys.manage';

/** Scopes must be permission points of §1.3; duplicates collapse, order is kept. */
function checkScopes(scopes: string[]): string[] {
  const errors: FieldError[] = [];
  scopes.forEach((s, i) => {
    if (!isPermissionPoint(s)) errors.push({ field: `scopes.${i}`, reason: 'must be a permission point' });
  });
  if (errors.length) throw validationError(errors);
  return [...new Set(scopes)];
}

export function apiKeyRoutes(app: FastifyInstance, ctx: AppContext): void {
  const tags = ['api-keys'];

  registerRoute(app, ctx, {
    method: 'POST',
    url: '/v1/api-keys',
    caller: 'user',
    perm: PERM,
    status: 201,
    summary: 'Create an API key (the secret is shown only in this response)',
    tags,
    body: T.Object({
      name: T.String({ minLength: 1, maxLength: 100 }),
      scopes: OptNull(T.Array(T.String({ maxLength: 200 }), { maxItems: 100 })),
    }),
    trim: ['name'],
    response: T.Object({ ...ApiKeySchema.properties, key: T.String() }),
    handler: async (req) => {
      const scopes = checkScopes(req.body.scopes ?? []);
      // A key acts for a member of its account; a platform admin acting in an account they do
      // not belong to would mint a key that is refused on every use.
      if (!req.account!.isMember) throw forbidden('API keys can only be created in an account you are a member of');
      const userId = req.principal!.user.id;
      const orgId = req.account!.id;
      const key = generateApiKey();
      const row = await auditedWrite(ctx.db, auditOrigin(req as FastifyRequest), async (trx) => {
        await lockUserKeys(trx, orgId, userId);
        if ((await countActiveKeys(trx, orgId, userId)) >= MAX_ACTIVE_KEYS_PER_USER) {
          throw new AppError('api_keys.limit_reached', `at most ${MAX_ACTIVE_KEYS_PER_USER} active API keys per user and account`, {
            limit: MAX_ACTIVE_KEYS_PER_USER,
          });
        }
        const created = await insertApiKey(trx, { orgId, userId, name: req.body.name, scopes, key });
        return {
          result: created,
          audit: {
            orgId,
            actorUserId: userId,
            action: 'api_key.create',
            targetType: 'api_key',
            targetId: created.id,
            metadata: { name: created.name, key_prefix: created.key_prefix, scopes },
          },
        };
      });
      return { ...shapeApiKey(row), key };
    },
  });

  registerRoute(app, ctx, {
    method: 'GET',
    url: '/v1/api-keys',
    caller: 'user',
    perm: PERM,
    summary: 'List API keys of the caller (or, for owners/admins with all=true, of the account)',
    tags,
    query: T.Object({ all: T.Optional(QueryBool()) }),
    response: T.Array(ApiKeySchema),
    handler: async (req) => {
      const all = parseQueryBool(req.query.all, false);
      if (all && !isManagerRole(req.account!.role)) throw forbidden('only owners and admins may list every key of the account');
      const rows = await listApiKeys(ctx.db, req.account!.id, all ? null : req.principal!.user.id);
      return rows.map(shapeApiKey);
    },
  });

  registerRoute(app, ctx, {
    method: 'DELETE',
    url: '/v1/api-keys/:id',
    caller: 'user',
    perm: PERM,
    ids: { id: 'api_keys.not_found' },
    status: 204,
    summary: 'Revoke an API key',
    tags,
    params: T.Object({ id: T.String() }),
    handler: async (req) => {
      const userId = req.principal!.user.id;
      const account = req.account!;
      const revokedFor = await auditedWrite(ctx.db, auditOrigin(req as FastifyRequest), async (trx) => {
        const key = await findApiKey(trx, account.id, req.params.id);
        // Another member's key is invisible to a plain member: 404, not 403.
        if (!key || (key.user_id !== userId && !isManagerRole(account.role))) throw notFound('api_keys.not_found', 'API key');
        // Already revoked: nothing changed, nothing to record.
        if (!(await revokeApiKey(trx, account.id, key.id))) return { result: null, audit: null };
        return {
          result: key.user_id,
          audit: {
            orgId: account.id,
            actorUserId: userId,
            action: 'api_key.revoke',
            targetType: 'api_key',
            targetId: key.id,
            metadata: { name: key.name, key_prefix: key.key_prefix, owner_user_id: key.user_id },
            before: shapeApiKey(key),
          },
        };
      });
      // After commit: cached credentials of the key stop working in every process.
      if (revokedFor) await ctx.credentials.changed(revokedFor);
      return null;
    },
  });
}
