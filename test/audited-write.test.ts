// auditedWrite, the transaction + audit + unique-violation helper every audited change uses,
// on a real database: rows and audit commit together, roll back together, and a lost race
// against a unique constraint becomes the module's 409.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { registerUser, startTestApp, uniq, type TestApp } from './helpers/app.js';
import { auditRows, createWorkspace } from './helpers/accounts-fixtures.js';
import { auditedWrite } from '../src/modules/audit/audited-write.js';
import type { AuditOrigin } from '../src/modules/audit/store.js';
import { insertTeam } from '../src/modules/accounts/teams-store.js';
import { AppError, conflict } from '../src/http/errors.js';

const origin: AuditOrigin = { traceId: 'audited-write-test', ip: '127.0.0.1', userAgent: 'node:test' };
const nameTaken = () => conflict('teams.name_taken', 'a team with this name already exists');

describe('auditedWrite', () => {
  let t: TestApp;
  let accountId: string;
  let userId: string;
  before(async () => {
    t = await startTestApp();
    const owner = await registerUser(t);
    userId = owner.id;
    accountId = (await createWorkspace(t, owner)).id;
  });
  after(async () => { await t.close(); });

  const teamCount = async (name: string) =>
    (await t.ctx.db.selectFrom('teams').select('id').where('account_id', '=', accountId).where('name', '=', name).execute()).length;
  const entry = (action: string, targetId: string | null = null) => ({ orgId: accountId, actorUserId: userId, action, targetType: 'team', targetId });

  it('writes the change and every returned audit row in one transaction; none for audit: null', async () => {
    const name = uniq('Team ');
    const team = await auditedWrite(t.ctx.db, origin, async (trx) => {
      const row = await insertTeam(trx, accountId, name);
      return { result: row, audit: [entry('test.first', row.id), entry('test.second', row.id)] };
    });
    assert.equal(await teamCount(name), 1);
    const rows = [...(await auditRows(t, 'test.first', accountId)), ...(await auditRows(t, 'test.second', accountId))];
    assert.deepEqual(rows.map((r) => [r.target_id, r.trace_id, r.ip_address]), [[team.id, origin.traceId, '127.0.0.1'], [team.id, origin.traceId, '127.0.0.1']]);

    assert.equal(await auditedWrite(t.ctx.db, origin, async () => ({ result: 7, audit: null })), 7);
  });

  it('redacts every kind of secret §22 names, by key and by form, in metadata and states', async () => {
    const apiKey = 'al_' + 'A1b2C3d4E5'.repeat(4);
    const whsec = 'whsec_' + 'x'.repeat(43);
    const secrets = {
      password: 'pw-1', new_password: 'pw-2', access_token: 'tok-1', refresh_token: 'tok-2', key_hash: 'hash-1', api_key: 'sk-1',
      bearer_token: 'bt-1', smtp_pass: 'smtp-1', smtp_password: 'smtp-2', secret: 'whs-1', webhook_secret: 'whs-2', authorization: 'Bearer ab-1',
      env: { A: 'env-1', B: 'env-2' }, api_key_enc: 'enc-1', private_key: 'pk-1', nested: [{ token: 'tok-3' }, { note: apiKey }, whsec],
    };
    await auditedWrite(t.ctx.db, origin, async () => ({
      result: null,
      audit: { ...entry('test.redaction'), metadata: { ...secrets, kept: 'visible', key: 'feature.byok_enabled', key_prefix: 'al_A1b2', has_api_key: true }, before: secrets, after: { ...secrets, env_keys: ['A', 'B'] } },
    }));
    const [row] = await auditRows(t, 'test.redaction', accountId);
    const text = JSON.stringify(row);
    for (const s of ['pw-1', 'pw-2', 'tok-1', 'tok-2', 'tok-3', 'hash-1', 'sk-1', 'bt-1', 'smtp-1', 'smtp-2', 'whs-1', 'whs-2', 'ab-1', 'env-1', 'env-2', 'enc-1', 'pk-1', apiKey, whsec]) {
      assert.ok(!text.includes(s), `${s} in ${text}`);
    }
    const meta = row.metadata as Record<string, unknown>;
    // A resource's `key` (a flag's, a setting's, an entitlement's) is an identifier, not a secret.
    assert.deepEqual([meta.kept, meta.key, meta.key_prefix, meta.has_api_key, meta.env], ['visible', 'feature.byok_enabled', 'al_A1b2', true, '[redacted]']);
    assert.deepEqual((row.after_state as Record<string, unknown>).env_keys, ['A', 'B']);
  });

  it('rolls the change and its audit back together when the write throws', async () => {
    const name = uniq('Team ');
    await assert.rejects(
      auditedWrite(t.ctx.db, origin, async (trx) => {
        await insertTeam(trx, accountId, name);
        throw new AppError('teams.not_found', 'team not found');
      }),
      (err: unknown) => err instanceof AppError && err.code === 'teams.not_found',
    );
    assert.equal(await teamCount(name), 0);
  });

  it("turns a unique violation into the module's 409, and records nothing", async () => {
    const name = uniq('Team ');
    await insertTeam(t.ctx.db, accountId, name);
    const before = (await auditRows(t, 'test.duplicate', accountId)).length;
    const duplicate = (unique?: Parameters<typeof auditedWrite>[3]) =>
      auditedWrite(
        t.ctx.db,
        origin,
        async (trx) => {
          const row = await insertTeam(trx, accountId, name.toUpperCase());
          return { result: row, audit: entry('test.duplicate', row.id) };
        },
        unique,
      );
    const is409 = (err: unknown) => err instanceof AppError && err.code === 'teams.name_taken' && err.status === 409;
    await assert.rejects(duplicate({ unique: nameTaken }), is409);
    await assert.rejects(duplicate({ unique: { teams_account_name_key: nameTaken } }), is409);
    // A constraint the module did not name, or no mapping at all: the database error itself.
    await assert.rejects(duplicate({ unique: { some_other_key: nameTaken } }), (err: unknown) => (err as { code?: string }).code === '23505');
    await assert.rejects(duplicate(), (err: unknown) => (err as { code?: string }).code === '23505');
    assert.equal((await auditRows(t, 'test.duplicate', accountId)).length, before);
    assert.equal(await teamCount(name), 1);
  });

  it('registrations racing on one login or one email: one 201, the others the 409 of that constraint', async () => {
    const race = async (bodies: { login: string; email: string }[]) =>
      (await Promise.all(bodies.map((b) => t.post('/v1/auth/register', { ...b, password: 'password123' })))).map((r) => (r.status === 201 ? 201 : r.body.code));
    const login = uniq('racer').toLowerCase();
    const byLogin = await race([0, 1, 2, 3].map((i) => ({ login: i % 2 ? login.toUpperCase() : login, email: `${login}-${i}@example.com` })));
    assert.deepEqual(byLogin.sort(), [201, 'auth.login_taken', 'auth.login_taken', 'auth.login_taken'].sort());
    const email = `${uniq('racer')}@example.com`.toLowerCase();
    const byEmail = await race([0, 1, 2, 3].map((i) => ({ login: uniq('racer'), email: i % 2 ? email.toUpperCase() : email })));
    assert.deepEqual(byEmail.sort(), [201, 'auth.email_taken', 'auth.email_taken', 'auth.email_taken'].sort());
  });

  it('distinct registrations in the same millisecond all succeed, each with its own personal account slug', async () => {
    const bodies = Array.from({ length: 12 }, () => ({ login: uniq('burst'), email: `${uniq('burst')}@example.com` }));
    const results = await Promise.all(bodies.map((b) => t.post('/v1/auth/register', { ...b, password: 'password123' })));
    assert.deepEqual(results.map((r) => r.status), bodies.map(() => 201), results.map((r) => r.text).join('\n'));
    const slugs = await Promise.all(results.map(async (r) => (await t.get('/v1/me', { token: r.body.access_token })).body.org_slug as string));
    assert.equal(new Set(slugs).size, 12);
    results.forEach((r, i) => assert.equal(slugs[i], `u-${r.body.user_id.replace(/-/g, '').slice(0, 12)}`));
  });
});
