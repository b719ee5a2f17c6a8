// Cached credentials never outlive a revocation: in the process that made the change at
// once, and in another process (another app on the same database) within moments.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { openDatabase, type Database } from '../src/db/database.js';
import { registerUser, startTestApp, type TestApp } from './helpers/app.js';
import { expectError } from './helpers/assert.js';

async function eventually(check: () => Promise<boolean>, ms = 3000): Promise<void> {
  const start = Date.now();
  while (Date.now() - start < ms) {
    if (await check()) return;
    await new Promise((r) => setTimeout(r, 20));
  }
  assert.fail('condition not met in time');
}

describe('credential cache invalidation', () => {
  let a: TestApp;
  let b: TestApp;
  let secondDb: Database | null = null;
  before(async () => {
    a = await startTestApp();
    // On PostgreSQL the second app has its own pool and LISTEN connection, like another process.
    secondDb = a.db.url ? await openDatabase({ databaseUrl: a.db.url, dataDir: null, poolSize: 4 }) : null;
    b = await startTestApp({}, { database: secondDb ?? a.db.database });
    await registerUser(a); // platform admin
  });
  after(async () => {
    await b.close();
    await secondDb?.close();
    await a.close();
  });

  it('logout on one process refuses the token on the other', async () => {
    const u = await registerUser(a);
    assert.equal((await b.get('/v1/me', { token: u.token })).status, 200); // cached on b
    assert.equal((await a.post('/v1/auth/logout', undefined, { token: u.token })).status, 200);
    expectError(await a.get('/v1/me', { token: u.token }), 401, 'auth.unauthorized');
    await eventually(async () => (await b.get('/v1/me', { token: u.token })).status === 401);
  });

  it('concurrent first requests of one token share its lookup only per selected account', async () => {
    const u = await registerUser(a);
    const stranger = await registerUser(a);
    const ws = await a.post('/v1/accounts', { slug: `str-${Date.now().toString(36)}`, name: 'Theirs' }, { token: stranger.token });
    assert.equal(ws.status, 201);
    const login = await a.post('/v1/auth/login', { login: u.login, password: u.password });
    assert.equal(login.status, 200);
    const token = login.body.access_token as string;
    const answers = await Promise.all(
      Array.from({ length: 20 }, (_, i) => (i % 2 ? a.get('/v1/threads', { token, headers: { 'x-account-id': ws.body.id } }) : a.get('/v1/threads', { token }))),
    );
    answers.forEach((res, i) => (i % 2 ? expectError(res, 404, 'accounts.not_found') : assert.equal(res.status, 200)));
  });

  it('a revoked API key stops working everywhere', async () => {
    const u = await registerUser(a);
    const created = await a.post('/v1/api-keys', { name: 'k' }, { token: u.token });
    assert.equal(created.status, 201);
    const key = created.body.key as string;
    assert.equal((await b.get('/v1/threads', { token: key })).status, 200);
    assert.equal((await a.del(`/v1/api-keys/${created.body.id}`, { token: u.token })).status, 204);
    expectError(await a.get('/v1/threads', { token: key }), 401, 'auth.unauthorized');
    await eventually(async () => (await b.get('/v1/threads', { token: key })).status === 401);
  });

  it('a removed member loses the account everywhere', async () => {
    const owner = await registerUser(a);
    const member = await registerUser(a);
    const ws = await a.post('/v1/accounts', { slug: `ws-${Date.now().toString(36)}`, name: 'WS' }, { token: owner.token });
    assert.equal(ws.status, 201);
    const inv = await a.post(`/v1/accounts/${ws.body.id}/invitations`, { email: member.email, role: 'member' }, { token: owner.token });
    assert.equal(inv.status, 201);
    assert.equal((await a.post(`/v1/account-invitations/${inv.body.token}/accept`, undefined, { token: member.token })).status, 200);
    const headers = { 'x-account-id': ws.body.id };
    assert.equal((await b.get('/v1/me', { token: member.token, headers })).body.org_id, ws.body.id);
    assert.equal((await a.del(`/v1/accounts/${ws.body.id}/members/${member.id}`, { token: owner.token })).status, 204);
    expectError(await a.get('/v1/me', { token: member.token, headers }), 404, 'accounts.not_found');
    await eventually(async () => (await b.get('/v1/me', { token: member.token, headers })).status === 404);
  });
});
