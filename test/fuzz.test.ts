// OpenAPI-driven fuzzing: requests generated from the served /openapi.json — missing and
// wrong-typed fields, huge strings, NUL and lone surrogates, bad JSON, wrong content types,
// bad ids, deep nesting, injection-shaped strings, no or bad auth, and valid auth so requests
// reach validation and the handlers. Over real HTTP (app.listen on port 0), plus raw socket
// requests for what a client library cannot send (over-long headers and URLs, malformed
// request lines). Every answer: no 5xx, the error envelope and X-Trace-Id, no stack trace, SQL
// or file path, within a few seconds.
//   ARKLOOP_FUZZ_SEED=<n>      replay a run (the seed is printed)
//   ARKLOOP_FUZZ_REQUESTS=<n>  more requests (default 2000)
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import { Agent, request } from 'undici';
import { registerUser, startTestApp, type TestApp, type TestUser } from './helpers/app.js';
import { createWorkspace, joinAccount } from './helpers/accounts-fixtures.js';
import { sampleOf, typeOf, type JsonSchema } from './helpers/schema-sample.js';
import { startTestGateway, type TestGateway } from './helpers/gateway.js';
import { PROTOCOL_CASES, rawExchange } from './helpers/raw-http.js';

const SEED = Number(process.env.ARKLOOP_FUZZ_SEED ?? Math.floor(Math.random() * 2 ** 31));
const REQUESTS = Number(process.env.ARKLOOP_FUZZ_REQUESTS ?? 2000);
const MAX_MS = 5000;
const CONCURRENCY = 8;

// ---- seeded randomness (mulberry32) ---------------------------------------------------------

class Rand {
  private s: number;
  constructor(seed: number) {
    this.s = seed >>> 0;
  }
  next(): number {
    let t = (this.s = (this.s + 0x6d2b79f5) >>> 0);
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  }
  int(n: number): number {
    return Math.floor(this.next() * n);
  }
  chance(p: number): boolean {
    return this.next() < p;
  }
  pick<T>(list: readonly T[]): T {
    return list[this.int(list.length)];
  }
  str(n: number, alphabet = 'abcdefghijklmnopqrstuvwxyz0123456789'): string {
    let s = '';
    for (let i = 0; i < n; i++) s += alphabet[this.int(alphabet.length)];
    return s;
  }
}

// ---- hostile values --------------------------------------------------------------------------

/** Strings shaped like attacks; scrubbed from bodies before the leak scan (they may be echoed). */
const INJECTIONS = [
  "' OR '1'='1",
  "'; DROP TABLE users; --",
  '1 UNION SELECT password_hash FROM users --',
  '" OR ""="',
  "%' AND 1=1 --",
  "\\'; SELECT pg_sleep(5); --",
  '$1',
  '../../../../etc/passwd',
  '..\\..\\..\\windows\\win.ini',
  '/etc/passwd',
  'file:///etc/passwd',
  '{{7*7}}',
  '${7*7}',
  '#{7*7}',
  '<%= 7*7 %>',
  '${jndi:ldap://127.0.0.1/a}',
  '<script>alert(1)</script>',
  '__proto__',
  'constructor',
  '%s%s%s%n',
  'null',
  'undefined',
  'NaN',
  '1e309',
];
const WEIRD_STRINGS = ['', ' ', '\t\n\r', 'a\u0000b', '\u0000', '\ud800', 'x\udfffy', '\ud83d', '😀', '\u202eevil', '\u200b', 'é'.repeat(300), '\uffff', '\\', '"', "'"];
const WRONG_TYPES: unknown[] = [0, -1, 1.5, 2 ** 53 + 1, -(2 ** 31), 1e308, true, false, null, [], {}, [1, 'a'], { a: 1 }, '', 'string', '1'];
const BAD_JSON: Array<string | Buffer> = [
  '{',
  '{"a":',
  '{"a":1,}',
  "{'a':1}",
  '{"a":1}}',
  'nul',
  'null',
  '[]',
  '"x"',
  '123',
  'true',
  '\uFEFF{}',
  '{"a":"\\x"}',
  '{"a":1}garbage',
  '{"__proto__":{"polluted":1}}',
  '{"constructor":{"prototype":{"polluted":1}}}',
  '{"a":1,"a":2}',
  ' ',
  '\u0000',
  Buffer.from([0xff, 0xfe, 0x00, 0x7b]),
  Buffer.from('{"title":"\xff\xfe"}', 'latin1'),
];
const CONTENT_TYPES = [
  'application/json',
  'application/json; charset=utf-8',
  'text/plain',
  'application/x-www-form-urlencoded',
  'multipart/form-data; boundary=xyz',
  'application/xml',
  'application/vnd.api+json',
  'application/json; charset=latin1',
  'APPLICATION/JSON',
  'application/json, text/html',
  'application/json' + '; x=1'.repeat(200),
  '*/*',
  ';;;',
];
/** Raw (already URL-encoded) path segments that are no valid id. */
const BAD_IDS = [
  'not-a-uuid',
  '0',
  '-1',
  '00000000-0000-0000-0000-000000000000',
  'ffffffff-ffff-ffff-ffff-ffffffffffff',
  '01890000-0000-7000-8000-00000000000G',
  '01890000-0000-7000-8000-000000000000x',
  '01890000-0000-7000-8000-000000000000%00',
  '%00',
  '%2e%2e%2f%2e%2e%2fetc%2fpasswd',
  '..',
  '.',
  '%E0%A4%A',
  '%ED%A0%80',
  '%FF',
  "'%20OR%201=1--",
  '%7B%7B7*7%7D%7D',
  '%24%7B7*7%7D',
  'a'.repeat(300),
  'a'.repeat(3000),
  '%F0%9F%98%80',
  '%20',
  '',
  'null',
  '%25',
  ':cancel',
];
const ACCEPTS = ['application/json', 'text/event-stream', '*/*', 'text/html', 'application/json, text/event-stream', ''];

// ---- the document ----------------------------------------------------------------------------

interface Param {
  name: string;
  schema: JsonSchema;
  required: boolean;
}
interface Op {
  method: string;
  path: string;
  pathParams: string[];
  query: Param[];
  body?: JsonSchema;
}

function opsOf(doc: { paths: Record<string, Record<string, any>> }): Op[] {
  const ops: Op[] = [];
  for (const [path, methods] of Object.entries(doc.paths)) {
    for (const [m, op] of Object.entries(methods)) {
      const params = (op.parameters ?? []) as Array<{ in: string; name: string; schema: JsonSchema; required?: boolean }>;
      const base: Op = {
        method: m.toUpperCase(),
        path,
        pathParams: [...path.matchAll(/\{(\w+)\}/g)].map((x) => x[1]),
        query: params.filter((p) => p.in === 'query').map((p) => ({ name: p.name, schema: p.schema, required: !!p.required })),
        body: op.requestBody?.content?.['application/json']?.schema,
      };
      ops.push(base);
      if (base.method === 'PATCH') ops.push({ ...base, method: 'PUT' }); // §1.1 alias
      if (base.method === 'GET') ops.push({ ...base, method: 'HEAD' });
    }
  }
  return ops;
}

// ---- requests and checks ---------------------------------------------------------------------

interface FuzzRequest {
  method: string;
  path: string;
  headers: Record<string, string>;
  body?: string | Buffer;
  what: string[];
}

interface Answer {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  text: string;
  ms: number;
}

const ENVELOPE_KEYS = '["code","details","error","message","trace_id"]';
const LEAKS: Array<[string, RegExp]> = [
  ['stack trace', /\n\s+at \S|\bat (?:async )?[\w$.<>]+ \(|node:internal|node_modules/],
  ['file path', /(?:\/work\/|\/home\/|\/usr\/|\/root\/|\/tmp\/|\/src\/[\w/-]+\.[jt]s|\.ts:\d+|\.js:\d+:\d+)/],
  ['SQL', /\b(?:select|insert|update|delete)\b[^"]{0,60}\b(?:from|into|set|where)\b|syntax error at|relation "|column "|violates|duplicate key|sqlstate|pg_catalog|invalid input syntax|unterminated quoted/i],
];

/** Removes what the fuzzer itself sent (and may be stored and echoed back) before the leak scan. */
function scrub(text: string): string {
  let out = text;
  for (const s of INJECTIONS) {
    for (const form of [s, JSON.stringify(s).slice(1, -1), encodeURIComponent(s)]) out = out.split(form).join('');
  }
  return out;
}

function problemOf(req: FuzzRequest, res: Answer): string | null {
  if (res.status >= 500) return `answered ${res.status}`;
  if (res.ms > MAX_MS) return `answered after ${res.ms} ms`;
  const trace = res.headers['x-trace-id'];
  if (typeof trace !== 'string' || !trace) return 'no X-Trace-Id';
  const type = String(res.headers['content-type'] ?? '');
  if (res.status >= 400 && req.method !== 'HEAD') {
    let b: any;
    try {
      b = JSON.parse(res.text);
    } catch {
      return `error body is not JSON: ${res.text.slice(0, 200)}`;
    }
    if (!b || typeof b !== 'object' || JSON.stringify(Object.keys(b).sort()) !== ENVELOPE_KEYS) return `not the envelope: ${res.text.slice(0, 200)}`;
    if (typeof b.code !== 'string' || b.error !== b.code) return `bad code/error: ${res.text.slice(0, 200)}`;
    if (typeof b.message !== 'string' || !b.details || typeof b.details !== 'object' || Array.isArray(b.details)) return `bad message/details: ${res.text.slice(0, 200)}`;
    if (b.trace_id !== trace) return `trace_id ${b.trace_id} ≠ X-Trace-Id ${trace}`;
  }
  // Bodies the API writes (JSON, the metrics text); the swagger UI's own assets are not ours.
  if (res.status >= 400 || type.includes('json') || type.startsWith('text/plain')) {
    const clean = scrub(res.text);
    for (const [what, re] of LEAKS) {
      const m = re.exec(clean);
      if (m) return `${what} in the body (${JSON.stringify(m[0])}): ${clean.slice(Math.max(0, m.index - 80), m.index + 120)}`;
    }
  }
  return null;
}

function describeReq(req: FuzzRequest): string {
  const body = req.body === undefined ? '' : ` body=${JSON.stringify(String(req.body).slice(0, 160))}${String(req.body).length > 160 ? `…(${req.body.length})` : ''}`;
  const auth = req.headers.authorization ? ` auth=${req.headers.authorization.slice(0, 24)}…` : '';
  return `${req.method} ${req.path.slice(0, 200)}${auth} ct=${req.headers['content-type'] ?? '-'}${body} [${req.what.join(', ')}]`;
}

// ---- the test --------------------------------------------------------------------------------

describe(`fuzz (seed ${SEED}, replay with ARKLOOP_FUZZ_SEED=${SEED})`, () => {
  let t: TestApp;
  let origin: string;
  let port: number;
  let agent: Agent;
  const gateways: TestGateway[] = [];
  let ops: Op[];
  let u: TestUser;
  let admin: TestUser;
  let other: TestUser;
  let ws: string;
  let otherWs: string;
  let token = '';
  let key = '';
  /** Real ids by path parameter name: the fuzzer's own, and another account's. */
  const ids: Record<string, string[]> = {};

  async function login(user: TestUser): Promise<string> {
    // From an address of its own: the fuzzer's failed logins must not rate-limit this one.
    const res = await t.app.inject({ method: 'POST', url: '/v1/auth/login', remoteAddress: '10.255.0.1', payload: { login: user.login, password: user.password } });
    assert.equal(res.statusCode, 200, res.body);
    return JSON.parse(res.body).access_token;
  }

  async function newKey(): Promise<string> {
    const res = await t.post('/v1/api-keys', { name: 'fuzz' }, { token, headers: { 'x-account-id': ws } });
    assert.equal(res.status, 201, res.text);
    (ids.id ??= []).push(res.body.id);
    return res.body.key;
  }

  /**
   * The fuzzer may log itself out, revoke its key, or hand the workspace to another owner and
   * leave it: put things back so later requests still get past authentication.
   */
  async function keepCredentials(): Promise<void> {
    if ((await t.get('/v1/me', { token })).status === 401) token = await login(u);
    if ((await t.get(`/v1/accounts/${ws}`, { token })).body?.role !== 'owner') {
      await t.ctx.db
        .insertInto('account_memberships')
        .values({ account_id: ws, user_id: u.id, role: 'owner' })
        .onConflict((oc) => oc.columns(['account_id', 'user_id']).doUpdateSet({ role: 'owner' }))
        .execute();
      await t.ctx.credentials.changed(u.id);
    }
    if ((await t.get('/v1/threads', { token: key })).status === 401) key = await newKey();
  }

  before(async () => {
    t = await startTestApp();
    admin = await registerUser(t); // the first user: platform admin
    u = await registerUser(t);
    other = await registerUser(t);
    const member = await registerUser(t);
    token = u.token;
    ws = (await createWorkspace(t, u)).id;
    otherWs = (await createWorkspace(t, other)).id;
    await joinAccount(t, u, ws, member, 'member');
    key = await newKey();
    const add = (name: string, id: string) => (ids[name] ??= []).push(id);
    add('account_id', ws);
    add('account_id', otherWs);
    add('account_id', u.personalAccountId);
    for (const usr of [u, member, other]) add('user_id', usr.id);
    for (const [owner, acct] of [[u, ws], [other, otherWs]] as const) {
      const opts = { token: owner.token, headers: { 'x-account-id': acct } };
      for (let i = 0; i < 2; i++) {
        const th = await t.post('/v1/threads', { title: 'fuzz' }, opts);
        add('thread_id', th.body.id);
        await t.post(`/v1/threads/${th.body.id}/messages`, { content: 'hello' }, opts);
        const run = await t.post(`/v1/threads/${th.body.id}/runs`, {}, opts);
        add('run_id', run.body.run_id);
        add('project_id', (await t.post('/v1/projects', { name: 'p', visibility: 'shared' }, opts)).body.id);
        add('team_id', (await t.post('/v1/teams', { name: `team ${i}` }, opts)).body.id);
        const inv = await t.post(`/v1/accounts/${acct}/invitations`, { email: `fuzz${i}-${owner.id.slice(-6)}@example.com`, role: 'member' }, opts);
        add('invitation_id', inv.body.id);
        add('token', inv.body.token);
      }
    }
    ops = opsOf((await t.get('/openapi.json')).body);
    await t.app.listen({ port: 0, host: '127.0.0.1' });
    port = (t.app.server.address() as net.AddressInfo).port;
    origin = `http://127.0.0.1:${port}`;
    agent = new Agent({ connections: CONCURRENCY, keepAliveTimeout: 10_000 });
  });
  after(async () => {
    await agent?.close();
    for (const g of gateways) await g.close();
    await t?.close();
  });

  function authHeader(r: Rand, what: string[]): Record<string, string> {
    const roll = r.next();
    const h = (v: string, name: string) => (what.push(`auth ${name}`), { authorization: v });
    if (roll < 0.5) return h(`Bearer ${token}`, 'token');
    if (roll < 0.7) return h(`Bearer ${key}`, 'key');
    if (roll < 0.75) return h(`Bearer ${admin.token}`, 'admin');
    if (roll < 0.8) return h(`Bearer ${other.token}`, 'other user');
    if (roll < 0.88) return (what.push('no auth'), {});
    const [p, s] = token.split('.').slice(1);
    return h(
      r.pick([
        'Bearer',
        'Bearer ',
        'Basic dXNlcjpwYXNz',
        `Bearer ${'a'.repeat(5000)}`,
        `Bearer al_${r.str(40)}`,
        'Bearer a.b.c',
        `Bearer ${Buffer.from('{"alg":"none"}').toString('base64url')}.${p}.`,
        `Bearer ${token.split('.')[0]}.${p}.${s.slice(0, -4)}AAAA`,
        `bearer ${token}`,
        `Bearer ${token} extra`,
        `Bearer ${token}${token}`,
        `Token ${token}`,
        `Bearer ${r.pick(INJECTIONS.filter((x) => !/[^\x20-\x7e]/.test(x)))}`,
      ]),
      'bad',
    );
  }

  function pathValue(r: Rand, name: string, what: string[]): string {
    const real = ids[name];
    if (real?.length && r.chance(0.6)) return encodeURIComponent(r.pick(real));
    if (r.chance(0.3)) return [8, 4, 4, 4, 12].map((n) => r.str(n, '0123456789abcdef')).join('-');
    const bad = r.pick(BAD_IDS);
    what.push(`path ${name}=${bad.slice(0, 30)}`);
    return bad;
  }

  function queryValue(r: Rand, p: Param, what: string[]): string {
    const roll = r.next();
    if (roll < 0.5) return encodeURIComponent(String(sampleOf(p.schema, { name: p.name })));
    what.push(`query ${p.name} mutated`);
    if (roll < 0.65) return encodeURIComponent(String(r.pick(WRONG_TYPES)));
    if (roll < 0.75) return encodeURIComponent(r.pick(INJECTIONS));
    if (roll < 0.85) return r.pick(['%00', '%ED%A0%80', '%E0%A4%A', '%FF', '', 'a'.repeat(r.pick([300, 5000])), '%uD800', '-0', '1e999']);
    return (ids[p.name] ?? ids.thread_id)[0];
  }

  /** A valid body for the schema with optional fields filled at random. */
  function validBody(r: Rand, schema: JsonSchema): Record<string, unknown> {
    const base = (sampleOf(schema) ?? {}) as Record<string, unknown>;
    for (const [name, prop] of Object.entries(schema.properties ?? {})) {
      if (!(name in base) && r.chance(0.5)) base[name] = sampleOf(prop, { name });
      // References to real resources (project_id, team_id, user_id, ...) reach further.
      if (name in base && ids[name]?.length && r.chance(0.7)) base[name] = r.pick(ids[name]);
    }
    return base;
  }

  function mutateBody(r: Rand, schema: JsonSchema | undefined, what: string[]): { text: string | Buffer; type?: string } {
    const body = schema ? validBody(r, schema) : {};
    const fields = Object.keys(schema?.properties ?? {});
    const field = fields.length && r.chance(0.85) ? r.pick(fields) : r.pick(['extra', '__proto__', 'constructor', 'a'.repeat(300), '']);
    const fieldType = typeOf(schema?.properties?.[field] ?? {});
    let deep: string | null = null;
    const roll = r.next();
    if (roll < 0.25) {
      what.push('valid body');
    } else if (roll < 0.32) {
      for (const f of schema?.required ?? []) if (r.chance(0.7)) delete body[f];
      what.push('required fields dropped');
    } else if (roll < 0.45) {
      body[field] = r.pick(WRONG_TYPES);
      what.push(`${field}: wrong type (${fieldType})`);
    } else if (roll < 0.52) {
      const n = r.pick([1000, 70_000, 300_000, 1_100_000]);
      body[field] = r.chance(0.2) ? Array.from({ length: Math.min(n, 20_000) }, () => 'x') : 'A'.repeat(n);
      what.push(`${field}: huge (${n})`);
    } else if (roll < 0.62) {
      body[field] = r.pick(WEIRD_STRINGS);
      what.push(`${field}: weird string`);
    } else if (roll < 0.72) {
      body[field] = r.pick(INJECTIONS);
      what.push(`${field}: injection`);
    } else if (roll < 0.79) {
      const n = r.pick([100, 5000, 20_000]);
      deep = r.chance(0.5) ? '['.repeat(n) + ']'.repeat(n) : '{"a":'.repeat(n) + '1' + '}'.repeat(n);
      body[field] = '__DEEP__';
      what.push(`${field}: nested ${n} deep`);
    } else if (roll < 0.89) {
      what.push('bad JSON');
      return { text: r.pick(BAD_JSON), type: r.chance(0.8) ? 'application/json' : undefined };
    } else {
      what.push('wrong content type');
      return { text: JSON.stringify(body), type: r.pick(CONTENT_TYPES) };
    }
    let text = JSON.stringify(body);
    if (deep) text = text.replace('"__DEEP__"', deep);
    return { text, type: 'application/json' };
  }

  function generate(r: Rand): FuzzRequest {
    const what: string[] = [];
    if (r.chance(0.03)) {
      // Off the document: unknown routes and methods, aliases.
      const path = r.pick(['/v1/nope', '/v2/threads', '/', '/v1', '/v1/threads/x/y/z', '/v1/orgs/' + ws, '/v1/auth/me', '/v1/org-invitations/x', '/docs/../package.json', '/%2e%2e/etc/passwd']);
      return { method: r.pick(['GET', 'POST', 'DELETE', 'OPTIONS', 'PROPFIND', 'TRACE']), path, headers: authHeader(r, what), what: [...what, 'off the document'] };
    }
    const op = r.pick(ops);
    let path = op.path.replace(/\{(\w+)\}/g, (_m, name: string) => pathValue(r, name, what));
    const query: string[] = [];
    for (const p of op.query) {
      if (p.required ? r.chance(0.9) : r.chance(0.4)) query.push(`${p.name}=${queryValue(r, p, what)}`);
    }
    if (r.chance(0.1)) {
      query.push(r.pick(['limit=1&limit=2', 'limit[]=1', 'a[b]=c', `${r.str(5)}=${r.str(5)}`, 'follow=maybe', 'access_token=' + token, '&&&', '=x', '__proto__=1', '__proto__[x]=1', 'constructor[prototype][x]=1', 'hasOwnProperty=1']));
    }
    if (query.length) path += '?' + query.join('&');
    const headers: Record<string, string> = authHeader(r, what);
    if (r.chance(0.2)) headers['x-account-id'] = r.pick([ws, otherWs, u.personalAccountId, 'nope', '00000000-0000-0000-0000-000000000000', ' ' + ws]);
    if (r.chance(0.3)) headers.accept = r.pick(ACCEPTS);
    if (r.chance(0.1)) headers['idempotency-key'] = r.pick([`k-${r.str(8)}`, 'k-fixed', ' ', 'x'.repeat(300), '\t']);
    if (r.chance(0.05)) headers['last-event-id'] = r.pick(['5', '-1', '99999999999999999999', 'abc', '']);
    if (r.chance(0.05)) headers['x-trace-id'] = r.pick(['short', 'x'.repeat(200), 'valid-trace-id-123']);
    if (r.chance(0.05)) headers.cookie = `arkloop_refresh_token=${r.pick(['', 'x', 'a'.repeat(500), token])}`;
    if (r.chance(0.03)) headers['content-encoding'] = r.pick(['gzip', 'deflate', 'br', 'identity', 'x-junk']);
    if (r.chance(0.03)) headers['x-forwarded-for'] = r.pick(['1.2.3.4', 'not-an-ip', '::1, 10.0.0.1', 'a'.repeat(300)]);
    let body: string | Buffer | undefined;
    const sendBody = op.body ? r.chance(0.95) : r.chance(0.1);
    if (sendBody && op.method !== 'HEAD') {
      const b = mutateBody(r, op.body, what);
      body = b.text;
      if (b.type !== undefined) headers['content-type'] = b.type;
    }
    return { method: op.method, path, headers, body, what };
  }

  async function send(req: FuzzRequest): Promise<Answer> {
    const started = Date.now();
    const res = await request(origin + req.path, {
      method: req.method as 'GET',
      headers: req.headers,
      body: req.body,
      dispatcher: agent,
      signal: AbortSignal.timeout(MAX_MS * 2),
    });
    let text = '';
    if (String(res.headers['content-type'] ?? '').startsWith('text/event-stream')) {
      res.body.on('error', () => undefined);
      res.body.destroy(); // a live stream: its headers are the answer
    } else {
      text = await res.body.text();
    }
    return { status: res.statusCode, headers: res.headers, text, ms: Date.now() - started };
  }

  it(`${REQUESTS} generated requests: no 5xx, the envelope on every error, no leaks, answers in time`, async (tc) => {
    tc.diagnostic(`seed ${SEED} (replay: ARKLOOP_FUZZ_SEED=${SEED} npm test -- fuzz); ${ops.length} operations`);
    const r = new Rand(SEED);
    const failures: string[] = [];
    const statuses: Record<number, number> = {};
    let slowest = 0;
    for (let done = 0; done < REQUESTS; done += CONCURRENCY * 4) {
      const batch = Array.from({ length: Math.min(CONCURRENCY * 4, REQUESTS - done) }, () => generate(r));
      for (let i = 0; i < batch.length; i += CONCURRENCY) {
        await Promise.all(
          batch.slice(i, i + CONCURRENCY).map(async (req) => {
            let res: Answer;
            try {
              res = await send(req);
            } catch (err) {
              failures.push(`${describeReq(req)}: ${(err as Error).message}`);
              return;
            }
            statuses[res.status] = (statuses[res.status] ?? 0) + 1;
            slowest = Math.max(slowest, res.ms);
            const problem = problemOf(req, res);
            if (problem) failures.push(`${describeReq(req)}: ${problem}`);
          }),
        );
      }
      await keepCredentials();
      if (failures.length > 20) break;
    }
    tc.diagnostic(`statuses ${JSON.stringify(statuses)}; slowest ${slowest} ms`);
    assert.deepEqual(failures, [], `seed ${SEED}: ${failures.length} bad answers:\n${failures.join('\n')}`);
    // The fuzzer got past authentication and validation, into the handlers.
    const ok = Object.entries(statuses).filter(([s]) => Number(s) < 300).reduce((n, [, c]) => n + c, 0);
    assert.ok(ok > REQUESTS / 50, `only ${ok} successful answers: the generator no longer reaches the handlers`);
  });

  it('what Node itself refuses (over-long headers and URLs, malformed requests) answers with the envelope too: on the API and through the gateway inside serve', async () => {
    // The gateway handing requests to this API, as in `arkloop serve` (the proxying one: gateway.test.ts).
    const gateway = await startTestGateway([origin], { local: t });
    gateways.push(gateway);
    const failures: string[] = [];
    for (const [via, p] of [['api', port], ['gateway in serve', gateway.port]] as const) for (const [what, payload, status] of PROTOCOL_CASES) {
      const name = `${what} (${via})`;
      const res = await rawExchange(p, payload, MAX_MS).catch((err: Error) => ({ status: 0, headers: {}, body: err.message }));
      const problem =
        res.status !== status
          ? `expected ${status}, got ${res.status} ${res.body.slice(0, 200)}`
          : problemOf({ method: 'GET', path: '/', headers: {}, what: [] }, { status: res.status, headers: res.headers, text: res.body, ms: 0 });
      if (problem) failures.push(`${name}: ${problem}`);
      else {
        const b = JSON.parse(res.body);
        if (b.code !== 'validation.error') failures.push(`${name}: code ${b.code}`);
      }
    }
    assert.deepEqual(failures, []);
  });
});
