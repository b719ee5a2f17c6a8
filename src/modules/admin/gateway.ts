// The gateway for platform admins (api.md §21.11–21.13): its configuration (the gateway.*
// settings, which every gateway re-reads within 10 s) and its access log (gateway/access-log.ts:
// a Redis stream, or the ring of a gateway in this process).
import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { AppContext } from '../../app-context.js';
import { fieldError, validationError } from '../../http/errors.js';
import { registerRoute } from '../../http/route.js';
import { Limit, Nullable, T } from '../../http/schemas.js';
import { ENTRY_ID } from '../../gateway/access-log.js';
import { GATEWAY_KEYS, readGatewayConfig, type GatewayConfig } from '../../gateway/settings.js';
import { auditOrigin } from '../audit/store.js';
import { SETTINGS, type SettingValue } from '../settings/registry.js';
import { validateSettingValue } from '../settings/validate.js';
import { writeSettings } from '../settings/write.js';

const IpMode = T.Union([T.Literal('direct'), T.Literal('trusted_proxy'), T.Literal('cloudflare')]);
const IP_MODE_ALIASES: Record<string, string> = { proxy: 'trusted_proxy', cdn: 'cloudflare' };
const UaType = T.Union(['browser', 'cli', 'sdk', 'bot', 'unknown'].map((v) => T.Literal(v)));

const GatewayConfigSchema = T.Object({
  ip_mode: IpMode,
  trusted_cidrs: T.Array(T.String()),
  risk_reject_threshold: T.Integer(),
  ratelimit_capacity: T.Number(),
  ratelimit_rate_per_minute: T.Number(),
});

const AccessLogEntrySchema = T.Object({
  id: T.String(),
  timestamp: T.String(),
  trace_id: T.String(),
  method: T.String(),
  path: T.String(),
  status_code: T.Integer(),
  duration_ms: T.Number(),
  client_ip: T.String(),
  country: Nullable(T.String()),
  city: Nullable(T.String()),
  user_agent: T.String(),
  ua_type: UaType,
  risk_score: T.Integer(),
  identity_type: T.Union([T.Literal('anonymous'), T.Literal('user'), T.Literal('api_key')]),
  org_id: Nullable(T.String()),
  user_id: Nullable(T.String()),
  username: Nullable(T.String()),
});

const currentConfig = (ctx: AppContext) => readGatewayConfig(async (key) => (await ctx.settings.resolve(key)).value);

export function adminGatewayRoutes(app: FastifyInstance, ctx: AppContext): void {
  const tags = ['admin'];

  registerRoute(app, ctx, {
    method: 'GET',
    url: '/v1/admin/gateway-config',
    caller: 'padmin',
    summary: 'The gateway configuration in force (the gateway.* settings)',
    tags,
    response: GatewayConfigSchema,
    handler: async () => currentConfig(ctx),
  });

  registerRoute(app, ctx, {
    method: 'PUT',
    url: '/v1/admin/gateway-config',
    caller: 'padmin',
    summary: 'Change the gateway configuration (any subset); gateways apply it within 10 s',
    tags,
    body: T.Object({
      ip_mode: T.Optional(T.Union(['direct', 'trusted_proxy', 'cloudflare', 'proxy', 'cdn'].map((v) => T.Literal(v)))),
      trusted_cidrs: T.Optional(T.Array(T.String({ maxLength: 64 }), { maxItems: 100 })),
      risk_reject_threshold: T.Optional(T.Integer({ minimum: 0, maximum: 100 })),
      ratelimit_capacity: T.Optional(T.Number({ exclusiveMinimum: 0, maximum: 1e9 })),
      ratelimit_rate_per_minute: T.Optional(T.Number({ exclusiveMinimum: 0, maximum: 1e9 })),
    }),
    response: GatewayConfigSchema,
    handler: async (req) => {
      const b = req.body;
      const input: Partial<Record<keyof GatewayConfig, unknown>> = {
        ip_mode: b.ip_mode === undefined ? undefined : (IP_MODE_ALIASES[b.ip_mode] ?? b.ip_mode),
        trusted_cidrs: b.trusted_cidrs?.map((c) => c.trim()).filter(Boolean).join(','),
        risk_reject_threshold: b.risk_reject_threshold,
        ratelimit_capacity: b.ratelimit_capacity,
        ratelimit_rate_per_minute: b.ratelimit_rate_per_minute,
      };
      const changes = new Map<string, SettingValue>();
      for (const [field, value] of Object.entries(input) as Array<[keyof GatewayConfig, unknown]>) {
        if (value === undefined) continue;
        const key = GATEWAY_KEYS[field];
        try {
          changes.set(key, validateSettingValue(SETTINGS.get(key)!, value));
        } catch (err) {
          throw fieldError(field, (err as Error).message);
        }
      }
      if (changes.size === 0) throw validationError(`at least one of ${Object.keys(GATEWAY_KEYS).join(', ')} is required`);
      const before = await currentConfig(ctx);
      const actorUserId = req.principal!.user.id;
      const fields = Object.keys(input).filter((f) => input[f as keyof GatewayConfig] !== undefined).sort();
      await writeSettings(ctx, auditOrigin(req as FastifyRequest), changes, {
        actorUserId,
        audit: () => [
          {
            orgId: null,
            actorUserId,
            action: 'gateway_config.update',
            targetType: 'gateway_config',
            targetId: null,
            metadata: { fields },
            before: { ...before },
            after: {
              ...before,
              ...Object.fromEntries(fields.map((f) => [f, f === 'trusted_cidrs' ? String(input.trusted_cidrs).split(',').filter(Boolean) : input[f as keyof GatewayConfig]])),
            },
          },
        ],
      });
      return currentConfig(ctx);
    },
  });

  registerRoute(app, ctx, {
    method: 'GET',
    url: '/v1/admin/access-log',
    caller: 'padmin',
    summary: 'Gateway access log entries, newest first',
    tags,
    query: T.Object({
      limit: T.Optional(Limit(50)),
      before: T.Optional(T.String({ maxLength: 40 })),
      since: T.Optional(T.String({ maxLength: 40 })),
      method: T.Optional(T.String({ minLength: 1, maxLength: 16 })),
      path: T.Optional(T.String({ minLength: 1, maxLength: 2048 })),
      ip: T.Optional(T.String({ minLength: 1, maxLength: 64 })),
      country: T.Optional(T.String({ minLength: 1, maxLength: 8 })),
      risk_min: T.Optional(T.Integer({ minimum: 0, maximum: 100 })),
      ua_type: T.Optional(UaType),
    }),
    response: T.Object({ data: T.Array(AccessLogEntrySchema), has_more: T.Boolean(), next_before: Nullable(T.String()) }),
    handler: async (req) => {
      const q = req.query;
      for (const field of ['before', 'since'] as const) {
        if (q[field] !== undefined && !ENTRY_ID.test(q[field])) throw fieldError(field, 'must be the id of an access log entry');
      }
      const page = await ctx.accessLog.list({ ...q, limit: q.limit ?? 50 });
      return { ...page, next_before: page.has_more ? page.data[page.data.length - 1].id : null };
    },
  });
}
