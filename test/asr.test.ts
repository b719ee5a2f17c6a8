// ASR credentials and transcription (api.md §15): both scopes, the encrypted key, validation,
// the SSRF rule on base_url, rights, tenancy, the default flag, audit rows; and
// POST /v1/asr/transcribe against a local server speaking the OpenAI transcription wire format.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { registerUser, type Res, type TestUser } from './helpers/app.js';
import { expectError, expectFieldError } from './helpers/assert.js';
import { addMember, auditRows, createTeam, createWorkspace, type IdentityApp, setSetting, startIdentityApp } from './helpers/identity-app.js';
import { startFakeAsr, type FakeAsr } from './helpers/fake-asr.js';
import { decryptSecret } from '../src/lib/crypto.js';
import { AppError } from '../src/http/errors.js';
import { transcribe } from '../src/modules/asr/upstream.js';
import type { AsrCredentialRow } from '../src/modules/asr/store.js';

const KEY = 'sk-asr-0123456789abcdefghijklmnopqrstuvwxyz';
const FIELDS = ['base_url', 'created_at', 'id', 'is_default', 'key_prefix', 'model', 'name', 'org_id', 'provider', 'scope', 'updated_at'];
const MiB = 1024 * 1024;

type Opts = { token: string; headers: Record<string, string> };

describe('ASR credentials', () => {
  let t: IdentityApp;
  let root: TestUser; // platform admin
  let owner: TestUser;
  let member: TestUser;
  let other: TestUser;
  let ws: string;
  const inWs = (u: TestUser): Opts => ({ token: u.token, headers: { 'x-account-id': ws } });
  const admin = (): Opts => ({ token: root.token, headers: {} });

  async function create(body: Record<string, unknown>, opts: Opts = inWs(owner)) {
    const res = await t.post('/v1/asr-credentials', { name: 'c', provider: 'openai', api_key: KEY, model: 'whisper-1', ...body }, opts);
    assert.equal(res.status, 201, res.text);
    return res.body;
  }
  const list = async (opts: Opts) => {
    const res = await t.get('/v1/asr-credentials', opts);
    assert.equal(res.status, 200, res.text);
    return res.body as Array<{ id: string; scope: string; is_default: boolean; org_id: string | null }>;
  };

  before(async () => {
    t = await startIdentityApp();
    ({ root, owner, member, other, ws } = await createTeam(t));
  });
  after(async () => {
    await t.close();
  });

  it('creates an org credential: key encrypted at rest, only its prefix returned, first one default, audited without the key', async () => {
    const c = await create({ name: '  Office Whisper ', base_url: 'https://stt.example.com/v1/', is_default: false });
    assert.deepEqual(Object.keys(c).sort(), FIELDS);
    assert.equal(c.name, 'Office Whisper');
    assert.equal(c.scope, 'org');
    assert.equal(c.org_id, ws);
    assert.equal(c.provider, 'openai');
    assert.equal(c.model, 'whisper-1');
    assert.equal(c.key_prefix, KEY.slice(0, 8));
    assert.equal(c.base_url, 'https://stt.example.com/v1');
    assert.equal(c.is_default, true, 'the first credential of a scope is its default even with is_default false');
    assert.ok(c.created_at.endsWith('Z') && c.updated_at.endsWith('Z'));

    const row = await t.ctx.db.selectFrom('asr_credentials').selectAll().where('id', '=', c.id).executeTakeFirstOrThrow();
    assert.ok(!JSON.stringify(row).includes(KEY), 'the key is not stored in clear');
    assert.equal(decryptSecret(row.api_key_enc, t.ctx.secrets.encryptionKey), KEY);
    const audits = await auditRows(t, { action: 'asr_credential.create', targetId: c.id });
    assert.equal(audits.length, 1);
    assert.equal(audits[0].org_id, ws);
    assert.equal(audits[0].actor_user_id, owner.id);
    assert.equal(audits[0].target_type, 'asr_credential');
    assert.ok(!JSON.stringify(audits[0]).includes(KEY), 'the audit row holds no key');

    const got = await t.get(`/v1/asr-credentials/${c.id}`, inWs(owner));
    assert.equal(got.status, 200);
    assert.deepEqual(got.body, c);
    const listed = await t.get('/v1/asr-credentials', inWs(owner));
    for (const res of [got, listed]) assert.ok(!res.text.includes(KEY) && !res.text.includes(row.api_key_enc), 'no key or ciphertext in answers');

    const second = await create({ name: 'second', provider: 'groq', model: 'whisper-large-v3' });
    assert.equal(second.is_default, false, 'later credentials are not the default unless asked');
    assert.equal(second.base_url, null);
  });

  it('validates every field of a create', async () => {
    const base = { name: 'v', provider: 'openai', api_key: KEY, model: 'whisper-1' };
    const bad = (patch: Record<string, unknown>) => t.post('/v1/asr-credentials', { ...base, ...patch }, inWs(owner));
    const without = (field: string) => {
      const body: Record<string, unknown> = { ...base };
      delete body[field];
      return t.post('/v1/asr-credentials', body, inWs(owner));
    };
    for (const f of ['name', 'provider', 'api_key', 'model']) expectFieldError(await without(f), f);
    expectFieldError(await bad({ name: '   ' }), 'name');
    expectFieldError(await bad({ name: 'n'.repeat(101) }), 'name');
    expectFieldError(await bad({ name: 42 }), 'name');
    expectFieldError(await bad({ provider: 'azure' }), 'provider');
    expectFieldError(await bad({ provider: 'OpenAI' }), 'provider');
    expectFieldError(await bad({ api_key: '' }), 'api_key');
    expectFieldError(await bad({ api_key: 'k'.repeat(1001) }), 'api_key');
    expectFieldError(await bad({ api_key: 'sk has spaces' }), 'api_key');
    expectFieldError(await bad({ api_key: null }), 'api_key');
    expectFieldError(await bad({ model: '' }), 'model');
    expectFieldError(await bad({ model: 'm'.repeat(101) }), 'model');
    expectFieldError(await bad({ model: 'whisper\r\n1' }), 'model');
    expectFieldError(await bad({ base_url: 'not a url' }), 'base_url');
    expectFieldError(await bad({ base_url: 'ftp://stt.example.com/' }), 'base_url');
    expectFieldError(await bad({ base_url: 'https://example.com/' + 'a'.repeat(2048) }), 'base_url');
    expectFieldError(await bad({ base_url: 7 }), 'base_url');
    expectFieldError(await bad({ is_default: 'yes' }), 'is_default');
    expectFieldError(await bad({ scope: 'global' }), 'scope');
    // null on create counts as absent (§1.1); unknown fields are ignored.
    const ok = await t.post('/v1/asr-credentials', { ...base, base_url: null, is_default: null, colour: 'blue' }, inWs(owner));
    assert.equal(ok.status, 201, ok.text);
    assert.equal(ok.body.base_url, null);
  });

  it('org base_url: loopback and private targets are refused unless security.ssrf_allow_private; platform scope is trusted', async () => {
    for (const base_url of ['http://127.0.0.1:8080/v1', 'http://localhost/v1', 'http://[::1]/', 'http://169.254.169.254/', 'http://10.0.0.5/', 'http://user:pw@stt.example.com/']) {
      expectError(await t.post('/v1/asr-credentials', { name: 'ssrf', provider: 'openai', api_key: KEY, model: 'w', base_url }, inWs(owner)), 400, 'policy.ssrf_blocked');
    }
    const plat = await create({ name: 'local-platform', base_url: 'http://127.0.0.1:8080/v1', scope: 'platform' }, admin());
    assert.equal(plat.scope, 'platform');
    assert.equal(plat.org_id, null);
    await setSetting(t, 'security.ssrf_allow_private', true);
    try {
      assert.equal((await create({ name: 'local-org', base_url: 'http://127.0.0.1:8080/v1' })).base_url, 'http://127.0.0.1:8080/v1');
    } finally {
      await setSetting(t, 'security.ssrf_allow_private', false);
    }
    const c = await create({ name: 'patch-ssrf' });
    expectError(await t.patch(`/v1/asr-credentials/${c.id}`, { base_url: 'http://192.168.1.2/' }, inWs(owner)), 400, 'policy.ssrf_blocked');
    // The platform's own credential may be pointed anywhere by an admin.
    assert.equal((await t.patch(`/v1/asr-credentials/${plat.id}`, { base_url: 'http://10.1.2.3/v1' }, admin())).status, 200);
  });

  it('rights: data.secrets reads and writes org credentials; platform ones are listed read-only and written by platform admins only', async () => {
    const c = await create({ name: 'rights' });
    for (const res of [
      await t.get('/v1/asr-credentials', inWs(member)),
      await t.get(`/v1/asr-credentials/${c.id}`, inWs(member)),
      await t.post('/v1/asr-credentials', { name: 'm', provider: 'openai', api_key: KEY, model: 'w' }, inWs(member)),
      await t.patch(`/v1/asr-credentials/${c.id}`, { name: 'x' }, inWs(member)),
      await t.del(`/v1/asr-credentials/${c.id}`, inWs(member)),
      await t.post(`/v1/asr-credentials/${c.id}/set-default`, undefined, inWs(member)),
    ]) {
      expectError(res, 403, 'auth.forbidden');
    }
    // The permission comes before validation (§1.5).
    expectError(await t.post('/v1/asr-credentials', { provider: 'nope' }, inWs(member)), 403, 'auth.forbidden');
    expectError(await t.post('/v1/asr-credentials', { name: 'p', provider: 'openai', api_key: KEY, model: 'w', scope: 'platform' }, inWs(owner)), 403, 'auth.forbidden');

    const plat = await create({ name: 'shared-groq', provider: 'groq', model: 'whisper-large-v3', scope: 'platform' }, admin());
    const rows = await list(inWs(owner));
    const platformAt = rows.findIndex((r) => r.id === plat.id);
    assert.ok(platformAt >= 0, 'platform credentials are listed to the account');
    assert.ok(rows.findIndex((r) => r.scope === 'platform') > rows.findLastIndex((r) => r.scope === 'org'), "the account's credentials first, then the platform's");
    assert.ok(rows.every((r) => r.org_id === ws || r.org_id === null));
    assert.equal((await t.get(`/v1/asr-credentials/${plat.id}`, inWs(owner))).body.id, plat.id);
    expectError(await t.patch(`/v1/asr-credentials/${plat.id}`, { name: 'x' }, inWs(owner)), 403, 'auth.forbidden');
    expectError(await t.del(`/v1/asr-credentials/${plat.id}`, inWs(owner)), 403, 'auth.forbidden');
    expectError(await t.post(`/v1/asr-credentials/${plat.id}/set-default`, undefined, inWs(owner)), 403, 'auth.forbidden');
    const renamed = await t.patch(`/v1/asr-credentials/${plat.id}`, { name: 'shared-groq-2' }, admin());
    assert.equal(renamed.status, 200, renamed.text);
    const [audit] = await auditRows(t, { action: 'asr_credential.update', targetId: plat.id });
    assert.equal(audit.org_id, null, 'platform actions are recorded without an account');
  });

  it("another account's credential answers 404, and so does a non-UUID id", async () => {
    const c = await create({ name: 'mine' });
    const o: Opts = { token: other.token, headers: {} };
    expectError(await t.get(`/v1/asr-credentials/${c.id}`, o), 404, 'asr_credentials.not_found');
    expectError(await t.patch(`/v1/asr-credentials/${c.id}`, { name: 'x' }, o), 404, 'asr_credentials.not_found');
    expectError(await t.del(`/v1/asr-credentials/${c.id}`, o), 404, 'asr_credentials.not_found');
    expectError(await t.post(`/v1/asr-credentials/${c.id}/set-default`, undefined, o), 404, 'asr_credentials.not_found');
    expectError(await t.get('/v1/asr-credentials/not-a-uuid', o), 404, 'asr_credentials.not_found');
    expectError(await t.get('/v1/asr-credentials/01890000-0000-7000-8000-000000000000', inWs(owner)), 404, 'asr_credentials.not_found');
    assert.equal((await list(o)).some((x) => x.id === c.id), false);
    assert.ok((await list(o)).every((x) => x.scope === 'platform'), "the other account sees only the platform's");
  });

  it('updates: a new key replaces the old one, base_url null clears it, audited before/after without keys', async () => {
    const c = await create({ name: 'upd', base_url: 'https://a.example.com/v1' });
    const NEW = 'gsk_new_abcdefghijklmnop';
    const res = await t.patch(`/v1/asr-credentials/${c.id}`, { api_key: NEW, base_url: null, name: ' upd2 ', model: 'gpt-4o-transcribe', provider: 'groq' }, inWs(owner));
    assert.equal(res.status, 200, res.text);
    assert.deepEqual(Object.keys(res.body).sort(), FIELDS);
    assert.equal(res.body.key_prefix, NEW.slice(0, 8));
    assert.equal(res.body.base_url, null);
    assert.equal(res.body.name, 'upd2');
    assert.equal(res.body.model, 'gpt-4o-transcribe');
    assert.equal(res.body.provider, 'openai', 'provider is not a PATCH field: ignored');
    assert.ok(res.body.updated_at >= c.updated_at);
    const row = await t.ctx.db.selectFrom('asr_credentials').selectAll().where('id', '=', c.id).executeTakeFirstOrThrow();
    assert.equal(decryptSecret(row.api_key_enc, t.ctx.secrets.encryptionKey), NEW);
    const [audit] = await auditRows(t, { action: 'asr_credential.update', targetId: c.id });
    assert.ok(audit);
    assert.equal((audit.before_state as { name: string }).name, 'upd');
    assert.equal((audit.after_state as { name: string }).name, 'upd2');
    assert.ok(!JSON.stringify(audit).includes(NEW) && !JSON.stringify(audit).includes(KEY));
    // PUT is the PATCH alias (§1.1).
    assert.equal((await t.put(`/v1/asr-credentials/${c.id}`, { model: 'whisper-1' }, inWs(owner))).body.model, 'whisper-1');

    const patch = (body: Record<string, unknown>) => t.patch(`/v1/asr-credentials/${c.id}`, body, inWs(owner));
    expectError(await patch({}), 400, 'validation.error');
    expectError(await patch({ provider: 'groq' }), 400, 'validation.error');
    expectFieldError(await patch({ name: null }), 'name');
    expectFieldError(await patch({ name: '' }), 'name');
    expectFieldError(await patch({ api_key: '' }), 'api_key');
    expectFieldError(await patch({ api_key: null }), 'api_key');
    expectFieldError(await patch({ model: null }), 'model');
    expectFieldError(await patch({ model: 'm'.repeat(101) }), 'model');
    expectFieldError(await patch({ base_url: 'nope' }), 'base_url');
    expectFieldError(await patch({ base_url: false }), 'base_url');
  });

  it('one default per scope: is_default on create and set-default switch it in one step; set-default is audited', async () => {
    const acct: Opts = { token: other.token, headers: {} };
    const a = await create({ name: 'a' }, acct);
    assert.equal(a.is_default, true);
    const b = await create({ name: 'b', is_default: true }, acct);
    assert.equal(b.is_default, true);
    const defaults = async () => (await list(acct)).filter((x) => x.scope === 'org' && x.is_default).map((x) => x.id);
    assert.deepEqual(await defaults(), [b.id]);

    const switched = await t.post(`/v1/asr-credentials/${a.id}/set-default`, undefined, acct);
    assert.equal(switched.status, 200, switched.text);
    assert.deepEqual(Object.keys(switched.body).sort(), FIELDS);
    assert.equal(switched.body.is_default, true);
    assert.deepEqual(await defaults(), [a.id]);
    const [audit] = await auditRows(t, { action: 'asr_credential.set_default', targetId: a.id });
    assert.ok(audit);
    assert.equal(audit.org_id, other.personalAccountId);
    assert.equal((audit.metadata as { previous_default: string }).previous_default, b.id);

    // Already the default: answered, nothing changed, nothing recorded.
    assert.equal((await t.post(`/v1/asr-credentials/${a.id}/set-default`, {}, acct)).status, 200);
    assert.equal((await auditRows(t, { action: 'asr_credential.set_default', targetId: a.id })).length, 1);

    // Concurrent switches still leave exactly one default.
    await Promise.all([a, b, a, b].map((x) => t.post(`/v1/asr-credentials/${x.id}/set-default`, undefined, acct)));
    assert.equal((await defaults()).length, 1);

    // The platform's default is its own: switching it leaves the accounts' defaults alone.
    const p1 = await create({ name: 'p1', scope: 'platform' }, admin());
    await t.post(`/v1/asr-credentials/${p1.id}/set-default`, undefined, admin());
    assert.equal((await defaults()).length, 1);
    assert.equal((await list(acct)).filter((x) => x.scope === 'platform' && x.is_default).length, 1);
  });

  it('deletes: 204, audited, gone; no other credential is promoted to default', async () => {
    const acct: Opts = { token: member.token, headers: {} };
    const a = await create({ name: 'a' }, acct);
    const b = await create({ name: 'b' }, acct);
    assert.equal(a.is_default, true);
    const res = await t.del(`/v1/asr-credentials/${a.id}`, acct);
    assert.equal(res.status, 204);
    assert.equal(res.text, '');
    expectError(await t.get(`/v1/asr-credentials/${a.id}`, acct), 404, 'asr_credentials.not_found');
    expectError(await t.del(`/v1/asr-credentials/${a.id}`, acct), 404, 'asr_credentials.not_found');
    const [audit] = await auditRows(t, { action: 'asr_credential.delete', targetId: a.id });
    assert.ok(audit);
    assert.equal((audit.before_state as { name: string }).name, 'a');
    const rows = (await list(acct)).filter((x) => x.scope === 'org');
    assert.deepEqual(rows.map((x) => [x.id, x.is_default]), [[b.id, false]]);
  });

  it('is not open to API keys or anonymous callers', async () => {
    const key = await t.post('/v1/api-keys', { name: 'k' }, inWs(owner));
    assert.equal(key.status, 201, key.text);
    expectError(await t.get('/v1/asr-credentials', { token: key.body.key, headers: {} }), 403, 'auth.forbidden');
    expectError(await t.get('/v1/asr-credentials'), 401, 'auth.unauthorized');
    expectError(await t.post('/v1/asr/transcribe'), 401, 'auth.unauthorized');
  });
});

/** A multipart/form-data body as a browser would send it (the platform's FormData, not ours). */
async function form(parts: Array<[string, string] | [string, Buffer | Uint8Array, string, string?]>): Promise<{ payload: Buffer; type: string }> {
  const fd = new FormData();
  for (const p of parts) {
    if (p.length === 2) fd.append(p[0], p[1]);
    else fd.append(p[0], new Blob([p[1]], p[3] ? { type: p[3] } : {}), p[2]);
  }
  const req = new Request('http://form.invalid/', { method: 'POST', body: fd });
  return { payload: Buffer.from(await req.arrayBuffer()), type: req.headers.get('content-type')! };
}

describe('POST /v1/asr/transcribe', () => {
  let t: IdentityApp;
  let fake: FakeAsr;
  let root: TestUser;
  let owner: TestUser;
  let member: TestUser;
  let ws: string;
  const AUDIO = Buffer.from('RIFF....WAVEfmt fake audio bytes \u0000\u0001\u0002', 'latin1');

  const admin = (): Opts => ({ token: root.token, headers: {} });
  const inWs = (u: TestUser): Opts => ({ token: u.token, headers: { 'x-account-id': ws } });

  async function send(opts: Opts, parts: Parameters<typeof form>[0]): Promise<Res> {
    const { payload, type } = await form(parts);
    return t.post('/v1/asr/transcribe', undefined, { ...opts, raw: payload, headers: { ...opts.headers, 'content-type': type } });
  }
  const audio = (name = 'hello.wav', type = 'audio/wav', bytes: Buffer = AUDIO): [string, Buffer, string, string] => ['file', bytes, name, type];

  async function credential(body: Record<string, unknown>, opts: Opts) {
    const res = await t.post('/v1/asr-credentials', { name: 'c', provider: 'openai', api_key: KEY, model: 'whisper-1', ...body }, opts);
    assert.equal(res.status, 201, res.text);
    return res.body;
  }
  /** A platform credential made the platform default. */
  async function platformDefault(body: Record<string, unknown>) {
    const c = await credential({ scope: 'platform', base_url: `${fake.origin}/v1`, ...body }, admin());
    assert.equal((await t.post(`/v1/asr-credentials/${c.id}/set-default`, undefined, admin())).status, 200);
    return c;
  }

  before(async () => {
    t = await startIdentityApp();
    fake = await startFakeAsr();
    root = await registerUser(t);
    owner = await registerUser(t);
    member = await registerUser(t);
    ws = await createWorkspace(t, owner.id, 'Voice');
    await addMember(t, ws, member.id, 'member');
  });
  after(async () => {
    await fake?.close();
    await t?.close();
  });

  it('without any default credential: 409 asr.not_configured (after validation)', async () => {
    expectFieldError(await send(inWs(owner), [['language', 'en']]), 'file');
    expectError(await send(inWs(owner), [audio()]), 409, 'asr.not_configured');
    assert.equal(fake.received.length, 0);
  });

  it("uses the platform default when the account has none: sends the file, model, language and response_format with the bearer key, answers {text}", async () => {
    await platformDefault({ name: 'groq-platform', provider: 'groq', api_key: 'gsk_platform_key_1234', model: 'whisper-large-v3', base_url: `${fake.origin}/openai/v1/` });
    const res = await send(inWs(member), [audio('hello.wav', 'audio/wav'), ['language', ' de ']]);
    assert.equal(res.status, 200, res.text);
    assert.deepEqual(res.body, { text: `whisper-large-v3 heard ${AUDIO.length} bytes of hello.wav` });
    const got = fake.received.at(-1)!;
    assert.equal(got.path, '/openai/v1/audio/transcriptions');
    assert.equal(got.headers.authorization, 'Bearer gsk_platform_key_1234');
    assert.match(String(got.headers['content-type']), /^multipart\/form-data; boundary=/);
    assert.deepEqual(got.fields, { model: 'whisper-large-v3', language: 'de', response_format: 'json' });
    assert.equal(got.file?.filename, 'hello.wav');
    assert.equal(got.file?.type, 'audio/wav');
    assert.ok(got.file?.bytes.equals(AUDIO), 'the exact file bytes are forwarded');

    // Without language, none is sent; a file without a type goes as application/octet-stream.
    const plain = await send(inWs(owner), [['model', 'ignored'], audio('memo.webm', '')]);
    assert.equal(plain.status, 200, plain.text);
    assert.deepEqual(fake.received.at(-1)!.fields, { model: 'whisper-large-v3', response_format: 'json' });
    assert.equal(fake.received.at(-1)!.file?.type, 'application/octet-stream');
  });

  it("the account's own default comes first, through the SSRF guard: a loopback base_url is refused once private targets are no longer allowed", async () => {
    await setSetting(t, 'security.ssrf_allow_private', true);
    let own: { id: string };
    try {
      own = await credential({ name: 'org-openai', api_key: 'sk-org-key-5678', model: 'gpt-4o-mini-transcribe', base_url: `${fake.origin}/v1` }, inWs(owner));
      const res = await send(inWs(member), [audio('note.mp3', 'audio/mpeg')]);
      assert.equal(res.status, 200, res.text);
      assert.equal(res.body.text, `gpt-4o-mini-transcribe heard ${AUDIO.length} bytes of note.mp3`);
      assert.equal(fake.received.at(-1)!.headers.authorization, 'Bearer sk-org-key-5678');
      assert.equal(fake.received.at(-1)!.path, '/v1/audio/transcriptions');
    } finally {
      await setSetting(t, 'security.ssrf_allow_private', false);
    }
    const before = fake.received.length;
    expectError(await send(inWs(member), [audio()]), 400, 'policy.ssrf_blocked');
    assert.equal(fake.received.length, before, 'nothing reached the loopback server');
    // Storing one is refused too.
    expectError(await t.post('/v1/asr-credentials', { name: 'x', provider: 'openai', api_key: KEY, model: 'w', base_url: `${fake.origin}/v1` }, inWs(owner)), 400, 'policy.ssrf_blocked');
    // Without its default, the account falls back to the platform's.
    assert.equal((await t.del(`/v1/asr-credentials/${own!.id}`, inWs(owner))).status, 204);
    assert.equal((await send(inWs(member), [audio()])).status, 200);
  });

  it('upstream failures: 401 → 502 provider.auth_failed; 500, a non-JSON answer or no server → 502 provider.unavailable', async () => {
    await platformDefault({ name: 'bad', api_key: 'bad-key-000000' });
    expectError(await send(inWs(owner), [audio()]), 502, 'provider.auth_failed');
    await platformDefault({ name: 'broken', api_key: 'broken-key-000' });
    const broken = await send(inWs(owner), [audio()]);
    expectError(broken, 502, 'provider.unavailable');
    assert.equal(broken.body.details.upstream_status, 500);
    await platformDefault({ name: 'garbage', api_key: 'garbage-key-00' });
    expectError(await send(inWs(owner), [audio()]), 502, 'provider.unavailable');
    await platformDefault({ name: 'down', base_url: 'http://127.0.0.1:9/v1' });
    expectError(await send(inWs(owner), [audio()]), 502, 'provider.unavailable');
    for (const res of [broken]) assert.ok(!res.text.includes('broken-key'), 'no key in errors');
    await platformDefault({ name: 'good', api_key: 'sk-good-key-000' });
  });

  it('after 60 s without an answer the call fails with provider.timeout (shortened here)', async () => {
    const row = { id: 'x', org_id: null, scope: 'platform', provider: 'openai', name: 'hang', key_prefix: 'hang-key', base_url: `${fake.origin}/v1`, model: 'whisper-1', is_default: true, created_at: new Date(), updated_at: new Date() };
    const { encryptSecret } = await import('../src/lib/crypto.js');
    const cred = { ...row, api_key_enc: encryptSecret('hang-key-0000', t.ctx.secrets.encryptionKey) } as AsrCredentialRow;
    const err = await transcribe(cred, { data: AUDIO, filename: 'a.wav', contentType: 'audio/wav' }, { encryptionKey: t.ctx.secrets.encryptionKey, allowPrivate: false, timeoutMs: 300 }).then(
      () => null,
      (e: unknown) => e,
    );
    assert.ok(err instanceof AppError);
    assert.equal(err.code, 'provider.timeout');
    assert.equal(err.status, 504);
  });

  it('refuses an upload over 25 MiB with 413 before calling the provider; exactly 25 MiB passes', async () => {
    const before = fake.received.length;
    const over = await send(inWs(owner), [audio('big.wav', 'audio/wav', Buffer.alloc(25 * MiB + 1, 1))]);
    expectError(over, 413, 'validation.error');
    assert.equal(over.body.details.max_bytes, 25 * MiB);
    assert.equal(fake.received.length, before, 'the provider was not called');
    const exact = await send(inWs(owner), [audio('edge.wav', 'audio/wav', Buffer.alloc(25 * MiB, 2))]);
    assert.equal(exact.status, 200, exact.text);
    assert.equal(fake.received.at(-1)!.file?.bytes.length, 25 * MiB);
  });

  it('validates the form: a file is required (one, not empty, as a file part), language 2–8, multipart only', async () => {
    const before = fake.received.length;
    expectFieldError(await send(inWs(owner), []), 'file');
    expectFieldError(await send(inWs(owner), [['file', 'just text']]), 'file');
    expectFieldError(await send(inWs(owner), [audio('empty.wav', 'audio/wav', Buffer.alloc(0))]), 'file');
    expectFieldError(await send(inWs(owner), [audio(), audio('again.wav')]), 'file');
    expectFieldError(await send(inWs(owner), [audio(), ['language', 'e']]), 'language');
    expectFieldError(await send(inWs(owner), [audio(), ['language', 'english-uk']]), 'language');
    expectFieldError(await send(inWs(owner), [audio(), ['language', 'e n']]), 'language');
    // No body at all is a missing file; a JSON (or other non-multipart) body is unparseable here.
    expectFieldError(await t.post('/v1/asr/transcribe', undefined, inWs(owner)), 'file');
    expectError(await t.post('/v1/asr/transcribe', { file: 'aGVsbG8=' }, inWs(owner)), 422, 'validation.error');
    expectError(await t.post('/v1/asr/transcribe', undefined, { ...inWs(owner), raw: 'hello', headers: { ...inWs(owner).headers, 'content-type': 'text/plain' } }), 422, 'validation.error');
    // Malformed multipart bodies are a 400, never a 500.
    for (const [type, raw] of [
      ['multipart/form-data; boundary=xyz', '{"a":1}'],
      ['multipart/form-data', '--x\r\n'],
      ['multipart/form-data; boundary=xyz', '--xyz\r\nContent-Disposition: form-data; name="file"; filename="a.wav"\r\n\r\nunterminated'],
    ]) {
      expectError(await t.post('/v1/asr/transcribe', undefined, { ...inWs(owner), raw, headers: { ...inWs(owner).headers, 'content-type': type } }), 400, 'validation.error');
    }
    assert.equal(fake.received.length, before, 'nothing invalid reached the provider');
    // Other file fields and unknown fields are ignored.
    const ok = await send(inWs(owner), [['note', 'hi'], ['attachment', Buffer.from('x'), 'x.txt', 'text/plain'], audio('a.ogg', 'audio/ogg'), ['language', 'pt-BR']]);
    assert.equal(ok.status, 200, ok.text);
    assert.equal(fake.received.at(-1)!.fields.language, 'pt-BR');
    assert.equal(fake.received.at(-1)!.file?.filename, 'a.ogg');
  });

  it('is for any member, not for API keys; JSON routes still refuse multipart bodies', async () => {
    const key = await t.post('/v1/api-keys', { name: 'k' }, inWs(owner));
    const { payload, type } = await form([audio()]);
    expectError(await t.post('/v1/asr/transcribe', undefined, { token: key.body.key, raw: payload, headers: { 'content-type': type } }), 403, 'auth.forbidden');
    expectError(await t.post('/v1/asr/transcribe', undefined, { raw: payload, headers: { 'content-type': type } }), 401, 'auth.unauthorized');
    // The multipart parser is this route's alone.
    expectError(await t.post('/v1/threads', undefined, { ...inWs(owner), raw: payload, headers: { ...inWs(owner).headers, 'content-type': type } }), 422, 'validation.error');
    expectError(await t.post('/v1/asr-credentials', undefined, { ...inWs(owner), raw: payload, headers: { ...inWs(owner).headers, 'content-type': type } }), 422, 'validation.error');
  });
});
