// Who made a request, told to the gateway in response headers (api.md §30): it logs them in
// the access log and removes them before the client sees the answer. The username is
// percent-encoded, as header values are Latin-1. A request handed over by the gateway in this
// process gets them on its hand-off record instead (local-forward.ts), and no header.
import type { FastifyRequest } from 'fastify';
import { localForwardOf } from './local-forward.js';

const NONE: Record<string, string> = Object.freeze({}) as Record<string, string>;

export function identityHeaders(req: FastifyRequest): Record<string, string> {
  const headers = build(req);
  const local = localForwardOf(req.raw);
  if (!local) return headers;
  local.identity = headers;
  return NONE;
}

function build(req: FastifyRequest): Record<string, string> {
  const p = req.principal;
  if (!p) return { 'x-arkloop-identity-type': 'anonymous' };
  const out: Record<string, string> = {
    'x-arkloop-identity-type': p.kind === 'api_key' ? 'api_key' : 'user',
    'x-arkloop-user-id': p.user.id,
    'x-arkloop-username': encodeURIComponent(p.user.username),
  };
  if (req.account) out['x-arkloop-org-id'] = req.account.id;
  return out;
}
