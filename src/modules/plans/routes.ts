// Plans (api.md §17.1–17.5) and subscriptions (§17.6–17.9). Plans are platform-wide: anyone
// signed in reads them, platform admins write them. A subscription puts an account on a plan,
// whose values the entitlement resolution then reads (modules/entitlements).
import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { AppContext } from '../../app-context.js';
import { conflict, fieldError, notFound, validationError, type FieldError } from '../../http/errors.js';
import { registerRoute } from '../../http/route.js';
import { DateTime, Limit, Nullable, T, Uuid, badCursor, parseCursor } from '../../http/schemas.js';
import { findAccount } from '../accounts/store.js';
import { auditedWrite } from '../audit/audited-write.js';
import { auditOrigin } from '../audit/store.js';
import { changeCredits } from '../credits/store.js';
import { entitlementValueProblem } from '../entitlements/keys.js';
import { entitlementsChanged } from '../entitlements/resolve.js';
import {
  cancelSubscription,
  deletePlan,
  findPlan,
  findSubscription,
  hasActiveSubscription,
  insertPlan,
  insertSubscription,
  listPlans,
  listSubscriptions,
  lockAccountSubscriptions,
  planInUse,
  shapePlan,
  shapeSubscription,
  updatePlan,
  type PlanEntitlement,
} from './store.js';

const ValueType = T.Union([T.Literal('integer'), T.Literal('boolean'), T.Literal('string')]);
const KEY_PATTERN = '^[a-z0-9][a-z0-9._-]{0,127}$';
const EntitlementInput = T.Object({
  key: T.String({ pattern: KEY_PATTERN }),
  value: T.String({ maxLength: 1000 }),
  value_type: ValueType,
});
const Entitlements = T.Array(EntitlementInput, { maxItems: 100 });

const PlanSchema = T.Object({
  id: Uuid(),
  name: T.String(),
  display_name: T.String(),
  created_at: DateTime(),
  updated_at: DateTime(),
  entitlements: T.Array(T.Object({ id: Uuid(), key: T.String(), value: T.String(), value_type: ValueType })),
});

const SubscriptionStatus = T.Union([T.Literal('active'), T.Literal('cancelled'), T.Literal('expired')]);
const SubscriptionSchema = T.Object({
  id: Uuid(),
  org_id: Uuid(),
  plan_id: Uuid(),
  status: SubscriptionStatus,
  current_period_start: DateTime(),
  current_period_end: DateTime(),
  cancelled_at: Nullable(DateTime()),
  created_at: DateTime(),
});

const nameTaken = () => conflict('plans.name_taken', 'a plan with this name exists');

/** The plan's values, each checked against its type and the key's rules; keys unique. */
function checkEntitlements(list: ReadonlyArray<PlanEntitlement>): PlanEntitlement[] {
  const errors: FieldError[] = [];
  const seen = new Set<string>();
  list.forEach((e, i) => {
    if (seen.has(e.key)) errors.push({ field: `entitlements.${i}.key`, reason: 'duplicate key in this plan' });
    seen.add(e.key);
    const problem = entitlementValueProblem(e.key, e.value, e.value_type);
    if (problem) errors.push({ field: `entitlements.${i}.value`, reason: problem });
  });
  if (errors.length) throw validationError(errors);
  return list.map((e) => ({ key: e.key, value: e.value, value_type: e.value_type }));
}

const isPadmin = (req: FastifyRequest) => req.principal!.user.isPlatformAdmin;

/** Integer credits of a plan's credits.monthly_grant (0 when unset). */
function monthlyGrant(entitlements: ReadonlyArray<PlanEntitlement>): number {
  const e = entitlements.find((x) => x.key === 'credits.monthly_grant');
  return e ? Number(e.value) : 0;
}

export function planRoutes(app: FastifyInstance, ctx: AppContext): void {
  const tags = ['plans'];
  const ids = { id: 'plans.not_found' } as const;

  registerRoute(app, ctx, {
    method: 'GET',
    url: '/v1/plans',
    caller: 'user',
    summary: 'Plans, by name',
    tags,
    response: T.Array(PlanSchema),
    handler: async () => (await listPlans(ctx.db)).map(shapePlan),
  });

  registerRoute(app, ctx, {
    method: 'GET',
    url: '/v1/plans/:id',
    caller: 'user',
    ids,
    summary: 'One plan',
    tags,
    params: T.Object({ id: T.String() }),
    response: PlanSchema,
    handler: async (req) => {
      const plan = await findPlan(ctx.db, req.params.id);
      if (!plan) throw notFound('plans.not_found', 'plan');
      return shapePlan(plan);
    },
  });

  registerRoute(app, ctx, {
    method: 'POST',
    url: '/v1/plans',
    caller: 'padmin',
    status: 201,
    summary: 'Create a plan with its entitlement values',
    tags,
    body: T.Object({
      name: T.String({ pattern: '^[a-z0-9][a-z0-9_-]{0,63}$' }),
      display_name: T.String({ minLength: 1, maxLength: 100 }),
      entitlements: T.Optional(T.Union([Entitlements, T.Null()])),
    }),
    trim: ['display_name'],
    response: PlanSchema,
    handler: async (req) => {
      const entitlements = checkEntitlements(req.body.entitlements ?? []);
      return auditedWrite(
        ctx.db,
        auditOrigin(req as FastifyRequest),
        async (trx) => {
          const plan = shapePlan(await insertPlan(trx, { name: req.body.name, displayName: req.body.display_name, entitlements }));
          return { result: plan, audit: { orgId: null, actorUserId: req.principal!.user.id, action: 'plan.create', targetType: 'plan', targetId: plan.id, after: plan } };
        },
        { unique: nameTaken },
      );
    },
  });

  registerRoute(app, ctx, {
    method: 'PATCH',
    url: '/v1/plans/:id',
    caller: 'padmin',
    ids,
    summary: 'Rename a plan or replace its entitlement values',
    tags,
    params: T.Object({ id: T.String() }),
    body: T.Object({
      display_name: T.Optional(T.String({ minLength: 1, maxLength: 100 })),
      entitlements: T.Optional(Entitlements),
    }),
    trim: ['display_name'],
    response: PlanSchema,
    handler: async (req) => {
      const { display_name, entitlements } = req.body;
      if (display_name === undefined && entitlements === undefined) throw fieldError('body', 'give display_name or entitlements');
      const checked = entitlements ? checkEntitlements(entitlements) : undefined;
      const plan = await auditedWrite(ctx.db, auditOrigin(req as FastifyRequest), async (trx) => {
        const before = await findPlan(trx, req.params.id, true);
        if (!before) throw notFound('plans.not_found', 'plan');
        const after = shapePlan(await updatePlan(trx, before.id, { displayName: display_name, entitlements: checked }));
        return {
          result: after,
          audit: { orgId: null, actorUserId: req.principal!.user.id, action: 'plan.update', targetType: 'plan', targetId: after.id, before: shapePlan(before), after },
        };
      });
      // Every account on this plan may see new values: the cache is dropped for all.
      await entitlementsChanged(ctx, null);
      return plan;
    },
  });

  registerRoute(app, ctx, {
    method: 'DELETE',
    url: '/v1/plans/:id',
    caller: 'padmin',
    ids,
    status: 204,
    summary: 'Delete a plan no active subscription uses',
    tags,
    params: T.Object({ id: T.String() }),
    handler: async (req) => {
      await auditedWrite(ctx.db, auditOrigin(req as FastifyRequest), async (trx) => {
        // Locked, so a subscription being created for it waits and then finds it gone.
        const plan = await findPlan(trx, req.params.id, true);
        if (!plan) throw notFound('plans.not_found', 'plan');
        if (await planInUse(trx, plan.id, ctx.clock.now())) throw conflict('plans.in_use', 'an active subscription uses this plan');
        await deletePlan(trx, plan.id);
        return { result: null, audit: { orgId: null, actorUserId: req.principal!.user.id, action: 'plan.delete', targetType: 'plan', targetId: plan.id, before: shapePlan(plan) } };
      });
      await entitlementsChanged(ctx, null);
    },
  });

  subscriptionRoutes(app, ctx);
}

function subscriptionRoutes(app: FastifyInstance, ctx: AppContext): void {
  const tags = ['subscriptions'];

  /** The account a list or read is limited to: any (admins, unless they name one) or the current one. */
  async function scopeOf(req: FastifyRequest, orgId: string | undefined): Promise<string | undefined> {
    if (isPadmin(req)) {
      if (orgId !== undefined && !(await findAccount(ctx.db, orgId))) throw notFound('accounts.not_found', 'account');
      return orgId;
    }
    if (orgId !== undefined && orgId !== req.account!.id) throw notFound('accounts.not_found', 'account');
    return req.account!.id;
  }

  registerRoute(app, ctx, {
    method: 'POST',
    url: '/v1/subscriptions',
    caller: 'padmin',
    status: 201,
    summary: "Put an account on a plan (grants the plan's credits.monthly_grant)",
    tags,
    body: T.Object({
      org_id: Uuid(),
      plan_id: Uuid(),
      current_period_start: DateTime(),
      current_period_end: DateTime(),
    }),
    response: SubscriptionSchema,
    handler: async (req) => {
      const start = new Date(req.body.current_period_start);
      const end = new Date(req.body.current_period_end);
      if (!(end.getTime() > start.getTime())) throw fieldError('current_period_end', 'must be after current_period_start');
      const orgId = req.body.org_id.toLowerCase();
      const sub = await auditedWrite(ctx.db, auditOrigin(req as FastifyRequest), async (trx) => {
        if (!(await findAccount(trx, orgId))) throw notFound('accounts.not_found', 'account');
        const plan = await findPlan(trx, req.body.plan_id.toLowerCase());
        if (!plan) throw notFound('plans.not_found', 'plan');
        await lockAccountSubscriptions(trx, orgId);
        if (await hasActiveSubscription(trx, orgId, ctx.clock.now())) {
          throw conflict('subscriptions.already_active', 'the account already has an active subscription');
        }
        const row = await insertSubscription(trx, { orgId, planId: plan.id, start, end });
        const grant = monthlyGrant(plan.entitlements);
        if (grant > 0) await changeCredits(trx, { orgId, amount: grant, referenceType: 'plan_grant', referenceId: row.id, note: `plan ${plan.name}` });
        const shaped = shapeSubscription(row, ctx.clock.now());
        return {
          result: shaped,
          audit: { orgId, actorUserId: req.principal!.user.id, action: 'subscription.create', targetType: 'subscription', targetId: row.id, metadata: { plan_id: plan.id, plan_name: plan.name, credits_granted: grant }, after: shaped },
        };
      });
      await entitlementsChanged(ctx, orgId);
      return sub;
    },
  });

  registerRoute(app, ctx, {
    method: 'GET',
    url: '/v1/subscriptions',
    caller: 'user',
    summary: "Subscriptions, newest first: the current account's, or (platform admins) any",
    tags,
    query: T.Object({
      org_id: T.Optional(Uuid()),
      status: T.Optional(SubscriptionStatus),
      limit: T.Optional(Limit()),
      before: T.Optional(T.String({ maxLength: 100 })),
    }),
    response: T.Array(SubscriptionSchema),
    handler: async (req) => {
      const orgId = await scopeOf(req as FastifyRequest, req.query.org_id?.toLowerCase());
      const before = parseCursor(req.query.before);
      if (before && !(await findSubscription(ctx.db, before, orgId ?? null))) throw badCursor();
      const now = ctx.clock.now();
      const rows = await listSubscriptions(ctx.db, { orgId, status: req.query.status, now, limit: req.query.limit ?? 20, before });
      return rows.map((s) => shapeSubscription(s, now));
    },
  });

  registerRoute(app, ctx, {
    method: 'GET',
    url: '/v1/subscriptions/:id',
    caller: 'user',
    ids: { id: 'subscriptions.not_found' },
    summary: 'One subscription',
    tags,
    params: T.Object({ id: T.String() }),
    response: SubscriptionSchema,
    handler: async (req) => {
      const s = await findSubscription(ctx.db, req.params.id, isPadmin(req as FastifyRequest) ? null : req.account!.id);
      if (!s) throw notFound('subscriptions.not_found', 'subscription');
      return shapeSubscription(s, ctx.clock.now());
    },
  });

  registerRoute(app, ctx, {
    method: 'DELETE',
    url: '/v1/subscriptions/:id',
    caller: 'padmin',
    ids: { id: 'subscriptions.not_found' },
    status: 204,
    summary: 'Cancel a subscription (cancelling again changes nothing)',
    tags,
    params: T.Object({ id: T.String() }),
    handler: async (req) => {
      const orgId = await auditedWrite(ctx.db, auditOrigin(req as FastifyRequest), async (trx) => {
        const s = await findSubscription(trx, req.params.id, null);
        if (!s) throw notFound('subscriptions.not_found', 'subscription');
        const cancelled = await cancelSubscription(trx, s.id);
        if (!cancelled) return { result: s.org_id, audit: null };
        const now = ctx.clock.now();
        return {
          result: s.org_id,
          audit: { orgId: s.org_id, actorUserId: req.principal!.user.id, action: 'subscription.cancel', targetType: 'subscription', targetId: s.id, before: shapeSubscription(s, now), after: shapeSubscription(cancelled, now) },
        };
      });
      await entitlementsChanged(ctx, orgId);
    },
  });
}
