// Whose bucket a gateway request spends (api.md §30): a Bearer JWT verified with the platform
// key → `user:<sub>`; a Bearer `al_…` key → `key:<sha256 of the key>`; anything else (an invalid
// token included) → null, i.e. the client IP. Verified tokens are remembered until they
// expire, so a client's later requests cost a map lookup instead of an HMAC; so are refused
// ones (a bad signature stays bad under the same key), so a client repeating a token the
// gateway cannot verify (a foreign or stale one) does not cost a failed verification —
// with its error object — per request.
import { hashToken } from '../lib/crypto.js';
import { verifyAccessToken } from '../modules/auth/tokens.js';

export interface Identity {
  type: 'user' | 'api_key';
  key: string;
}

const CACHE_LIMIT = 10_000;

export class IdentityResolver {
  private readonly verified = new Map<string, { identity: Identity; expMs: number }>();
  private readonly refused = new Set<string>();

  constructor(private readonly jwtKey: Uint8Array) {}

  async resolve(authorization: string | undefined): Promise<Identity | null> {
    if (!authorization) return null;
    const m = /^Bearer\s+(\S+)\s*$/i.exec(authorization);
    if (!m) return null;
    const token = m[1];
    if (token.startsWith('al_')) return { type: 'api_key', key: `key:${hashToken(token)}` };
    const now = Date.now();
    const hit = this.verified.get(token);
    if (hit && hit.expMs > now) return hit.identity;
    if (this.refused.has(token)) return null;
    const claims = await verifyAccessToken(this.jwtKey, token);
    if (!claims) {
      if (this.refused.size >= CACHE_LIMIT) this.refused.clear();
      this.refused.add(token);
      return null;
    }
    const identity: Identity = { type: 'user', key: `user:${claims.sub}` };
    if (this.verified.size >= CACHE_LIMIT) this.verified.clear();
    this.verified.set(token, { identity, expMs: claims.expMs });
    return identity;
  }
}
