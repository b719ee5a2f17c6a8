// The client IP of a gateway request (api.md §30, `gateway.ip_mode`), resolved from the
// socket address by hand rather than Fastify's `trustProxy`, whose hop counting changed in
// Fastify 5.12.1: forwarding headers count only when the socket peer is a trusted proxy.
import type { IncomingHttpHeaders } from 'node:http';
import { canonicalClientIp, type CidrSet } from '../modules/ip-rules/cidr.js';

export type IpMode = 'direct' | 'trusted_proxy' | 'cloudflare';

export interface ResolvedClient {
  ip: string;
  country: string | null;
}

function header(headers: IncomingHttpHeaders, name: string): string | undefined {
  const v = headers[name];
  return Array.isArray(v) ? v.join(',') : v;
}

export function resolveClientIp(mode: IpMode, trusted: CidrSet, socketAddress: string, headers: IncomingHttpHeaders): ResolvedClient {
  const peer = canonicalClientIp(socketAddress);
  if (mode === 'direct' || !trusted.has(peer)) return { ip: peer, country: null };
  if (mode === 'cloudflare') {
    const cf = header(headers, 'cf-connecting-ip')?.trim();
    const country = header(headers, 'cf-ipcountry')?.trim().toUpperCase() || null;
    return { ip: cf ? canonicalClientIp(cf) : peer, country: cf ? country : null };
  }
  // trusted_proxy: right to left, skipping trusted hops; all trusted → the left-most.
  const hops = (header(headers, 'x-forwarded-for') ?? '').split(',').map((h) => h.trim()).filter(Boolean);
  for (let i = hops.length - 1; i >= 0; i--) {
    if (!trusted.has(hops[i])) return { ip: canonicalClientIp(hops[i]), country: null };
  }
  return { ip: hops.length ? canonicalClientIp(hops[0]) : peer, country: null };
}
