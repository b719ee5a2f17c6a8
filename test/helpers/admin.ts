// Fixtures for tests of platform-admin (padmin) endpoints: the admin, a plain user, an API key
// of the admin, and the refusals every padmin route owes (api.md §1.2: API keys never qualify).
import assert from 'node:assert/strict';
import { registerUser, type TestApp, type TestUser } from './app.js';
import { expectAuthRequired, expectError } from './assert.js';

export interface AdminCast {
  /** Registered first, so the platform admin. */
  admin: TestUser;
  member: TestUser;
  /** An API key the admin created: still refused on padmin routes. */
  adminKey: string;
}

/** Call on a fresh app, before anyone else registers. */
export async function adminCast(t: TestApp): Promise<AdminCast> {
  const admin = await registerUser(t);
  const member = await registerUser(t);
  const key = await t.post('/v1/api-keys', { name: 'admin key' }, { token: admin.token });
  assert.equal(key.status, 201, key.text);
  return { admin, member, adminKey: key.body.key };
}

/** 401 without valid credentials; 403 auth.forbidden for a non-admin and for an API key (even the admin's). */
export async function expectPadminOnly(t: TestApp, cast: AdminCast, method: string, path: string, body?: unknown): Promise<void> {
  expectError(await t.request(method, path, body, { token: cast.member.token }), 403, 'auth.forbidden');
  expectError(await t.request(method, path, body, { token: cast.adminKey }), 403, 'auth.forbidden');
  await expectAuthRequired(t, method, path, body);
}
