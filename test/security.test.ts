// Security checks generated from the route table (routeTable(app), the routes the OpenAPI
// document is built from): every registered route, every method (HEAD and the PUT aliases of
// PATCH included), is checked against the caller rule it declares (api.md §1.2, §1.3, §1.5):
//   - 401 auth.unauthorized without credentials, with a tampered, expired, alg:none or
//     wrong-alg token, and with a revoked API key (also as ?access_token= where accepted);
//   - 403 auth.forbidden for a valid API key where keys are not accepted;
//   - 403 for a member, or a scoped API key, lacking the route's permission point; 403 for a
//     non-admin on padmin routes;
//   - for every path id: another account's real id → the resource's own 404; a non-UUID → the same.
// A route without a caller rule fails, unless it is listed as public below; so does a path id
// without a fixture. A new module is covered by adding its fixtures here, nothing else.
// A revoked key is a credential failure (401) on every protected route, user-only ones too:
// §1.2 refuses revoked keys with 401, and §1.5 checks credentials before "API key not allowed".

import { after, before, describe, it, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { SignJWT } from 'jose';
import type { FastifyRequest } from 'fastify';
import { registerUser, startTestApp, TEST_SECRETS, type Res, type TestApp, type TestUser } from './helpers/app.js';
import { createWorkspace, joinAccount } from './helpers/accounts-fixtures.js';
import { sampleOf, sampleQuery, type JsonSchema } from './helpers/schema-sample.js';
import { routeTable, type RouteEntry } from '../src/http/route.js';
import { pointsForRole } from '../src/modules/accounts/permissions.js';
import { insertConfig as insertMcpConfig } from '../src/modules/mcp-configs/store.js';
import { EVERYTHING_BIN } from './helpers/mcp.js';
import { newId } from '../src/lib/ids.js';
import { createNotification } from '../src/modules/notifications/store.js';

/**
 * Registered without a caller rule, public by design (§25). The swagger UI's own routes live under
 * /docs; the web console's page and static files (issue 11) under / and /assets/.
 */
const PUBLIC_SYSTEM = ['/healthz', '/readyz', '/metrics', '/openapi.json', '/'];
const isDocsOrConsoleRoute = (url: string) => url === '/docs' || url.startsWith('/docs/') || url.startsWith('/assets/');

/** Routes declared `anon` (GET covers its HEAD). */
const PUBLIC_ANON = [
  'GET /v1/auth/captcha-config',
  'POST /v1/auth/check',
  'GET /v1/auth/registration-mode',
  'POST /v1/auth/register',
  'POST /v1/auth/login',
  'POST /v1/auth/refresh',
  'POST /v1/auth/email/verify/confirm',
  'POST /v1/auth/email/otp/send',
  'POST /v1/auth/email/otp/verify',
  'POST /v1/auth/resolve',
  'POST /v1/auth/resolve/otp/send',
  'POST /v1/auth/resolve/otp/verify',
  'GET /v1/account-invitations/:token',
];

/**
 * Protected routes that need no permission point in the current account (api.md: the caller's
 * own data, or a right checked on the resource itself). Every other protected route must
 * declare one, so a forgotten `perm` fails here.
 */
const NO_PERMISSION_POINT = [
  'POST /v1/auth/logout',
  'POST /v1/auth/email/verify/send',
  'GET /v1/me',
  'PATCH /v1/me',
  'PUT /v1/me',
  'GET /v1/me/usage',
  'GET /v1/me/usage/daily',
  'GET /v1/me/usage/by-model',
  'GET /v1/me/credits',
  'GET /v1/me/invite-code',
  'POST /v1/me/invite-code/reset',
  'POST /v1/me/redeem',
  'GET /v1/me/feature-flags',
  'GET /v1/me/selectable-personas',
  'GET /v1/llm-providers', // any member: the list holds no secrets (§12.1)
  'GET /v1/llm-providers/:provider_id',
  'POST /v1/asr/transcribe', // any member (§15.6)
  'POST /v1/accounts',
  'GET /v1/accounts/me',
  'GET /v1/accounts/:account_id', // any member (§11.3)
  'POST /v1/account-invitations/:token/accept',
  'DELETE /v1/account-invitations/:invitation_id', // the point is checked in the invitation's account (§11.20)
  'GET /v1/plans', // any user (§17.1)
  'GET /v1/plans/:id',
  'GET /v1/subscriptions', // the current account's, any member (§17.7)
  'GET /v1/subscriptions/:id',
  'GET /v1/entitlements', // the current account's (§18.1)
  'GET /v1/notifications', // the caller's own, whatever the account (§19)
  'PATCH /v1/notifications',
  'PUT /v1/notifications',
  'PATCH /v1/notifications/:notification_id',
  'PUT /v1/notifications/:notification_id',
];

/** Path parameters that are not resource ids, with the value used for them. */
const NON_ID_PARAMS: Record<string, string> = { token: 'not-a-real-invitation-token', group: 'web_search', provider: 'web_search.tavily' };
// `:key` names a feature flag (§24) or a platform setting (§21.23); any flag key works for the flag routes.
NON_ID_PARAMS.key = 'credit.initial_grant';
// `:name` is a library file of the web console (/assets/vendor/:name); an unknown one is a plain 404.
NON_ID_PARAMS.name = 'unknown.js';

const ENVELOPE_KEYS = ['code', 'details', 'error', 'message', 'trace_id'];

interface Case {
  route: RouteEntry;
  what: string;
  method: string;
  url: string;
  headers: Record<string, string>;
  body?: unknown;
  expect: { status: number; code: string } | { notCode: string } | { noneOf: string[] };
}

const keyOf = (r: { method: string; url: string }) => `${r.method === 'HEAD' ? 'GET' : r.method} ${r.url}`;
const label = (r: RouteEntry) => `${r.method} ${r.url}`;

/** Path parameter names of a Fastify pattern (`:name`, `:name(regex)`; `::` is a literal colon). */
function paramsOf(url: string): string[] {
  return [...url.matchAll(/::|:(\w+)/g)].filter((m) => m[0] !== '::').map((m) => m[1]);
}

function fillPath(url: string, values: Record<string, string>): string {
  return url.replace(/::|:(\w+)(\([^)]*\))?/g, (m, name: string) => (m === '::' ? ':' : encodeURIComponent(values[name]))).replace('*', 'index.html');
}

function b64url(v: unknown): string {
  return Buffer.from(JSON.stringify(v)).toString('base64url');
}

describe('security (generated from the route table)', () => {
  let t: TestApp;
  let table: readonly RouteEntry[];
  let admin: TestUser;
  let ownerA: TestUser;
  let memberA: TestUser;
  let ownerB: TestUser;
  let wsA: string;
  let wsB: string;
  /** The 404 code of a path id → a real id in account A (the caller's) and one in account B. */
  const fixtures: Record<string, { own: string; foreign: string }> = {};
  const keys: Record<'full' | 'revoked' | 'scopedAudit' | 'scopedWebhooks', string> = {} as never;
  const bad: Record<string, string> = {};

  async function ok(res: Res, status = 201): Promise<any> {
    assert.equal(res.status, status, res.text);
    return res.body;
  }

  async function apiKey(user: TestUser, account: string, scopes: string[] = []): Promise<{ id: string; key: string }> {
    return ok(await t.post('/v1/api-keys', { name: 'k', scopes }, { token: user.token, headers: { 'x-account-id': account } }));
  }

  /** Thread (with a message), run, project, team (with `teamMember`), invitation, API key of `user` in `account`. */
  async function resourcesIn(user: TestUser, account: string, teamMember: TestUser) {
    const opts = { token: user.token, headers: { 'x-account-id': account } };
    const thread = await ok(await t.post('/v1/threads', { title: 'th' }, opts));
    await ok(await t.post(`/v1/threads/${thread.id}/messages`, { content: 'hello' }, opts));
    const run = await ok(await t.post(`/v1/threads/${thread.id}/runs`, {}, opts));
    const project = await ok(await t.post('/v1/projects', { name: 'p', visibility: 'shared' }, opts));
    const team = await ok(await t.post('/v1/teams', { name: 'team' }, opts));
    await ok(await t.post(`/v1/teams/${team.id}/members`, { user_id: teamMember.id, role: 'member' }, opts));
    const invitation = await ok(await t.post(`/v1/accounts/${account}/invitations`, { email: `x${Date.now()}${Math.random()}@example.com`.replace('0.', ''), role: 'member' }, opts));
    const key = await apiKey(user, account);
    const provider = await ok(await t.post('/v1/llm-providers', { name: 'prov', provider: 'stub' }, opts));
    const model = await ok(await t.post(`/v1/llm-providers/${provider.id}/models`, { model: 'm' }, opts));
    const asr = await ok(await t.post('/v1/asr-credentials', { name: 'asr', provider: 'openai', api_key: 'sk-asr-fixture', model: 'whisper-1' }, opts));
    const persona = await ok(await t.post('/v1/personas', { persona_key: 'sec', display_name: 'Sec', prompt_md: 'p' }, opts));
    return { persona: persona.id as string, thread: thread.id, run: run.run_id, project: project.id, team: team.id, invitation: invitation.id, key: key.id, provider: provider.id, model: model.id, asr: asr.id };
  }

  before(async () => {
    t = await startTestApp();
    table = routeTable(t.app);
    admin = await registerUser(t); // the first user is the platform admin; nobody below is one
    [ownerA, memberA, ownerB] = [await registerUser(t), await registerUser(t), await registerUser(t)];
    wsA = (await createWorkspace(t, ownerA)).id;
    wsB = (await createWorkspace(t, ownerB)).id;
    await joinAccount(t, ownerA, wsA, memberA, 'member');
    const a = await resourcesIn(ownerA, wsA, memberA);
    const b = await resourcesIn(ownerB, wsB, ownerB);
    Object.assign(fixtures, {
      'threads.not_found': { own: a.thread, foreign: b.thread },
      'runs.not_found': { own: a.run, foreign: b.run },
      'projects.not_found': { own: a.project, foreign: b.project },
      'teams.not_found': { own: a.team, foreign: b.team },
      // A member of A's team / of account A, and a user who is only in account B.
      'team_members.not_found': { own: memberA.id, foreign: ownerB.id },
      'account_members.not_found': { own: memberA.id, foreign: ownerB.id },
      'invitations.not_found': { own: a.invitation, foreign: b.invitation },
      'api_keys.not_found': { own: a.key, foreign: b.key },
      'llm_providers.not_found': { own: a.provider, foreign: b.provider },
      'llm_models.not_found': { own: a.model, foreign: b.model },
      'asr_credentials.not_found': { own: a.asr, foreign: b.asr },
      'personas.not_found': { own: a.persona, foreign: b.persona },
      'accounts.not_found': { own: wsA, foreign: wsB },
    });
    // MCP configs, inserted directly (a stdio config needs a platform admin): A's runs a real
    // server, so its tools endpoint answers the own-id control without a 5xx.
    const mcpConfig = async (org: string) =>
      (await insertMcpConfig(t.ctx.db, { org_id: org, name: 'mcp', transport: 'stdio', command: process.execPath, args: JSON.stringify([EVERYTHING_BIN, 'stdio']), env_keys: '[]', inherit_parent_env: false, call_timeout_ms: 10_000, is_active: true })).id;
    fixtures['mcp_configs.not_found'] = { own: await mcpConfig(wsA), foreign: await mcpConfig(wsB) };
    // Invite and redemption codes are platform-wide (padmin routes): `foreign` names nothing.
    fixtures['invite_codes.not_found'] = { own: (await ok(await t.get('/v1/me/invite-code', { token: ownerA.token }), 200)).id, foreign: newId() };
    const redemption = await ok(await t.post('/v1/admin/redemption-codes/batch', { count: 1, type: 'credits', value: '1' }, { token: admin.token }));
    fixtures['redemption_codes.not_found'] = { own: redemption.codes[0].id, foreign: newId() };

    // Platform-wide resources (padmin routes): `foreign` names nothing; subscriptions belong to an account.
    const asAdmin = { token: admin.token };
    const plan = await ok(await t.post('/v1/plans', { name: 'sec-plan', display_name: 'Sec' }, asAdmin));
    fixtures['plans.not_found'] = { own: plan.id, foreign: newId() };
    const subscribe = async (org: string) =>
      (await ok(await t.post('/v1/subscriptions', { org_id: org, plan_id: plan.id, current_period_start: '2020-01-01T00:00:00Z', current_period_end: '2020-02-01T00:00:00Z' }, asAdmin))).id as string;
    fixtures['subscriptions.not_found'] = { own: await subscribe(wsA), foreign: await subscribe(wsB) };
    const override = await ok(await t.post('/v1/entitlement-overrides', { org_id: wsA, key: 'quota.runs_per_month', value: '100', value_type: 'integer' }, asAdmin));
    fixtures['entitlement_overrides.not_found'] = { own: override.id, foreign: newId() };
    // Notifications belong to a user (A's owner, B's owner); broadcasts are platform-wide.
    const notice = async (user: TestUser) => (await createNotification(t.ctx.db, { userId: user.id, orgId: null, type: 'sec', title: 'sec' })).id;
    fixtures['notifications.not_found'] = { own: await notice(ownerA), foreign: await notice(ownerB) };
    const broadcast = await ok(await t.post('/v1/admin/notifications/broadcasts', { type: 'sec', title: 'sec', body: 'sec', target: wsA }, asAdmin), 202);
    fixtures['broadcasts.not_found'] = { own: broadcast.id, foreign: newId() };

    // Webhook endpoints (the app runs no worker: nothing is delivered).
    const webhookEndpoint = async (user: TestUser, org: string) =>
      (await ok(await t.post('/v1/webhook-endpoints', { url: 'https://hooks.example.com/in', events: ['*'] }, { token: user.token, headers: { 'x-account-id': org } }))).id as string;
    fixtures['webhook_endpoints.not_found'] = { own: await webhookEndpoint(ownerA, wsA), foreign: await webhookEndpoint(ownerB, wsB) };

    // IP rules (a range no test request comes from) and a flag with an override (platform-wide: `foreign` names nothing).
    const ipRule = async (user: TestUser, org: string) =>
      (await ok(await t.post('/v1/ip-rules', { type: 'blocklist', cidr: '203.0.113.0/24' }, { token: user.token, headers: { 'x-account-id': org } }))).id as string;
    fixtures['ip_rules.not_found'] = { own: await ipRule(ownerA, wsA), foreign: await ipRule(ownerB, wsB) };
    await ok(await t.post('/v1/feature-flags', { key: 'sec-flag', default_value: false }, asAdmin));
    await ok(await t.post('/v1/feature-flags/sec-flag/org-overrides', { org_id: wsA, enabled: true }, asAdmin), 200);
    fixtures['feature_flag_overrides.not_found'] = { own: wsA, foreign: newId() };
    // Users (admin routes): any user is the admin's to see; `foreign` names nobody.
    fixtures['users.not_found'] = { own: memberA.id, foreign: newId() };

    keys.full = (await apiKey(ownerA, wsA)).key;
    keys.scopedAudit = (await apiKey(ownerA, wsA, ['account.audit.read'])).key;
    keys.scopedWebhooks = (await apiKey(ownerA, wsA, ['data.webhooks.manage'])).key;
    const revoked = await apiKey(ownerA, wsA);
    await ok(await t.del(`/v1/api-keys/${revoked.id}`, { token: ownerA.token, headers: { 'x-account-id': wsA } }), 204);
    keys.revoked = revoked.key;

    // Bad access tokens for a real user and session: only the named defect differs.
    const [h, p, s] = ownerA.token.split('.');
    const claims = JSON.parse(Buffer.from(p, 'base64url').toString());
    const secret = new TextEncoder().encode(TEST_SECRETS.jwtSecret);
    const now = Math.floor(Date.now() / 1000);
    const flip = (c: string) => (c === 'A' ? 'B' : 'A');
    bad.tampered = `${h}.${p}.${s.slice(0, 10)}${flip(s[10])}${s.slice(11)}`;
    bad.tamperedPayload = `${h}.${b64url({ ...claims, sub: ownerB.id })}.${s}`;
    bad.expired = await new SignJWT({ sid: claims.sid, typ: 'access' })
      .setProtectedHeader({ alg: 'HS256', typ: 'JWT' })
      .setSubject(claims.sub)
      .setIssuedAt(now - 3600)
      .setExpirationTime(now - 60)
      .sign(secret);
    bad.algNone = `${b64url({ alg: 'none', typ: 'JWT' })}.${p}.`;
    bad.algHS512 = await new SignJWT({ sid: claims.sid, typ: 'access' })
      .setProtectedHeader({ alg: 'HS512', typ: 'JWT' })
      .setSubject(claims.sub)
      .setIssuedAt(now)
      .setExpirationTime(now + 600)
      .sign(secret);
    bad.revokedKey = keys.revoked;
  });
  after(async () => { await t?.close(); });

  const isPublic = (r: RouteEntry) =>
    r.access === null ? PUBLIC_SYSTEM.includes(r.url) || isDocsOrConsoleRoute(r.url) : r.access.caller === 'anon' && PUBLIC_ANON.includes(keyOf(r));

  /** The 404 code each path id answers (declared `ids`, or the path account); fails on ids nobody declared. */
  function idCodes(r: RouteEntry): Record<string, string> {
    const out: Record<string, string> = {};
    for (const name of paramsOf(r.url)) {
      if (name in NON_ID_PARAMS) continue;
      const code = r.access?.ids?.[name] ?? (name === 'account_id' && r.access?.accountFrom === 'path' ? 'accounts.not_found' : undefined);
      assert.ok(code, `${label(r)}: path parameter ${name} declares no 404 code (registerRoute ids) and is not a known non-id parameter`);
      assert.ok(fixtures[code], `${label(r)}: no fixture for ${code} (${name}): add one to test/security.test.ts`);
      out[name] = code;
    }
    return out;
  }

  /** The route's path with the caller's own ids (A), optionally one parameter replaced. */
  function pathOf(r: RouteEntry, override: Record<string, string> = {}): string {
    const values: Record<string, string> = { ...NON_ID_PARAMS };
    for (const [name, code] of Object.entries(idCodes(r))) values[name] = fixtures[code].own;
    return fillPath(r.url, { ...values, ...override });
  }

  /** A body and query that pass validation, so a request reaches the resource lookup. */
  function validInput(r: RouteEntry): { body?: unknown; query: string } {
    const schema = (r.schema ?? {}) as { body?: JsonSchema; querystring?: JsonSchema };
    const q = new URLSearchParams(sampleQuery(schema.querystring)).toString();
    const body = schema.body && !['GET', 'HEAD'].includes(r.method) ? sampleOf(schema.body, { oneOptional: ['PATCH', 'PUT'].includes(r.method) }) : undefined;
    return { body, query: q ? `?${q}` : '' };
  }

  function check(res: Res, c: Case): string | null {
    const where = `${c.method} ${c.url} [${c.what}]`;
    if ('noneOf' in c.expect) {
      if (res.status >= 500 || (res.status >= 400 && c.expect.noneOf.includes(res.body?.code))) return `${where}: answered ${res.status} ${res.text.slice(0, 200)}`;
      return null;
    }
    if ('notCode' in c.expect) {
      if (res.status === 401 && res.body?.code === c.expect.notCode) return `${where}: answered ${res.status} ${c.expect.notCode}`;
      if (res.status >= 500) return `${where}: answered ${res.status} ${res.text.slice(0, 200)}`;
      return null;
    }
    const { status, code } = c.expect;
    if (res.status !== status) return `${where}: expected ${status} ${code}, got ${res.status} ${res.text.slice(0, 200)}`;
    if (!res.headers['x-trace-id']) return `${where}: no X-Trace-Id`;
    if (c.method === 'HEAD') return null; // no body
    const b = res.body;
    if (!b || typeof b !== 'object') return `${where}: no JSON envelope: ${res.text.slice(0, 200)}`;
    if (JSON.stringify(Object.keys(b).sort()) !== JSON.stringify(ENVELOPE_KEYS)) return `${where}: envelope keys ${Object.keys(b)}`;
    if (b.code !== code || b.error !== code) return `${where}: expected code ${code}, got ${res.text.slice(0, 200)}`;
    if (typeof b.message !== 'string' || !b.message) return `${where}: no message`;
    if (!b.details || typeof b.details !== 'object' || Array.isArray(b.details)) return `${where}: details is not an object`;
    if (b.trace_id !== res.headers['x-trace-id']) return `${where}: trace_id ${b.trace_id} ≠ X-Trace-Id ${res.headers['x-trace-id']}`;
    return null;
  }

  /** Runs the cases a few at a time; one failure message per case that answered wrongly. */
  async function run(tc: TestContext, cases: Case[]): Promise<void> {
    assert.ok(cases.length > 0, 'no cases generated');
    const failures: string[] = [];
    const BATCH = 12;
    for (let i = 0; i < cases.length; i += BATCH) {
      await Promise.all(
        cases.slice(i, i + BATCH).map(async (c) => {
          const headers = { ...c.headers };
          const res = await t.request(c.method, c.url, c.body, { headers });
          const problem = check(res, c);
          if (problem) failures.push(problem);
        }),
      );
    }
    tc.diagnostic(`${cases.length} requests`);
    assert.deepEqual(failures, [], `${failures.length} of ${cases.length} checks failed:\n${failures.join('\n')}`);
  }

  const protectedRoutes = () => table.filter((r) => r.access && r.access.caller !== 'anon');
  const bearer = (token: string, extra: Record<string, string> = {}) => ({ authorization: `Bearer ${token}`, ...extra });

  it('every route declares a caller rule, or is listed here as public', () => {
    const missing = table.filter((r) => !r.access && !isPublic(r)).map(label);
    assert.deepEqual(missing, [], `routes without a caller rule (use registerRoute, or list them as public): ${missing.join(', ')}`);
    const unlisted = table.filter((r) => r.access?.caller === 'anon' && !isPublic(r)).map(label);
    assert.deepEqual(unlisted, [], `anon routes not listed in PUBLIC_ANON: ${unlisted.join(', ')}`);
    for (const entry of PUBLIC_ANON) {
      const r = table.find((x) => keyOf(x) === entry && x.method !== 'HEAD');
      assert.ok(r, `PUBLIC_ANON lists ${entry}, which is not registered`);
      assert.equal(r.access?.caller, 'anon', `PUBLIC_ANON lists ${entry}, which is not anon`);
    }
    for (const url of PUBLIC_SYSTEM) assert.ok(table.some((r) => r.url === url), `${url} is not registered`);
    const noPerm = protectedRoutes().filter((r) => r.access!.caller !== 'padmin' && !r.access!.perm && !NO_PERMISSION_POINT.includes(keyOf(r))).map(label);
    assert.deepEqual(noPerm, [], `protected routes without a permission point (declare perm, or list them in NO_PERMISSION_POINT): ${noPerm.join(', ')}`);
    for (const entry of NO_PERMISSION_POINT) {
      const r = table.find((x) => keyOf(x) === entry && x.method !== 'HEAD');
      assert.ok(r?.access && r.access.caller !== 'anon' && !r.access.perm, `NO_PERMISSION_POINT lists ${entry}, which is not a protected route without a point`);
    }
    // Every path id of every route has a fixture (idCodes asserts).
    for (const r of table) if (r.access) idCodes(r);
    assert.ok(protectedRoutes().length >= 60, `only ${protectedRoutes().length} protected routes found`);
  });

  it('the route table holds every operation of the OpenAPI document', async () => {
    const doc = (await t.get('/openapi.json')).body as { paths: Record<string, Record<string, unknown>> };
    const known = new Set(table.map((r) => `${r.method} ${r.url.replace(/::|:(\w+)(\([^)]*\))?/g, (m, name: string) => (m === '::' ? ':' : `{${name}}`))}`));
    const missing: string[] = [];
    for (const [path, ops] of Object.entries(doc.paths)) {
      for (const method of Object.keys(ops)) if (!known.has(`${method.toUpperCase()} ${path}`)) missing.push(`${method.toUpperCase()} ${path}`);
    }
    assert.deepEqual(missing, []);
  });

  it('credentials: 401 without them, with a tampered, expired, alg:none or HS512 token, and with a revoked API key', async (tc) => {
    const cases: Case[] = [];
    const expect = { status: 401, code: 'auth.unauthorized' };
    for (const r of protectedRoutes()) {
      const url = pathOf(r) + validInput(r).query;
      const body = validInput(r).body;
      const acct = r.access!.accountFrom === 'path' ? ({} as Record<string, string>) : { 'x-account-id': wsA };
      cases.push({ route: r, what: 'no credentials', method: r.method, url, headers: acct, body, expect });
      for (const [name, token] of Object.entries(bad)) {
        cases.push({ route: r, what: name, method: r.method, url, headers: bearer(token, acct), body, expect });
      }
      const sep = url.includes('?') ? '&' : '?';
      if (r.access!.queryToken) {
        // The SSE credential: the same refusals through ?access_token=.
        for (const [name, token] of Object.entries(bad)) {
          cases.push({ route: r, what: `${name} as ?access_token`, method: r.method, url: `${url}${sep}access_token=${encodeURIComponent(token)}`, headers: acct, body, expect });
        }
      } else {
        // Elsewhere ?access_token= is no credential at all, even a valid one.
        cases.push({ route: r, what: 'valid token as ?access_token', method: r.method, url: `${url}${sep}access_token=${ownerA.token}`, headers: acct, body, expect });
      }
    }
    await run(tc, cases);
  });

  it('API keys: 403 auth.forbidden where the route does not accept them', async (tc) => {
    const cases: Case[] = protectedRoutes()
      .filter((r) => r.access!.caller !== 'user+key')
      .map((r) => ({
        route: r,
        what: 'valid API key',
        method: r.method,
        url: pathOf(r) + validInput(r).query,
        body: validInput(r).body,
        headers: bearer(keys.full),
        expect: { status: 403, code: 'auth.forbidden' },
      }));
    await run(tc, cases);
  });

  it('account selection: a foreign X-Account-Id is a 404 for a token and a 403 for an API key; a malformed one a 400', async (tc) => {
    const cases: Case[] = [];
    for (const r of protectedRoutes().filter((x) => x.access!.accountFrom !== 'path')) {
      const { body, query } = validInput(r);
      const url = pathOf(r) + query;
      const c = (what: string, headers: Record<string, string>, status: number, code: string) =>
        cases.push({ route: r, what, method: r.method, url, body, headers, expect: { status, code } });
      c('token, X-Account-Id of an account it is not in', bearer(ownerA.token, { 'x-account-id': wsB }), 404, 'accounts.not_found');
      c('token, malformed X-Account-Id', bearer(ownerA.token, { 'x-account-id': 'not-a-uuid' }), 400, 'validation.error');
      if (r.access!.caller === 'user+key') {
        c('API key, X-Account-Id of another account', bearer(keys.full, { 'x-account-id': wsB }), 403, 'auth.forbidden');
        c('API key, X-Account-Id of no account', bearer(keys.full, { 'x-account-id': '01890000-0000-7000-8000-0000000000ff' }), 403, 'auth.forbidden');
      }
    }
    await run(tc, cases);
  });

  it('permission points: 403 for a member or a scoped API key lacking the point, and for non-admins on padmin routes', async (tc) => {
    const cases: Case[] = [];
    const forbidden = { status: 403, code: 'auth.forbidden' };
    /** The point the route wants from a caller holding `points` (perm may depend on the request). */
    const wanted = (r: RouteEntry, points: ReadonlySet<string>, userId: string, path: string): string | null => {
      const perm = r.access!.perm;
      if (typeof perm !== 'function') return perm ?? null;
      const params: Record<string, string> = {};
      const names = paramsOf(r.url);
      const m = new RegExp('^' + r.url.replace(/::/g, '\u0000').replace(/:(\w+)(\([^)]*\))?/g, '([^/:]+)').replace(/\u0000/g, ':') + '$').exec(path);
      names.forEach((n, i) => (params[n] = decodeURIComponent(m?.[i + 1] ?? '')));
      return perm({ params, query: {}, headers: {}, account: { points }, principal: { user: { id: userId } } } as unknown as FastifyRequest);
    };
    const memberPoints = pointsForRole('member');
    let covered = 0;
    for (const r of protectedRoutes()) {
      const path = pathOf(r);
      const { body, query } = validInput(r);
      if (r.access!.caller === 'padmin') {
        cases.push({ route: r, what: 'non-admin', method: r.method, url: path + query, body, headers: bearer(ownerA.token), expect: forbidden });
        covered++;
        continue;
      }
      const need = wanted(r, memberPoints, memberA.id, path);
      if (need && !memberPoints.has(need)) {
        const acct = r.access!.accountFrom === 'path' ? ({} as Record<string, string>) : { 'x-account-id': wsA };
        cases.push({ route: r, what: `member lacking ${need}`, method: r.method, url: path + query, body, headers: bearer(memberA.token, acct), expect: forbidden });
        covered++;
      }
      if (r.access!.caller === 'user+key') {
        const [key, scope] = wanted(r, new Set(['account.audit.read']), ownerA.id, path) === 'account.audit.read'
          ? [keys.scopedWebhooks, 'data.webhooks.manage']
          : [keys.scopedAudit, 'account.audit.read'];
        const keyNeed = wanted(r, new Set([scope]), ownerA.id, path);
        if (keyNeed) {
          cases.push({ route: r, what: `API key scoped to ${scope}, lacking ${keyNeed}`, method: r.method, url: path + query, body, headers: bearer(key), expect: forbidden });
          covered++;
        }
      }
    }
    assert.ok(covered >= 40, `only ${covered} permission checks generated`);
    await run(tc, cases);
  });

  it("resource ids: another account's real id answers the resource's own 404, and so does a non-UUID", async (tc) => {
    const cases: Case[] = [];
    let routesWithIds = 0;
    for (const r of protectedRoutes()) {
      const codes = idCodes(r);
      if (Object.keys(codes).length === 0) continue;
      routesWithIds++;
      const { body, query } = validInput(r);
      // padmin routes act platform-wide: no other account to hide from, only ids that name nothing.
      const padmin = r.access!.caller === 'padmin';
      const callers: Array<[string, Record<string, string>]> = padmin
        ? [['platform admin', bearer(admin.token)]]
        : [['access token', bearer(ownerA.token, r.access!.accountFrom === 'path' ? ({} as Record<string, string>) : { 'x-account-id': wsA })]];
      if (r.access!.caller === 'user+key') callers.push(['API key', bearer(keys.full)]);
      for (const [name, code] of Object.entries(codes)) {
        for (const [who, headers] of callers) {
          const expect = { status: 404, code };
          if (!padmin) cases.push({ route: r, what: `${who}, ${name} of another account`, method: r.method, url: pathOf(r, { [name]: fixtures[code].foreign }) + query, body, headers, expect });
          cases.push({ route: r, what: `${who}, ${name} not a UUID`, method: r.method, url: pathOf(r, { [name]: 'not-a-uuid' }) + query, body, headers, expect });
        }
      }
    }
    // The control: the caller's own ids are found (reads only), so the 404s above come from the
    // other account, not from fixtures that name nothing.
    for (const r of protectedRoutes().filter((x) => (x.method === 'GET' || x.method === 'HEAD') && Object.keys(idCodes(x)).length)) {
      const noneOf = [...Object.values(idCodes(r)), 'auth.unauthorized', 'auth.forbidden'];
      const token = r.access!.caller === 'padmin' ? admin.token : ownerA.token;
      const headers = bearer(token, r.access!.accountFrom === 'path' ? { accept: 'application/json' } : { 'x-account-id': wsA, accept: 'application/json' });
      cases.push({ route: r, what: 'own ids', method: r.method, url: pathOf(r) + validInput(r).query, headers, expect: { noneOf } });
    }
    assert.ok(routesWithIds >= 30, `only ${routesWithIds} routes with ids`);
    await run(tc, cases);
  });

  it('public routes need no credentials and ignore bad ones', async (tc) => {
    const cases: Case[] = table
      .filter((r) => isPublic(r))
      .map((r) => ({ route: r, what: 'tampered token', method: r.method, url: pathOf(r), headers: bearer(bad.tampered), expect: { notCode: 'auth.unauthorized' } }));
    await run(tc, cases);
  });
});
