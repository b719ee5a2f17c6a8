// The gateway (api.md §30): a streaming reverse proxy in front of one or more API processes.
// Per request, in the contract's order: trace id → client IP → risk score → rate limit →
// proxy (@fastify/reply-from on undici) → access log. It answers /healthz and /metrics itself
// (they describe this process; decided) and forwards everything else, /readyz included.
import Fastify, { LogController, type FastifyBaseLogger, type FastifyInstance, type FastifyReply, type FastifyRequest } from 'fastify';
import replyFrom from '@fastify/reply-from';
import type { Logger } from 'pino';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { Readable } from 'node:stream';
import { Counter, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import { errorBody, type ErrorCode } from '../http/errors.js';
import { markLocalForward, type LocalForward } from '../http/local-forward.js';
import { clientErrorHandler, newTraceId, refuseUnsupportedExpect } from '../http/protocol-errors.js';
import { forwardedBodyLimit } from '../http/limits.js';
import { CidrSet } from '../modules/ip-rules/cidr.js';
import type { AccessLogStore } from './access-log.js';
import type { BucketStore, TakeResult } from './buckets.js';
import { resolveClientIp } from './client-ip.js';
import { IdentityResolver } from './identity.js';
import { RiskTracker, uaType, type UaType } from './risk.js';
import { readGatewayConfig, type GatewayConfig, type SettingReader } from './settings.js';
import { Upstreams, type UpstreamOptions } from './upstreams.js';

export interface GatewayOptions {
  log: Logger;
  upstreams: readonly string[];
  jwtKey: Uint8Array;
  /** ARKLOOP_GATEWAY_TRUST_INCOMING_TRACE_ID. */
  trustIncomingTraceId: boolean;
  readSetting: SettingReader;
  /** Runs before each re-read of the settings (a separate process re-reads the database). */
  beforeConfigRead?: () => Promise<void>;
  /** How often the gateway.* settings are re-read (10 s by the contract). */
  configRefreshMs: number;
  buckets: BucketStore;
  accessLog: AccessLogStore;
  upstream?: Partial<UpstreamOptions>;
  /**
   * The API of this same process (`arkloop serve` with ARKLOOP_SERVE_GATEWAY=1): requests are
   * handed to its router instead of crossing a socket to it (see handOver).
   */
  local?: (req: IncomingMessage, res: ServerResponse) => void;
}

export interface Gateway {
  app: FastifyInstance;
  upstreams: Upstreams;
  /** The configuration in force. */
  config(): GatewayConfig;
  /** Re-read the gateway.* settings now. */
  reloadConfig(): Promise<void>;
  close(): Promise<void>;
}

/** Per-request state, set by the first hook. */
interface GatewayState {
  traceId: string;
  clientIp: string;
  country: string | null;
  userAgent: string;
  uaType: UaType;
  risk: number;
  identityType: 'anonymous' | 'user' | 'api_key';
  limit: TakeResult | null;
  upstream: string | null;
  /** Identity the API reported in its X-Arkloop-* response headers. */
  orgId: string | null;
  userId: string | null;
  username: string | null;
  reportedIdentity: 'anonymous' | 'user' | 'api_key' | null;
  /** Set when the request went to the API of this process (handOver). */
  local: LocalForward | null;
  /** What the API accepts as a body on this path (null: the route checks by itself). */
  bodyLimit: number | null;
  /** The body outgrew bodyLimit while being forwarded. */
  bodyTooLarge: boolean;
  /** performance.now() when the request arrived. */
  started: number;
  res: ServerResponse;
}

declare module 'fastify' {
  interface FastifyRequest {
    gw: GatewayState;
  }
}

const TRACE_RE = /^[A-Za-z0-9-]{8,64}$/;
const RATE_EXEMPT = /^\/(healthz|readyz|metrics)(?:[/?]|$)/;
const HOP_BY_HOP = ['connection', 'keep-alive', 'proxy-authenticate', 'proxy-authorization', 'te', 'trailer', 'transfer-encoding', 'upgrade', 'proxy-connection'];
const IDENTITY_HEADERS = ['x-arkloop-identity-type', 'x-arkloop-org-id', 'x-arkloop-user-id', 'x-arkloop-username'];
const IDENTITY_TYPES = new Set(['anonymous', 'user', 'api_key']);
/** Answers up to this size with a Content-Length are read whole and sent in one write (see sendUpstreamBody). */
const BUFFERED_BODY_MAX = 64 * 1024;

/**
 * Sends the upstream answer to the client. Small answers of known length (JSON of the API)
 * are read whole and sent as one Buffer: Node then writes status line, headers and body in a
 * single syscall, without a stream pipeline per request; piping the stream costs more writes
 * and stream objects and was a visible share of the gateway's CPU. Everything else — SSE
 * (no Content-Length), large bodies, HEAD — is streamed as it arrives, unbuffered.
 */
function sendUpstreamBody(req: FastifyRequest, reply: FastifyReply, res: { headers: Record<string, unknown>; stream: NodeJS.ReadableStream }): void {
  const length = Number(headerValue(res.headers['content-length'] as string | undefined));
  if (req.method === 'HEAD' || !(length > 0 && length <= BUFFERED_BODY_MAX)) {
    void reply.send(res.stream);
    return;
  }
  const chunks: Buffer[] = [];
  res.stream.on('data', (c: Buffer) => chunks.push(c));
  res.stream.once('end', () => void reply.send(chunks.length === 1 ? chunks[0] : Buffer.concat(chunks)));
  // An upstream that breaks mid-body: the same error path as a streamed body (the connection is closed).
  res.stream.once('error', (err: Error) => void reply.send(err));
}

function headerValue(v: string | string[] | undefined): string | undefined {
  return Array.isArray(v) ? v[0] : v;
}

/** Removes hop-by-hop headers, and those the Connection header names (RFC 9110 §7.6.1). */
function dropHopByHop(headers: Record<string, unknown>): void {
  const named = String(headers.connection ?? '').split(',').map((h) => h.trim().toLowerCase()).filter(Boolean);
  for (const h of [...HOP_BY_HOP, ...named]) delete headers[h];
}

/** The API percent-encodes X-Arkloop-Username (header values are Latin-1). */
function decodeHeader(v: string): string {
  try {
    return decodeURIComponent(v);
  } catch {
    return v;
  }
}

/** Who the API says made the request (its X-Arkloop-* headers), for the access log. */
function takeIdentity(gw: GatewayState, headers: Record<string, string | string[] | undefined>): void {
  const type = headerValue(headers['x-arkloop-identity-type']);
  if (type && IDENTITY_TYPES.has(type)) gw.reportedIdentity = type as GatewayState['reportedIdentity'];
  gw.orgId = headerValue(headers['x-arkloop-org-id']) || null;
  gw.userId = headerValue(headers['x-arkloop-user-id']) || null;
  const username = headerValue(headers['x-arkloop-username']);
  gw.username = username ? decodeHeader(username) : null;
}

// Errors of the connect phase: no byte of the request reached the upstream, so any method may go to another one.
const NEVER_ARRIVED = new Set(['ECONNREFUSED', 'EHOSTUNREACH', 'ENETUNREACH', 'EADDRNOTAVAIL', 'ENOTFOUND', 'EAI_AGAIN', 'UND_ERR_CONNECT_TIMEOUT']);
// The connection broke with no response: the request may have arrived, so only an idempotent one without a body is sent again.
const BROKEN = new Set(['ECONNRESET', 'EPIPE', 'UND_ERR_SOCKET']);
const IDEMPOTENT = new Set(['GET', 'HEAD', 'OPTIONS', 'PUT', 'DELETE']);

function errorCode(error: Error): string {
  const e = error as Error & { cause?: { code?: string }; code?: string };
  return e.cause?.code ?? e.code ?? '';
}

/** Whether a request whose forwarding failed with `error` can be sent once more to another upstream. */
function canResend(method: string, body: Readable | undefined, error: Error): boolean {
  const code = errorCode(error);
  if (NEVER_ARRIVED.has(code)) return !body || (!body.readableDidRead && !body.destroyed);
  return BROKEN.has(code) && IDEMPOTENT.has(method) && !body;
}

/**
 * Whether a failed request says the upstream is down. A connection that broke while a body
 * was being sent is more likely the API refusing that body and closing (an upload over a
 * limit); the next request, or the health probe, tells a dead upstream soon enough.
 */
function upstreamDown(body: Readable | undefined, error: Error): boolean {
  return !body || NEVER_ARRIVED.has(errorCode(error));
}

/**
 * The client's body as undici sees it for one attempt: it reads from `source` only once undici
 * reads, and undici destroying it (as it does when the connection fails) leaves `source`
 * unread, so another attempt can still send it.
 */
function attemptBody(source: Readable, limit: number | null, onTooLarge: () => void): Readable {
  let started = false;
  let bytes = 0;
  const out = new Readable({
    read() {
      if (!started) {
        started = true;
        source.on('data', (chunk: Buffer) => {
          // A body without a Content-Length that outgrows the API's limit is refused here: the
          // API would answer 413 and close mid-body, which the proxy sees as a broken connection.
          bytes += chunk.length;
          if (limit !== null && bytes > limit) {
            source.pause();
            onTooLarge();
            out.destroy(new Error('request body too large'));
            return;
          }
          if (!out.push(chunk)) source.pause();
        });
        source.once('end', () => out.push(null));
        source.once('error', (err) => out.destroy(err));
      }
      source.resume();
    },
  });
  return out;
}

export async function buildGateway(opts: GatewayOptions): Promise<Gateway> {
  const log = opts.log;
  const upstreams = new Upstreams(opts.upstreams, { failCooldownMs: 5_000, probeIntervalMs: 2_000, ...opts.upstream });
  const identities = new IdentityResolver(opts.jwtKey);
  const risk = new RiskTracker();

  let config = await readGatewayConfig(opts.readSetting);
  let trusted = new CidrSet(config.trusted_cidrs);
  const reloadConfig = async () => {
    try {
      await opts.beforeConfigRead?.();
      const next = await readGatewayConfig(opts.readSetting);
      if (JSON.stringify(next) !== JSON.stringify(config)) log.info({ config: next }, 'gateway configuration changed');
      config = next;
      trusted = new CidrSet(next.trusted_cidrs);
    } catch (err) {
      log.warn({ err: (err as Error).message }, 'gateway configuration not re-read; keeping the current one');
    }
  };
  const refreshTimer = setInterval(() => void reloadConfig(), opts.configRefreshMs);
  refreshTimer.unref();

  const registry = new Registry();
  collectDefaultMetrics({ register: registry, prefix: 'arkloop_gateway_' });
  const requests = new Counter({ name: 'arkloop_gateway_requests_total', help: 'Gateway requests by status', labelNames: ['status'] as const, registers: [registry] });
  // By status only: the gateway forwards any path, and raw paths would make unbounded label sets.
  const latency = new Histogram({
    name: 'arkloop_gateway_request_duration_seconds',
    help: 'Gateway request latency (to the end of the response) by status',
    labelNames: ['status'] as const,
    buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
    registers: [registry],
  });
  const limited = new Counter({
    name: 'arkloop_gateway_rate_limited_total',
    help: 'Gateway 429 answers by identity type',
    labelNames: ['identity_type'] as const,
    registers: [registry],
  });

  const app = Fastify({
    loggerInstance: log as unknown as FastifyBaseLogger,
    logController: new LogController({ disableRequestLogging: true }),
    forceCloseConnections: true,
    // What Node's parser refuses, and a Host-less HTTP/1.1 request (refused in onRequest): the
    // envelope, as the API answers them.
    clientErrorHandler,
    http: { requireHostHeader: false },
    // A URL the router cannot decode: the contract's envelope, as the API would answer.
    frameworkErrors: (_err, req, reply) => {
      void (reply as unknown as FastifyReply).code(400).header('x-trace-id', req.id).send(errorBody('validation.error', 'malformed URL', {}, req.id));
    },
    genReqId: (req) => {
      if (opts.trustIncomingTraceId) {
        const incoming = headerValue(req.headers['x-trace-id']);
        if (incoming && TRACE_RE.test(incoming)) return incoming;
      }
      return newTraceId();
    },
  });
  refuseUnsupportedExpect(app.server);
  // Bodies are not parsed: reply-from streams the raw request to the upstream.
  app.removeAllContentTypeParsers();
  app.addContentTypeParser('*', (_req, payload, done) => done(null, payload));
  await app.register(replyFrom, {
    disableRequestLogging: true,
    // No cap on upstream sockets: each event stream holds one for its whole life, so a pool
    // limit (undici's default in reply-from is 128) would queue every stream past it forever.
    undici: { connections: null, pipelining: 1, keepAliveTimeout: 30_000, headersTimeout: 0, bodyTimeout: 0 },
  });

  const fail = (req: FastifyRequest, reply: FastifyReply, status: number, code: ErrorCode, message: string, details: Record<string, unknown> = {}) =>
    reply.code(status).header('x-trace-id', req.gw.traceId).send(errorBody(code, message, details, req.gw.traceId));
  /** The API's answer to a body over its limit, given by the gateway (see attemptBody). */
  const tooLarge = (req: FastifyRequest, reply: FastifyReply) =>
    fail(req, reply.header('connection', 'close'), 413, 'validation.error', 'request body too large', { max_bytes: req.gw.bodyLimit });

  app.decorateRequest('gw', null as unknown as GatewayState);
  app.addHook('onRequest', async (req, reply) => {
    const ua = headerValue(req.headers['user-agent']) ?? '';
    const client = resolveClientIp(config.ip_mode, trusted, req.socket.remoteAddress ?? '', req.headers);
    const ut = uaType(ua);
    const path = req.url;
    const q = path.indexOf('?');
    const gw: GatewayState = {
      traceId: req.id,
      clientIp: client.ip,
      country: client.country,
      userAgent: ua,
      uaType: ut,
      risk: risk.score(client.ip, ut, path),
      identityType: 'anonymous',
      limit: null,
      upstream: null,
      orgId: null,
      userId: null,
      username: null,
      reportedIdentity: null,
      local: null,
      bodyLimit: forwardedBodyLimit(q < 0 ? path : path.slice(0, q)),
      bodyTooLarge: false,
      started: performance.now(),
      res: reply.raw,
    };
    req.gw = gw;
    reply.header('x-trace-id', gw.traceId);
    // RFC 9112 §3.2: an HTTP/1.1 request without Host is a 400.
    if (req.raw.httpVersion === '1.1' && req.headers.host === undefined) return fail(req, reply, 400, 'validation.error', 'the Host header is required');
    if (config.risk_reject_threshold > 0 && gw.risk >= config.risk_reject_threshold) {
      return fail(req, reply, 403, 'gateway.risk_rejected', 'request rejected by the gateway risk policy');
    }
    // A declared length over the API's limit is refused before anything is forwarded (chunked
    // bodies: attemptBody). The API of this process refuses by itself (handOver).
    if (!opts.local && gw.bodyLimit !== null && Number(req.headers['content-length']) > gw.bodyLimit) return tooLarge(req, reply);
    if (RATE_EXEMPT.test(path) || config.ratelimit_capacity <= 0 || config.ratelimit_rate_per_minute <= 0) return;
    const identity = await identities.resolve(headerValue(req.headers.authorization));
    gw.identityType = identity?.type ?? 'anonymous';
    gw.limit = await opts.buckets.take(identity?.key ?? `ip:${client.ip}`, { capacity: config.ratelimit_capacity, ratePerMinute: config.ratelimit_rate_per_minute });
    reply.header('x-ratelimit-limit', String(config.ratelimit_capacity));
    reply.header('x-ratelimit-remaining', String(gw.limit.remaining));
    if (!gw.limit.allowed) {
      limited.inc({ identity_type: gw.identityType });
      reply.header('retry-after', String(gw.limit.retryAfter));
      return fail(req, reply, 429, 'rate_limit', 'too many requests; retry later');
    }
  });

  /** Metrics, risk history and the access log entry of one finished request. */
  const record = (req: FastifyRequest, status: number) => {
    const gw = req.gw;
    if (!gw) return;
    if (gw.local?.identity) takeIdentity(gw, gw.local.identity);
    const elapsedMs = performance.now() - gw.started;
    requests.inc({ status: String(status) });
    latency.observe({ status: String(status) }, elapsedMs / 1000);
    risk.record(gw.clientIp, status);
    if (req.url === '/metrics' || req.url === '/healthz') return;
    const q = req.url.indexOf('?');
    opts.accessLog.append({
      timestamp: new Date().toISOString(),
      trace_id: gw.traceId,
      method: req.method,
      path: q < 0 ? req.url : req.url.slice(0, q),
      status_code: status,
      duration_ms: Math.round(elapsedMs * 100) / 100,
      client_ip: gw.clientIp,
      country: gw.country,
      city: null,
      user_agent: gw.userAgent,
      ua_type: gw.uaType,
      risk_score: gw.risk,
      identity_type: gw.reportedIdentity ?? gw.identityType,
      org_id: gw.orgId,
      user_id: gw.userId,
      username: gw.username,
    });
  };
  app.addHook('onResponse', (req, reply, done) => {
    record(req, reply.statusCode);
    done();
  });
  // A client that leaves before its answer ended (an event stream it closed, most often): logged
  // with the status it was sent, or 499 if it left before any (nginx's "client closed request").
  app.addHook('onRequestAbort', (req, done) => {
    record(req, req.gw?.res.headersSent ? req.gw.res.statusCode : 499);
    done();
  });

  app.setErrorHandler((err: Error & { statusCode?: number }, req, reply) => {
    if ((err.statusCode ?? 500) < 500) return fail(req, reply, 400, 'validation.error', 'malformed request');
    log.error({ err: err.message, trace_id: req.id }, 'gateway error');
    return fail(req, reply, 502, 'gateway.upstream_unavailable', 'the API is unavailable');
  });

  app.get('/healthz', async () => ({ status: 'ok' }));
  app.get('/metrics', async (_req, reply) => reply.type(registry.contentType).send(await registry.metrics()));

  /** The forwarding headers (§30) on `headers`: a copy of the request's, or the request's own. */
  const setForwarding = (headers: Record<string, unknown>, req: FastifyRequest) => {
    const fromTrustedProxy = config.ip_mode !== 'direct' && trusted.has(req.socket.remoteAddress ?? '');
    const host = headerValue(req.headers.host);
    const proto = headerValue(headers['x-forwarded-proto'] as string | undefined);
    const forwardedHost = headerValue(headers['x-forwarded-host'] as string | undefined) ?? host;
    headers['x-forwarded-for'] = req.gw.clientIp;
    headers['x-forwarded-proto'] = fromTrustedProxy && (proto === 'https' || proto === 'http') ? proto : 'http';
    headers['x-forwarded-host'] = (fromTrustedProxy ? forwardedHost : host) ?? '';
    headers['x-trace-id'] = req.gw.traceId;
  };

  const forward = (req: FastifyRequest, reply: FastifyReply, upstream: string, body: Readable | undefined, retried: boolean) => {
    req.gw.upstream = upstream;
    if (body) req.body = attemptBody(body, req.gw.bodyLimit, () => (req.gw.bodyTooLarge = true));
    return reply.from(undefined, {
      getUpstream: () => upstream,
      // reply-from's own retries go to the same upstream; ours (onError) go to another one. A 503 is the API's answer.
      retryDelay: () => null,
      rewriteRequestHeaders: (r, headers) => {
        dropHopByHop(headers);
        setForwarding(headers, r as FastifyRequest);
        return headers;
      },
      rewriteHeaders: (headers, r) => {
        const gw = (r as FastifyRequest).gw;
        const out: Record<string, unknown> = { ...headers };
        dropHopByHop(out);
        takeIdentity(gw, out as Record<string, string | string[] | undefined>);
        for (const h of IDENTITY_HEADERS) delete out[h];
        out['x-trace-id'] = gw.traceId;
        if (gw.limit) {
          out['x-ratelimit-limit'] = String(config.ratelimit_capacity);
          out['x-ratelimit-remaining'] = String(gw.limit.remaining);
        }
        return out as typeof headers;
      },
      onResponse: (r, rep, res) => sendUpstreamBody(r as FastifyRequest, rep as unknown as FastifyReply, res as never),
      onError: (rep, { error }) => {
        const r = rep.request as FastifyRequest;
        if (r.gw.bodyTooLarge) {
          if (!rep.sent) tooLarge(r, rep as unknown as FastifyReply);
          return;
        }
        if (upstreamDown(body, error as Error)) upstreams.failed(upstream);
        const next = !retried && !rep.sent && canResend(r.method, body, error as Error) ? upstreams.other(upstream) : null;
        log.warn({ upstream, err: (error as Error).message, retry_on: next, trace_id: r.gw.traceId }, 'upstream request failed');
        if (next) return forward(r, rep as unknown as FastifyReply, next, body, true);
        fail(r, rep as unknown as FastifyReply, 502, 'gateway.upstream_unavailable', 'the API is unavailable');
      },
    });
  };
  /**
   * The gateway inside `arkloop serve`: the request goes to this process's API router as it
   * is — same socket, body still unread — with the forwarding facts on a hand-off record
   * instead of headers. A socket hop to our own process would cost more CPU than the API's
   * work on a small request. Headers set here (rate limit) are merged into the API's answer.
   */
  const handOver = (req: FastifyRequest, reply: FastifyReply, local: NonNullable<GatewayOptions['local']>) => {
    const gw = req.gw;
    // As a proxied request would carry them, for the code that reads them behind a gateway.
    setForwarding(req.raw.headers, req);
    gw.upstream = 'local';
    gw.local = { clientIp: gw.clientIp, traceId: gw.traceId, identity: null };
    markLocalForward(req.raw, gw.local);
    const res = reply.raw;
    if (gw.limit) {
      res.setHeader('x-ratelimit-limit', String(config.ratelimit_capacity));
      res.setHeader('x-ratelimit-remaining', String(gw.limit.remaining));
    }
    reply.hijack();
    local(req.raw, res);
  };
  // Bodies are the raw request stream (see the content-type parser above).
  const local = opts.local;
  const proxy = local
    ? (req: FastifyRequest, reply: FastifyReply) => handOver(req, reply, local)
    : (req: FastifyRequest, reply: FastifyReply) => forward(req, reply, upstreams.pick(), req.body as Readable | undefined, false);
  app.all('/', proxy);
  app.all('/*', proxy);

  upstreams.startProbes();
  return {
    app,
    upstreams,
    config: () => config,
    reloadConfig,
    close: async () => {
      clearInterval(refreshTimer);
      upstreams.stop();
      await app.close();
    },
  };
}
