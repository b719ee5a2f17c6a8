// MCP configs (api.md §13.1–13.6): an account's MCP servers, whose tools its runs are offered
// (§27.5; the runtime is src/mcp/). Transport rules: `stdio` starts a command on the worker
// host, so only platform admins create, edit or delete stdio configs; `http_sse` and
// `streamable_http` need feature.mcp_remote_enabled and a URL that passes the SSRF check.
//
// Decided where the contract is silent:
//   - fields that do not apply to the transport (url, bearer_token for stdio; command, args,
//     cwd, env, inherit_parent_env for remote ones) must be absent, null or empty: 400 otherwise;
//   - `env` names are environment variable names (`^[A-Za-z_][A-Za-z0-9_]*$`); the map is at most
//     16 KiB as JSON (§1.6); `bearer_token` is visible ASCII (it goes into a header);
//   - deleting a stdio config needs a platform admin like editing it; deleting a remote config
//     does not need feature.mcp_remote_enabled (removing never widens what an account uses);
//   - the tools endpoint of a remote config needs the feature, like using it in a run; a URL the
//     SSRF guard refuses at call time answers 400 policy.ssrf_blocked there, as available-models
//     does (§12.9), and a host that does not resolve 502 mcp.disconnected.
import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { AppContext } from '../../app-context.js';
import { AppError, conflict, fieldError, notFound, validationError } from '../../http/errors.js';
import { registerRoute } from '../../http/route.js';
import { DateTime, Nullable, T, Uuid } from '../../http/schemas.js';
import { encryptSecret } from '../../lib/crypto.js';
import { storedHttpUrl } from '../../http/stored-url.js';
import { discoverConfigTools, mcpConfigChanged } from '../../mcp/runtime.js';
import { McpFailure } from '../../mcp/errors.js';
import { auditedWrite } from '../audit/audited-write.js';
import { auditOrigin } from '../audit/store.js';
import { isFeatureEnabled } from '../feature-flags/evaluate.js';
import { deleteConfig, findConfig, insertConfig, listConfigs, shapeConfig, updateConfig, type McpConfigRow, type McpTransport } from './store.js';

const Transport = T.Union([T.Literal('stdio'), T.Literal('http_sse'), T.Literal('streamable_http')]);
const Name = T.String({ minLength: 1, maxLength: 100 });
const Url = T.String({ minLength: 1, maxLength: 2048 });
const BearerToken = T.String({ minLength: 1, maxLength: 4096, pattern: '^[\\x21-\\x7e]+$' });
const NoControl = '^[^\\u0000-\\u001f\\u007f]*\\S[^\\u0000-\\u001f\\u007f]*$';
const Command = T.String({ minLength: 1, maxLength: 1000, pattern: NoControl });
const Args = T.Array(T.String({ maxLength: 200 }), { maxItems: 100 });
const Cwd = T.String({ minLength: 1, maxLength: 1000, pattern: NoControl });
const Env = T.Record(T.String(), T.String());
const CallTimeout = T.Integer({ minimum: 100, maximum: 600_000 });

const ENV_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;
const ENV_MAX_BYTES = 16 * 1024;
const DEFAULT_CALL_TIMEOUT_MS = 10_000;

const ConfigSchema = T.Object({
  id: Uuid(),
  org_id: Uuid(),
  name: T.String(),
  transport: Transport,
  url: Nullable(T.String()),
  has_auth: T.Boolean(),
  command: Nullable(T.String()),
  args: T.Array(T.String()),
  cwd: Nullable(T.String()),
  env_keys: T.Array(T.String()),
  inherit_parent_env: T.Boolean(),
  call_timeout_ms: T.Integer(),
  is_active: T.Boolean(),
  created_at: DateTime(),
  updated_at: DateTime(),
});

const McpToolSchema = T.Object({
  name: T.String(),
  original_name: T.String(),
  description: T.String(),
  input_schema: T.Record(T.String(), T.Unknown()),
});

const SECRETS = 'data.secrets';
const ids = { config_id: 'mcp_configs.not_found' } as const;
const TARGET = 'mcp_config';
const nameTaken = () => conflict('mcp_configs.name_taken', 'an MCP config with this name exists in this account');
const isPadmin = (req: FastifyRequest) => req.principal?.user.isPlatformAdmin === true;
const isRemote = (t: McpTransport) => t !== 'stdio';

/** True when a body value says nothing: absent, null, false, [] or {}. */
function isEmpty(v: unknown): boolean {
  if (v === undefined || v === null || v === false) return true;
  if (Array.isArray(v)) return v.length === 0;
  return typeof v === 'object' && Object.keys(v as object).length === 0;
}

/** 400 for each given field that does not apply to the transport. */
function refuseInapplicable(body: Record<string, unknown>, transport: McpTransport): void {
  const notFor = isRemote(transport) ? ['command', 'args', 'cwd', 'env', 'inherit_parent_env'] : ['url', 'bearer_token'];
  const bad = notFor.filter((f) => !isEmpty(body[f]));
  if (bad.length) {
    throw validationError(bad.map((field) => ({ field, reason: isRemote(transport) ? 'only for stdio configs' : 'not for stdio configs' })));
  }
}

function checkEnv(env: Record<string, string>): void {
  for (const k of Object.keys(env)) {
    if (!ENV_NAME.test(k) || k.length > 200) throw fieldError(`env.${k}`, 'must be an environment variable name (letters, digits, _; not starting with a digit)');
  }
  if (Buffer.byteLength(JSON.stringify(env), 'utf8') > ENV_MAX_BYTES) throw fieldError('env', `must be at most ${ENV_MAX_BYTES} bytes as JSON`);
}

/** The URL as stored: absolute http(s), passing the storage-time SSRF check (§27.6). */
const storedUrl = (ctx: AppContext, raw: string): Promise<string> => storedHttpUrl(ctx, raw, { field: 'url', ssrfCheck: true });

/** The transport rules of §13: who may create, edit or use a config of this transport. */
async function requireTransportRights(ctx: AppContext, req: FastifyRequest, transport: McpTransport): Promise<void> {
  if (transport === 'stdio') {
    if (!isPadmin(req)) throw new AppError('policy.mcp_stdio_forbidden', 'only platform admins may create or change stdio MCP configs');
    return;
  }
  if (!(await isFeatureEnabled(ctx, req.account!.id, 'feature.mcp_remote_enabled'))) {
    throw new AppError('policy.mcp_remote_disabled', 'this account may not use remote MCP servers (feature.mcp_remote_enabled is off)');
  }
}

/** What audit rows record of a config: no token, no env values. */
function auditView(c: McpConfigRow) {
  const { id: _id, org_id: _org, created_at: _c, updated_at: _u, ...view } = shapeConfig(c);
  return view;
}

const sealEnv = (ctx: AppContext, env: Record<string, string>) => (Object.keys(env).length ? encryptSecret(JSON.stringify(env), ctx.secrets.encryptionKey) : null);

export function mcpConfigRoutes(app: FastifyInstance, ctx: AppContext): void {
  const tags = ['mcp-configs'];

  async function ownConfig(req: FastifyRequest, id: string): Promise<McpConfigRow> {
    const c = await findConfig(ctx.db, req.account!.id, id);
    if (!c) throw notFound('mcp_configs.not_found', 'MCP config');
    return c;
  }

  registerRoute(app, ctx, {
    method: 'POST',
    url: '/v1/mcp-configs',
    caller: 'user',
    perm: SECRETS,
    status: 201,
    summary: 'Create an MCP config (stdio: platform admins only; remote: feature.mcp_remote_enabled)',
    tags,
    body: T.Object({
      name: Name,
      transport: Transport,
      url: T.Optional(Nullable(Url)),
      bearer_token: T.Optional(Nullable(BearerToken)),
      command: T.Optional(Nullable(Command)),
      args: T.Optional(Nullable(Args)),
      cwd: T.Optional(Nullable(Cwd)),
      env: T.Optional(Nullable(Env)),
      inherit_parent_env: T.Optional(Nullable(T.Boolean())),
      call_timeout_ms: T.Optional(Nullable(CallTimeout)),
      is_active: T.Optional(Nullable(T.Boolean())),
    }),
    trim: ['name'],
    response: ConfigSchema,
    handler: async (req) => {
      const b = req.body;
      refuseInapplicable(b, b.transport);
      if (b.transport === 'stdio' && !b.command) throw fieldError('command', 'is required for stdio configs');
      if (isRemote(b.transport) && !b.url) throw fieldError('url', 'is required for remote configs');
      const env = b.env ?? {};
      checkEnv(env);
      await requireTransportRights(ctx, req as FastifyRequest, b.transport);
      const url = isRemote(b.transport) ? await storedUrl(ctx, b.url!) : null;
      const row = await auditedWrite(
        ctx.db,
        auditOrigin(req as FastifyRequest),
        async (trx) => {
          const created = await insertConfig(trx, {
            org_id: req.account!.id,
            name: b.name,
            transport: b.transport,
            url,
            bearer_token_enc: b.bearer_token ? encryptSecret(b.bearer_token, ctx.secrets.encryptionKey) : null,
            command: b.transport === 'stdio' ? b.command! : null,
            args: JSON.stringify(b.args ?? []),
            cwd: b.cwd ?? null,
            env_enc: sealEnv(ctx, env),
            env_keys: JSON.stringify(Object.keys(env)),
            inherit_parent_env: b.inherit_parent_env ?? false,
            call_timeout_ms: b.call_timeout_ms ?? DEFAULT_CALL_TIMEOUT_MS,
            is_active: b.is_active ?? true,
          });
          return {
            result: created,
            audit: { orgId: created.org_id, actorUserId: req.principal!.user.id, action: 'mcp_config.create', targetType: TARGET, targetId: created.id, metadata: auditView(created) },
          };
        },
        { unique: nameTaken },
      );
      return shapeConfig(row);
    },
  });

  registerRoute(app, ctx, {
    method: 'GET',
    url: '/v1/mcp-configs',
    caller: 'user',
    perm: SECRETS,
    summary: "The account's MCP configs, oldest first",
    tags,
    response: T.Array(ConfigSchema),
    handler: async (req) => (await listConfigs(ctx.db, req.account!.id)).map(shapeConfig),
  });

  registerRoute(app, ctx, {
    method: 'GET',
    url: '/v1/mcp-configs/:config_id',
    caller: 'user',
    perm: SECRETS,
    ids,
    summary: 'Get an MCP config',
    tags,
    params: T.Object({ config_id: T.String() }),
    response: ConfigSchema,
    handler: async (req) => shapeConfig(await ownConfig(req as FastifyRequest, req.params.config_id)),
  });

  registerRoute(app, ctx, {
    method: 'PATCH',
    url: '/v1/mcp-configs/:config_id',
    caller: 'user',
    perm: SECRETS,
    ids,
    summary: 'Update an MCP config (its cached tools are dropped; a running stdio server restarts on next use)',
    tags,
    params: T.Object({ config_id: T.String() }),
    body: T.Object({
      name: T.Optional(Name),
      transport: T.Optional(Transport),
      url: T.Optional(Nullable(Url)),
      bearer_token: T.Optional(Nullable(BearerToken)),
      command: T.Optional(Command),
      args: T.Optional(Args),
      cwd: T.Optional(Nullable(Cwd)),
      env: T.Optional(Env),
      inherit_parent_env: T.Optional(T.Boolean()),
      call_timeout_ms: T.Optional(CallTimeout),
      is_active: T.Optional(T.Boolean()),
    }),
    trim: ['name'],
    response: ConfigSchema,
    handler: async (req) => {
      const b = req.body as Record<string, unknown> & typeof req.body;
      const fields = ['name', 'transport', 'url', 'bearer_token', 'command', 'args', 'cwd', 'env', 'inherit_parent_env', 'call_timeout_ms', 'is_active'];
      if (!fields.some((f) => b[f] !== undefined)) throw validationError(`at least one of ${fields.join(', ')} is required`);
      const before = await ownConfig(req as FastifyRequest, req.params.config_id);
      if (b.transport !== undefined && b.transport !== before.transport) throw fieldError('transport', 'cannot be changed; create a new config');
      refuseInapplicable(b, before.transport);
      if (isRemote(before.transport) && b.url === null) throw fieldError('url', 'is required for remote configs');
      if (b.env !== undefined) checkEnv(b.env);
      await requireTransportRights(ctx, req as FastifyRequest, before.transport);
      const url = isRemote(before.transport) && typeof b.url === 'string' ? await storedUrl(ctx, b.url) : undefined;
      const set = <V>(v: V | undefined, map: (x: V) => unknown = (x) => x) => (v !== undefined ? map(v) : undefined);
      const patch = Object.fromEntries(
        Object.entries({
          name: b.name,
          url,
          bearer_token_enc: set(b.bearer_token, (t) => (t === null ? null : encryptSecret(t, ctx.secrets.encryptionKey))),
          command: b.command,
          args: set(b.args, (a) => JSON.stringify(a)),
          cwd: b.cwd,
          env_enc: set(b.env, (e) => sealEnv(ctx, e)),
          env_keys: set(b.env, (e) => JSON.stringify(Object.keys(e))),
          inherit_parent_env: b.inherit_parent_env,
          call_timeout_ms: b.call_timeout_ms,
          is_active: b.is_active,
        }).filter(([, v]) => v !== undefined),
      );
      const after = await auditedWrite(
        ctx.db,
        auditOrigin(req as FastifyRequest),
        async (trx) => {
          const updated = await updateConfig(trx, before.id, patch);
          return {
            result: updated,
            audit: {
              orgId: before.org_id,
              actorUserId: req.principal!.user.id,
              action: 'mcp_config.update',
              targetType: TARGET,
              targetId: before.id,
              metadata: { bearer_token_changed: b.bearer_token !== undefined, env_changed: b.env !== undefined },
              before: auditView(before),
              after: auditView(updated),
            },
          };
        },
        { unique: nameTaken },
      );
      await mcpConfigChanged(ctx, after.id, after);
      return shapeConfig(after);
    },
  });

  registerRoute(app, ctx, {
    method: 'DELETE',
    url: '/v1/mcp-configs/:config_id',
    caller: 'user',
    perm: SECRETS,
    ids,
    status: 204,
    summary: 'Delete an MCP config (its stdio server is stopped)',
    tags,
    params: T.Object({ config_id: T.String() }),
    handler: async (req) => {
      const c = await ownConfig(req as FastifyRequest, req.params.config_id);
      if (c.transport === 'stdio' && !isPadmin(req as FastifyRequest)) throw new AppError('policy.mcp_stdio_forbidden', 'only platform admins may delete stdio MCP configs');
      await auditedWrite(ctx.db, auditOrigin(req as FastifyRequest), async (trx) => {
        await deleteConfig(trx, c.id);
        return {
          result: null,
          audit: { orgId: c.org_id, actorUserId: req.principal!.user.id, action: 'mcp_config.delete', targetType: TARGET, targetId: c.id, metadata: { name: c.name, transport: c.transport }, before: auditView(c) },
        };
      });
      await mcpConfigChanged(ctx, c.id, null);
      return null;
    },
  });

  registerRoute(app, ctx, {
    method: 'GET',
    url: '/v1/mcp-configs/:config_id/tools',
    caller: 'user',
    perm: SECRETS,
    ids,
    summary: "The config's tools from a fresh discovery (tools/list), as offered to the model",
    tags,
    params: T.Object({ config_id: T.String() }),
    response: T.Object({ tools: T.Array(McpToolSchema) }),
    handler: async (req) => {
      const c = await ownConfig(req as FastifyRequest, req.params.config_id);
      if (isRemote(c.transport) && !(await isFeatureEnabled(ctx, c.org_id, 'feature.mcp_remote_enabled'))) {
        throw new AppError('policy.mcp_remote_disabled', 'this account may not use remote MCP servers (feature.mcp_remote_enabled is off)');
      }
      try {
        const tools = await discoverConfigTools(ctx, c);
        return { tools: tools.map((t) => ({ name: t.name, original_name: t.originalName, description: t.description, input_schema: t.inputSchema })) };
      } catch (err) {
        if (!(err instanceof McpFailure)) throw err;
        if (err.errorClass === 'policy.ssrf_blocked') throw new AppError('policy.ssrf_blocked', err.message, { field: 'url' });
        const code = err.errorClass === 'mcp.timeout' || err.errorClass === 'mcp.protocol_error' || err.errorClass === 'mcp.rpc_error' ? err.errorClass : 'mcp.disconnected';
        throw new AppError(code, `MCP discovery failed: ${err.errorClass}`, { message: err.message });
      }
    },
  });
}
