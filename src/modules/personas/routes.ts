// Personas (api.md §10.1–10.6): account (org) and platform personas, and the personas a user
// may pick, resolved org > platform > built-in. TypeBox checks types and ranges; the persona
// rules (patterns, selector, prompt bytes, role overrides) are parsePersonaDefinition's, the
// same function that validates the built-in files.
import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { AppContext } from '../../app-context.js';
import { conflict, fieldError, forbidden, notFound } from '../../http/errors.js';
import { registerRoute } from '../../http/route.js';
import { DateTime, Nullable, OptNull, QueryBool, T, Uuid, parseQueryBool } from '../../http/schemas.js';
import { auditedWrite } from '../audit/audited-write.js';
import { auditOrigin } from '../audit/store.js';
import { DEFAULT_PERSONA_KEY } from './builtin.js';
import { definitionColumns, deletePersona, findPersona, insertPersona, listPersonas, personaLayers, updatePersona, type StoredPersona } from './store.js';
import { personaIdOf, type Persona } from './types.js';
import { PersonaValidationError, parsePersonaDefinition, type PersonaDefinition } from './validate.js';

const READ = 'data.personas.read';
const MANAGE = 'data.personas.manage';
const ids = { id: 'personas.not_found' } as const;

const Scope = T.Union([T.Literal('org'), T.Literal('platform')]);
const ToolList = T.Array(T.String({ minLength: 1, maxLength: 200 }), { maxItems: 100 });
const Reasoning = T.Union([T.Literal('none'), T.Literal('low'), T.Literal('medium'), T.Literal('high')]);
const CacheControl = T.Union([T.Literal('none'), T.Literal('auto')]);
const Budgets = T.Object(
  {
    max_iterations: OptNull(T.Integer({ minimum: 1, maximum: 100 })),
    reasoning_iterations: OptNull(T.Integer({ minimum: 1, maximum: 100 })),
    max_output_tokens: OptNull(T.Integer({ minimum: 1, maximum: 200_000 })),
    temperature: OptNull(T.Number({ minimum: 0, maximum: 2 })),
    top_p: OptNull(T.Number({ minimum: 0, maximum: 1 })),
    tool_continuation_budget: OptNull(T.Integer({ minimum: 0, maximum: 1000 })),
    per_tool_soft_limits: OptNull(T.Record(T.String({ minLength: 1, maxLength: 200 }), T.Integer({ minimum: 0, maximum: 1000 }))),
  },
  { additionalProperties: false },
);
const RoleOverride = T.Object(
  {
    prompt_append: OptNull(T.String({ maxLength: 64 * 1024 })),
    tool_allowlist: OptNull(ToolList),
    tool_denylist: OptNull(ToolList),
    tool_approval: OptNull(ToolList),
    budgets: OptNull(Budgets),
    model: OptNull(T.String({ minLength: 1, maxLength: 300 })),
    preferred_credential: OptNull(T.String({ minLength: 1, maxLength: 100 })),
    reasoning_mode: OptNull(Reasoning),
    stream_thinking: OptNull(T.Boolean()),
    prompt_cache_control: OptNull(CacheControl),
  },
  { additionalProperties: false },
);
/** The fields create and update share (§10.2; update takes all but scope, key and version). */
const EditableFields = {
  display_name: T.String({ minLength: 1, maxLength: 100 }),
  description: OptNull(T.String({ maxLength: 2000 })),
  prompt_md: T.String({ maxLength: 64 * 1024 }),
  tool_allowlist: OptNull(ToolList),
  tool_denylist: OptNull(ToolList),
  tool_approval: OptNull(ToolList),
  budgets: OptNull(Budgets),
  model: OptNull(T.String({ minLength: 1, maxLength: 300 })),
  preferred_credential: OptNull(T.String({ minLength: 1, maxLength: 100 })),
  reasoning_mode: OptNull(Reasoning),
  stream_thinking: T.Optional(T.Boolean()),
  prompt_cache_control: OptNull(CacheControl),
  executor_type: T.Optional(T.Literal('agent.simple')),
  roles: OptNull(T.Object({ owner: OptNull(RoleOverride), admin: OptNull(RoleOverride), member: OptNull(RoleOverride) }, { additionalProperties: false })),
  is_active: T.Optional(T.Boolean()),
};

const PersonaSchema = T.Object({
  id: Uuid(),
  org_id: Nullable(Uuid()),
  scope: Scope,
  persona_key: T.String(),
  version: T.String(),
  display_name: T.String(),
  description: Nullable(T.String()),
  prompt_md: T.String(),
  tool_allowlist: Nullable(T.Array(T.String())),
  tool_denylist: T.Array(T.String()),
  tool_approval: T.Array(T.String()),
  budgets: T.Record(T.String(), T.Unknown()),
  model: Nullable(T.String()),
  preferred_credential: Nullable(T.String()),
  reasoning_mode: Nullable(T.String()),
  stream_thinking: T.Boolean(),
  prompt_cache_control: Nullable(T.String()),
  executor_type: T.String(),
  roles: T.Record(T.String(), T.Unknown()),
  is_active: T.Boolean(),
  created_at: DateTime(),
  updated_at: DateTime(),
});

const SelectableSchema = T.Object({
  persona_id: T.String(),
  persona_key: T.String(),
  version: T.String(),
  display_name: T.String(),
  description: Nullable(T.String()),
  scope: T.Union([T.Literal('org'), T.Literal('platform'), T.Literal('builtin')]),
  model: Nullable(T.String()),
  is_default: T.Boolean(),
});

const isPadmin = (req: FastifyRequest) => req.principal?.user.isPlatformAdmin === true;
const exists = () => conflict('personas.exists', 'a persona with this key and version exists in this scope');

/** The definition checked by the persona rules; a broken field answers 400 naming it. */
function definition(raw: Record<string, unknown>): PersonaDefinition {
  try {
    return parsePersonaDefinition(raw);
  } catch (err) {
    if (err instanceof PersonaValidationError) throw fieldError(err.field, err.reason);
    throw err;
  }
}

/** The editable definition of a stored persona, in the body shape. */
function definitionOf(p: Persona): Record<string, unknown> {
  const { id: _id, org_id: _o, scope: _s, created_at: _c, updated_at: _u, ...def } = p;
  return def;
}

export function personaRoutes(app: FastifyInstance, ctx: AppContext): void {
  const tags = ['personas'];

  /** The persona of the path as the caller may address it: the account's, or (platform admins only) a platform one. */
  async function addressable(req: FastifyRequest, id: string): Promise<StoredPersona> {
    const p = await findPersona(ctx.db, req.account!.id, id);
    if (!p || (p.scope === 'platform' && !isPadmin(req))) throw notFound('personas.not_found', 'persona');
    return p;
  }

  // Platform personas need a platform admin, who passes without the account's point (decided, as for LLM providers).
  const writePerm = (req: FastifyRequest) => (isPadmin(req) ? null : MANAGE);

  registerRoute(app, ctx, {
    method: 'GET',
    url: '/v1/personas',
    caller: 'user',
    perm: READ,
    summary: 'List personas (every version) of the account or the platform',
    tags,
    query: T.Object({
      scope: T.Optional(Scope),
      persona_key: T.Optional(T.String({ minLength: 1, maxLength: 64 })),
      include_inactive: T.Optional(QueryBool()),
    }),
    response: T.Array(PersonaSchema),
    handler: async (req) => {
      const scope = req.query.scope ?? 'org';
      if (scope === 'platform' && !isPadmin(req)) throw forbidden('platform admin only');
      return listPersonas(ctx.db, scope === 'org' ? req.account!.id : null, {
        key: req.query.persona_key,
        includeInactive: parseQueryBool(req.query.include_inactive, true),
      });
    },
  });

  registerRoute(app, ctx, {
    method: 'POST',
    url: '/v1/personas',
    caller: 'user',
    perm: (req) => ((req.body as { scope?: unknown } | undefined)?.scope === 'platform' ? null : MANAGE),
    status: 201,
    summary: 'Create a persona (a new key, or a new version of one)',
    tags,
    body: T.Object({
      scope: T.Optional(Scope),
      persona_key: T.String({ minLength: 1, maxLength: 64 }),
      version: T.Optional(T.String({ minLength: 1, maxLength: 32 })),
      ...EditableFields,
    }),
    trim: ['display_name'],
    response: PersonaSchema,
    handler: async (req) => {
      const { scope: rawScope, ...fields } = req.body;
      const scope = rawScope ?? 'org';
      if (scope === 'platform' && !isPadmin(req)) throw forbidden('platform admin only');
      const def = definition(fields);
      const orgId = scope === 'org' ? req.account!.id : null;
      return auditedWrite(
        ctx.db,
        auditOrigin(req as FastifyRequest),
        async (trx) => {
          const created = await insertPersona(trx, { org_id: orgId, scope, ...definitionColumns(def) });
          return {
            result: created,
            audit: {
              orgId,
              actorUserId: req.principal!.user.id,
              action: 'persona.create',
              targetType: 'persona',
              targetId: created.id,
              metadata: { scope, persona_id: personaIdOf(created) },
              after: definitionOf(created),
            },
          };
        },
        { unique: exists },
      );
    },
  });

  registerRoute(app, ctx, {
    method: 'GET',
    url: '/v1/personas/:id',
    caller: 'user',
    perm: READ,
    ids,
    summary: 'Get a persona',
    tags,
    params: T.Object({ id: T.String() }),
    response: PersonaSchema,
    handler: async (req) => addressable(req, req.params.id),
  });

  registerRoute(app, ctx, {
    method: 'PATCH',
    url: '/v1/personas/:id',
    caller: 'user',
    perm: writePerm,
    ids,
    summary: 'Update a persona in place (key and version are its identity and cannot change)',
    tags,
    params: T.Object({ id: T.String() }),
    body: T.Object({ ...EditableFields, display_name: T.Optional(EditableFields.display_name), prompt_md: T.Optional(EditableFields.prompt_md) }),
    trim: ['display_name'],
    response: PersonaSchema,
    handler: async (req) => {
      const before = await addressable(req, req.params.id);
      for (const f of ['scope', 'persona_key', 'version']) {
        if (f in req.body) throw fieldError(f, 'cannot be changed: a version is an immutable identity; create a new version instead');
      }
      // Absent fields keep their value; the merged definition is checked as a whole.
      const present = Object.fromEntries(Object.entries(req.body).filter(([k, v]) => v !== undefined && k in EditableFields));
      const def = definition({ ...definitionOf(before), ...present });
      return auditedWrite(ctx.db, auditOrigin(req as FastifyRequest), async (trx) => {
        const after = await updatePersona(trx, before.id, definitionColumns(def));
        return {
          result: after,
          audit: {
            orgId: before.org_id,
            actorUserId: req.principal!.user.id,
            action: 'persona.update',
            targetType: 'persona',
            targetId: before.id,
            metadata: { scope: before.scope, persona_id: personaIdOf(before) },
            before: definitionOf(before),
            after: definitionOf(after),
          },
        };
      });
    },
  });

  registerRoute(app, ctx, {
    method: 'DELETE',
    url: '/v1/personas/:id',
    caller: 'user',
    perm: writePerm,
    ids,
    status: 204,
    summary: 'Delete a persona version (runs keep their stored persona_id)',
    tags,
    params: T.Object({ id: T.String() }),
    handler: async (req) => {
      const p = await addressable(req, req.params.id);
      await auditedWrite(ctx.db, auditOrigin(req as FastifyRequest), async (trx) => {
        await deletePersona(trx, p.id);
        return {
          result: null,
          audit: { orgId: p.org_id, actorUserId: req.principal!.user.id, action: 'persona.delete', targetType: 'persona', targetId: p.id, metadata: { scope: p.scope, persona_id: personaIdOf(p) }, before: definitionOf(p) },
        };
      });
      return null;
    },
  });

  registerRoute(app, ctx, {
    method: 'GET',
    url: '/v1/me/selectable-personas',
    caller: 'user',
    summary: 'The personas the caller may pick: per key the account’s latest active version, else the platform’s, else the built-in',
    tags,
    response: T.Array(SelectableSchema),
    handler: async (req) => {
      const layers = await personaLayers(ctx.db, req.account!.id);
      const keys = new Set(layers.flatMap((l) => l.keys()));
      const out = [];
      for (const key of keys) {
        const layer = layers.find((l) => l.find(key, null));
        const p = layer?.find(key, null);
        if (!layer || !p) continue;
        out.push({
          persona_id: personaIdOf(p),
          persona_key: p.persona_key,
          version: p.version,
          display_name: p.display_name,
          description: p.description,
          scope: layer.scope,
          model: p.model,
          is_default: key === DEFAULT_PERSONA_KEY,
        });
      }
      return out.sort((a, b) => Number(b.is_default) - Number(a.is_default) || a.display_name.localeCompare(b.display_name) || a.persona_key.localeCompare(b.persona_key));
    },
  });
}
