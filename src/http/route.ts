// One way to declare a route: caller kind, permission point, path ids, schemas and the
// handler. The checks run in the order api.md §1.5 fixes:
//   rate limit → credentials → account selection → IP rules → email gate → permission → validation
//   (413/422/400, non-UUID path id → 404) → handler (resource 404, rights 403, state 409).
import type { FastifyInstance, FastifyReply, FastifyRequest, RouteOptions } from 'fastify';
import type { Static, TSchema } from '@sinclair/typebox';
import { AppError, forbidden, notFound, unauthorized, validationError, type NotFoundCode } from './errors.js';
import type { AppContext } from '../app-context.js';
import { isUuid } from '../lib/ids.js';
import { resolveAccessToken, resolveApiKey, type AccountSelection } from '../modules/auth/principal.js';
import { runIdempotent } from './idempotency.js';
import { enforceIpRules } from '../modules/ip-rules/enforce.js';

export type CallerKind = 'anon' | 'user' | 'user+key' | 'padmin';

/** What a route declares about who may call it; kept in the route's Fastify `config.access`. */
export interface RouteAccess {
  caller: CallerKind;
  perm?: string | ((req: FastifyRequest) => string | null);
  ids?: Record<string, string>;
  accountFrom?: 'current' | 'path';
  queryToken?: boolean;
  /** The route declares a body schema. */
  hasBody: boolean;
}

/** One registered route (one method of it), as the OpenAPI document sees it. */
export interface RouteEntry {
  method: string;
  /** The Fastify path pattern, e.g. `/v1/threads/:thread_id`. */
  url: string;
  /** Left out of the OpenAPI document (aliases, /docs assets). */
  hidden: boolean;
  /** The declared caller rule; null for routes added without registerRoute (/healthz, /docs, ...). */
  access: RouteAccess | null;
  schema: Record<string, unknown> | undefined;
}

declare module 'fastify' {
  interface FastifyContextConfig {
    access?: RouteAccess;
  }
}

const routeTables = new WeakMap<FastifyInstance, RouteEntry[]>();

/**
 * Records every route added to `app` from now on (through the same `onRoute` hook that
 * @fastify/swagger builds the OpenAPI document from). Call before any route is added.
 */
export function collectRoutes(app: FastifyInstance): void {
  const table: RouteEntry[] = [];
  routeTables.set(app, table);
  app.addHook('onRoute', (opts) => {
    const schema = opts.schema as Record<string, unknown> | undefined;
    for (const method of [opts.method].flat()) {
      table.push({ method, url: opts.url, hidden: schema?.hide === true, access: opts.config?.access ?? null, schema });
    }
  });
}

/** Every route of an app built by buildApp, with its caller rule, permission and path ids. */
export function routeTable(app: FastifyInstance): readonly RouteEntry[] {
  const table = routeTables.get(app);
  if (!table) throw new Error('routeTable: the app was not built with collectRoutes');
  return table;
}

type StaticOr<T, D> = T extends TSchema ? Static<T> : D;

export type Req<B, Q, P> = Omit<FastifyRequest, 'body' | 'query' | 'params'> & {
  body: StaticOr<B, Record<string, never>>;
  query: StaticOr<Q, Record<string, never>>;
  params: StaticOr<P, Record<string, string>>;
};

export interface RouteSpec<B, Q, P> {
  method: 'GET' | 'POST' | 'PATCH' | 'PUT' | 'DELETE';
  url: string;
  caller: CallerKind;
  /** Permission point required in the current account (checked before validation). */
  perm?: string | ((req: FastifyRequest) => string | null);
  /** `path`: act in the account named by the `{account_id}` path parameter. */
  accountFrom?: 'current' | 'path';
  /** Path parameters that must be UUIDs, with the 404 code answered otherwise. */
  ids?: Record<string, NotFoundCode>;
  /** Body string fields trimmed before validation (names, titles). */
  trim?: string[];
  /** Query fields whose NUL characters the handler refuses with its own error code (see unstorableText). */
  nulCheckedByHandler?: string[];
  /** Exempt from the email verification gate (§1.2). */
  emailGateExempt?: boolean;
  /** Accepts `Idempotency-Key` (§1.8a). */
  idempotent?: boolean;
  /** Extra hook before credentials, e.g. per-IP rate limits. */
  before?: (req: FastifyRequest) => Promise<void>;
  /** Also serve the SSE `?access_token=` credential. */
  queryToken?: boolean;
  status?: number;
  summary: string;
  tags: string[];
  description?: string;
  body?: B;
  query?: Q;
  params?: P;
  response?: TSchema;
  /** Hide from OpenAPI (aliases). */
  hide?: boolean;
  handler: (req: Req<B, Q, P>, reply: FastifyReply) => Promise<unknown>;
}

function bearer(req: FastifyRequest, allowQuery: boolean): string | null {
  const h = req.headers.authorization;
  if (typeof h === 'string') {
    const m = /^Bearer\s+(\S+)\s*$/i.exec(h);
    return m ? m[1] : '';
  }
  if (allowQuery) {
    const q = (req.query as Record<string, unknown> | undefined)?.access_token;
    if (typeof q === 'string' && q) return q;
  }
  return null;
}

async function authenticate(ctx: AppContext, req: FastifyRequest, spec: RouteSpec<unknown, unknown, unknown>): Promise<void> {
  const token = bearer(req, spec.queryToken === true);
  if (spec.caller === 'anon') return;
  if (!token) throw unauthorized(token === '' ? 'malformed Authorization header' : 'authentication required');

  // Account selection: a path {account_id}, else X-Account-Id, else the personal account.
  let sel: AccountSelection = { kind: 'personal' };
  let selectionSource: 'path' | 'header' | null = null;
  if (spec.accountFrom === 'path') {
    const id = (req.params as Record<string, string>).account_id;
    if (!isUuid(id)) {
      // Credentials still come first; remember the failure for after the credential check.
      sel = { kind: 'id', id: '00000000-0000-0000-0000-000000000000' };
    } else sel = { kind: 'id', id: id.toLowerCase() };
    selectionSource = 'path';
  } else {
    const header = req.headers['x-account-id'];
    if (header !== undefined) {
      selectionSource = 'header';
      if (typeof header !== 'string' || !isUuid(header.trim())) {
        // 400 comes after the credential check: verify the credential with the personal account.
        sel = { kind: 'personal' };
      } else sel = { kind: 'id', id: header.trim().toLowerCase() };
    }
  }

  const isKey = token.startsWith('al_');
  const resolved = isKey ? await resolveApiKey(ctx, token) : await resolveAccessToken(ctx, token, sel);
  if (!resolved) throw unauthorized('invalid or expired credentials');
  req.principal = resolved.principal;

  const header = req.headers['x-account-id'];
  if (selectionSource === 'header' && (typeof header !== 'string' || !isUuid(header.trim()))) {
    throw validationError([{ field: 'X-Account-Id', reason: 'must be a UUID' }]);
  }
  if (isKey) {
    // API keys always act in their own account; naming any other one is a 403.
    if (sel.kind === 'id' && sel.id !== resolved.keyAccountId) throw forbidden('API key is bound to another account');
  } else if (!resolved.account) {
    throw notFound('accounts.not_found', 'account');
  }
  req.account = resolved.account;
  // The account's IP rules (§23): every user / user+key request acting in it; padmin-only routes act platform-wide.
  if (spec.caller !== 'padmin') await enforceIpRules(ctx, req);

  if (!spec.emailGateExempt && !resolved.principal.user.emailVerified) {
    if (await ctx.settings.bool('email.verification_required')) {
      throw new AppError('auth.email_not_verified', 'email address not verified');
    }
  }
  if (isKey && spec.caller !== 'user+key') throw forbidden('API keys are not accepted on this endpoint');
  if (spec.caller === 'padmin' && !resolved.principal.user.isPlatformAdmin) throw forbidden('platform admin only');
  const perm = typeof spec.perm === 'function' ? spec.perm(req) : spec.perm;
  if (perm && !req.account!.points.has(perm)) throw forbidden(`missing permission ${perm}`);
}

/**
 * The first string (or key) that PostgreSQL cannot store as text or jsonb — one holding a NUL
 * character or an unpaired UTF-16 surrogate — with its path and what is wrong. Refused as bad
 * input before it reaches the database. Iterative: a deeply nested body is just walked.
 */
const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;

function unstorableText(root: unknown, rootPath: string): { field: string; reason: string } | null {
  const check = (s: string): string | null =>
    s.includes('\0') ? 'must not contain NUL characters' : LONE_SURROGATE.test(s) ? 'must be valid Unicode text (unpaired surrogate)' : null;
  const stack: Array<[unknown, string]> = [[root, rootPath]];
  while (stack.length) {
    const [value, path] = stack.pop()!;
    if (typeof value === 'string') {
      const reason = check(value);
      if (reason) return { field: path || 'body', reason };
    } else if (Array.isArray(value)) {
      for (let i = value.length - 1; i >= 0; i--) stack.push([value[i], `${path}[${i}]`]);
    } else if (value && typeof value === 'object') {
      const entries = Object.entries(value);
      for (let i = entries.length - 1; i >= 0; i--) {
        const [k, v] = entries[i];
        const at = path ? `${path}.${k}` : k;
        const reason = check(k);
        if (reason) return { field: at, reason };
        stack.push([v, at]);
      }
    }
  }
  return null;
}

function trimFields(body: unknown, fields: string[]): void {
  if (!body || typeof body !== 'object') return;
  const b = body as Record<string, unknown>;
  for (const f of fields) if (typeof b[f] === 'string') b[f] = (b[f] as string).trim();
}

export function registerRoute<B extends TSchema | undefined, Q extends TSchema | undefined, P extends TSchema | undefined>(
  app: FastifyInstance,
  ctx: AppContext,
  spec: RouteSpec<B, Q, P>,
): void {
  const s = spec as RouteSpec<unknown, unknown, unknown>;
  const methods = spec.method === 'PATCH' ? ['PATCH', 'PUT'] : [spec.method];
  for (const method of methods) {
    const opts: RouteOptions = {
      method,
      url: spec.url,
      schema: {
        summary: spec.summary,
        description: spec.description,
        tags: spec.tags,
        hide: spec.hide || method === 'PUT' && spec.method === 'PATCH',
        ...(spec.body ? { body: spec.body } : {}),
        ...(spec.query ? { querystring: spec.query } : {}),
        ...(spec.params ? { params: spec.params } : {}),
        ...(spec.response ? { response: { [spec.status ?? 200]: spec.response } } : {}),
        ...(spec.caller !== 'anon' ? { security: [{ bearerAuth: [] }] } : {}),
      } as RouteOptions['schema'],
      config: {
        hasBody: !!spec.body,
        access: { caller: spec.caller, perm: spec.perm, ids: spec.ids, accountFrom: spec.accountFrom, queryToken: spec.queryToken, hasBody: !!spec.body },
      },
      onRequest: async (req) => {
        if (s.before) await s.before(req);
        await authenticate(ctx, req, s);
      },
      preValidation: async (req) => {
        if (spec.ids) {
          const params = req.params as Record<string, string>;
          for (const [name, code] of Object.entries(spec.ids)) {
            if (!isUuid(params[name])) throw notFound(code);
            params[name] = params[name].toLowerCase();
          }
        }
        let query = req.query as Record<string, unknown> | undefined;
        if (spec.nulCheckedByHandler && query) query = Object.fromEntries(Object.entries(query).filter(([k]) => !spec.nulCheckedByHandler!.includes(k)));
        const bad = unstorableText(req.params, '') ?? unstorableText(query, '') ?? unstorableText(req.body, '');
        if (bad) throw validationError([bad]);
        if (spec.body && (req.body === undefined || req.body === null)) req.body = {};
        if (spec.trim) trimFields(req.body, spec.trim);
      },
      handler: async (req, reply) => {
        const run = async () => {
          const result = await s.handler(req as never, reply);
          return { status: reply.statusCode !== 200 ? reply.statusCode : spec.status ?? 200, body: result };
        };
        const out = spec.idempotent ? await runIdempotent(ctx, req, reply, run) : await run();
        reply.code(out.status);
        if (out.status === 204) return reply.send();
        return out.body;
      },
    };
    app.route(opts);
  }
}
