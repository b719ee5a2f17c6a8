// Shared assertions: the error envelope, and the security checks every protected route gets.
import assert from 'node:assert/strict';
import { SignJWT } from 'jose';
import type { Res, TestApp } from './app.js';
import { TEST_SECRETS } from './app.js';

/** Asserts the contract's error envelope with this status and code. */
export function expectError(res: Res, status: number, code: string): void {
  assert.equal(res.status, status, `expected ${status} ${code}, got ${res.status} ${res.text}`);
  assert.equal(res.body?.code, code, `expected code ${code}, got ${res.text}`);
  assert.equal(res.body.error, code);
  assert.equal(typeof res.body.message, 'string');
  assert.equal(typeof res.body.details, 'object');
  assert.equal(res.body.trace_id, res.headers['x-trace-id']);
}

/** Asserts a 400 validation error that names `field` in details.fields. */
export function expectFieldError(res: Res, field: string, status = 400): void {
  expectError(res, status, 'validation.error');
  const fields = (res.body.details.fields ?? []) as Array<{ field: string; reason: string }>;
  assert.ok(
    fields.some((f) => f.field === field || f.field.startsWith(field + '.')),
    `expected a field error on ${field}, got ${JSON.stringify(res.body.details)}`,
  );
}

function b64url(s: string): string {
  return Buffer.from(s).toString('base64url');
}

/** Tokens that must never authenticate: none, garbage, alg none, wrong key, expired. */
export async function badTokens(userId = '01890000-0000-7000-8000-000000000000', sid = '01890000-0000-7000-8000-000000000001'): Promise<Record<string, string>> {
  const key = new TextEncoder().encode(TEST_SECRETS.jwtSecret);
  const now = Math.floor(Date.now() / 1000);
  const expired = await new SignJWT({ sid, typ: 'access' })
    .setProtectedHeader({ alg: 'HS256' })
    .setSubject(userId)
    .setIssuedAt(now - 3600)
    .setExpirationTime(now - 60)
    .sign(key);
  const wrongKey = await new SignJWT({ sid, typ: 'access' })
    .setProtectedHeader({ alg: 'HS256' })
    .setSubject(userId)
    .setIssuedAt()
    .setExpirationTime(now + 600)
    .sign(new TextEncoder().encode('another-secret-another-secret-another-secret'));
  const algNone = `${b64url(JSON.stringify({ alg: 'none', typ: 'JWT' }))}.${b64url(JSON.stringify({ sub: userId, sid, typ: 'access', iat: now, exp: now + 600 }))}.`;
  return { garbage: 'not-a-token', expired, wrongKey, algNone, unknownKey: 'al_' + 'x'.repeat(40) };
}

/** Every protected route: no credentials and every bad token → 401 auth.unauthorized. */
export async function expectAuthRequired(t: TestApp, method: string, path: string, body?: unknown): Promise<void> {
  expectError(await t.request(method, path, body), 401, 'auth.unauthorized');
  for (const [name, token] of Object.entries(await badTokens())) {
    const res = await t.request(method, path, body, { token });
    assert.equal(res.status, 401, `${name} token on ${method} ${path} gave ${res.status}`);
    expectError(res, 401, 'auth.unauthorized');
  }
}
