// Plans with their entitlement values, and subscriptions of accounts to them (api.md §17).
// Only this module touches plans, plan_entitlements and subscriptions; the entitlement
// resolution reads the active plan through activePlanOf.
import { sql, type Kysely, type Selectable } from 'kysely';
import type { DB, EntitlementValueType, PlansTable, SubscriptionsTable } from '../../db/schema.js';
import { newId } from '../../lib/ids.js';

export type PlanRow = Selectable<PlansTable>;
export type SubscriptionRow = Selectable<SubscriptionsTable>;
export interface PlanEntitlement {
  key: string;
  value: string;
  value_type: EntitlementValueType;
}
export interface PlanWithEntitlements extends PlanRow {
  entitlements: Array<PlanEntitlement & { id: string }>;
}

async function withEntitlements(db: Kysely<DB>, plans: PlanRow[]): Promise<PlanWithEntitlements[]> {
  if (plans.length === 0) return [];
  const rows = await db
    .selectFrom('plan_entitlements')
    .select(['id', 'plan_id', 'key', 'value', 'value_type'])
    .where('plan_id', 'in', plans.map((p) => p.id))
    .orderBy('key')
    .execute();
  return plans.map((p) => ({ ...p, entitlements: rows.filter((r) => r.plan_id === p.id).map(({ plan_id: _, ...e }) => e) }));
}

export async function listPlans(db: Kysely<DB>): Promise<PlanWithEntitlements[]> {
  const plans = await db.selectFrom('plans').selectAll().where('deleted_at', 'is', null).orderBy('name').execute();
  return withEntitlements(db, plans);
}

export async function findPlan(db: Kysely<DB>, id: string, lock = false): Promise<PlanWithEntitlements | undefined> {
  let q = db.selectFrom('plans').selectAll().where('id', '=', id).where('deleted_at', 'is', null);
  if (lock) q = q.forUpdate();
  const plan = await q.executeTakeFirst();
  return plan ? (await withEntitlements(db, [plan]))[0] : undefined;
}

async function replaceEntitlements(db: Kysely<DB>, planId: string, entitlements: readonly PlanEntitlement[]): Promise<void> {
  await db.deleteFrom('plan_entitlements').where('plan_id', '=', planId).execute();
  if (entitlements.length) {
    await db
      .insertInto('plan_entitlements')
      .values(entitlements.map((e) => ({ id: newId(), plan_id: planId, key: e.key, value: e.value, value_type: e.value_type })))
      .execute();
  }
}

export async function insertPlan(db: Kysely<DB>, p: { name: string; displayName: string; entitlements: readonly PlanEntitlement[] }): Promise<PlanWithEntitlements> {
  const id = newId();
  await db.insertInto('plans').values({ id, name: p.name, display_name: p.displayName }).execute();
  await replaceEntitlements(db, id, p.entitlements);
  return (await findPlan(db, id))!;
}

export async function updatePlan(db: Kysely<DB>, id: string, patch: { displayName?: string; entitlements?: readonly PlanEntitlement[] }): Promise<PlanWithEntitlements> {
  await db
    .updateTable('plans')
    .set({ updated_at: sql`now()`, ...(patch.displayName !== undefined ? { display_name: patch.displayName } : {}) })
    .where('id', '=', id)
    .execute();
  if (patch.entitlements) await replaceEntitlements(db, id, patch.entitlements);
  return (await findPlan(db, id))!;
}

/** Soft delete: subscriptions that used the plan keep their plan_id, and the name is free again. */
export async function deletePlan(db: Kysely<DB>, id: string): Promise<void> {
  await db.updateTable('plans').set({ deleted_at: sql`now()`, updated_at: sql`now()` }).where('id', '=', id).execute();
}

/** Whether an active subscription (not cancelled, period not over at `now`) uses the plan. */
export function planInUse(db: Kysely<DB>, planId: string, now: Date): Promise<boolean> {
  return activeSubscriptionExists(db, 'plan_id', planId, now);
}

export function shapePlan(p: PlanWithEntitlements) {
  return {
    id: p.id,
    name: p.name,
    display_name: p.display_name,
    created_at: p.created_at.toISOString(),
    updated_at: p.updated_at.toISOString(),
    entitlements: p.entitlements.map((e) => ({ id: e.id, key: e.key, value: e.value, value_type: e.value_type })),
  };
}

// --- subscriptions ---------------------------------------------------------------------

export type SubscriptionStatus = 'active' | 'cancelled' | 'expired';

/** Serialises subscription changes of one account for the rest of the transaction. */
export async function lockAccountSubscriptions(db: Kysely<DB>, orgId: string): Promise<void> {
  await sql`SELECT pg_advisory_xact_lock(hashtext(${`subscriptions:${orgId}`}))`.execute(db);
}

export function hasActiveSubscription(db: Kysely<DB>, orgId: string, now: Date): Promise<boolean> {
  return activeSubscriptionExists(db, 'org_id', orgId, now);
}

async function activeSubscriptionExists(db: Kysely<DB>, column: 'org_id' | 'plan_id', id: string, now: Date): Promise<boolean> {
  const row = await db
    .selectFrom('subscriptions')
    .select('id')
    .where(column, '=', id)
    .where('status', '=', 'active')
    .where('current_period_end', '>', now)
    .executeTakeFirst();
  return row !== undefined;
}

export async function insertSubscription(db: Kysely<DB>, s: { orgId: string; planId: string; start: Date; end: Date }): Promise<SubscriptionRow> {
  return db
    .insertInto('subscriptions')
    .values({ id: newId(), org_id: s.orgId, plan_id: s.planId, status: 'active', current_period_start: s.start, current_period_end: s.end })
    .returningAll()
    .executeTakeFirstOrThrow();
}

export async function findSubscription(db: Kysely<DB>, id: string, orgId: string | null): Promise<SubscriptionRow | undefined> {
  let q = db.selectFrom('subscriptions').selectAll().where('id', '=', id);
  if (orgId) q = q.where('org_id', '=', orgId);
  return q.executeTakeFirst();
}

/** Cancels an active subscription; undefined when it was not active (already cancelled). */
export async function cancelSubscription(db: Kysely<DB>, id: string): Promise<SubscriptionRow | undefined> {
  return db
    .updateTable('subscriptions')
    .set({ status: 'cancelled', cancelled_at: sql`now()` })
    .where('id', '=', id)
    .where('status', '=', 'active')
    .returningAll()
    .executeTakeFirst();
}

export async function listSubscriptions(
  db: Kysely<DB>,
  f: { orgId?: string; status?: SubscriptionStatus; now: Date; limit: number; before: string | null },
): Promise<SubscriptionRow[]> {
  let q = db.selectFrom('subscriptions').selectAll();
  if (f.orgId) q = q.where('org_id', '=', f.orgId);
  if (f.status === 'cancelled') q = q.where('status', '=', 'cancelled');
  if (f.status === 'active') q = q.where('status', '=', 'active').where('current_period_end', '>', f.now);
  if (f.status === 'expired') q = q.where('status', '=', 'active').where('current_period_end', '<=', f.now);
  if (f.before) q = q.where(sql<boolean>`(created_at, id) < (SELECT s.created_at, s.id FROM subscriptions s WHERE s.id = ${f.before})`);
  return q.orderBy('created_at', 'desc').orderBy('id', 'desc').limit(f.limit).execute();
}

export function subscriptionStatus(s: SubscriptionRow, now: Date): SubscriptionStatus {
  if (s.status === 'cancelled') return 'cancelled';
  return s.current_period_end.getTime() <= now.getTime() ? 'expired' : 'active';
}

export function shapeSubscription(s: SubscriptionRow, now: Date) {
  return {
    id: s.id,
    org_id: s.org_id,
    plan_id: s.plan_id,
    status: subscriptionStatus(s, now),
    current_period_start: s.current_period_start.toISOString(),
    current_period_end: s.current_period_end.toISOString(),
    cancelled_at: s.cancelled_at ? s.cancelled_at.toISOString() : null,
    created_at: s.created_at.toISOString(),
  };
}

/** The account's active subscriptions with their plan's values, for the entitlement resolution (which applies the clock). */
export async function activePlansOf(db: Kysely<DB>, orgId: string): Promise<Array<{ start: number; end: number; createdAt: number; entitlements: PlanEntitlement[] }>> {
  const rows = await db
    .selectFrom('subscriptions as s')
    .leftJoin('plan_entitlements as e', 'e.plan_id', 's.plan_id')
    .select(['s.id', 's.current_period_start', 's.current_period_end', 's.created_at', 'e.key', 'e.value', 'e.value_type'])
    .where('s.org_id', '=', orgId)
    .where('s.status', '=', 'active')
    .execute();
  const byId = new Map<string, { start: number; end: number; createdAt: number; entitlements: PlanEntitlement[] }>();
  for (const r of rows) {
    let sub = byId.get(r.id);
    if (!sub) byId.set(r.id, (sub = { start: r.current_period_start.getTime(), end: r.current_period_end.getTime(), createdAt: r.created_at.getTime(), entitlements: [] }));
    if (r.key !== null) sub.entitlements.push({ key: r.key, value: r.value!, value_type: r.value_type! });
  }
  return [...byId.values()];
}
