// The webhook outbox (api.md §20.1, §20.2): an event's delivery rows and `webhook.deliver` jobs
// are written in the transaction of the event itself, so a committed event is never lost and a
// rolled-back one never sent. Writers ask `webhookSubscribers` first: it answers from a cache of
// the account's enabled endpoints, so an account without endpoints costs no query and its
// writes stay as they were (no transaction added).
import { sql } from 'kysely';
import type { AppContext } from '../../app-context.js';
import { ALL_KEYS } from '../../db/shared-cache.js';
import type { RunTx } from '../../engine/engine.js';
import { jobRowsCtes } from '../../engine/jobs.js';
import { newId } from '../../lib/ids.js';
import { DELIVER_JOB } from './store.js';

export const EVENT_TYPES = [
  'run.completed',
  'run.failed',
  'run.cancelled',
  'run.waiting_for_input',
  'thread.created',
  'thread.deleted',
  'message.created',
] as const;
export type WebhookEventType = (typeof EVENT_TYPES)[number];

export interface SubscribedEndpoint {
  id: string;
  events: readonly string[];
}

export interface WebhookEvent {
  type: WebhookEventType;
  data: Record<string, unknown>;
}

// The delivery job's own retries are the delivery's attempts (deliver.ts); this only bounds a
// handler that keeps crashing.
const JOB_MAX_ATTEMPTS = 100;

const ENDPOINTS_CACHE = 'webhook_endpoints';
const ENDPOINTS_TTL_MS = 60_000;
const endpointCache = (ctx: AppContext) => ctx.caches.cache<readonly SubscribedEndpoint[]>(ENDPOINTS_CACHE, ENDPOINTS_TTL_MS);

function enabledEndpoints(ctx: AppContext, orgId: string): Promise<readonly SubscribedEndpoint[]> {
  return endpointCache(ctx).get(orgId, async () => {
    const rows = await ctx.db
      .selectFrom('webhook_endpoints')
      .select(['id', 'events'])
      .where('org_id', '=', orgId)
      .where('enabled', '=', true)
      .where('deleted_at', 'is', null)
      .execute();
    return rows.map((r) => ({ id: r.id, events: r.events }));
  });
}

/** Call after a change of an account's endpoints committed (null: every account). */
export function webhooksChanged(ctx: AppContext, orgId: string | null): Promise<void> {
  return endpointCache(ctx).invalidate(orgId ?? ALL_KEYS);
}

/** The account's enabled endpoints subscribed to any of `types` (usually from the cache). */
export async function webhookSubscribers(ctx: AppContext, orgId: string, types: readonly WebhookEventType[]): Promise<SubscribedEndpoint[]> {
  const all = await enabledEndpoints(ctx, orgId);
  if (all.length === 0) return [];
  return all.filter((e) => e.events.includes('*') || types.some((t) => e.events.includes(t)));
}

/**
 * Writes, inside `tx`, one delivery row and one `webhook.deliver` job per (event, subscribed
 * endpoint). Endpoints are checked again in the statement (enabled, not deleted), so a stale
 * cache cannot deliver to an endpoint switched off meanwhile. Returns the deliveries written.
 */
export async function enqueueWebhookEvents(ctx: AppContext, tx: RunTx, orgId: string, endpoints: readonly SubscribedEndpoint[], events: WebhookEvent[]): Promise<number> {
  const rows: Array<{ id: string; jobId: string; endpointId: string; eventId: string; type: string; payload: string }> = [];
  const createdAt = new Date().toISOString();
  for (const ev of events) {
    const eventId = newId();
    const body = JSON.stringify({ id: eventId, type: ev.type, created_at: createdAt, org_id: orgId, data: ev.data });
    for (const e of endpoints) {
      if (!e.events.includes('*') && !e.events.includes(ev.type)) continue;
      rows.push({ id: newId(), jobId: newId(), endpointId: e.id, eventId, type: ev.type, payload: body });
    }
  }
  if (rows.length === 0) return 0;
  const jobs = jobRowsCtes('dj', DELIVER_JOB, ctx.engine.viaNotify, JOB_MAX_ATTEMPTS);
  const res = await sql<{ jobs_inserted: number }>`
    WITH src AS (
      SELECT * FROM unnest(${rows.map((r) => r.id)}::uuid[], ${rows.map((r) => r.jobId)}::uuid[], ${rows.map((r) => r.endpointId)}::uuid[],
                           ${rows.map((r) => r.eventId)}::uuid[], ${rows.map((r) => r.type)}::text[], ${rows.map((r) => r.payload)}::text[])
             AS s(id, job_id, endpoint_id, event_id, event_type, payload)
    ),
    d AS (
      INSERT INTO webhook_deliveries (id, org_id, endpoint_id, event_id, event_type, payload, next_attempt_at)
      SELECT s.id, e.org_id, s.endpoint_id, s.event_id, s.event_type, s.payload::jsonb, now()
        FROM src s JOIN webhook_endpoints e ON e.id = s.endpoint_id
       WHERE e.org_id = ${orgId} AND e.enabled AND e.deleted_at IS NULL
      RETURNING id, endpoint_id
    ),
    dj AS (
      SELECT s.job_id, jsonb_build_object('v', 1, 'delivery_id', d.id) AS payload, d.endpoint_id::text AS concurrency_key
        FROM d JOIN src s ON s.id = d.id
    ),
    ${jobs.ctes}
    SELECT ${jobs.columns}`.execute(tx.db);
  const n = res.rows[0].jobs_inserted;
  tx.wrote([], n);
  return n;
}

/**
 * Runs `write` and the webhook events it produced in one transaction when the account has an
 * endpoint for one of `types`; otherwise `write` runs alone on `ctx.db`, exactly as before.
 * `events` turns what `write` returned into the events to send (none when it wrote nothing).
 */
export async function withWebhookEvents<T>(
  ctx: AppContext,
  orgId: string,
  types: readonly WebhookEventType[],
  write: (db: AppContext['db']) => Promise<T>,
  events: (result: T) => WebhookEvent[],
): Promise<T> {
  const endpoints = await webhookSubscribers(ctx, orgId, types);
  if (endpoints.length === 0) return write(ctx.db);
  return ctx.engine.transaction(ctx.db, async (tx) => {
    const result = await write(tx.db);
    const evs = events(result);
    if (evs.length) await enqueueWebhookEvents(ctx, tx, orgId, endpoints, evs);
    return result;
  });
}
