// ASR credentials (api.md §15.1–15.5): org scope (the current account's, `data.secrets`) and
// platform scope (platform admins; listed read-only to the accounts). Plus the transcription
// endpoint (§15.6), registered by transcribe.ts in a scope of its own.
import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { AppContext } from '../../app-context.js';
import { AppError, conflict, fieldError, forbidden, notFound, validationError } from '../../http/errors.js';
import { registerRoute } from '../../http/route.js';
import { DateTime, Nullable, OptNull, T, Uuid } from '../../http/schemas.js';
import { encryptSecret } from '../../lib/crypto.js';
import { storedHttpUrl } from '../../http/stored-url.js';
import { auditedWrite } from '../audit/audited-write.js';
import { auditOrigin } from '../audit/store.js';
import {
  KEY_PREFIX_LENGTH,
  auditView,
  clearDefault,
  deleteCredential,
  findCredential,
  insertCredential,
  listCredentials,
  lockScope,
  scopeHasCredentials,
  shapeCredential,
  updateCredential,
  type AsrCredentialRow,
  type AsrScope,
} from './store.js';
import { transcribeRoutes } from './transcribe.js';

const Scope = T.Union([T.Literal('org'), T.Literal('platform')]);
const Provider = T.Union([T.Literal('groq'), T.Literal('openai')]);
const Name = T.String({ minLength: 1, maxLength: 100 });
// Sent upstream in a multipart field and an Authorization header: no control characters, and
// the key in visible ASCII (a header value can hold nothing else).
const Model = T.String({ minLength: 1, maxLength: 100, pattern: '^[^\\u0000-\\u001f\\u007f]*$' });
const ApiKey = T.String({ minLength: 1, maxLength: 1000, pattern: '^[\\x21-\\x7e]+$' });
const BaseUrl = T.String({ minLength: 1, maxLength: 2048 });

const CredentialSchema = T.Object({
  id: Uuid(),
  org_id: Nullable(Uuid()),
  scope: Scope,
  provider: Provider,
  name: T.String(),
  key_prefix: T.String(),
  base_url: Nullable(T.String()),
  model: T.String(),
  is_default: T.Boolean(),
  created_at: DateTime(),
  updated_at: DateTime(),
});

const SECRETS = 'data.secrets';
const ids = { id: 'asr_credentials.not_found' } as const;
const TARGET = 'asr_credential';
// The partial unique indexes of the default flag; the scope lock makes this a lost race only in theory.
const defaultRace = () => conflict('conflict', 'the default credential changed concurrently; retry');

const isPadmin = (req: FastifyRequest) => req.principal?.user.isPlatformAdmin === true;

/** `base_url` as stored: an http(s) URL without trailing `/`; org scope passes the storage-time SSRF check (§27.6). */
async function storedBaseUrl(ctx: AppContext, raw: string | null | undefined, scope: AsrScope): Promise<string | null | undefined> {
  if (raw === undefined || raw === null) return raw;
  return storedHttpUrl(ctx, raw, { field: 'base_url', ssrfCheck: scope === 'org', trimSlash: true });
}

export function asrRoutes(app: FastifyInstance, ctx: AppContext): void {
  const tags = ['asr'];

  /** The credential of the path as the account sees it: its own or a platform one (else 404). */
  async function visibleCredential(req: FastifyRequest, id: string): Promise<AsrCredentialRow> {
    const c = await findCredential(ctx.db, req.account!.id, id);
    if (!c) throw notFound('asr_credentials.not_found', 'ASR credential');
    return c;
  }

  /** As visibleCredential, for a write: platform credentials are read-only to non-admins (403). */
  async function writableCredential(req: FastifyRequest, id: string): Promise<AsrCredentialRow> {
    const c = await visibleCredential(req, id);
    if (c.scope === 'platform' && !isPadmin(req)) throw forbidden('platform credentials are managed by platform admins');
    return c;
  }

  const actor = (req: FastifyRequest) => req.principal!.user.id;

  registerRoute(app, ctx, {
    method: 'POST',
    url: '/v1/asr-credentials',
    caller: 'user',
    perm: SECRETS,
    status: 201,
    summary: 'Create an ASR credential (the API key is stored encrypted; only its prefix is returned)',
    tags,
    body: T.Object({
      scope: T.Optional(Scope),
      name: Name,
      provider: Provider,
      api_key: ApiKey,
      base_url: OptNull(BaseUrl),
      model: Model,
      is_default: OptNull(T.Boolean()),
    }),
    trim: ['name', 'model'],
    response: CredentialSchema,
    handler: async (req) => {
      const b = req.body;
      const scope: AsrScope = b.scope ?? 'org';
      if (scope === 'platform' && !isPadmin(req)) throw forbidden('platform admin only');
      const orgId = scope === 'org' ? req.account!.id : null;
      const baseUrl = await storedBaseUrl(ctx, b.base_url, scope);
      const row = await auditedWrite(
        ctx.db,
        auditOrigin(req as FastifyRequest),
        async (trx) => {
          await lockScope(trx, orgId);
          // The first credential of a scope becomes its default whatever is_default says (decided).
          const isDefault = b.is_default === true || !(await scopeHasCredentials(trx, orgId));
          const cleared = isDefault ? await clearDefault(trx, orgId, null) : [];
          const created = await insertCredential(trx, {
            org_id: orgId,
            scope,
            provider: b.provider,
            name: b.name,
            api_key_enc: encryptSecret(b.api_key, ctx.secrets.encryptionKey),
            key_prefix: b.api_key.slice(0, KEY_PREFIX_LENGTH),
            base_url: baseUrl ?? null,
            model: b.model,
            is_default: isDefault,
          });
          return {
            result: created,
            audit: { orgId, actorUserId: actor(req as FastifyRequest), action: 'asr_credential.create', targetType: TARGET, targetId: created.id, metadata: { ...auditView(created), cleared_default: cleared }, after: auditView(created) },
          };
        },
        { unique: defaultRace },
      );
      return shapeCredential(row);
    },
  });

  registerRoute(app, ctx, {
    method: 'GET',
    url: '/v1/asr-credentials',
    caller: 'user',
    perm: SECRETS,
    summary: "List the account's ASR credentials, then the platform's (read-only for non-admins)",
    tags,
    response: T.Array(CredentialSchema),
    handler: async (req) => {
      const rows = [...(await listCredentials(ctx.db, req.account!.id)), ...(await listCredentials(ctx.db, null))];
      return rows.map(shapeCredential);
    },
  });

  registerRoute(app, ctx, {
    method: 'GET',
    url: '/v1/asr-credentials/:id',
    caller: 'user',
    perm: SECRETS,
    ids,
    summary: 'Get an ASR credential',
    tags,
    params: T.Object({ id: T.String() }),
    response: CredentialSchema,
    handler: async (req) => shapeCredential(await visibleCredential(req as FastifyRequest, req.params.id)),
  });

  registerRoute(app, ctx, {
    method: 'PATCH',
    url: '/v1/asr-credentials/:id',
    caller: 'user',
    perm: SECRETS,
    ids,
    summary: 'Update an ASR credential (api_key replaces the stored key; base_url null clears it)',
    tags,
    params: T.Object({ id: T.String() }),
    body: T.Object({
      name: T.Optional(Name),
      api_key: T.Optional(ApiKey),
      base_url: OptNull(BaseUrl),
      model: T.Optional(Model),
    }),
    trim: ['name', 'model'],
    response: CredentialSchema,
    handler: async (req) => {
      const b = req.body;
      if (b.name === undefined && b.api_key === undefined && b.base_url === undefined && b.model === undefined) {
        throw validationError('at least one of name, api_key, base_url, model is required');
      }
      const before = await writableCredential(req as FastifyRequest, req.params.id);
      const baseUrl = await storedBaseUrl(ctx, b.base_url, before.scope);
      const patch = {
        ...(b.name !== undefined ? { name: b.name } : {}),
        ...(b.model !== undefined ? { model: b.model } : {}),
        ...(b.api_key !== undefined ? { api_key_enc: encryptSecret(b.api_key, ctx.secrets.encryptionKey), key_prefix: b.api_key.slice(0, KEY_PREFIX_LENGTH) } : {}),
        ...(baseUrl !== undefined ? { base_url: baseUrl } : {}),
      };
      const row = await auditedWrite(ctx.db, auditOrigin(req as FastifyRequest), async (trx) => {
        const after = await updateCredential(trx, before.id, patch);
        return {
          result: after,
          audit: {
            orgId: before.org_id,
            actorUserId: actor(req as FastifyRequest),
            action: 'asr_credential.update',
            targetType: TARGET,
            targetId: before.id,
            metadata: { key_replaced: b.api_key !== undefined },
            before: auditView(before),
            after: auditView(after),
          },
        };
      });
      return shapeCredential(row);
    },
  });

  registerRoute(app, ctx, {
    method: 'DELETE',
    url: '/v1/asr-credentials/:id',
    caller: 'user',
    perm: SECRETS,
    ids,
    status: 204,
    summary: 'Delete an ASR credential (no other credential becomes the default)',
    tags,
    params: T.Object({ id: T.String() }),
    handler: async (req) => {
      const c = await writableCredential(req as FastifyRequest, req.params.id);
      await auditedWrite(ctx.db, auditOrigin(req as FastifyRequest), async (trx) => {
        await deleteCredential(trx, c.id);
        return {
          result: null,
          audit: { orgId: c.org_id, actorUserId: actor(req as FastifyRequest), action: 'asr_credential.delete', targetType: TARGET, targetId: c.id, metadata: { scope: c.scope, name: c.name }, before: auditView(c) },
        };
      });
      return null;
    },
  });

  registerRoute(app, ctx, {
    method: 'POST',
    url: '/v1/asr-credentials/:id/set-default',
    caller: 'user',
    perm: SECRETS,
    ids,
    summary: 'Make an ASR credential the default of its scope (the previous default loses the flag)',
    tags,
    params: T.Object({ id: T.String() }),
    response: CredentialSchema,
    handler: async (req) => {
      const c = await writableCredential(req as FastifyRequest, req.params.id);
      const row = await auditedWrite(
        ctx.db,
        auditOrigin(req as FastifyRequest),
        async (trx) => {
          await lockScope(trx, c.org_id);
          const current = await findCredential(trx, c.org_id ?? req.account!.id, c.id);
          if (!current) throw notFound('asr_credentials.not_found', 'ASR credential'); // deleted meanwhile
          if (current.is_default) return { result: current, audit: null };
          const cleared = await clearDefault(trx, c.org_id, c.id);
          const after = await updateCredential(trx, c.id, { is_default: true });
          return {
            result: after,
            audit: {
              orgId: c.org_id,
              actorUserId: actor(req as FastifyRequest),
              action: 'asr_credential.set_default',
              targetType: TARGET,
              targetId: c.id,
              metadata: { scope: c.scope, previous_default: cleared[0] ?? null },
              before: auditView(current),
              after: auditView(after),
            },
          };
        },
        { unique: defaultRace },
      );
      return shapeCredential(row);
    },
  });

  transcribeRoutes(app, ctx);
}
