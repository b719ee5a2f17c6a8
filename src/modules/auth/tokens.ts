// Access tokens: HS256 JWTs (jose) with claims sub, sid, iat, exp, typ:"access".
import { SignJWT, jwtVerify } from 'jose';

export interface AccessClaims {
  sub: string;
  sid: string;
  /** Expiry, epoch milliseconds. */
  expMs: number;
}

export async function signAccessToken(key: Uint8Array, userId: string, sessionId: string, ttlSeconds: number): Promise<string> {
  return new SignJWT({ sid: sessionId, typ: 'access' })
    .setProtectedHeader({ alg: 'HS256', typ: 'JWT' })
    .setSubject(userId)
    .setIssuedAt()
    .setExpirationTime(Math.floor(Date.now() / 1000) + ttlSeconds)
    .sign(key);
}

/**
 * Verifies signature (HS256 only: `none` and every other alg are refused), expiry and type.
 * `exp` is required: a token that never expires is refused even if correctly signed.
 */
export async function verifyAccessToken(key: Uint8Array, token: string): Promise<AccessClaims | null> {
  try {
    const { payload } = await jwtVerify(token, key, { algorithms: ['HS256'], requiredClaims: ['exp', 'iat', 'sub'] });
    if (payload.typ !== 'access' || typeof payload.sub !== 'string' || typeof payload.sid !== 'string') return null;
    return { sub: payload.sub, sid: payload.sid, expMs: (payload.exp as number) * 1000 };
  } catch {
    return null;
  }
}
