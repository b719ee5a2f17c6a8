// The SSRF guard (api.md §27.6): one module for every outbound request to a URL a user chose
// (web_fetch, org-scope LLM providers, MCP, tool providers, ASR, webhooks).
//
// Written here rather than taken from a library: the contract fixes its own ranges, error code
// and stored-versus-call-time rules, and request-filtering-agent targets node:http agents, not
// the undici dispatcher the SDKs' fetch runs on. What it does:
//   - checkUrl: scheme, credentials, forbidden host names and IP-literal hosts (the WHATWG URL
//     parser already turns `0x7f.1` or `2130706433` into 127.0.0.1). Used when a URL is stored,
//     and before every hop of a request.
//   - a `lookup` for undici's connector: every A/AAAA answer is checked and the connection goes
//     to the answers that were checked, so a DNS answer that changes afterwards (rebinding) is
//     never used.
//   - guardedFetch: fetch through that connector, following redirects itself so each hop's URL
//     is checked again.
// Address ranges use ipaddr.js.
import dns from 'node:dns';
import type { LookupAddress } from 'node:dns';
import net from 'node:net';
import ipaddr from 'ipaddr.js';
import { Agent, fetch as undiciFetch, type RequestInit as UndiciRequestInit } from 'undici';

export class SsrfBlockedError extends Error {
  readonly code = 'policy.ssrf_blocked';
  constructor(readonly reason: string) {
    super(`target refused by the SSRF guard: ${reason}`);
    this.name = 'SsrfBlockedError';
  }
}

const BLOCKED_V4 = ['0.0.0.0/8', '127.0.0.0/8', '10.0.0.0/8', '100.64.0.0/10', '169.254.0.0/16', '172.16.0.0/12', '192.168.0.0/16', '224.0.0.0/4', '240.0.0.0/4', '255.255.255.255/32'].map((c) => ipaddr.IPv4.parseCIDR(c));
const BLOCKED_V6 = ['::/128', '::1/128', 'fc00::/7', 'fe80::/10', 'ff00::/8'].map((c) => ipaddr.IPv6.parseCIDR(c));
const BLOCKED_NAMES = new Set(['localhost', 'metadata.google.internal']);

/** True when `address` (an IP literal) is in a range the guard refuses; anything unparsable is refused. */
export function isBlockedAddress(address: string): boolean {
  if (!ipaddr.isValid(address)) return true;
  let ip = ipaddr.parse(address);
  if (ip.kind() === 'ipv6' && (ip as ipaddr.IPv6).isIPv4MappedAddress()) ip = (ip as ipaddr.IPv6).toIPv4Address();
  if (ip.kind() === 'ipv4') return BLOCKED_V4.some(([range, bits]) => (ip as ipaddr.IPv4).match(range, bits));
  return BLOCKED_V6.some(([range, bits]) => (ip as ipaddr.IPv6).match(range, bits));
}

export type Resolver = (hostname: string) => Promise<LookupAddress[]>;

const systemResolver: Resolver = (hostname) => dns.promises.lookup(hostname, { all: true, verbatim: true });

export interface GuardOptions {
  /** security.ssrf_allow_private: private and loopback names and addresses pass (scheme and credentials rules still apply). */
  allowPrivate: boolean;
  /** DNS resolution (tests substitute their own). */
  resolver?: Resolver;
  /** Which addresses are refused (tests may treat one loopback address as public). */
  isBlocked?: (address: string) => boolean;
}

function hostOf(url: URL): string {
  return url.hostname.replace(/^\[|\]$/g, '').replace(/\.$/, '').toLowerCase();
}

/**
 * The checks that need no DNS: scheme, credentials, forbidden names, IP-literal hosts.
 * Returns the parsed URL; throws SsrfBlockedError.
 */
export function checkUrl(raw: string | URL, opts: GuardOptions): URL {
  let url: URL;
  try {
    url = typeof raw === 'string' ? new URL(raw) : raw;
  } catch {
    throw new SsrfBlockedError('not a URL');
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new SsrfBlockedError(`scheme ${url.protocol.replace(/:$/, '')}`);
  if (url.username || url.password) throw new SsrfBlockedError('credentials in the URL');
  if (opts.allowPrivate) return url;
  const host = hostOf(url);
  if (BLOCKED_NAMES.has(host) || host.endsWith('.localhost')) throw new SsrfBlockedError(`host ${host}`);
  if (net.isIP(host) && (opts.isBlocked ?? isBlockedAddress)(host)) throw new SsrfBlockedError(`address ${host}`);
  return url;
}

type LookupCallback = (err: NodeJS.ErrnoException | null, address?: string | LookupAddress[], family?: number) => void;

/** A net/tls `lookup` that resolves once, refuses if any answer is blocked, and hands over exactly those answers. */
export function guardedLookup(opts: GuardOptions) {
  const resolve = opts.resolver ?? systemResolver;
  const blocked = opts.isBlocked ?? isBlockedAddress;
  return (hostname: string, options: { all?: boolean; family?: number | string }, callback: LookupCallback): void => {
    resolve(hostname).then(
      (answers) => {
        if (answers.length === 0) return callback(Object.assign(new Error(`no address for ${hostname}`), { code: 'ENOTFOUND' }));
        if (!opts.allowPrivate) {
          const bad = answers.find((a) => blocked(a.address));
          if (bad) return callback(new SsrfBlockedError(`${hostname} resolves to ${bad.address}`) as unknown as NodeJS.ErrnoException);
        }
        const family = options.family === 4 || options.family === 'IPv4' ? 4 : options.family === 6 || options.family === 'IPv6' ? 6 : 0;
        const usable = family ? answers.filter((a) => a.family === family) : answers;
        if (usable.length === 0) return callback(Object.assign(new Error(`no IPv${family} address for ${hostname}`), { code: 'ENOTFOUND' }));
        if (options.all) callback(null, usable);
        else callback(null, usable[0].address, usable[0].family);
      },
      (err: NodeJS.ErrnoException) => callback(err),
    );
  };
}

const agents = new Map<string, Agent>();
const resolverIds = new WeakMap<object, number>();
let nextResolverId = 1;

/** One pooled dispatcher per guard configuration, so guarded calls keep their connections alive. */
function agentFor(opts: GuardOptions): Agent {
  const idOf = (f: object | undefined) => {
    if (!f) return 0;
    let id = resolverIds.get(f);
    if (!id) resolverIds.set(f, (id = nextResolverId++));
    return id;
  };
  const key = `${opts.allowPrivate}:${idOf(opts.resolver)}:${idOf(opts.isBlocked)}`;
  let agent = agents.get(key);
  if (!agent) {
    agent = new Agent({ connect: { lookup: guardedLookup(opts) as never } });
    agents.set(key, agent);
  }
  return agent;
}

function ssrfCause(err: unknown): SsrfBlockedError | null {
  for (let e = err, depth = 0; e && depth < 5; e = (e as { cause?: unknown }).cause, depth++) {
    if (e instanceof SsrfBlockedError) return e;
  }
  return null;
}

export interface GuardedFetchOptions extends GuardOptions {
  /** Redirects followed, each checked again (default 5). */
  maxRedirects?: number;
  /** false: a redirect is answered as it came, not followed (webhook deliveries, §20.2). */
  followRedirects?: boolean;
}

/**
 * A `fetch` for targets users chose: every hop's URL is checked, every connection goes to the
 * addresses its lookup checked. A refusal rejects with SsrfBlockedError; anything else is the
 * usual fetch failure. Fits the SDKs' `fetch` option.
 */
export function guardedFetch(opts: GuardedFetchOptions): typeof fetch {
  const dispatcher = agentFor(opts);
  const maxRedirects = opts.maxRedirects ?? 5;
  return (async (input: string | URL | Request, init?: RequestInit) => {
    if (typeof input !== 'string' && !(input instanceof URL)) {
      throw new TypeError('guardedFetch takes a URL (a Request object is not supported)');
    }
    let url = checkUrl(String(input), opts);
    let method = (init?.method ?? 'GET').toUpperCase();
    let body = init?.body ?? null;
    for (let hop = 0; ; hop++) {
      let res: Response;
      try {
        res = (await undiciFetch(url, { ...(init as UndiciRequestInit), method, body: body as UndiciRequestInit['body'], redirect: 'manual', dispatcher })) as unknown as Response;
      } catch (err) {
        throw ssrfCause(err) ?? err;
      }
      if (opts.followRedirects === false) return res;
      const location = res.headers.get('location');
      if (res.status < 300 || res.status > 399 || !location || res.status === 304) return res;
      if (hop >= maxRedirects) throw new TypeError(`more than ${maxRedirects} redirects`);
      await res.body?.cancel().catch(() => undefined);
      url = checkUrl(new URL(location, url), opts);
      if (res.status === 303 || ((res.status === 301 || res.status === 302) && method === 'POST')) {
        method = method === 'HEAD' ? 'HEAD' : 'GET';
        body = null;
      } else if (body !== null && typeof body !== 'string' && !(body instanceof Uint8Array) && !(body instanceof URLSearchParams)) {
        return res; // a streamed body cannot be sent twice: the caller gets the redirect
      }
    }
  }) as typeof fetch;
}
