// Feature flags (api.md §24), platform admins only: flags and their per-account overrides.
// Every write calls flagsChanged after commit, so the next request in every process sees it.
import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { AppContext } from '../../app-context.js';
import { conflict, notFound, validationError } from '../../http/errors.js';
import { registerRoute } from '../../http/route.js';
import { DateTime, Nullable, OkResponse, OptNull, T, Uuid } from '../../http/schemas.js';
import { findAccount } from '../accounts/store.js';
import { auditedWrite } from '../audit/audited-write.js';
import { auditOrigin } from '../audit/store.js';
import { flagsChanged } from './flags.js';
import {
  deleteFlag,
  deleteFlagOverride,
  findFlag,
  findFlagOverride,
  insertFlag,
  listFlagOverrides,
  listFlags,
  lockFlag,
  putFlagOverride,
  shapeFlag,
  shapeFlagOverride,
  updateFlag,
} from './store.js';

const FlagSchema = T.Object({
  id: Uuid(),
  key: T.String(),
  description: Nullable(T.String()),
  default_value: T.Boolean(),
  created_at: DateTime(),
  updated_at: DateTime(),
});
const OverrideSchema = T.Object({ org_id: Uuid(), flag_key: T.String(), enabled: T.Boolean(), created_at: DateTime() });
const KeyParams = T.Object({ key: T.String() });

const flagNotFound = () => notFound('feature_flags.not_found', 'feature flag');
// Audit metadata names the flag `flag_key`, as an override does.
const flagMeta = (key: string) => ({ flag_key: key });

export function featureFlagRoutes(app: FastifyInstance, ctx: AppContext): void {
  const tags = ['feature-flags'];
  const origin = (req: unknown) => auditOrigin(req as FastifyRequest);
  const actor = (req: { principal: FastifyRequest['principal'] }) => req.principal!.user.id;

  registerRoute(app, ctx, {
    method: 'POST',
    url: '/v1/feature-flags',
    caller: 'padmin',
    status: 201,
    summary: 'Create a feature flag',
    tags,
    body: T.Object({
      key: T.String({ pattern: '^[a-z0-9][a-z0-9._-]{0,127}$' }),
      description: OptNull(T.String({ maxLength: 2000 })),
      default_value: T.Boolean(),
    }),
    response: FlagSchema,
    handler: async (req) => {
      const flag = await auditedWrite(
        ctx.db,
        origin(req),
        async (trx) => {
          const row = await insertFlag(trx, { key: req.body.key, description: req.body.description ?? null, defaultValue: req.body.default_value });
          return { result: row, audit: { orgId: null, actorUserId: actor(req), action: 'feature_flag.create', targetType: 'feature_flag', targetId: row.key, metadata: flagMeta(row.key), after: shapeFlag(row) } };
        },
        { unique: () => conflict('feature_flags.key_taken', 'a flag with this key exists') },
      );
      await flagsChanged(ctx, null);
      return shapeFlag(flag);
    },
  });

  registerRoute(app, ctx, {
    method: 'GET',
    url: '/v1/feature-flags',
    caller: 'padmin',
    summary: 'Every feature flag, by key',
    tags,
    response: T.Array(FlagSchema),
    handler: async () => (await listFlags(ctx.db)).map(shapeFlag),
  });

  registerRoute(app, ctx, {
    method: 'GET',
    url: '/v1/feature-flags/:key',
    caller: 'padmin',
    summary: 'A feature flag',
    tags,
    params: KeyParams,
    response: FlagSchema,
    handler: async (req) => {
      const flag = await findFlag(ctx.db, req.params.key);
      if (!flag) throw flagNotFound();
      return shapeFlag(flag);
    },
  });

  registerRoute(app, ctx, {
    method: 'PATCH',
    url: '/v1/feature-flags/:key',
    caller: 'padmin',
    summary: "Change a flag's default value or description",
    tags,
    params: KeyParams,
    body: T.Object({ default_value: T.Optional(T.Boolean()), description: OptNull(T.String({ maxLength: 2000 })) }),
    response: FlagSchema,
    handler: async (req) => {
      const patch: { default_value?: boolean; description?: string | null } = {};
      if (req.body.default_value !== undefined) patch.default_value = req.body.default_value;
      if (req.body.description !== undefined) patch.description = req.body.description;
      if (Object.keys(patch).length === 0) throw validationError('at least one of default_value, description is required');
      const flag = await auditedWrite(ctx.db, origin(req), async (trx) => {
        const before = await lockFlag(trx, req.params.key);
        if (!before) throw flagNotFound();
        const after = (await updateFlag(trx, before.key, patch))!;
        return {
          result: after,
          audit: { orgId: null, actorUserId: actor(req), action: 'feature_flag.update', targetType: 'feature_flag', targetId: after.key, metadata: { ...flagMeta(after.key), fields: Object.keys(patch) }, before: shapeFlag(before), after: shapeFlag(after) },
        };
      });
      await flagsChanged(ctx, null);
      return shapeFlag(flag);
    },
  });

  registerRoute(app, ctx, {
    method: 'DELETE',
    url: '/v1/feature-flags/:key',
    caller: 'padmin',
    summary: 'Delete a flag and its overrides',
    tags,
    params: KeyParams,
    response: OkResponse,
    handler: async (req) => {
      await auditedWrite(ctx.db, origin(req), async (trx) => {
        const overrides = await listFlagOverrides(trx, req.params.key);
        const gone = await deleteFlag(trx, req.params.key);
        if (!gone) throw flagNotFound();
        return {
          result: gone,
          audit: { orgId: null, actorUserId: actor(req), action: 'feature_flag.delete', targetType: 'feature_flag', targetId: gone.key, metadata: { ...flagMeta(gone.key), overrides_deleted: overrides.length }, before: shapeFlag(gone) },
        };
      });
      await flagsChanged(ctx, null);
      return { ok: true };
    },
  });

  registerRoute(app, ctx, {
    method: 'POST',
    url: '/v1/feature-flags/:key/org-overrides',
    caller: 'padmin',
    summary: "Set an account's value of a flag (creates or replaces its override)",
    tags,
    params: KeyParams,
    body: T.Object({ org_id: Uuid(), enabled: T.Boolean() }),
    response: OverrideSchema,
    handler: async (req) => {
      const orgId = req.body.org_id.toLowerCase();
      const row = await auditedWrite(ctx.db, origin(req), async (trx) => {
        const flag = await lockFlag(trx, req.params.key);
        if (!flag) throw flagNotFound();
        if (!(await findAccount(trx, orgId))) throw notFound('accounts.not_found', 'account');
        const before = await findFlagOverride(trx, flag.key, orgId);
        const after = await putFlagOverride(trx, flag.key, orgId, req.body.enabled);
        return {
          result: after,
          audit: {
            orgId,
            actorUserId: actor(req),
            action: 'feature_flag.override_set',
            targetType: 'feature_flag',
            targetId: flag.key,
            metadata: { ...flagMeta(flag.key), enabled: after.enabled },
            before: before ? shapeFlagOverride(before) : null,
            after: shapeFlagOverride(after),
          },
        };
      });
      await flagsChanged(ctx, orgId);
      return shapeFlagOverride(row);
    },
  });

  registerRoute(app, ctx, {
    method: 'GET',
    url: '/v1/feature-flags/:key/org-overrides',
    caller: 'padmin',
    summary: "A flag's account overrides",
    tags,
    params: KeyParams,
    response: T.Array(OverrideSchema),
    handler: async (req) => {
      const flag = await findFlag(ctx.db, req.params.key);
      if (!flag) throw flagNotFound();
      return (await listFlagOverrides(ctx.db, flag.key)).map(shapeFlagOverride);
    },
  });

  registerRoute(app, ctx, {
    method: 'DELETE',
    url: '/v1/feature-flags/:key/org-overrides/:org_id',
    caller: 'padmin',
    ids: { org_id: 'feature_flag_overrides.not_found' },
    summary: "Remove an account's override (the flag's default applies again)",
    tags,
    params: T.Object({ key: T.String(), org_id: T.String() }),
    response: OkResponse,
    handler: async (req) => {
      const orgId = req.params.org_id;
      await auditedWrite(ctx.db, origin(req), async (trx) => {
        const flag = await findFlag(trx, req.params.key);
        if (!flag) throw flagNotFound();
        const gone = await deleteFlagOverride(trx, flag.key, orgId);
        if (!gone) throw notFound('feature_flag_overrides.not_found', 'feature flag override');
        return {
          result: gone,
          audit: { orgId, actorUserId: actor(req), action: 'feature_flag.override_delete', targetType: 'feature_flag', targetId: flag.key, metadata: flagMeta(flag.key), before: shapeFlagOverride(gone) },
        };
      });
      await flagsChanged(ctx, orgId);
      return { ok: true };
    },
  });
}
