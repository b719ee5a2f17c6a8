// Webhook endpoints (api.md §20.3–§20.9): CRUD, the delivery log and secret rotation. The
// secret is shown once (create, rotate) and stored encrypted, because signing needs it.
import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { AppContext } from '../../app-context.js';
import { AppError, notFound, validationError } from '../../http/errors.js';
import { registerRoute } from '../../http/route.js';
import { storedHttpUrl } from '../../http/stored-url.js';
import { DateTime, Nullable, OkResponse, OptNull, PageQuery, T, Uuid, badCursor, parseCursor } from '../../http/schemas.js';
import { encryptSecret } from '../../lib/crypto.js';
import { auditedWrite } from '../audit/audited-write.js';
import { auditOrigin } from '../audit/store.js';
import { EVENT_TYPES, webhooksChanged } from './outbox.js';
import { generateSecret } from './signing.js';
import {
  MAX_ENDPOINTS_PER_ACCOUNT,
  countEndpoints,
  dropPendingDeliveries,
  failPendingDeliveries,
  findEndpoint,
  insertEndpoint,
  isDeliveryOf,
  listDeliveries,
  listEndpoints,
  lockAccountEndpoints,
  shapeDelivery,
  shapeEndpoint,
  softDeleteEndpoint,
  updateEndpoint,
  type EndpointRow,
} from './store.js';

const PERM = 'data.webhooks.manage';
const NOT_FOUND = 'webhook_endpoints.not_found';

const EndpointSchema = T.Object({
  id: Uuid(),
  org_id: Uuid(),
  url: T.String(),
  events: T.Array(T.String()),
  enabled: T.Boolean(),
  description: Nullable(T.String()),
  created_at: DateTime(),
  updated_at: DateTime(),
});
const DeliveryStatus = T.Union([T.Literal('pending'), T.Literal('succeeded'), T.Literal('failed')]);
const DeliverySchema = T.Object({
  id: Uuid(),
  endpoint_id: Uuid(),
  event_id: Uuid(),
  event_type: T.String(),
  status: DeliveryStatus,
  attempts: T.Integer(),
  last_status_code: Nullable(T.Integer()),
  last_error: Nullable(T.String()),
  next_attempt_at: Nullable(DateTime()),
  delivered_at: Nullable(DateTime()),
  created_at: DateTime(),
  payload: T.Record(T.String(), T.Unknown()),
});

const Url = () => T.String({ format: 'uri', maxLength: 2048 });
const Events = () => T.Array(T.String({ maxLength: 200 }), { minItems: 1, maxItems: 100 });
const Description = () => T.String({ maxLength: 200 });
const Params = T.Object({ endpoint_id: T.String() });
const KNOWN = new Set<string>([...EVENT_TYPES, '*']);

/** Known event types or `*`, duplicates collapsed, order kept. */
function checkEvents(events: string[]): string[] {
  const bad = events.flatMap((e, i) => (KNOWN.has(e) ? [] : [{ field: `events.${i}`, reason: `must be one of ${[...KNOWN].join(', ')}` }]));
  if (bad.length) throw validationError(bad);
  return [...new Set(events)];
}

/** `https`, or `http` only when private targets are allowed (§20.3); the stored-URL SSRF rule. */
async function checkEndpointUrl(ctx: AppContext, raw: string): Promise<string> {
  const url = await storedHttpUrl(ctx, raw, { field: 'url', ssrfCheck: true });
  if (url.startsWith('http:') && !(await ctx.settings.bool('security.ssrf_allow_private'))) {
    throw new AppError('policy.ssrf_blocked', 'webhook URLs must use https', { field: 'url' });
  }
  return url;
}

/** The endpoint as audit state (never the secret). */
function auditState(e: EndpointRow): Record<string, unknown> {
  return { url: e.url, events: e.events, enabled: e.enabled, description: e.description };
}

export function webhookRoutes(app: FastifyInstance, ctx: AppContext): void {
  const tags = ['webhooks'];
  const ids = { endpoint_id: NOT_FOUND } as const;

  registerRoute(app, ctx, {
    method: 'POST',
    url: '/v1/webhook-endpoints',
    caller: 'user',
    perm: PERM,
    status: 201,
    summary: 'Create a webhook endpoint (the signing secret is shown only in this response)',
    tags,
    body: T.Object({ url: Url(), events: Events(), description: OptNull(Description()) }),
    trim: ['url', 'description'],
    response: T.Object({ ...EndpointSchema.properties, secret: T.String() }),
    handler: async (req) => {
      const events = checkEvents(req.body.events);
      const url = await checkEndpointUrl(ctx, req.body.url);
      const orgId = req.account!.id;
      const secret = generateSecret();
      const row = await auditedWrite(ctx.db, auditOrigin(req as FastifyRequest), async (trx) => {
        await lockAccountEndpoints(trx, orgId);
        if ((await countEndpoints(trx, orgId)) >= MAX_ENDPOINTS_PER_ACCOUNT) {
          throw new AppError('webhooks.limit_reached', `at most ${MAX_ENDPOINTS_PER_ACCOUNT} webhook endpoints per account`, { limit: MAX_ENDPOINTS_PER_ACCOUNT });
        }
        const created = await insertEndpoint(trx, {
          orgId,
          url,
          events,
          description: req.body.description ?? null,
          secretEnc: encryptSecret(secret, ctx.secrets.encryptionKey),
        });
        return {
          result: created,
          audit: { orgId, actorUserId: req.principal!.user.id, action: 'webhook_endpoint.create', targetType: 'webhook_endpoint', targetId: created.id, metadata: auditState(created), after: auditState(created) },
        };
      });
      await webhooksChanged(ctx, orgId);
      return { ...shapeEndpoint(row), secret };
    },
  });

  registerRoute(app, ctx, {
    method: 'GET',
    url: '/v1/webhook-endpoints',
    caller: 'user',
    perm: PERM,
    summary: 'List the webhook endpoints of the account, oldest first',
    tags,
    response: T.Array(EndpointSchema),
    handler: async (req) => (await listEndpoints(ctx.db, req.account!.id)).map(shapeEndpoint),
  });

  registerRoute(app, ctx, {
    method: 'GET',
    url: '/v1/webhook-endpoints/:endpoint_id',
    caller: 'user',
    perm: PERM,
    ids,
    summary: 'Read a webhook endpoint',
    tags,
    params: Params,
    response: EndpointSchema,
    handler: async (req) => {
      const row = await findEndpoint(ctx.db, req.account!.id, req.params.endpoint_id);
      if (!row) throw notFound(NOT_FOUND, 'webhook endpoint');
      return shapeEndpoint(row);
    },
  });

  registerRoute(app, ctx, {
    method: 'PATCH',
    url: '/v1/webhook-endpoints/:endpoint_id',
    caller: 'user',
    perm: PERM,
    ids,
    summary: 'Change a webhook endpoint (disabling it ends its pending deliveries as failed)',
    tags,
    params: Params,
    body: T.Object({ enabled: T.Optional(T.Boolean()), url: T.Optional(Url()), events: T.Optional(Events()), description: OptNull(Description()) }),
    trim: ['url', 'description'],
    response: EndpointSchema,
    handler: async (req) => {
      const b = req.body;
      if (b.enabled === undefined && b.url === undefined && b.events === undefined && b.description === undefined) {
        throw validationError('at least one of enabled, url, events, description is required');
      }
      const events = b.events !== undefined ? checkEvents(b.events) : undefined;
      const url = b.url !== undefined ? await checkEndpointUrl(ctx, b.url) : undefined;
      const orgId = req.account!.id;
      const row = await auditedWrite(ctx.db, auditOrigin(req as FastifyRequest), async (trx) => {
        const before = await findEndpoint(trx, orgId, req.params.endpoint_id, true);
        if (!before) throw notFound(NOT_FOUND, 'webhook endpoint');
        const after = await updateEndpoint(trx, before.id, { url, events, description: b.description, enabled: b.enabled });
        if (before.enabled && !after.enabled) await failPendingDeliveries(trx, before.id);
        return {
          result: after,
          audit: { orgId, actorUserId: req.principal!.user.id, action: 'webhook_endpoint.update', targetType: 'webhook_endpoint', targetId: before.id, before: auditState(before), after: auditState(after) },
        };
      });
      await webhooksChanged(ctx, orgId);
      return shapeEndpoint(row);
    },
  });

  registerRoute(app, ctx, {
    method: 'DELETE',
    url: '/v1/webhook-endpoints/:endpoint_id',
    caller: 'user',
    perm: PERM,
    ids,
    summary: 'Delete a webhook endpoint (its pending deliveries are dropped)',
    tags,
    params: Params,
    response: OkResponse,
    handler: async (req) => {
      const orgId = req.account!.id;
      await auditedWrite(ctx.db, auditOrigin(req as FastifyRequest), async (trx) => {
        const before = await findEndpoint(trx, orgId, req.params.endpoint_id, true);
        if (!before) throw notFound(NOT_FOUND, 'webhook endpoint');
        await softDeleteEndpoint(trx, before.id);
        await dropPendingDeliveries(trx, before.id);
        return {
          result: null,
          audit: { orgId, actorUserId: req.principal!.user.id, action: 'webhook_endpoint.delete', targetType: 'webhook_endpoint', targetId: before.id, before: auditState(before) },
        };
      });
      await webhooksChanged(ctx, orgId);
      return { ok: true };
    },
  });

  registerRoute(app, ctx, {
    method: 'GET',
    url: '/v1/webhook-endpoints/:endpoint_id/deliveries',
    caller: 'user',
    perm: PERM,
    ids,
    summary: 'The delivery log of a webhook endpoint, newest first',
    tags,
    params: Params,
    query: T.Object({ ...PageQuery().properties, status: T.Optional(DeliveryStatus) }),
    response: T.Object({ data: T.Array(DeliverySchema) }),
    handler: async (req) => {
      const endpoint = await findEndpoint(ctx.db, req.account!.id, req.params.endpoint_id);
      if (!endpoint) throw notFound(NOT_FOUND, 'webhook endpoint');
      const before = parseCursor(req.query.before);
      if (before && !(await isDeliveryOf(ctx.db, endpoint.id, before))) throw badCursor();
      const rows = await listDeliveries(ctx.db, endpoint.id, { limit: req.query.limit ?? 20, before, status: req.query.status ?? null });
      return { data: rows.map(shapeDelivery) };
    },
  });

  registerRoute(app, ctx, {
    method: 'POST',
    url: '/v1/webhook-endpoints/:endpoint_id/rotate-secret',
    caller: 'user',
    perm: PERM,
    ids,
    summary: 'Replace the signing secret (shown only in this response); the old one stops signing at once',
    tags,
    params: Params,
    response: T.Object({ secret: T.String() }),
    handler: async (req) => {
      const orgId = req.account!.id;
      const secret = generateSecret();
      await auditedWrite(ctx.db, auditOrigin(req as FastifyRequest), async (trx) => {
        const before = await findEndpoint(trx, orgId, req.params.endpoint_id, true);
        if (!before) throw notFound(NOT_FOUND, 'webhook endpoint');
        await updateEndpoint(trx, before.id, { secretEnc: encryptSecret(secret, ctx.secrets.encryptionKey) });
        return {
          result: null,
          audit: { orgId, actorUserId: req.principal!.user.id, action: 'webhook_endpoint.rotate_secret', targetType: 'webhook_endpoint', targetId: before.id },
        };
      });
      return { secret };
    },
  });
}
