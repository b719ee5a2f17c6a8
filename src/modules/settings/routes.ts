// Platform settings for platform admins (api.md §21.22–21.26): every key of §28.2 with its
// stored and effective value and where the effective one comes from.
import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { AppContext } from '../../app-context.js';
import { AppError, validationError } from '../../http/errors.js';
import { registerRoute } from '../../http/route.js';
import { DateTime, Nullable, T } from '../../http/schemas.js';
import { auditOrigin } from '../audit/store.js';
import { SETTINGS, type SettingDef, type SettingValue } from './registry.js';
import { isSealed } from './service.js';
import { storedSecretSet, storedSettings, type StoredSetting } from './store.js';
import { validateSettingValue } from './validate.js';
import { writeSettings } from './write.js';

const MASK = '********';

export const PlatformSettingSchema = T.Object({
  key: T.String(),
  type: T.Union([T.Literal('int'), T.Literal('number'), T.Literal('bool'), T.Literal('string'), T.Literal('json')]),
  scope: T.Union([T.Literal('platform'), T.Literal('both')]),
  default: T.Unknown(),
  value: T.Unknown(),
  effective: T.Unknown(),
  source: T.Union([T.Literal('env'), T.Literal('db'), T.Literal('default')]),
  sensitive: T.Boolean(),
  is_set: T.Boolean(),
  description: T.String(),
  updated_at: Nullable(DateTime()),
});

async function shapeSetting(ctx: AppContext, def: SettingDef, row: StoredSetting | undefined) {
  const forced = ctx.settings.envVariable(def.key) !== null;
  const sensitive = def.sensitive === true;
  let value: unknown = row ? row.value : null;
  let effective: unknown;
  if (forced) effective = (await ctx.settings.resolve(def.key)).value;
  else if (row) effective = sensitive && isSealed(row.value) ? MASK : row.value;
  else effective = def.default;
  if (sensitive) {
    value = row && storedSecretSet(row.value) ? MASK : null;
    effective = effective === MASK || (typeof effective === 'string' && effective !== '') ? MASK : null;
  }
  return {
    key: def.key,
    type: def.type,
    scope: def.scope,
    default: def.default,
    value,
    effective,
    source: forced ? ('env' as const) : row ? ('db' as const) : ('default' as const),
    sensitive,
    is_set: !!row,
    description: def.description,
    updated_at: row ? row.updated_at.toISOString() : null,
  };
}

function defOf(key: string): SettingDef {
  const def = SETTINGS.get(key);
  if (!def) throw new AppError('settings.not_found', `no setting named ${key.slice(0, 128)}`, { key: key.slice(0, 128) });
  return def;
}

/** The value to store (null = remove) or the reason it is refused. */
function parseValue(def: SettingDef, value: unknown): { ok: true; value: SettingValue | null } | { ok: false; reason: string } {
  if (value === null) return { ok: true, value: null };
  try {
    return { ok: true, value: validateSettingValue(def, value) };
  } catch (err) {
    return { ok: false, reason: (err as Error).message };
  }
}

export function platformSettingRoutes(app: FastifyInstance, ctx: AppContext): void {
  const tags = ['admin'];
  const KeyParams = T.Object({ key: T.String({ maxLength: 200 }) });

  registerRoute(app, ctx, {
    method: 'GET',
    url: '/v1/admin/platform-settings',
    caller: 'padmin',
    summary: 'Every platform setting, sorted by key',
    tags,
    query: T.Object({ prefix: T.Optional(T.String({ maxLength: 128 })) }),
    response: T.Object({ data: T.Array(PlatformSettingSchema) }),
    handler: async (req) => {
      const prefix = req.query.prefix ?? '';
      const defs = [...SETTINGS.values()].filter((d) => d.key.startsWith(prefix)).sort((a, b) => (a.key < b.key ? -1 : 1));
      const rows = await storedSettings(ctx.db, defs.map((d) => d.key));
      return { data: await Promise.all(defs.map((d) => shapeSetting(ctx, d, rows.get(d.key)))) };
    },
  });

  registerRoute(app, ctx, {
    method: 'GET',
    url: '/v1/admin/platform-settings/:key',
    caller: 'padmin',
    summary: 'One platform setting',
    tags,
    params: KeyParams,
    response: PlatformSettingSchema,
    handler: async (req) => {
      const def = defOf(req.params.key);
      const rows = await storedSettings(ctx.db, [def.key]);
      return shapeSetting(ctx, def, rows.get(def.key));
    },
  });

  registerRoute(app, ctx, {
    method: 'PUT',
    url: '/v1/admin/platform-settings/:key',
    caller: 'padmin',
    summary: 'Store a platform setting (null removes the stored value)',
    tags,
    params: KeyParams,
    body: T.Object({ value: T.Unknown() }),
    response: PlatformSettingSchema,
    handler: async (req) => {
      const def = defOf(req.params.key);
      const parsed = parseValue(def, req.body.value);
      if (!parsed.ok) throw new AppError('validation.error', `invalid value for ${def.key}: ${parsed.reason}`, { key: def.key, fields: [{ field: 'value', reason: parsed.reason }] });
      await writeSettings(ctx, auditOrigin(req as FastifyRequest), new Map([[def.key, parsed.value]]), { actorUserId: req.principal!.user.id });
      const rows = await storedSettings(ctx.db, [def.key]);
      return shapeSetting(ctx, def, rows.get(def.key));
    },
  });

  registerRoute(app, ctx, {
    method: 'PUT',
    url: '/v1/admin/platform-settings',
    caller: 'padmin',
    summary: 'Store several platform settings at once (all or nothing)',
    tags,
    body: T.Object({ values: T.Record(T.String(), T.Unknown()) }),
    response: T.Object({ data: T.Array(PlatformSettingSchema) }),
    handler: async (req) => {
      const entries = Object.entries(req.body.values);
      if (entries.length < 1 || entries.length > 100) throw validationError([{ field: 'values', reason: 'must name 1–100 keys' }]);
      const unknown = entries.find(([k]) => !SETTINGS.has(k));
      if (unknown) defOf(unknown[0]);
      const changes = new Map<string, SettingValue | null>();
      const fields: Array<{ field: string; reason: string }> = [];
      for (const [key, value] of entries) {
        const parsed = parseValue(SETTINGS.get(key)!, value);
        if (parsed.ok) changes.set(key, parsed.value);
        else fields.push({ field: key, reason: parsed.reason });
      }
      if (fields.length) throw validationError(fields);
      await writeSettings(ctx, auditOrigin(req as FastifyRequest), changes, { actorUserId: req.principal!.user.id });
      const keys = [...changes.keys()].sort();
      const rows = await storedSettings(ctx.db, keys);
      return { data: await Promise.all(keys.map((k) => shapeSetting(ctx, SETTINGS.get(k)!, rows.get(k)))) };
    },
  });

  registerRoute(app, ctx, {
    method: 'DELETE',
    url: '/v1/admin/platform-settings/:key',
    caller: 'padmin',
    status: 204,
    summary: 'Remove the stored value of a platform setting',
    tags,
    params: KeyParams,
    handler: async (req) => {
      const def = defOf(req.params.key);
      await writeSettings(ctx, auditOrigin(req as FastifyRequest), new Map([[def.key, null]]), { actorUserId: req.principal!.user.id });
      return null;
    },
  });
}
