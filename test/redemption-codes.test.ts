// Redemption codes (api.md §21.19–21.21 for admins, §4.9 for redeeming): batches, the list and
// its filters, (de)activation with audit rows, and redeeming — once per user, until expiry,
// at most max_uses times even under 100 concurrent redemptions, credited as ledger rows.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { newId } from '../src/lib/ids.js';
import { registerUser, startTestApp, type TestApp, type TestUser } from './helpers/app.js';
import { expectError, expectFieldError } from './helpers/assert.js';
import { adminCast, expectPadminOnly, type AdminCast } from './helpers/admin.js';
import { auditRows } from './helpers/identity-app.js';

const UUID_RE = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
const ISO_RE = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$/;
const CODE_RE = /^[ABCDEFGHJKLMNPQRSTUVWXYZ23456789]{4}(-[ABCDEFGHJKLMNPQRSTUVWXYZ23456789]{4}){3}$/;
const CODE_KEYS = ['batch_id', 'code', 'created_at', 'created_by_user_id', 'expires_at', 'id', 'is_active', 'max_uses', 'type', 'use_count', 'value'];
const HOUR = 3600_000;

interface Code {
  id: string;
  code: string;
  batch_id: string;
  max_uses: number;
  use_count: number;
  is_active: boolean;
  expires_at: string | null;
}

/**
 * Registers `n` users one after the other. Not in parallel: two registrations in the same
 * millisecond get the same personal-account slug (accounts/store.ts personalSlug takes the
 * timestamp digits of the UUID v7) and one of them fails with a 500.
 */
async function registerUsers(t: TestApp, n: number): Promise<TestUser[]> {
  const users: TestUser[] = [];
  for (let i = 0; i < n; i++) users.push(await registerUser(t));
  return users;
}

describe('redemption codes', () => {
  let t: TestApp;
  let cast: AdminCast;
  let admin: TestUser;

  const asAdmin = () => ({ token: admin.token });
  const createBatch = async (body: Record<string, unknown>) => {
    const res = await t.post('/v1/admin/redemption-codes/batch', { type: 'credits', value: '100', ...body }, asAdmin());
    assert.equal(res.status, 201, res.text);
    return res.body as { batch_id: string; count: number; codes: Code[] };
  };
  const list = (query: Record<string, string | number> = {}) => t.get('/v1/admin/redemption-codes', { ...asAdmin(), query });
  const redeem = (u: TestUser, code: string) => t.post('/v1/me/redeem', { code }, { token: u.token });

  before(async () => {
    t = await startTestApp();
    cast = await adminCast(t);
    admin = cast.admin;
  });
  after(async () => {
    t?.ctx.clock.reset();
    await t?.close();
  });

  describe('who may call', () => {
    const routes = (): Array<[string, string, unknown?]> => [
      ['POST', '/v1/admin/redemption-codes/batch', { count: 1, type: 'credits', value: '1' }],
      ['GET', '/v1/admin/redemption-codes'],
      ['PATCH', `/v1/admin/redemption-codes/${newId()}`, { is_active: false }],
      ['PUT', `/v1/admin/redemption-codes/${newId()}`, { is_active: false }],
    ];

    it('refuses members and API keys (even an admin’s) with 403, and needs an access token', async () => {
      for (const [method, path, body] of routes()) await expectPadminOnly(t, cast, method, path, body);
      // Nothing was created by the refused batch requests.
      assert.deepEqual((await list()).body, []);
    });
  });

  describe('POST /v1/admin/redemption-codes/batch', () => {
    it('creates unique codes with the defaults and a generated batch id, audited once', async () => {
      const res = await t.post('/v1/admin/redemption-codes/batch', { count: 3, type: 'credits', value: '250' }, asAdmin());
      assert.equal(res.status, 201, res.text);
      assert.deepEqual(Object.keys(res.body).sort(), ['batch_id', 'codes', 'count']);
      assert.match(res.body.batch_id, UUID_RE);
      assert.equal(res.body.count, 3);
      assert.equal(res.body.codes.length, 3);
      for (const c of res.body.codes) {
        assert.deepEqual(Object.keys(c).sort(), CODE_KEYS);
        assert.match(c.id, UUID_RE);
        assert.match(c.code, CODE_RE);
        assert.deepEqual(
          { type: c.type, value: c.value, max_uses: c.max_uses, use_count: c.use_count, is_active: c.is_active, expires_at: c.expires_at, batch_id: c.batch_id, created_by_user_id: c.created_by_user_id },
          { type: 'credits', value: '250', max_uses: 1, use_count: 0, is_active: true, expires_at: null, batch_id: res.body.batch_id, created_by_user_id: admin.id },
        );
        assert.match(c.created_at, ISO_RE);
      }
      assert.equal(new Set(res.body.codes.map((c: Code) => c.code)).size, 3);

      const audit = await auditRows(t, { action: 'redemption_code.batch_create', targetId: res.body.batch_id });
      assert.equal(audit.length, 1);
      assert.equal(audit[0].actor_user_id, admin.id);
      assert.equal(audit[0].org_id, null);
      assert.equal(audit[0].target_type, 'redemption_code_batch');
      assert.deepEqual(audit[0].metadata, { batch_id: res.body.batch_id, count: 3, type: 'credits', value: '250', max_uses: 1, expires_at: null });
    });

    it('keeps the given batch id, max_uses and expiry', async () => {
      const expiresAt = new Date(t.ctx.clock.nowMs() + 24 * HOUR).toISOString();
      const batch = await createBatch({ count: 2, value: '1000000000', max_uses: 5, expires_at: expiresAt, batch_id: '  spring-promo  ' });
      assert.equal(batch.batch_id, 'spring-promo');
      for (const c of batch.codes) assert.deepEqual([c.batch_id, c.max_uses, c.expires_at], ['spring-promo', 5, expiresAt]);
      // null is the same as absent.
      const nulls = await createBatch({ count: 1, max_uses: null, expires_at: null, batch_id: null });
      assert.match(nulls.batch_id, UUID_RE);
      assert.deepEqual([nulls.codes[0].max_uses, nulls.codes[0].expires_at], [1, null]);
    });

    it('creates up to 1000 unique codes at once', async () => {
      const batch = await createBatch({ count: 1000, batch_id: 'big' });
      assert.equal(batch.count, 1000);
      assert.equal(batch.codes.length, 1000);
      assert.equal(new Set(batch.codes.map((c) => c.code)).size, 1000);
      for (const c of batch.codes) assert.match(c.code, CODE_RE);
      assert.equal((await list({ batch_id: 'big', limit: 200 })).body.length, 200);
    });

    it('validates every field', async () => {
      const post = (body: Record<string, unknown>) => t.post('/v1/admin/redemption-codes/batch', { count: 1, type: 'credits', value: '10', ...body }, asAdmin());
      const without = (field: string) => {
        const body: Record<string, unknown> = { count: 1, type: 'credits', value: '10' };
        delete body[field];
        return t.post('/v1/admin/redemption-codes/batch', body, asAdmin());
      };
      for (const field of ['count', 'type', 'value']) expectFieldError(await without(field), field);
      for (const count of [0, 1001, 1.5, '3', null, -1]) expectFieldError(await post({ count }), 'count');
      for (const type of ['points', 'Credits', '', null, 1]) expectFieldError(await post({ type }), 'type');
      for (const value of ['0', '1000000001', '9999999999', '-5', '+5', '05', '1.5', '1e3', ' 10', 'abc', '', 100, null]) {
        expectFieldError(await post({ value }), 'value');
      }
      for (const max_uses of [0, -1, 1.5, '2', 2 ** 31]) expectFieldError(await post({ max_uses }), 'max_uses');
      const past = new Date(t.ctx.clock.nowMs() - 1000).toISOString();
      for (const expires_at of [past, 'tomorrow', '2030-01-01', 12345]) expectFieldError(await post({ expires_at }), 'expires_at');
      for (const batch_id of ['', '   ', 'x'.repeat(65), 7]) expectFieldError(await post({ batch_id }), 'batch_id');
      expectError(await t.post('/v1/admin/redemption-codes/batch', undefined, asAdmin()), 400, 'validation.error');
      assert.deepEqual((await list({ batch_id: 'x'.repeat(64) })).body, []);
    });

    it('"in the future" is decided by the app clock', async () => {
      const inAnHour = new Date(Date.now() + HOUR).toISOString();
      t.ctx.clock.advance(2 * HOUR);
      try {
        expectFieldError(await t.post('/v1/admin/redemption-codes/batch', { count: 1, type: 'credits', value: '1', expires_at: inAnHour }, asAdmin()), 'expires_at');
      } finally {
        t.ctx.clock.reset();
      }
      assert.equal((await t.post('/v1/admin/redemption-codes/batch', { count: 1, type: 'credits', value: '1', expires_at: inAnHour }, asAdmin())).status, 201);
    });
  });

  describe('GET /v1/admin/redemption-codes', () => {
    let first: { batch_id: string; codes: Code[] };
    let second: { batch_id: string; codes: Code[] };

    before(async () => {
      first = await createBatch({ count: 3, batch_id: 'list-a' });
      second = await createBatch({ count: 2, batch_id: 'list-b' });
    });

    it('lists codes newest first', async () => {
      const res = await list({ limit: 5 });
      assert.equal(res.status, 200, res.text);
      const ids = [...first.codes, ...second.codes].map((c) => c.id).reverse();
      assert.deepEqual(res.body.map((c: Code) => c.id), ids);
      assert.deepEqual(res.body[0], second.codes[1]);
    });

    it('filters by batch_id, type and q (a code substring, dashes and case ignored)', async () => {
      const ids = async (query: Record<string, string>) => ((await list({ limit: 200, ...query })).body as Code[]).map((c) => c.id);
      assert.deepEqual(await ids({ batch_id: 'list-a' }), first.codes.map((c) => c.id).reverse());
      assert.deepEqual(await ids({ batch_id: 'list-b', type: 'credits' }), second.codes.map((c) => c.id).reverse());
      assert.deepEqual(await ids({ batch_id: 'no-such-batch' }), []);
      const code = first.codes[1].code; // e.g. ABCD-EFGH-JKLM-NPQR
      const across = code.slice(2, 7); // spans a dash: "CD-EF"
      assert.deepEqual(await ids({ q: across }), [first.codes[1].id]);
      assert.deepEqual(await ids({ q: across.replace('-', '') }), [first.codes[1].id]);
      assert.deepEqual(await ids({ q: code.toLowerCase() }), [first.codes[1].id]);
      assert.deepEqual(await ids({ q: code.replace(/-/g, '') }), [first.codes[1].id]);
      assert.deepEqual(await ids({ q: code, batch_id: 'list-b' }), []);
      assert.deepEqual(await ids({ q: '%' }), []);
    });

    it('pages with cursor (alias before)', async () => {
      const p1 = await list({ batch_id: 'list-a', limit: 2 });
      assert.deepEqual(p1.body.map((c: Code) => c.id), [first.codes[2].id, first.codes[1].id]);
      const p2 = await list({ batch_id: 'list-a', limit: 2, cursor: p1.body[1].id });
      assert.deepEqual(p2.body.map((c: Code) => c.id), [first.codes[0].id]);
      assert.deepEqual((await list({ batch_id: 'list-a', limit: 2, before: p1.body[1].id })).body, p2.body);
      assert.deepEqual((await list({ batch_id: 'list-a', cursor: first.codes[0].id })).body, []);
      // Across batches without a filter.
      const all = await list({ limit: 3, cursor: second.codes[0].id });
      assert.deepEqual(all.body.map((c: Code) => c.id), first.codes.map((c) => c.id).reverse());
    });

    it('validates the query', async () => {
      expectFieldError(await list({ limit: 0 }), 'limit');
      expectFieldError(await list({ limit: 201 }), 'limit');
      expectFieldError(await list({ type: 'points' }), 'type');
      expectFieldError(await list({ batch_id: 'x'.repeat(65) }), 'batch_id');
      expectFieldError(await list({ q: 'x'.repeat(201) }), 'q');
      expectFieldError(await list({ cursor: 'not-a-uuid' }), 'cursor');
      expectFieldError(await list({ before: 'not-a-uuid' }), 'before');
      expectFieldError(await list({ cursor: newId() }), 'cursor');
      // A code of another batch is not an item of this batch's list.
      expectFieldError(await list({ batch_id: 'list-a', cursor: second.codes[0].id }), 'cursor');
    });
  });

  describe('PATCH /v1/admin/redemption-codes/{id}', () => {
    it('deactivates and reactivates a code, with audit rows; an inactive code cannot be redeemed', async () => {
      const [code] = (await createBatch({ count: 1, value: '40', max_uses: 3 })).codes;
      const res = await t.patch(`/v1/admin/redemption-codes/${code.id}`, { is_active: false }, asAdmin());
      assert.equal(res.status, 200, res.text);
      assert.deepEqual(res.body, { ...code, is_active: false });
      const user = await registerUser(t);
      expectError(await redeem(user, code.code), 404, 'redemption_codes.not_found');

      const on = await t.put(`/v1/admin/redemption-codes/${code.id}`, { is_active: true }, asAdmin());
      assert.equal(on.status, 200, on.text);
      assert.equal(on.body.is_active, true);
      assert.equal((await redeem(user, code.code)).status, 200);

      const audit = await auditRows(t, { action: 'redemption_code.update', targetId: code.id });
      assert.equal(audit.length, 2);
      assert.equal(audit[0].actor_user_id, admin.id);
      assert.equal(audit[0].org_id, null);
      assert.equal(audit[0].target_type, 'redemption_code');
      assert.deepEqual([audit[0].before_state, audit[0].after_state], [{ is_active: true }, { is_active: false }]);
      assert.deepEqual([audit[1].before_state, audit[1].after_state], [{ is_active: false }, { is_active: true }]);

      // Nothing changed: 200 with the code, no audit row.
      const same = await t.patch(`/v1/admin/redemption-codes/${code.id}`, { is_active: true }, asAdmin());
      assert.equal(same.status, 200);
      assert.equal(same.body.use_count, 1);
      assert.equal((await auditRows(t, { action: 'redemption_code.update', targetId: code.id })).length, 2);
    });

    it('validates is_active', async () => {
      const [code] = (await createBatch({ count: 1 })).codes;
      const patch = (body: unknown) => t.patch(`/v1/admin/redemption-codes/${code.id}`, body, asAdmin());
      expectFieldError(await patch({}), 'is_active');
      expectFieldError(await patch({ is_active: 'false' }), 'is_active');
      expectFieldError(await patch({ is_active: null }), 'is_active');
      expectFieldError(await patch({ is_active: 0 }), 'is_active');
      expectError(await patch(undefined), 400, 'validation.error');
    });

    it('404 redemption_codes.not_found for an unknown or malformed id', async () => {
      expectError(await t.patch(`/v1/admin/redemption-codes/${newId()}`, { is_active: false }, asAdmin()), 404, 'redemption_codes.not_found');
      expectError(await t.patch('/v1/admin/redemption-codes/CODE-1234', { is_active: false }, asAdmin()), 404, 'redemption_codes.not_found');
    });
  });

  describe('redeeming batch codes (POST /v1/me/redeem)', () => {
    it('credits the account through a redemption ledger row; once per user', async () => {
      const [code] = (await createBatch({ count: 1, value: '75', max_uses: 2 })).codes;
      const [u1, u2, u3] = await registerUsers(t, 3);
      const before = (await t.get('/v1/me/credits', { token: u1.token })).body.balance;
      const res = await redeem(u1, code.code.toLowerCase().replace(/-/g, ' '));
      assert.equal(res.status, 200, res.text);
      assert.deepEqual(res.body, { code: code.code, type: 'credits', value: '75', balance: before + 75 });
      const credits = (await t.get('/v1/me/credits', { token: u1.token })).body;
      assert.equal(credits.balance, before + 75);
      assert.deepEqual(
        { type: credits.transactions[0].type, amount: credits.transactions[0].amount, reference_type: credits.transactions[0].reference_type, reference_id: credits.transactions[0].reference_id },
        { type: 'credit', amount: 75, reference_type: 'redemption', reference_id: code.id },
      );
      expectError(await redeem(u1, code.code), 409, 'redemption_codes.already_redeemed');
      assert.equal((await redeem(u2, code.code)).status, 200);
      // Told "already redeemed" rather than "exhausted" when both hold.
      expectError(await redeem(u1, code.code), 409, 'redemption_codes.already_redeemed');
      expectError(await redeem(u3, code.code), 409, 'redemption_codes.exhausted');
      assert.equal((await t.get('/v1/me/credits', { token: u1.token })).body.balance, before + 75);
      const [row] = (await list({ q: code.code })).body as Code[];
      assert.equal(row.use_count, 2);
      const audit = await auditRows(t, { action: 'redemption_code.redeem', targetId: code.id });
      assert.deepEqual(audit.map((a) => a.actor_user_id), [u1.id, u2.id]);
    });

    it('expires at expires_at by the app clock', async () => {
      const expiresAt = new Date(t.ctx.clock.nowMs() + HOUR).toISOString();
      const [code] = (await createBatch({ count: 1, max_uses: 5, expires_at: expiresAt })).codes;
      const [u1, u2] = await registerUsers(t, 2);
      assert.equal((await redeem(u1, code.code)).status, 200);
      t.ctx.clock.advance(HOUR);
      try {
        expectError(await redeem(u2, code.code), 409, 'redemption_codes.expired');
      } finally {
        t.ctx.clock.reset();
      }
      const balance = (await t.get('/v1/me/credits', { token: u2.token })).body.transactions;
      assert.ok(!balance.some((tx: { reference_type: string }) => tx.reference_type === 'redemption'));
      assert.equal((await redeem(u2, code.code)).status, 200);
    });

    it('100 users at once on a code with max_uses 10: exactly 10 succeed', async () => {
      const [code] = (await createBatch({ count: 1, value: '5', max_uses: 10 })).codes;
      const users = await registerUsers(t, 100);
      const results = await Promise.all(users.map((u) => redeem(u, code.code)));
      const ok = results.filter((r) => r.status === 200);
      assert.equal(ok.length, 10, results.map((r) => r.status).join(','));
      const refused = results.filter((r) => r.status !== 200);
      assert.equal(refused.length, 90);
      for (const r of refused) expectError(r, 409, 'redemption_codes.exhausted');

      const [row] = (await list({ q: code.code })).body as Code[];
      assert.equal(row.use_count, 10);
      const ledger = await t.ctx.db
        .selectFrom('credit_transactions')
        .select(['org_id', 'amount'])
        .where('reference_type', '=', 'redemption')
        .where('reference_id', '=', code.id)
        .execute();
      assert.equal(ledger.length, 10);
      const winners = users.filter((_, i) => results[i].status === 200).map((u) => u.personalAccountId);
      assert.deepEqual(ledger.map((l) => l.org_id).sort(), winners.sort());
      assert.ok(ledger.every((l) => Number(l.amount) === 5));
      assert.equal((await auditRows(t, { action: 'redemption_code.redeem', targetId: code.id })).length, 10);
    });
  });
});
