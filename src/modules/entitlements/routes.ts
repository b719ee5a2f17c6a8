// Entitlements (api.md §18): the effective values of an account with their source, and the
// overrides platform admins set per account and key.
import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { AppContext } from '../../app-context.js';
import { fieldError, notFound } from '../../http/errors.js';
import { registerRoute } from '../../http/route.js';
import { DateTime, Nullable, OkResponse, OptNull, T, Uuid } from '../../http/schemas.js';
import { findAccount } from '../accounts/store.js';
import { auditedWrite } from '../audit/audited-write.js';
import { auditOrigin } from '../audit/store.js';
import { entitlementValueProblem } from './keys.js';
import { effectiveEntitlements, entitlementsChanged } from './resolve.js';
import { deleteOverride, findOverride, listOverrides, putOverride, shapeOverride } from './store.js';

const ValueType = T.Union([T.Literal('integer'), T.Literal('boolean'), T.Literal('string')]);
const OverrideSchema = T.Object({
  id: Uuid(),
  org_id: Uuid(),
  key: T.String(),
  value: T.String(),
  value_type: ValueType,
  reason: Nullable(T.String()),
  expires_at: Nullable(DateTime()),
  created_by_user_id: Nullable(Uuid()),
  created_at: DateTime(),
});
const Source = T.Union(['env', 'flag', 'override', 'plan', 'setting', 'default'].map((s) => T.Literal(s)));

export function entitlementRoutes(app: FastifyInstance, ctx: AppContext): void {
  const tags = ['entitlements'];

  async function existingAccount(orgId: string): Promise<string> {
    if (!(await findAccount(ctx.db, orgId))) throw notFound('accounts.not_found', 'account');
    return orgId;
  }

  registerRoute(app, ctx, {
    method: 'GET',
    url: '/v1/entitlements',
    caller: 'user',
    summary: 'The effective value of every entitlement key for the current account (platform admins: any account)',
    tags,
    query: T.Object({ org_id: T.Optional(Uuid()) }),
    response: T.Object({
      org_id: Uuid(),
      entitlements: T.Array(T.Object({ key: T.String(), value: T.String(), value_type: ValueType, source: Source })),
    }),
    handler: async (req) => {
      const asked = req.query.org_id?.toLowerCase();
      let orgId = req.account!.id;
      if (asked !== undefined && asked !== orgId) {
        if (!req.principal!.user.isPlatformAdmin) throw notFound('accounts.not_found', 'account');
        orgId = await existingAccount(asked);
      }
      return { org_id: orgId, entitlements: await effectiveEntitlements(ctx, orgId) };
    },
  });

  registerRoute(app, ctx, {
    method: 'GET',
    url: '/v1/entitlement-overrides',
    caller: 'padmin',
    summary: "An account's entitlement overrides, expired ones included, newest first",
    tags,
    query: T.Object({ org_id: Uuid() }),
    response: T.Array(OverrideSchema),
    handler: async (req) => (await listOverrides(ctx.db, await existingAccount(req.query.org_id.toLowerCase()))).map(shapeOverride),
  });

  registerRoute(app, ctx, {
    method: 'POST',
    url: '/v1/entitlement-overrides',
    caller: 'padmin',
    status: 201,
    summary: "Set an account's value of a key (replaces its override of that key)",
    tags,
    body: T.Object({
      org_id: Uuid(),
      key: T.String({ pattern: '^[a-z0-9][a-z0-9._-]{0,127}$' }),
      value: T.String({ maxLength: 1000 }),
      value_type: ValueType,
      reason: OptNull(T.String({ maxLength: 2000 })),
      expires_at: OptNull(DateTime()),
    }),
    response: OverrideSchema,
    handler: async (req) => {
      const { key, value, value_type, reason } = req.body;
      const problem = entitlementValueProblem(key, value, value_type);
      if (problem) throw fieldError('value', problem);
      const expiresAt = req.body.expires_at ? new Date(req.body.expires_at) : null;
      if (expiresAt && expiresAt.getTime() <= ctx.clock.nowMs()) throw fieldError('expires_at', 'must be in the future');
      const orgId = req.body.org_id.toLowerCase();
      const row = await auditedWrite(ctx.db, auditOrigin(req as FastifyRequest), async (trx) => {
        if (!(await findAccount(trx, orgId))) throw notFound('accounts.not_found', 'account');
        const { row, replaced } = await putOverride(trx, { orgId, key, value, valueType: value_type, reason: reason ?? null, expiresAt, createdByUserId: req.principal!.user.id });
        const shaped = shapeOverride(row);
        return {
          result: shaped,
          audit: {
            orgId,
            actorUserId: req.principal!.user.id,
            action: 'entitlement_override.create',
            targetType: 'entitlement_override',
            targetId: row.id,
            metadata: { key, value, value_type },
            before: replaced ? shapeOverride(replaced) : null,
            after: shaped,
          },
        };
      });
      await entitlementsChanged(ctx, orgId);
      return row;
    },
  });

  registerRoute(app, ctx, {
    method: 'DELETE',
    url: '/v1/entitlement-overrides/:id',
    caller: 'padmin',
    ids: { id: 'entitlement_overrides.not_found' },
    summary: 'Remove an override (the plan or setting value applies again)',
    tags,
    params: T.Object({ id: T.String() }),
    query: T.Object({ org_id: T.Optional(T.String({ maxLength: 100 })) }),
    response: OkResponse,
    handler: async (req) => {
      const orgId = await auditedWrite(ctx.db, auditOrigin(req as FastifyRequest), async (trx) => {
        const found = await findOverride(trx, req.params.id);
        // org_id, when given, must name the override's account (decided: else the same 404).
        if (!found || (req.query.org_id !== undefined && req.query.org_id.toLowerCase() !== found.org_id)) {
          throw notFound('entitlement_overrides.not_found', 'entitlement override');
        }
        await deleteOverride(trx, found.id);
        return {
          result: found.org_id,
          audit: { orgId: found.org_id, actorUserId: req.principal!.user.id, action: 'entitlement_override.delete', targetType: 'entitlement_override', targetId: found.id, metadata: { key: found.key }, before: shapeOverride(found) },
        };
      });
      await entitlementsChanged(ctx, orgId);
      return { ok: true };
    },
  });
}
