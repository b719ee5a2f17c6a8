// Webhooks (api.md §20): the SQL of the webhooks module — endpoints (soft-deleted, with their
// signing secret encrypted) and the delivery log, one row per (event, endpoint).
import { sql, type Kysely, type Selectable } from 'kysely';
import type { DB, WebhookDeliveriesTable, WebhookEndpointsTable } from '../../db/schema.js';
import { dropQueuedJobsSql } from '../../engine/jobs.js';
import { iso } from '../../http/schemas.js';
import { newId } from '../../lib/ids.js';

export type EndpointRow = Selectable<WebhookEndpointsTable>;
export type DeliveryRow = Selectable<WebhookDeliveriesTable>;

export const MAX_ENDPOINTS_PER_ACCOUNT = 20;
export const DELIVER_JOB = 'webhook.deliver';
export const DISABLED_ERROR = 'endpoint disabled';

/** Serialises endpoint creation per account for the rest of the transaction (the limit check). */
export async function lockAccountEndpoints(trx: Kysely<DB>, orgId: string): Promise<void> {
  await sql`SELECT pg_advisory_xact_lock(hashtext(${`webhook_endpoints:${orgId}`}))`.execute(trx);
}

export async function countEndpoints(db: Kysely<DB>, orgId: string): Promise<number> {
  const row = await db
    .selectFrom('webhook_endpoints')
    .select(sql<number>`count(*)::int`.as('n'))
    .where('org_id', '=', orgId)
    .where('deleted_at', 'is', null)
    .executeTakeFirstOrThrow();
  return row.n;
}

export async function insertEndpoint(
  db: Kysely<DB>,
  e: { orgId: string; url: string; events: string[]; description: string | null; secretEnc: string },
): Promise<EndpointRow> {
  return db
    .insertInto('webhook_endpoints')
    .values({ id: newId(), org_id: e.orgId, url: e.url, events: JSON.stringify(e.events), description: e.description, secret_enc: e.secretEnc })
    .returningAll()
    .executeTakeFirstOrThrow();
}

export async function listEndpoints(db: Kysely<DB>, orgId: string): Promise<EndpointRow[]> {
  return db
    .selectFrom('webhook_endpoints')
    .selectAll()
    .where('org_id', '=', orgId)
    .where('deleted_at', 'is', null)
    .orderBy('created_at')
    .orderBy('id')
    .execute();
}

/** An endpoint of the account (locked with `forUpdate`, for a change). */
export async function findEndpoint(db: Kysely<DB>, orgId: string, id: string, forUpdate = false): Promise<EndpointRow | undefined> {
  let q = db.selectFrom('webhook_endpoints').selectAll().where('org_id', '=', orgId).where('id', '=', id).where('deleted_at', 'is', null);
  if (forUpdate) q = q.forUpdate();
  return q.executeTakeFirst();
}

export interface EndpointPatch {
  url?: string;
  events?: string[];
  description?: string | null;
  enabled?: boolean;
  secretEnc?: string;
}

export async function updateEndpoint(db: Kysely<DB>, id: string, p: EndpointPatch): Promise<EndpointRow> {
  return db
    .updateTable('webhook_endpoints')
    .set({
      ...(p.url !== undefined ? { url: p.url } : {}),
      ...(p.events !== undefined ? { events: JSON.stringify(p.events) } : {}),
      ...(p.description !== undefined ? { description: p.description } : {}),
      ...(p.enabled !== undefined ? { enabled: p.enabled } : {}),
      ...(p.secretEnc !== undefined ? { secret_enc: p.secretEnc } : {}),
      updated_at: sql`now()`,
    })
    .where('id', '=', id)
    .returningAll()
    .executeTakeFirstOrThrow();
}

export async function softDeleteEndpoint(db: Kysely<DB>, id: string): Promise<void> {
  await db.updateTable('webhook_endpoints').set({ deleted_at: sql`now()`, enabled: false, updated_at: sql`now()` }).where('id', '=', id).execute();
}

/** Deletes the pending deliveries of an endpoint and their queued jobs (a deleted endpoint, §20.7). */
export async function dropPendingDeliveries(db: Kysely<DB>, endpointId: string): Promise<void> {
  await sql`WITH jobs_dropped AS (${dropQueuedJobsSql(DELIVER_JOB, endpointId)})
    DELETE FROM webhook_deliveries WHERE endpoint_id = ${endpointId} AND status = 'pending'`.execute(db);
}

/** Ends the pending deliveries of a disabled endpoint as failed and drops their queued jobs (§20.2). */
export async function failPendingDeliveries(db: Kysely<DB>, endpointId: string): Promise<void> {
  await sql`WITH jobs_dropped AS (${dropQueuedJobsSql(DELIVER_JOB, endpointId)})
    UPDATE webhook_deliveries SET status = 'failed', last_error = ${DISABLED_ERROR}, next_attempt_at = NULL, updated_at = now()
     WHERE endpoint_id = ${endpointId} AND status = 'pending'`.execute(db);
}

/** A page of an endpoint's deliveries, newest first. */
export async function listDeliveries(
  db: Kysely<DB>,
  endpointId: string,
  page: { limit: number; before: string | null; status: string | null },
): Promise<DeliveryRow[]> {
  let q = db.selectFrom('webhook_deliveries as d').selectAll().where('d.endpoint_id', '=', endpointId);
  if (page.status) q = q.where('d.status', '=', page.status as DeliveryRow['status']);
  if (page.before) {
    // Compared with the cursor row itself (a JS Date would cut its microseconds).
    q = q.where(sql<boolean>`(d.created_at, d.id) < (SELECT c.created_at, c.id FROM webhook_deliveries c WHERE c.id = ${page.before})`);
  }
  return q.orderBy('d.created_at', 'desc').orderBy('d.id', 'desc').limit(page.limit).execute();
}

export async function isDeliveryOf(db: Kysely<DB>, endpointId: string, id: string): Promise<boolean> {
  const row = await db.selectFrom('webhook_deliveries').select('id').where('endpoint_id', '=', endpointId).where('id', '=', id).executeTakeFirst();
  return row !== undefined;
}

export function shapeEndpoint(e: EndpointRow) {
  return {
    id: e.id,
    org_id: e.org_id,
    url: e.url,
    events: e.events,
    enabled: e.enabled,
    description: e.description,
    created_at: iso(e.created_at),
    updated_at: iso(e.updated_at),
  };
}

export function shapeDelivery(d: DeliveryRow) {
  return {
    id: d.id,
    endpoint_id: d.endpoint_id,
    event_id: d.event_id,
    event_type: d.event_type,
    status: d.status,
    attempts: d.attempts,
    last_status_code: d.last_status_code,
    last_error: d.last_error,
    next_attempt_at: iso(d.next_attempt_at),
    delivered_at: iso(d.delivered_at),
    created_at: iso(d.created_at),
    payload: d.payload,
  };
}
