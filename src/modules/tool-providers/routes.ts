// Tool providers (api.md §14.1–14.5): which backend serves the tool groups web_search and
// web_fetch, per scope — `platform` (the default; platform admins) or `org` (the current
// account; perm data.secrets). Exactly one active provider per scope + group; the API key is
// stored encrypted and only shown masked.
import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { AppContext } from '../../app-context.js';
import { AppError, conflict, fieldError, notFound } from '../../http/errors.js';
import { registerRoute } from '../../http/route.js';
import { Nullable, OptNull, T } from '../../http/schemas.js';
import { encryptSecret } from '../../lib/crypto.js';
import { storedHttpUrl } from '../../http/stored-url.js';
import { auditedWrite } from '../audit/audited-write.js';
import { auditOrigin } from '../audit/store.js';
import { TOOL_GROUPS, findEntry, isConfigured, maskKey, providersOf, type CatalogueEntry } from './catalogue.js';
import { listConfigs, lockGroup, lockOne, rowConfigured, shapeProvider, toolProvidersChanged, updateConfig, type ToolProviderRow, type ToolProviderScope } from './store.js';

const SECRETS = 'data.secrets';
/** A point no account holds: a non-admin asking for the platform scope is refused with the permission 403. */
const PLATFORM_ONLY = 'platform.admin';

const ScopeQuery = T.Object({ scope: T.Optional(T.Union([T.Literal('org'), T.Literal('platform')])) });
const PathParams = T.Object({ group: T.String({ maxLength: 200 }), provider: T.String({ maxLength: 200 }) });

const ProviderSchema = T.Object({
  group_name: T.String(),
  provider_name: T.String(),
  is_active: T.Boolean(),
  key_prefix: Nullable(T.String()),
  base_url: Nullable(T.String()),
  requires_api_key: T.Boolean(),
  requires_base_url: T.Boolean(),
  configured: T.Boolean(),
});

/**
 * The scope a request addresses. It decides which permission applies, so a bad value is a 400
 * before the permission check (§1.5).
 */
function scopeOf(req: FastifyRequest): ToolProviderScope {
  const raw = (req.query as Record<string, unknown> | undefined)?.scope;
  if (raw === undefined) return 'platform';
  if (raw === 'org' || raw === 'platform') return raw;
  throw fieldError('scope', 'must be org or platform');
}

/** §14: `org` needs data.secrets in the account, `platform` a platform admin. */
const scopePerm = (req: FastifyRequest): string | null =>
  scopeOf(req) === 'org' ? SECRETS : req.principal?.user.isPlatformAdmin ? null : PLATFORM_ONLY;

/** `base_url` as stored: an http(s) URL without trailing `/`; org scope passes the storage-time SSRF check (§27.6). */
const storedBaseUrl = (ctx: AppContext, raw: string, scope: ToolProviderScope): Promise<string> =>
  storedHttpUrl(ctx, raw, { field: 'base_url', ssrfCheck: scope === 'org', trimSlash: true });

function entryOf(params: { group: string; provider: string }): CatalogueEntry {
  const e = findEntry(params.group, params.provider);
  if (!e) throw notFound('tool_providers.not_found', 'tool provider');
  return e;
}

const missingField = (e: CatalogueEntry) => (e.requiresApiKey ? 'api_key' : 'base_url');

export function toolProviderRoutes(app: FastifyInstance, ctx: AppContext): void {
  const tags = ['tool-providers'];
  const common = { caller: 'user' as const, perm: scopePerm, tags, query: ScopeQuery };

  /** Where a request's writes go and who made them. */
  const target = (req: FastifyRequest) => {
    const scope = scopeOf(req);
    return { scope, orgId: scope === 'org' ? req.account!.id : null, actor: req.principal!.user.id };
  };
  const auditOf = (req: FastifyRequest, action: string, row: ToolProviderRow, metadata: Record<string, unknown> = {}) => {
    const { scope, orgId, actor } = target(req);
    return { orgId, actorUserId: actor, action, targetType: 'tool_provider', targetId: row.id, metadata: { scope, group_name: row.group_name, provider_name: row.provider_name, ...metadata } };
  };

  registerRoute(app, ctx, {
    ...common,
    method: 'GET',
    url: '/v1/tool-providers',
    summary: 'The tool groups with their providers and their state in the chosen scope',
    response: T.Object({ groups: T.Array(T.Object({ group_name: T.String(), providers: T.Array(ProviderSchema) })) }),
    handler: async (req) => {
      const rows = new Map((await listConfigs(ctx.db, target(req as FastifyRequest).orgId)).map((r) => [r.provider_name, r]));
      return { groups: TOOL_GROUPS.map((g) => ({ group_name: g, providers: providersOf(g).map((e) => shapeProvider(e, rows.get(e.name))) })) };
    },
  });

  registerRoute(app, ctx, {
    ...common,
    method: 'PUT',
    url: '/v1/tool-providers/:group/:provider/activate',
    params: PathParams,
    status: 204,
    summary: 'Make this provider the active one of its group (the others of the scope are deactivated)',
    handler: async (req) => {
      const entry = entryOf(req.params);
      await auditedWrite(ctx.db, auditOrigin(req as FastifyRequest), async (trx) => {
        const rows = await lockGroup(trx, target(req as FastifyRequest).orgId, entry.group);
        const row = rows.get(entry.name)!;
        if (!rowConfigured(entry, row)) {
          throw conflict('tool_providers.not_configured', `${entry.name} needs its ${missingField(entry)} before it can be activated`, { missing: missingField(entry) });
        }
        if (row.is_active) return { result: null, audit: null };
        const previous = [...rows.values()].filter((r) => r.is_active);
        for (const r of previous) await updateConfig(trx, r.id, { is_active: false });
        await updateConfig(trx, row.id, { is_active: true });
        return { result: null, audit: auditOf(req as FastifyRequest, 'tool_provider.activate', row, { deactivated: previous.map((r) => r.provider_name) }) };
      });
      await toolProvidersChanged(ctx, target(req as FastifyRequest).orgId);
      return null;
    },
  });

  registerRoute(app, ctx, {
    ...common,
    method: 'PUT',
    url: '/v1/tool-providers/:group/:provider/deactivate',
    params: PathParams,
    status: 204,
    summary: 'Deactivate this provider (no-op when it is not active)',
    handler: async (req) => {
      const entry = entryOf(req.params);
      await auditedWrite(ctx.db, auditOrigin(req as FastifyRequest), async (trx) => {
        const row = await lockOne(trx, target(req as FastifyRequest).orgId, entry);
        if (!row.is_active) return { result: null, audit: null };
        await updateConfig(trx, row.id, { is_active: false });
        return { result: null, audit: auditOf(req as FastifyRequest, 'tool_provider.deactivate', row) };
      });
      await toolProvidersChanged(ctx, target(req as FastifyRequest).orgId);
      return null;
    },
  });

  registerRoute(app, ctx, {
    ...common,
    method: 'PUT',
    url: '/v1/tool-providers/:group/:provider/credential',
    params: PathParams,
    body: T.Object({
      api_key: OptNull(T.String({ minLength: 1, maxLength: 1000 })),
      base_url: OptNull(T.String({ minLength: 1, maxLength: 2048 })),
    }),
    trim: ['base_url'],
    status: 204,
    summary: 'Set the API key and/or base URL of a provider (the key is stored encrypted; only a masked prefix is shown)',
    handler: async (req) => {
      const entry = entryOf(req.params);
      const apiKey = req.body.api_key ?? undefined;
      const rawBase = req.body.base_url ?? undefined;
      if (apiKey === undefined && rawBase === undefined) return null;
      if (entry.takesNothing) throw fieldError(apiKey !== undefined ? 'api_key' : 'base_url', `${entry.name} takes no credential`);
      const { scope, orgId } = target(req as FastifyRequest);
      const baseUrl = rawBase === undefined ? undefined : await storedBaseUrl(ctx, rawBase, scope);
      await auditedWrite(ctx.db, auditOrigin(req as FastifyRequest), async (trx) => {
        const row = await lockOne(trx, orgId, entry);
        const after = { hasKey: apiKey !== undefined || !!row.api_key_enc, baseUrl: baseUrl ?? row.base_url };
        if (!isConfigured(entry, after)) throw fieldError(missingField(entry), `is required for ${entry.name}`);
        const keyPrefix = apiKey !== undefined ? maskKey(apiKey) : row.key_prefix;
        await updateConfig(trx, row.id, {
          ...(apiKey !== undefined ? { api_key_enc: encryptSecret(apiKey, ctx.secrets.encryptionKey), key_prefix: keyPrefix } : {}),
          ...(baseUrl !== undefined ? { base_url: baseUrl } : {}),
        });
        return {
          result: null,
          audit: auditOf(req as FastifyRequest, 'tool_provider.credential_set', row, { key_replaced: apiKey !== undefined, key_prefix: keyPrefix, base_url: after.baseUrl }),
        };
      });
      await toolProvidersChanged(ctx, target(req as FastifyRequest).orgId);
      return null;
    },
  });

  registerRoute(app, ctx, {
    ...common,
    method: 'DELETE',
    url: '/v1/tool-providers/:group/:provider/credential',
    params: PathParams,
    status: 204,
    summary: "Remove a provider's stored API key (its base URL is kept; it is deactivated when no longer configured)",
    handler: async (req) => {
      const entry = entryOf(req.params);
      await auditedWrite(ctx.db, auditOrigin(req as FastifyRequest), async (trx) => {
        const row = await lockOne(trx, target(req as FastifyRequest).orgId, entry);
        const deactivate = row.is_active && !isConfigured(entry, { hasKey: false, baseUrl: row.base_url });
        if (!row.api_key_enc && !deactivate) return { result: null, audit: null };
        await updateConfig(trx, row.id, { api_key_enc: null, key_prefix: null, ...(deactivate ? { is_active: false } : {}) });
        return { result: null, audit: auditOf(req as FastifyRequest, 'tool_provider.credential_clear', row, { deactivated: deactivate }) };
      });
      await toolProvidersChanged(ctx, target(req as FastifyRequest).orgId);
      return null;
    },
  });
}
