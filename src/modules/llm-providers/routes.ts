// LLM providers and their models (api.md §12.1–12.8): org scope (the account's own keys, while
// feature.byok_enabled) and platform scope (platform admins).
import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { AppContext } from '../../app-context.js';
import { AppError, conflict, fieldError, forbidden, notFound } from '../../http/errors.js';
import { registerRoute } from '../../http/route.js';
import { DateTime, Nullable, OptNull, T, Uuid } from '../../http/schemas.js';
import { encryptSecret } from '../../lib/crypto.js';
import { storedHttpUrl } from '../../http/stored-url.js';
import { auditedWrite } from '../audit/audited-write.js';
import { auditOrigin } from '../audit/store.js';
import { isFeatureEnabled } from '../feature-flags/evaluate.js';
import { upstreamModels } from './catalogue.js';
import {
  KEY_PREFIX_LENGTH,
  clearDefault,
  deleteModel,
  deleteProvider,
  findModel,
  findProvider,
  insertModel,
  insertProvider,
  listProviders,
  modelsOf,
  shapeModel,
  shapeProvider,
  updateModel,
  updateProvider,
  type ProviderRow,
  providersChanged,
} from './store.js';

const Kind = T.Union([T.Literal('openai'), T.Literal('anthropic'), T.Literal('stub')]);
const ApiMode = T.Union([T.Literal('auto'), T.Literal('responses'), T.Literal('chat_completions')]);
const Name = T.String({ minLength: 1, maxLength: 100, pattern: '^[^^]*$' });
const JsonObject = T.Record(T.String(), T.Unknown());
const Cost = OptNull(T.Number({ minimum: 0, maximum: 1e9 }));

const ModelSchema = T.Object({
  id: Uuid(),
  provider_id: Uuid(),
  model: T.String(),
  priority: T.Integer(),
  is_default: T.Boolean(),
  tags: T.Array(T.String()),
  when: JsonObject,
  advanced_json: JsonObject,
  multiplier: T.Number(),
  cost_per_1k_input: Nullable(T.Number()),
  cost_per_1k_output: Nullable(T.Number()),
  cost_per_1k_cache_write: Nullable(T.Number()),
  cost_per_1k_cache_read: Nullable(T.Number()),
  created_at: DateTime(),
});

const ProviderSchema = T.Object({
  id: Uuid(),
  org_id: Nullable(Uuid()),
  scope: T.Union([T.Literal('org'), T.Literal('platform')]),
  provider: Kind,
  name: T.String(),
  key_prefix: Nullable(T.String()),
  base_url: Nullable(T.String()),
  openai_api_mode: Nullable(T.String()),
  advanced_json: Nullable(JsonObject),
  created_at: DateTime(),
  updated_at: DateTime(),
  models: T.Array(ModelSchema),
});

/** Body fields of a provider that are optional in both create and update. */
const ProviderOptionalFields = {
  api_key: T.Optional(T.String({ minLength: 1, maxLength: 1000 })),
  base_url: OptNull(T.String({ minLength: 1, maxLength: 2000 })),
  openai_api_mode: OptNull(ApiMode),
  advanced_json: OptNull(JsonObject),
};

const ModelFields = {
  priority: T.Optional(T.Integer({ minimum: -1000, maximum: 1000 })),
  is_default: T.Optional(T.Boolean()),
  tags: T.Optional(T.Array(T.String({ minLength: 1, maxLength: 100 }), { maxItems: 50 })),
  when: T.Optional(JsonObject),
  advanced_json: T.Optional(JsonObject),
  multiplier: T.Optional(T.Number({ exclusiveMinimum: 0, maximum: 1000 })),
  cost_per_1k_input: Cost,
  cost_per_1k_output: Cost,
  cost_per_1k_cache_write: Cost,
  cost_per_1k_cache_read: Cost,
};

const SECRETS = 'data.secrets';
const ids = { provider_id: 'llm_providers.not_found' } as const;
const modelIds = { ...ids, model_id: 'llm_models.not_found' } as const;
const nameTaken = () => conflict('llm_providers.name_taken', 'a provider with this name exists in this scope');
const modelExists = () => conflict('llm_models.exists', 'this provider already has that model');

/** `base_url` as stored: an http(s) URL without trailing `/`; org scope passes the SSRF check (§27.6). */
async function storedBaseUrl(ctx: AppContext, raw: string | null | undefined, scope: 'org' | 'platform'): Promise<string | null | undefined> {
  if (raw === undefined || raw === null) return raw;
  return storedHttpUrl(ctx, raw, { field: 'base_url', ssrfCheck: scope === 'org', trimSlash: true });
}

async function requireByok(ctx: AppContext, orgId: string): Promise<void> {
  if (!(await isFeatureEnabled(ctx, orgId, 'feature.byok_enabled'))) {
    throw new AppError('policy.byok_disabled', 'this account may not use its own provider credentials (feature.byok_enabled is off)');
  }
}

const isPadmin = (req: FastifyRequest) => req.principal?.user.isPlatformAdmin === true;

export function llmProviderRoutes(app: FastifyInstance, ctx: AppContext): void {
  const tags = ['llm-providers'];

  /** The provider of the path as the caller may address it: the account's, or (platform admins only) a platform one. */
  async function addressableProvider(req: FastifyRequest, id: string): Promise<ProviderRow> {
    const p = await findProvider(ctx.db, req.account!.id, id);
    if (!p || (p.scope === 'platform' && !isPadmin(req))) throw notFound('llm_providers.not_found', 'LLM provider');
    return p;
  }

  async function answer(p: ProviderRow, hidePrefix = false) {
    return shapeProvider(p, await modelsOf(ctx.db, [p.id]), hidePrefix);
  }

  // Members list without a point (no secrets in the list); writes need data.secrets in the
  // account, platform rows need a platform admin, who also passes the point (decided).
  const writePerm = (req: FastifyRequest) => (isPadmin(req) ? null : SECRETS);

  registerRoute(app, ctx, {
    method: 'GET',
    url: '/v1/llm-providers',
    caller: 'user',
    summary: 'List LLM providers with their models',
    tags,
    query: T.Object({ scope: T.Optional(T.Union([T.Literal('org'), T.Literal('platform'), T.Literal('all')])) }),
    response: T.Array(ProviderSchema),
    handler: async (req) => {
      const scope = req.query.scope ?? 'org';
      if (scope === 'platform' && !isPadmin(req)) throw forbidden('platform admin only');
      const rows = [
        ...(scope === 'platform' ? [] : await listProviders(ctx.db, req.account!.id)),
        ...(scope === 'org' ? [] : await listProviders(ctx.db, null)),
      ];
      const models = await modelsOf(ctx.db, rows.map((r) => r.id));
      return rows.map((r) => shapeProvider(r, models, r.scope === 'platform' && !isPadmin(req)));
    },
  });

  registerRoute(app, ctx, {
    method: 'POST',
    url: '/v1/llm-providers',
    caller: 'user',
    perm: (req) => ((req.body as { scope?: unknown } | undefined)?.scope === 'platform' ? null : SECRETS),
    status: 201,
    summary: 'Create an LLM provider (the API key is stored encrypted; only its prefix is returned)',
    tags,
    body: T.Object({
      scope: T.Optional(T.Union([T.Literal('org'), T.Literal('platform')])),
      name: Name,
      provider: Kind,
      ...ProviderOptionalFields,
    }),
    trim: ['name'],
    response: ProviderSchema,
    handler: async (req) => {
      const b = req.body;
      const scope = b.scope ?? 'org';
      const orgId = scope === 'org' ? req.account!.id : null;
      if (scope === 'platform' && !isPadmin(req)) throw forbidden('platform admin only');
      if (b.provider !== 'stub' && !b.api_key) throw fieldError('api_key', 'is required for this provider');
      if (b.openai_api_mode != null && b.provider !== 'openai') throw fieldError('openai_api_mode', 'only for openai providers');
      if (orgId) await requireByok(ctx, orgId);
      const baseUrl = await storedBaseUrl(ctx, b.base_url, scope);
      const row = await auditedWrite(
        ctx.db,
        auditOrigin(req as FastifyRequest),
        async (trx) => {
          const created = await insertProvider(trx, {
            org_id: orgId,
            scope,
            provider: b.provider,
            name: b.name,
            api_key_enc: b.api_key ? encryptSecret(b.api_key, ctx.secrets.encryptionKey) : null,
            key_prefix: b.api_key ? b.api_key.slice(0, KEY_PREFIX_LENGTH) : null,
            base_url: baseUrl ?? null,
            openai_api_mode: b.provider === 'openai' ? (b.openai_api_mode ?? 'auto') : null,
            advanced_json: b.advanced_json == null ? null : JSON.stringify(b.advanced_json),
          });
          return {
            result: created,
            audit: {
              orgId,
              actorUserId: req.principal!.user.id,
              action: 'llm_provider.create',
              targetType: 'llm_provider',
              targetId: created.id,
              metadata: { scope, name: created.name, provider: created.provider, key_prefix: created.key_prefix, base_url: created.base_url },
            },
          };
        },
        { unique: nameTaken },
      );
      await providersChanged(ctx, orgId);
      return shapeProvider(row, []);
    },
  });

  registerRoute(app, ctx, {
    method: 'GET',
    url: '/v1/llm-providers/:provider_id',
    caller: 'user',
    ids,
    summary: 'Get an LLM provider with its models',
    tags,
    params: T.Object({ provider_id: T.String() }),
    response: ProviderSchema,
    handler: async (req) => answer(await addressableProvider(req, req.params.provider_id)),
  });

  registerRoute(app, ctx, {
    method: 'PATCH',
    url: '/v1/llm-providers/:provider_id',
    caller: 'user',
    perm: writePerm,
    ids,
    summary: 'Update an LLM provider (api_key replaces the stored key)',
    tags,
    params: T.Object({ provider_id: T.String() }),
    body: T.Object({
      name: T.Optional(Name),
      provider: T.Optional(Kind),
      ...ProviderOptionalFields,
    }),
    trim: ['name'],
    response: ProviderSchema,
    handler: async (req) => {
      const before = await addressableProvider(req, req.params.provider_id);
      const b = req.body;
      const kind = b.provider ?? before.provider;
      if (b.openai_api_mode != null && kind !== 'openai') throw fieldError('openai_api_mode', 'only for openai providers');
      if (kind !== 'stub' && !b.api_key && !before.api_key_enc) throw fieldError('api_key', 'is required for this provider');
      const baseUrl = await storedBaseUrl(ctx, b.base_url, before.scope);
      const patch = {
        ...(b.name !== undefined ? { name: b.name } : {}),
        ...(b.provider !== undefined ? { provider: b.provider } : {}),
        ...(b.api_key !== undefined ? { api_key_enc: encryptSecret(b.api_key, ctx.secrets.encryptionKey), key_prefix: b.api_key.slice(0, KEY_PREFIX_LENGTH) } : {}),
        ...(baseUrl !== undefined ? { base_url: baseUrl } : {}),
        ...(kind !== 'openai' ? { openai_api_mode: null } : b.openai_api_mode !== undefined ? { openai_api_mode: b.openai_api_mode ?? 'auto' } : before.openai_api_mode ? {} : { openai_api_mode: 'auto' }),
        ...(b.advanced_json !== undefined ? { advanced_json: b.advanced_json === null ? null : JSON.stringify(b.advanced_json) } : {}),
      };
      const view = (p: ProviderRow) => ({ name: p.name, provider: p.provider, key_prefix: p.key_prefix, base_url: p.base_url, openai_api_mode: p.openai_api_mode, advanced_json: p.advanced_json });
      const row = await auditedWrite(
        ctx.db,
        auditOrigin(req as FastifyRequest),
        async (trx) => {
          const after = await updateProvider(trx, before.id, patch);
          return {
            result: after,
            audit: {
              orgId: before.org_id,
              actorUserId: req.principal!.user.id,
              action: 'llm_provider.update',
              targetType: 'llm_provider',
              targetId: before.id,
              metadata: { key_replaced: b.api_key !== undefined },
              before: view(before),
              after: view(after),
            },
          };
        },
        { unique: nameTaken },
      );
      await providersChanged(ctx, before.org_id);
      return answer(row);
    },
  });

  registerRoute(app, ctx, {
    method: 'DELETE',
    url: '/v1/llm-providers/:provider_id',
    caller: 'user',
    perm: writePerm,
    ids,
    status: 204,
    summary: 'Delete an LLM provider and its models',
    tags,
    params: T.Object({ provider_id: T.String() }),
    handler: async (req) => {
      const p = await addressableProvider(req, req.params.provider_id);
      await auditedWrite(ctx.db, auditOrigin(req as FastifyRequest), async (trx) => {
        await deleteProvider(trx, p.id);
        return {
          result: null,
          audit: { orgId: p.org_id, actorUserId: req.principal!.user.id, action: 'llm_provider.delete', targetType: 'llm_provider', targetId: p.id, metadata: { scope: p.scope, name: p.name, provider: p.provider }, before: { name: p.name, provider: p.provider, key_prefix: p.key_prefix, base_url: p.base_url, openai_api_mode: p.openai_api_mode, advanced_json: p.advanced_json } },
        };
      });
      await providersChanged(ctx, p.org_id);
      return null;
    },
  });

  registerRoute(app, ctx, {
    method: 'POST',
    url: '/v1/llm-providers/:provider_id/models',
    caller: 'user',
    perm: writePerm,
    ids,
    status: 201,
    summary: 'Add a model (a route) to an LLM provider',
    tags,
    params: T.Object({ provider_id: T.String() }),
    body: T.Object({ model: T.String({ minLength: 1, maxLength: 200 }), ...ModelFields }),
    trim: ['model'],
    response: ModelSchema,
    handler: async (req) => {
      const p = await addressableProvider(req, req.params.provider_id);
      const b = req.body;
      const row = await auditedWrite(
        ctx.db,
        auditOrigin(req as FastifyRequest),
        async (trx) => {
          const created = await insertModel(trx, {
            provider_id: p.id,
            model: b.model,
            priority: b.priority ?? 0,
            is_default: b.is_default ?? false,
            tags: JSON.stringify(b.tags ?? []),
            when_json: JSON.stringify(b.when ?? {}),
            advanced_json: JSON.stringify(b.advanced_json ?? {}),
            multiplier: b.multiplier ?? 1,
            cost_per_1k_input: b.cost_per_1k_input ?? null,
            cost_per_1k_output: b.cost_per_1k_output ?? null,
            cost_per_1k_cache_write: b.cost_per_1k_cache_write ?? null,
            cost_per_1k_cache_read: b.cost_per_1k_cache_read ?? null,
          });
          if (created.is_default) await clearDefault(trx, p.id, created.id);
          return {
            result: created,
            audit: { orgId: p.org_id, actorUserId: req.principal!.user.id, action: 'llm_model.create', targetType: 'llm_model', targetId: created.id, metadata: shapeModel(created) },
          };
        },
        { unique: modelExists },
      );
      await providersChanged(ctx, p.org_id);
      return shapeModel(row);
    },
  });

  registerRoute(app, ctx, {
    method: 'PATCH',
    url: '/v1/llm-providers/:provider_id/models/:model_id',
    caller: 'user',
    perm: writePerm,
    ids: modelIds,
    summary: 'Update a model of an LLM provider',
    tags,
    params: T.Object({ provider_id: T.String(), model_id: T.String() }),
    body: T.Object({ model: T.Optional(T.String({ minLength: 1, maxLength: 200 })), ...ModelFields }),
    trim: ['model'],
    response: ModelSchema,
    handler: async (req) => {
      const p = await addressableProvider(req, req.params.provider_id);
      const before = await findModel(ctx.db, p.id, req.params.model_id);
      if (!before) throw notFound('llm_models.not_found', 'model');
      const b = req.body;
      const set = <K extends string, V>(k: K, v: V | undefined, map: (x: V) => unknown = (x) => x) => (v !== undefined ? { [k]: map(v) } : {});
      const patch = {
        ...set('model', b.model),
        ...set('priority', b.priority),
        ...set('is_default', b.is_default),
        ...set('tags', b.tags, (x) => JSON.stringify(x)),
        ...set('when_json', b.when, (x) => JSON.stringify(x)),
        ...set('advanced_json', b.advanced_json, (x) => JSON.stringify(x)),
        ...set('multiplier', b.multiplier),
        ...set('cost_per_1k_input', b.cost_per_1k_input),
        ...set('cost_per_1k_output', b.cost_per_1k_output),
        ...set('cost_per_1k_cache_write', b.cost_per_1k_cache_write),
        ...set('cost_per_1k_cache_read', b.cost_per_1k_cache_read),
      };
      const row = await auditedWrite(
        ctx.db,
        auditOrigin(req as FastifyRequest),
        async (trx) => {
          const after = Object.keys(patch).length ? await updateModel(trx, before.id, patch) : before;
          if (after.is_default) await clearDefault(trx, p.id, after.id);
          return {
            result: after,
            audit: { orgId: p.org_id, actorUserId: req.principal!.user.id, action: 'llm_model.update', targetType: 'llm_model', targetId: before.id, metadata: { provider_id: p.id }, before: shapeModel(before), after: shapeModel(after) },
          };
        },
        { unique: modelExists },
      );
      await providersChanged(ctx, p.org_id);
      return shapeModel(row);
    },
  });

  registerRoute(app, ctx, {
    method: 'DELETE',
    url: '/v1/llm-providers/:provider_id/models/:model_id',
    caller: 'user',
    perm: writePerm,
    ids: modelIds,
    status: 204,
    summary: 'Delete a model of an LLM provider',
    tags,
    params: T.Object({ provider_id: T.String(), model_id: T.String() }),
    handler: async (req) => {
      const p = await addressableProvider(req, req.params.provider_id);
      const m = await findModel(ctx.db, p.id, req.params.model_id);
      if (!m) throw notFound('llm_models.not_found', 'model');
      await auditedWrite(ctx.db, auditOrigin(req as FastifyRequest), async (trx) => {
        await deleteModel(trx, m.id);
        return {
          result: null,
          audit: { orgId: p.org_id, actorUserId: req.principal!.user.id, action: 'llm_model.delete', targetType: 'llm_model', targetId: m.id, metadata: { provider_id: p.id, model: m.model }, before: shapeModel(m) },
        };
      });
      await providersChanged(ctx, p.org_id);
      return null;
    },
  });
  registerRoute(app, ctx, {
    method: 'GET',
    url: '/v1/llm-providers/:provider_id/available-models',
    caller: 'user',
    perm: writePerm,
    ids,
    summary: "The upstream's model catalogue, marking the models configured under this provider",
    tags,
    params: T.Object({ provider_id: T.String() }),
    response: T.Object({ models: T.Array(T.Object({ id: T.String(), name: T.String(), configured: T.Boolean() })) }),
    handler: async (req) => {
      const p = await addressableProvider(req, req.params.provider_id);
      const upstream = await upstreamModels(p, { encryptionKey: ctx.secrets.encryptionKey, allowPrivate: await ctx.settings.bool('security.ssrf_allow_private') });
      const configured = new Set((await modelsOf(ctx.db, [p.id])).map((m) => m.model));
      return { models: upstream.map((m) => ({ ...m, configured: configured.has(m.id) })) };
    },
  });
}
