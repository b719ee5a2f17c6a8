// Builds the Fastify application (never listens: tests use inject, the CLI listens).
import Fastify, { LogController, type FastifyBaseLogger, type FastifyError, type FastifyInstance, type FastifyReply, type FastifyRequest, type FastifySchemaCompiler } from 'fastify';
import cookie from '@fastify/cookie';
import cors from '@fastify/cors';
import swagger from '@fastify/swagger';
import swaggerUi from '@fastify/swagger-ui';
import SerializerSelector from '@fastify/fast-json-stringify-compiler';
import { Ajv, type ErrorObject, type ValidateFunction } from 'ajv';
import addFormats from 'ajv-formats';
import { AppError, errorBody, serviceUnavailable, validationError } from './errors.js';
import { isConnectionError } from '../db/connection-errors.js';
import type { AppContext } from '../app-context.js';
import { routeModules } from './routes.js';
import { installMetrics } from './metrics.js';
import { collectRoutes } from './route.js';
import { identityHeaders } from './identity-headers.js';
import { localForwardOf } from './local-forward.js';
import { clientErrorHandler, newTraceId, refuseUnsupportedExpect } from './protocol-errors.js';
import { MAX_BODY_BYTES } from './limits.js';
import { registerConsole, type Console } from './console.js';

const TRACE_RE = /^[A-Za-z0-9-]{8,64}$/;

function makeAjv(coerce: boolean): Ajv {
  const ajv = new Ajv({
    coerceTypes: coerce ? 'array' : false,
    useDefaults: true,
    removeAdditional: false,
    allErrors: false,
    strict: false,
  });
  (addFormats as unknown as (a: Ajv) => void)(ajv);
  return ajv;
}

/**
 * Compiles a route's schema on its first request rather than at start: compiling all of them
 * is a sixth of the server's start-up time (their response serializers another twentieth). Fastify reads `errors` off the function it got.
 */
function lazyValidator(ajv: Ajv, schema: object): ReturnType<FastifySchemaCompiler<unknown>> {
  let compiled: ValidateFunction | null = null;
  const validate = (data: unknown): boolean => {
    compiled ??= ajv.compile(schema);
    const ok = compiled(data);
    validate.errors = compiled.errors ?? null;
    return ok;
  };
  validate.errors = null as ErrorObject[] | null;
  return validate;
}

function fieldOf(e: ErrorObject, part: string): string {
  let path = e.instancePath.replace(/^\//, '').replace(/\//g, '.');
  if (e.keyword === 'required') path = path ? `${path}.${e.params.missingProperty}` : String(e.params.missingProperty);
  if (e.keyword === 'additionalProperties') path = path ? `${path}.${e.params.additionalProperty}` : String(e.params.additionalProperty);
  return path || part;
}

function reasonOf(e: ErrorObject): string {
  switch (e.keyword) {
    case 'required':
      return 'is required';
    case 'type':
      return `must be ${e.params.type === 'null' ? 'null' : `of type ${e.params.type}`}`;
    case 'enum':
      return `must be one of ${(e.params.allowedValues as unknown[]).map((v) => JSON.stringify(v)).join(', ')}`;
    case 'const':
      return `must be ${JSON.stringify(e.params.allowedValue)}`;
    case 'anyOf':
      return 'has an invalid type or value';
    default:
      return e.message ?? 'is invalid';
  }
}

function sanitizeUrl(url: string): string {
  return url.replace(/([?&]access_token=)[^&]*/g, '$1[redacted]');
}

/** X-Forwarded-For is honoured only when the API sits behind the gateway (§29); the gateway of this process tells it directly. */
function clientIpOf(req: FastifyRequest, trustForwarded: boolean): string {
  const local = localForwardOf(req.raw);
  if (local) return local.clientIp;
  if (trustForwarded) {
    const xff = req.headers['x-forwarded-for'];
    const first = (Array.isArray(xff) ? xff[0] : xff)?.split(',')[0]?.trim();
    if (first) return first;
  }
  return req.socket.remoteAddress ?? '';
}

export async function buildApp(ctx: AppContext): Promise<FastifyInstance> {
  const { config } = ctx;
  const app = Fastify({
    loggerInstance: ctx.log as unknown as FastifyBaseLogger,
    logController: new LogController({ disableRequestLogging: true, requestIdLogLabel: 'trace_id' }),
    bodyLimit: MAX_BODY_BYTES,
    genReqId: (req) => {
      const local = localForwardOf(req);
      if (local) return local.traceId;
      if (config.trustIncomingTraceId) {
        const incoming = req.headers['x-trace-id'];
        if (typeof incoming === 'string' && TRACE_RE.test(incoming)) return incoming;
      }
      return newTraceId();
    },
    rewriteUrl: (req) => {
      const url = req.url ?? '/';
      if (url.startsWith('/v1/orgs')) return '/v1/accounts' + url.slice('/v1/orgs'.length);
      if (url.startsWith('/v1/org-invitations')) return '/v1/account-invitations' + url.slice('/v1/org-invitations'.length);
      if (req.method === 'GET' && /^\/v1\/auth\/me(?:\?|$)/.test(url)) return '/v1/me' + url.slice('/v1/auth/me'.length);
      return url;
    },
    // Long path values reach the routes, whose ids answer their own 404s (§1.5).
    routerOptions: { ignoreTrailingSlash: true, maxParamLength: 2048 },
    forceCloseConnections: true,
    return503OnClosing: false, // answered with the envelope instead (hook below)
    clientErrorHandler,
    // Node would answer a Host-less HTTP/1.1 request with its own bare 400; the onRequest hook
    // below refuses it with the envelope instead.
    http: { requireHostHeader: false },
    // Errors the router raises before any route: still the contract's envelope.
    frameworkErrors: (err, req, reply) => {
      const [status, code, message] = err.code === 'FST_ERR_MAX_PARAM_LENGTH' ? ([404, 'not_found', 'not found'] as const) : ([400, 'validation.error', 'malformed URL'] as const);
      void (reply as unknown as FastifyReply).code(status).header('x-trace-id', req.id).send(errorBody(code, message, {}, req.id));
    },
  });

  // Every route, with its caller rule: routeTable(app) (the security tests walk it).
  collectRoutes(app);

  const bodyAjv = makeAjv(false);
  const queryAjv = makeAjv(true);
  app.setValidatorCompiler(({ schema, httpPart }) => lazyValidator(httpPart === 'body' ? bodyAjv : queryAjv, schema as object));
  // Responses, like request schemas, compile on first use (Fastify's own compiler, deferred).
  const buildSerializer = SerializerSelector()();
  app.setSerializerCompiler((route) => {
    let serialize: ((doc: unknown) => string) | null = null;
    return (doc: unknown) => (serialize ??= buildSerializer(route as Parameters<typeof buildSerializer>[0]))(doc);
  });
  app.setSchemaErrorFormatter((errors, dataVar) => {
    const part = dataVar === 'querystring' ? 'query' : dataVar;
    const fields = errors.map((e) => ({ field: fieldOf(e as ErrorObject, part), reason: reasonOf(e as ErrorObject) }));
    return validationError(fields) as unknown as Error;
  });

  app.decorateRequest('principal', null);
  app.decorateRequest('account', null);
  app.decorateRequest('clientIp', '');

  // Bodies: JSON objects only. An empty body counts as {}; routes without a body ignore
  // whatever is sent (§1.1).
  app.removeAllContentTypeParsers();
  app.addContentTypeParser('*', { parseAs: 'string' }, (req, raw, done) => {
    const text = raw as string;
    const hasBody = (req.routeOptions.config as { hasBody?: boolean } | undefined)?.hasBody;
    if (!hasBody) return done(null, undefined);
    if (text.trim() === '') return done(null, {});
    const type = String(req.headers['content-type'] ?? '').split(';')[0].trim().toLowerCase();
    if (type !== 'application/json' && !type.endsWith('+json')) {
      return done(validationError('unsupported Content-Type: send application/json', 422) as unknown as Error, undefined);
    }
    let parsed: unknown;
    try {
      parsed = JSON.parse(text);
    } catch {
      return done(validationError('request body is not valid JSON', 422) as unknown as Error, undefined);
    }
    if (parsed === null || typeof parsed !== 'object' || Array.isArray(parsed)) {
      return done(validationError('request body must be a JSON object', 422) as unknown as Error, undefined);
    }
    done(null, parsed);
  });

  // The per-request hooks below that do not wait for anything are callback-style, not async:
  // every request runs them, and an async hook costs a promise and a microtask turn each.
  // Shutting down: a request that still arrives gets the envelope, not Fastify's own 503 body.
  let closing = false;
  app.addHook('preClose', async () => {
    closing = true;
  });
  app.addHook('onRequest', (req, reply, done) => {
    reply.header('x-trace-id', req.id);
    req.clientIp = clientIpOf(req, config.trustXForwardedFor);
    // RFC 9112 §3.2: an HTTP/1.1 request without Host is a 400.
    if (req.raw.httpVersion === '1.1' && req.headers.host === undefined) return done(validationError('the Host header is required'));
    if (closing) return done(new AppError('service_unavailable', 'the server is shutting down; retry shortly', {}, { headers: { 'retry-after': '1', connection: 'close' } }));
    done();
  });

  app.addHook('onSend', (req, reply, payload, done) => {
    reply.headers(identityHeaders(req));
    done(null, payload);
  });

  refuseUnsupportedExpect(app.server);

  const debugLogging = ctx.log.isLevelEnabled('debug');
  app.addHook('onResponse', (req, reply, done) => {
    if (reply.statusCode < 500 && !debugLogging) return done();
    const line = {
      method: req.method,
      url: sanitizeUrl(req.url),
      status: reply.statusCode,
      duration_ms: Math.round(reply.elapsedTime * 100) / 100,
    };
    if (reply.statusCode === 503) req.log.warn(line, 'request failed: database unavailable');
    else if (reply.statusCode >= 500) req.log.error(line, 'request failed');
    else req.log.debug(line, 'request');
    done();
  });

  app.setErrorHandler((err: FastifyError | AppError, req, reply) => {
    let appErr: AppError;
    if (err instanceof AppError) appErr = err;
    else if ((err as FastifyError).code === 'FST_ERR_CTP_BODY_TOO_LARGE') {
      appErr = validationError('request body too large', 413, { max_bytes: MAX_BODY_BYTES });
    } else if ((err as FastifyError).validation) {
      appErr = validationError(String(err.message));
    } else if (
      ['FST_ERR_CTP_INVALID_MEDIA_TYPE', 'FST_ERR_CTP_EMPTY_JSON_BODY', 'FST_ERR_CTP_INVALID_JSON_BODY', 'FST_ERR_CTP_INVALID_CONTENT_LENGTH'].includes(
        (err as FastifyError).code,
      )
    ) {
      appErr = validationError('request body could not be parsed', 422);
    } else if (typeof (err as FastifyError).statusCode === 'number' && (err as FastifyError).statusCode! < 500) {
      const status = (err as FastifyError).statusCode!;
      appErr = status === 404 ? new AppError('not_found', 'not found') : validationError(err.message || 'bad request', status === 413 ? 413 : 400);
    } else if (isConnectionError(err)) {
      appErr = serviceUnavailable(); // logged once by onResponse, at warn
      req.log.debug({ err: err.message }, 'database unavailable');
    } else {
      req.log.error({ err }, 'unhandled error');
      appErr = new AppError('internal_error', 'internal server error');
    }
    for (const [k, v] of Object.entries(appErr.headers)) reply.header(k, v);
    reply.code(appErr.status).send(errorBody(appErr.code, appErr.message, appErr.details, req.id));
  });

  let webConsole: Console | null = null;
  app.setNotFoundHandler((req, reply) => {
    if (webConsole?.fallback(req, reply)) return;
    reply.code(404).send(errorBody('not_found', `no route for ${req.method} ${req.url.split('?')[0]}`, {}, req.id));
  });

  await app.register(cookie);
  if (config.corsOrigins.length) {
    await app.register(cors, {
      origin: config.corsOrigins.includes('*') ? true : config.corsOrigins,
      credentials: true,
      exposedHeaders: ['X-Trace-Id', 'Retry-After', 'Idempotent-Replayed'],
    });
  }

  await app.register(swagger, {
    openapi: {
      openapi: '3.1.0',
      info: { title: 'Arkloop API', version: '1.0.0', description: 'The HTTP API of the Arkloop agent platform.' },
      servers: [{ url: `http://${config.apiHost}:${config.apiPort}` }],
      components: {
        securitySchemes: {
          bearerAuth: { type: 'http', scheme: 'bearer', description: 'Access token (JWT) or API key (al_...)' },
        },
      },
    },
  });
  await app.register(swaggerUi, { routePrefix: '/docs', staticCSP: true, uiConfig: { url: '/openapi.json' } as never });
  app.get('/openapi.json', { schema: { hide: true } }, async () => app.swagger());

  installMetrics(app, ctx);
  for (const register of routeModules) register(app, ctx);
  webConsole = await registerConsole(app);
  return app;
}
