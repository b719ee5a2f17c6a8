// One test per audit action of api.md §22 that the code writes: each performs the action through
// HTTP and finds its row through GET /v1/audit-logs, with the right actor, account and target,
// the trace id of the request, and no secret of the request or its answer anywhere in the row
// (include=state). Table-driven: a module that starts writing an action adds its case to CASES
// and takes it out of NOT_WRITTEN_YET; the last test keeps the two lists and the code in step.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { registerUser, startTestApp, uniq, type Res, type TestApp, type TestUser } from './helpers/app.js';
import { createWorkspace, inAccount, joinAccount } from './helpers/accounts-fixtures.js';
import { startSmtpCapture } from './helpers/smtp.js';
import { hashToken } from '../src/lib/crypto.js';
import { newId } from '../src/lib/ids.js';

/** Every action of the §22 table. */
const SPEC_ACTIONS = [
  'user.register', 'user.login', 'user.login_failed', 'user.logout', 'user.email_verified', 'user.update',
  'api_key.create', 'api_key.revoke',
  'account.create', 'account.update', 'account.member_update', 'account.member_remove', 'invitation.create', 'invitation.accept', 'invitation.revoke',
  'team.create', 'team.update', 'team.delete', 'team.member_add', 'team.member_remove',
  'thread.create', 'thread.update', 'thread.delete', 'project.create', 'project.update', 'project.delete', 'run.cancel',
  'persona.create', 'persona.update', 'persona.delete', 'llm_provider.create', 'llm_provider.update', 'llm_provider.delete',
  'llm_model.create', 'llm_model.update', 'llm_model.delete', 'mcp_config.create', 'mcp_config.update', 'mcp_config.delete',
  'tool_provider.activate', 'tool_provider.deactivate', 'tool_provider.credential_set', 'tool_provider.credential_clear',
  'asr_credential.create', 'asr_credential.update', 'asr_credential.delete', 'asr_credential.set_default',
  'webhook_endpoint.create', 'webhook_endpoint.update', 'webhook_endpoint.delete', 'webhook_endpoint.rotate_secret',
  'ip_rule.create', 'ip_rule.delete', 'ip_rule.denied',
  'feature_flag.create', 'feature_flag.update', 'feature_flag.delete', 'feature_flag.override_set', 'feature_flag.override_delete',
  'credits.adjust', 'credits.bulk_adjust', 'credits.reset_all', 'plan.create', 'plan.update', 'plan.delete', 'subscription.create', 'subscription.cancel',
  'entitlement_override.create', 'entitlement_override.delete', 'invite_code.reset', 'invite_code.update',
  'redemption_code.batch_create', 'redemption_code.update', 'redemption_code.redeem',
  'admin.user_update', 'admin.user_delete', 'broadcast.create', 'broadcast.delete', 'email_config.update', 'email.test', 'gateway_config.update', 'platform_setting.update',
];

/** Actions of the table no module writes yet (their modules are being built); each moves to CASES with its module. */
const NOT_WRITTEN_YET: string[] = [];

/**
 * Actions whose row is asserted by their module's own test file for now (written by the modules
 * merged last); each is to become a case here. The check below keeps the file naming it.
 */
const TESTED_IN_MODULE_FILE: Record<string, string> = {};

/** What a case did, and what its audit row must say. */
interface Performed {
  /** The answer of the request that performed the action (its trace id is the row's). */
  res: Res;
  orgId: string | null;
  actor: string | null;
  targetType: string | null;
  targetId: string | null;
  /** Strings that must appear nowhere in the row: passwords, tokens, keys, their hashes, env values. */
  secrets?: string[];
  /** The row records the resource before and/or after the change. */
  state?: 'before' | 'after' | 'both';
}

interface Fixture {
  t: TestApp;
  admin: TestUser;
  owner: TestUser;
  ws: string;
  /** A new user who joined `ws` with this role. */
  newMember(role?: 'admin' | 'member'): Promise<TestUser>;
  /** `res` answered `status` (else the test fails with its body); returns the body. */
  ok(res: Res, status?: number): any;
}

const asOwner = (f: Fixture) => inAccount(f.owner, f.ws);
const asAdmin = (f: Fixture) => ({ token: f.admin.token });
const wsRow = (f: Fixture, res: Res, targetType: string, targetId: string, extra: Partial<Performed> = {}): Performed => ({
  res, orgId: f.ws, actor: f.owner.id, targetType, targetId, ...extra,
});
const platformRow = (f: Fixture, res: Res, targetType: string | null, targetId: string | null, extra: Partial<Performed> = {}): Performed => ({
  res, orgId: null, actor: f.admin.id, targetType, targetId, ...extra,
});

async function thread(f: Fixture): Promise<string> {
  return f.ok(await f.t.post('/v1/threads', { title: 'audited' }, asOwner(f))).id;
}
async function project(f: Fixture): Promise<string> {
  return f.ok(await f.t.post('/v1/projects', { name: 'audited', visibility: 'shared' }, asOwner(f))).id;
}
async function team(f: Fixture): Promise<string> {
  return f.ok(await f.t.post('/v1/teams', { name: uniq('team') }, asOwner(f))).id;
}
async function persona(f: Fixture): Promise<string> {
  return f.ok(await f.t.post('/v1/personas', { persona_key: uniq('p').toLowerCase(), display_name: 'Audited', prompt_md: 'Be brief.' }, asOwner(f))).id;
}
const LLM_KEY = 'sk-audit-llm-secret-0123456789';
async function llmProvider(f: Fixture): Promise<string> {
  return f.ok(await f.t.post('/v1/llm-providers', { name: uniq('prov'), provider: 'openai', api_key: LLM_KEY }, asOwner(f))).id;
}
const ASR_KEY = 'sk-audit-asr-secret-0123456789';
async function asrCredential(f: Fixture): Promise<string> {
  return f.ok(await f.t.post('/v1/asr-credentials', { name: uniq('asr'), provider: 'openai', api_key: ASR_KEY, model: 'whisper-1' }, asOwner(f))).id;
}
const ENV_VALUE = 'env-audit-secret-value-42';
async function mcpConfig(f: Fixture): Promise<string> {
  const body = { name: uniq('mcp'), transport: 'stdio', command: process.execPath, args: ['-e', '0'], env: { AUDIT_TOKEN: ENV_VALUE, PLAIN: 'plain-env-value-7' } };
  return f.ok(await f.t.post('/v1/mcp-configs', body, asAdmin(f))).id;
}
const TAVILY = '/v1/tool-providers/web_search/web_search.tavily';
const ORG_SCOPE = '?scope=org';
const TOOL_KEY = 'tvly-audit-secret-0123456789';
async function plan(f: Fixture): Promise<string> {
  return f.ok(await f.t.post('/v1/plans', { name: uniq('plan').toLowerCase(), display_name: 'Audited' }, asAdmin(f))).id;
}
async function toolProviderId(f: Fixture): Promise<string> {
  const row = await f.t.ctx.db.selectFrom('tool_provider_configs' as never).select('id' as never).where('org_id' as never, '=', f.ws as never).where('provider_name' as never, '=', 'web_search.tavily' as never).executeTakeFirstOrThrow();
  return (row as { id: string }).id;
}

async function webhookEndpoint(f: Fixture): Promise<{ id: string; secret: string }> {
  return f.ok(await f.t.post('/v1/webhook-endpoints', { url: 'https://hooks.example.com/in', events: ['*'] }, asOwner(f)));
}
async function flag(f: Fixture): Promise<string> {
  const key = uniq('flag').toLowerCase();
  f.ok(await f.t.post('/v1/feature-flags', { key, default_value: false }, asAdmin(f)));
  return key;
}

const CASES: Record<string, (f: Fixture) => Promise<Performed>> = {
  // Webhooks, IP rules, feature flags and the admin surface (issue 10).
  'webhook_endpoint.create': async (f) => {
    const res = await f.t.post('/v1/webhook-endpoints', { url: 'https://hooks.example.com/in', events: ['*'] }, asOwner(f));
    const body = f.ok(res);
    return wsRow(f, res, 'webhook_endpoint', body.id, { secrets: [body.secret], state: 'after' });
  },
  'webhook_endpoint.update': async (f) => {
    const e = await webhookEndpoint(f);
    const res = await f.t.patch(`/v1/webhook-endpoints/${e.id}`, { description: 'audited' }, asOwner(f));
    f.ok(res, 200);
    return wsRow(f, res, 'webhook_endpoint', e.id, { secrets: [e.secret], state: 'both' });
  },
  'webhook_endpoint.delete': async (f) => {
    const e = await webhookEndpoint(f);
    const res = await f.t.del(`/v1/webhook-endpoints/${e.id}`, asOwner(f));
    f.ok(res, 200);
    return wsRow(f, res, 'webhook_endpoint', e.id, { secrets: [e.secret], state: 'before' });
  },
  'webhook_endpoint.rotate_secret': async (f) => {
    const e = await webhookEndpoint(f);
    const res = await f.t.post(`/v1/webhook-endpoints/${e.id}/rotate-secret`, undefined, asOwner(f));
    return wsRow(f, res, 'webhook_endpoint', e.id, { secrets: [e.secret, f.ok(res, 200).secret] });
  },
  'ip_rule.create': async (f) => {
    const res = await f.t.post('/v1/ip-rules', { type: 'blocklist', cidr: '203.0.113.0/24' }, asOwner(f));
    return wsRow(f, res, 'ip_rule', f.ok(res).id, { state: 'after' });
  },
  'ip_rule.delete': async (f) => {
    const rule = f.ok(await f.t.post('/v1/ip-rules', { type: 'blocklist', cidr: '198.51.100.0/24' }, asOwner(f)));
    const res = await f.t.del(`/v1/ip-rules/${rule.id}`, asOwner(f));
    f.ok(res, 204);
    return wsRow(f, res, 'ip_rule', rule.id);
  },
  'ip_rule.denied': async (f) => {
    // In a workspace of its own: the rule refuses this machine's address from then on.
    const ws = (await createWorkspace(f.t, f.owner)).id;
    f.ok(await f.t.post('/v1/ip-rules', { type: 'blocklist', cidr: '127.0.0.1', force: true }, inAccount(f.owner, ws)));
    const res = await f.t.get('/v1/threads', inAccount(f.owner, ws));
    assert.deepEqual([res.status, res.body.code], [403, 'policy.ip_blocked']);
    return { res, orgId: ws, actor: f.owner.id, targetType: 'ip_address', targetId: '127.0.0.1' };
  },
  'feature_flag.create': async (f) => {
    const key = uniq('flag').toLowerCase();
    const res = await f.t.post('/v1/feature-flags', { key, default_value: true }, asAdmin(f));
    f.ok(res);
    return platformRow(f, res, 'feature_flag', key, { state: 'after' });
  },
  'feature_flag.update': async (f) => {
    const key = await flag(f);
    const res = await f.t.patch(`/v1/feature-flags/${key}`, { default_value: true }, asAdmin(f));
    f.ok(res, 200);
    return platformRow(f, res, 'feature_flag', key, { state: 'both' });
  },
  'feature_flag.delete': async (f) => {
    const key = await flag(f);
    const res = await f.t.del(`/v1/feature-flags/${key}`, asAdmin(f));
    f.ok(res, 200);
    return platformRow(f, res, 'feature_flag', key, { state: 'before' });
  },
  'feature_flag.override_set': async (f) => {
    const key = await flag(f);
    const res = await f.t.post(`/v1/feature-flags/${key}/org-overrides`, { org_id: f.ws, enabled: true }, asAdmin(f));
    f.ok(res, 200);
    return { res, orgId: f.ws, actor: f.admin.id, targetType: 'feature_flag', targetId: key, state: 'after' };
  },
  'feature_flag.override_delete': async (f) => {
    const key = await flag(f);
    f.ok(await f.t.post(`/v1/feature-flags/${key}/org-overrides`, { org_id: f.ws, enabled: true }, asAdmin(f)), 200);
    const res = await f.t.del(`/v1/feature-flags/${key}/org-overrides/${f.ws}`, asAdmin(f));
    f.ok(res, 200);
    return { res, orgId: f.ws, actor: f.admin.id, targetType: 'feature_flag', targetId: key, state: 'before' };
  },
  'admin.user_update': async (f) => {
    const u = await registerUser(f.t);
    const res = await f.t.patch(`/v1/admin/users/${u.id}`, { username: 'Audited Name' }, asAdmin(f));
    f.ok(res, 200);
    return platformRow(f, res, 'user', u.id, { secrets: [u.password, u.token], state: 'both' });
  },
  'admin.user_delete': async (f) => {
    const u = await registerUser(f.t);
    const res = await f.t.del(`/v1/admin/users/${u.id}`, asAdmin(f));
    f.ok(res, 204);
    return platformRow(f, res, 'user', u.id, { secrets: [u.password, u.token], state: 'before' });
  },
  'email_config.update': async (f) => {
    // No sender is set, so mail stays off for the other cases.
    const res = await f.t.put('/v1/admin/email/config', { smtp_host: '127.0.0.1', smtp_pass: 'smtp-audit-secret-99' }, asAdmin(f));
    f.ok(res, 204);
    return platformRow(f, res, 'email_config', null, { secrets: ['smtp-audit-secret-99'] });
  },
  'email.test': async (f) => {
    const smtp = await startSmtpCapture();
    try {
      f.ok(await f.t.put('/v1/admin/email/config', { from: 'noreply@arkloop.test', smtp_host: '127.0.0.1', smtp_port: smtp.port, smtp_tls_mode: 'none' }, asAdmin(f)), 204);
      const res = await f.t.post('/v1/admin/email/test', { to: 'audit@example.com' }, asAdmin(f));
      f.ok(res, 204);
      assert.deepEqual(smtp.to('audit@example.com').length, 1);
      return platformRow(f, res, 'email', null);
    } finally {
      // Mail off again for the other cases.
      f.ok(await f.t.put('/v1/admin/email/config', { from: '' }, asAdmin(f)), 204);
      await smtp.close();
    }
  },
  'gateway_config.update': async (f) => {
    const res = await f.t.put('/v1/admin/gateway-config', { ip_mode: 'proxy', trusted_cidrs: ['10.0.0.0/8'] }, asAdmin(f));
    f.ok(res, 200);
    // Back to the defaults for the other cases.
    const row = platformRow(f, res, 'gateway_config', null, { state: 'both' });
    f.ok(await f.t.put('/v1/admin/gateway-config', { ip_mode: 'direct', trusted_cidrs: [] }, asAdmin(f)), 200);
    return row;
  },
  'platform_setting.update': async (f) => {
    const res = await f.t.put('/v1/admin/platform-settings/invite.max_codes_per_user', { value: 7 }, asAdmin(f));
    f.ok(res, 200);
    return platformRow(f, res, 'platform_setting', 'invite.max_codes_per_user', { state: 'both' });
  },
  // Auth & me: actor and target are the user, the account is the user's personal one.
  'user.register': async (f) => {
    const login = uniq('reg');
    const res = await f.t.post('/v1/auth/register', { login, email: `${login}@example.com`, password: 'register-secret-pw' });
    const body = f.ok(res);
    const me = f.ok(await f.t.get('/v1/me', { token: body.access_token }), 200);
    return { res, orgId: me.org_id, actor: body.user_id, targetType: 'user', targetId: body.user_id, secrets: ['register-secret-pw', body.access_token] };
  },
  'user.login': async (f) => {
    const u = await registerUser(f.t);
    const res = await f.t.post('/v1/auth/login', { login: u.login, password: u.password });
    return { res, orgId: u.personalAccountId, actor: u.id, targetType: 'user', targetId: u.id, secrets: [u.password, f.ok(res, 200).access_token] };
  },
  'user.login_failed': async (f) => {
    const u = await registerUser(f.t);
    const res = await f.t.post('/v1/auth/login', { login: u.login, password: 'wrong-secret-password' });
    assert.equal(res.status, 401);
    return { res, orgId: u.personalAccountId, actor: null, targetType: 'user', targetId: u.id, secrets: ['wrong-secret-password'] };
  },
  'user.logout': async (f) => {
    const u = await registerUser(f.t);
    const res = await f.t.post('/v1/auth/logout', undefined, { token: u.token });
    f.ok(res, 200);
    return { res, orgId: u.personalAccountId, actor: u.id, targetType: 'user', targetId: u.id, secrets: [u.token, u.refreshCookie] };
  },
  'user.email_verified': async (f) => {
    const u = await registerUser(f.t);
    const token = `verify-${newId()}`;
    await f.t.ctx.db.insertInto('email_verification_tokens').values({ id: newId(), user_id: u.id, email: u.email, token_hash: hashToken(token), expires_at: new Date(Date.now() + 3600_000) }).execute();
    const res = await f.t.post('/v1/auth/email/verify/confirm', { token });
    f.ok(res, 200);
    return { res, orgId: u.personalAccountId, actor: u.id, targetType: 'user', targetId: u.id, secrets: [token, hashToken(token)] };
  },
  'user.update': async (f) => {
    const u = await registerUser(f.t);
    const res = await f.t.patch('/v1/me', { username: 'Audited Name' }, { token: u.token });
    f.ok(res, 200);
    return { res, orgId: u.personalAccountId, actor: u.id, targetType: 'user', targetId: u.id, state: 'both' };
  },

  // API keys
  'api_key.create': async (f) => {
    const res = await f.t.post('/v1/api-keys', { name: 'audited' }, asOwner(f));
    const key = f.ok(res);
    return wsRow(f, res, 'api_key', key.id, { secrets: [key.key, hashToken(key.key)] });
  },
  'api_key.revoke': async (f) => {
    const key = f.ok(await f.t.post('/v1/api-keys', { name: 'audited' }, asOwner(f)));
    const res = await f.t.del(`/v1/api-keys/${key.id}`, asOwner(f));
    f.ok(res, 204);
    return wsRow(f, res, 'api_key', key.id, { secrets: [key.key, hashToken(key.key)], state: 'before' });
  },

  // Accounts, members, invitations, teams
  'account.create': async (f) => {
    const res = await f.t.post('/v1/accounts', { slug: uniq('ws-').toLowerCase(), name: 'Audited' }, { token: f.owner.token });
    const a = f.ok(res);
    return { res, orgId: a.id, actor: f.owner.id, targetType: 'account', targetId: a.id };
  },
  'account.update': async (f) => {
    const res = await f.t.patch(`/v1/accounts/${f.ws}`, { name: uniq('Renamed ') }, asOwner(f));
    f.ok(res, 200);
    return wsRow(f, res, 'account', f.ws, { state: 'both' });
  },
  'account.member_update': async (f) => {
    const m = await f.newMember();
    const res = await f.t.patch(`/v1/accounts/${f.ws}/members/${m.id}`, { role: 'admin' }, asOwner(f));
    f.ok(res, 200);
    return wsRow(f, res, 'account', f.ws, { state: 'both' });
  },
  'account.member_remove': async (f) => {
    const m = await f.newMember();
    const res = await f.t.del(`/v1/accounts/${f.ws}/members/${m.id}`, asOwner(f));
    f.ok(res, 204);
    return wsRow(f, res, 'account', f.ws, { state: 'before' });
  },
  'invitation.create': async (f) => {
    const res = await f.t.post(`/v1/accounts/${f.ws}/invitations`, { email: `${uniq('inv')}@example.com`, role: 'member' }, { token: f.owner.token });
    const inv = f.ok(res);
    return wsRow(f, res, 'invitation', inv.id, { secrets: [inv.token, hashToken(inv.token)] });
  },
  'invitation.accept': async (f) => {
    const u = await registerUser(f.t);
    const inv = f.ok(await f.t.post(`/v1/accounts/${f.ws}/invitations`, { email: u.email, role: 'member' }, { token: f.owner.token }));
    const res = await f.t.post(`/v1/account-invitations/${inv.token}/accept`, undefined, { token: u.token });
    f.ok(res, 200);
    return { res, orgId: f.ws, actor: u.id, targetType: 'invitation', targetId: inv.id, secrets: [inv.token, hashToken(inv.token)] };
  },
  'invitation.revoke': async (f) => {
    const inv = f.ok(await f.t.post(`/v1/accounts/${f.ws}/invitations`, { email: `${uniq('inv')}@example.com`, role: 'member' }, { token: f.owner.token }));
    const res = await f.t.del(`/v1/account-invitations/${inv.id}`, asOwner(f));
    f.ok(res, 204);
    return wsRow(f, res, 'invitation', inv.id, { secrets: [inv.token, hashToken(inv.token)] });
  },
  'team.create': async (f) => {
    const res = await f.t.post('/v1/teams', { name: uniq('team') }, asOwner(f));
    return wsRow(f, res, 'team', f.ok(res).id);
  },
  'team.update': async (f) => {
    const id = await team(f);
    const res = await f.t.patch(`/v1/teams/${id}`, { name: uniq('renamed') }, asOwner(f));
    f.ok(res, 200);
    return wsRow(f, res, 'team', id, { state: 'both' });
  },
  'team.delete': async (f) => {
    const id = await team(f);
    const res = await f.t.del(`/v1/teams/${id}`, asOwner(f));
    f.ok(res, 204);
    return wsRow(f, res, 'team', id, { state: 'before' });
  },
  'team.member_add': async (f) => {
    const [id, m] = [await team(f), await f.newMember()];
    const res = await f.t.post(`/v1/teams/${id}/members`, { user_id: m.id, role: 'member' }, asOwner(f));
    f.ok(res);
    return wsRow(f, res, 'team', id);
  },
  'team.member_remove': async (f) => {
    const [id, m] = [await team(f), await f.newMember()];
    f.ok(await f.t.post(`/v1/teams/${id}/members`, { user_id: m.id, role: 'member' }, asOwner(f)));
    const res = await f.t.del(`/v1/teams/${id}/members/${m.id}`, asOwner(f));
    f.ok(res, 204);
    return wsRow(f, res, 'team', id);
  },

  // Content
  'thread.create': async (f) => {
    const res = await f.t.post('/v1/threads', { title: 'audited' }, asOwner(f));
    return wsRow(f, res, 'thread', f.ok(res).id);
  },
  'thread.update': async (f) => {
    const id = await thread(f);
    const res = await f.t.patch(`/v1/threads/${id}`, { title: 'renamed' }, asOwner(f));
    f.ok(res, 200);
    return wsRow(f, res, 'thread', id, { state: 'both' });
  },
  'thread.delete': async (f) => {
    const id = await thread(f);
    const res = await f.t.del(`/v1/threads/${id}`, asOwner(f));
    f.ok(res, 204);
    return wsRow(f, res, 'thread', id, { state: 'before' });
  },
  'project.create': async (f) => {
    const res = await f.t.post('/v1/projects', { name: 'audited', visibility: 'shared' }, asOwner(f));
    return wsRow(f, res, 'project', f.ok(res).id);
  },
  'project.update': async (f) => {
    const id = await project(f);
    const res = await f.t.patch(`/v1/projects/${id}`, { name: 'renamed' }, asOwner(f));
    f.ok(res, 200);
    return wsRow(f, res, 'project', id, { state: 'both' });
  },
  'project.delete': async (f) => {
    const id = await project(f);
    const res = await f.t.del(`/v1/projects/${id}`, asOwner(f));
    f.ok(res, 204);
    return wsRow(f, res, 'project', id, { state: 'before' });
  },
  'run.cancel': async (f) => {
    const id = await thread(f);
    f.ok(await f.t.post(`/v1/threads/${id}/messages`, { content: 'hello' }, asOwner(f)));
    const run = f.ok(await f.t.post(`/v1/threads/${id}/runs`, {}, asOwner(f)));
    const res = await f.t.post(`/v1/runs/${run.run_id}:cancel`, undefined, asOwner(f));
    f.ok(res, 200);
    return wsRow(f, res, 'run', run.run_id);
  },

  // Configuration
  'persona.create': async (f) => {
    const res = await f.t.post('/v1/personas', { persona_key: uniq('p').toLowerCase(), display_name: 'Audited', prompt_md: 'Be brief.' }, asOwner(f));
    return wsRow(f, res, 'persona', f.ok(res).id, { state: 'after' });
  },
  'persona.update': async (f) => {
    const id = await persona(f);
    const res = await f.t.patch(`/v1/personas/${id}`, { display_name: 'Renamed' }, asOwner(f));
    f.ok(res, 200);
    return wsRow(f, res, 'persona', id, { state: 'both' });
  },
  'persona.delete': async (f) => {
    const id = await persona(f);
    const res = await f.t.del(`/v1/personas/${id}`, asOwner(f));
    f.ok(res, 204);
    return wsRow(f, res, 'persona', id, { state: 'before' });
  },
  'llm_provider.create': async (f) => {
    const res = await f.t.post('/v1/llm-providers', { name: uniq('prov'), provider: 'openai', api_key: LLM_KEY }, asOwner(f));
    return wsRow(f, res, 'llm_provider', f.ok(res).id, { secrets: [LLM_KEY] });
  },
  'llm_provider.update': async (f) => {
    const id = await llmProvider(f);
    const res = await f.t.patch(`/v1/llm-providers/${id}`, { api_key: `${LLM_KEY}-new`, name: uniq('renamed') }, asOwner(f));
    f.ok(res, 200);
    return wsRow(f, res, 'llm_provider', id, { secrets: [LLM_KEY, `${LLM_KEY}-new`], state: 'both' });
  },
  'llm_provider.delete': async (f) => {
    const id = await llmProvider(f);
    const res = await f.t.del(`/v1/llm-providers/${id}`, asOwner(f));
    f.ok(res, 204);
    return wsRow(f, res, 'llm_provider', id, { secrets: [LLM_KEY], state: 'before' });
  },
  'llm_model.create': async (f) => {
    const p = await llmProvider(f);
    const res = await f.t.post(`/v1/llm-providers/${p}/models`, { model: 'gpt-audited' }, asOwner(f));
    return wsRow(f, res, 'llm_model', f.ok(res).id, { secrets: [LLM_KEY] });
  },
  'llm_model.update': async (f) => {
    const p = await llmProvider(f);
    const m = f.ok(await f.t.post(`/v1/llm-providers/${p}/models`, { model: 'gpt-audited' }, asOwner(f)));
    const res = await f.t.patch(`/v1/llm-providers/${p}/models/${m.id}`, { model: 'gpt-renamed' }, asOwner(f));
    f.ok(res, 200);
    return wsRow(f, res, 'llm_model', m.id, { secrets: [LLM_KEY], state: 'both' });
  },
  'llm_model.delete': async (f) => {
    const p = await llmProvider(f);
    const m = f.ok(await f.t.post(`/v1/llm-providers/${p}/models`, { model: 'gpt-audited' }, asOwner(f)));
    const res = await f.t.del(`/v1/llm-providers/${p}/models/${m.id}`, asOwner(f));
    f.ok(res, 204);
    return wsRow(f, res, 'llm_model', m.id, { state: 'before' });
  },
  // stdio configs are a platform admin's, in the admin's personal account.
  'mcp_config.create': async (f) => {
    const res = await f.t.post('/v1/mcp-configs', { name: uniq('mcp'), transport: 'stdio', command: process.execPath, args: ['-e', '0'], env: { AUDIT_TOKEN: ENV_VALUE, PLAIN: 'plain-env-value-7' } }, asAdmin(f));
    return { res, orgId: f.admin.personalAccountId, actor: f.admin.id, targetType: 'mcp_config', targetId: f.ok(res).id, secrets: [ENV_VALUE, 'plain-env-value-7'] };
  },
  'mcp_config.update': async (f) => {
    const id = await mcpConfig(f);
    const res = await f.t.patch(`/v1/mcp-configs/${id}`, { env: { AUDIT_TOKEN: `${ENV_VALUE}-new` } }, asAdmin(f));
    f.ok(res, 200);
    return { res, orgId: f.admin.personalAccountId, actor: f.admin.id, targetType: 'mcp_config', targetId: id, secrets: [ENV_VALUE, `${ENV_VALUE}-new`, 'plain-env-value-7'], state: 'both' };
  },
  'mcp_config.delete': async (f) => {
    const id = await mcpConfig(f);
    const res = await f.t.del(`/v1/mcp-configs/${id}`, asAdmin(f));
    f.ok(res, 204);
    return { res, orgId: f.admin.personalAccountId, actor: f.admin.id, targetType: 'mcp_config', targetId: id, secrets: [ENV_VALUE, 'plain-env-value-7'], state: 'before' };
  },
  'tool_provider.credential_set': async (f) => {
    const res = await f.t.put(`${TAVILY}/credential${ORG_SCOPE}`, { api_key: TOOL_KEY }, asOwner(f));
    f.ok(res, 204);
    return wsRow(f, res, 'tool_provider', await toolProviderId(f), { secrets: [TOOL_KEY] });
  },
  'tool_provider.activate': async (f) => {
    f.ok(await f.t.put(`${TAVILY}/credential${ORG_SCOPE}`, { api_key: TOOL_KEY }, asOwner(f)), 204);
    f.ok(await f.t.put(`${TAVILY}/deactivate${ORG_SCOPE}`, undefined, asOwner(f)), 204);
    const res = await f.t.put(`${TAVILY}/activate${ORG_SCOPE}`, undefined, asOwner(f));
    f.ok(res, 204);
    return wsRow(f, res, 'tool_provider', await toolProviderId(f), { secrets: [TOOL_KEY] });
  },
  'tool_provider.deactivate': async (f) => {
    f.ok(await f.t.put(`${TAVILY}/credential${ORG_SCOPE}`, { api_key: TOOL_KEY }, asOwner(f)), 204);
    f.ok(await f.t.put(`${TAVILY}/activate${ORG_SCOPE}`, undefined, asOwner(f)), 204);
    const res = await f.t.put(`${TAVILY}/deactivate${ORG_SCOPE}`, undefined, asOwner(f));
    f.ok(res, 204);
    return wsRow(f, res, 'tool_provider', await toolProviderId(f), { secrets: [TOOL_KEY] });
  },
  'tool_provider.credential_clear': async (f) => {
    f.ok(await f.t.put(`${TAVILY}/credential${ORG_SCOPE}`, { api_key: TOOL_KEY }, asOwner(f)), 204);
    const res = await f.t.del(`${TAVILY}/credential${ORG_SCOPE}`, asOwner(f));
    f.ok(res, 204);
    return wsRow(f, res, 'tool_provider', await toolProviderId(f), { secrets: [TOOL_KEY] });
  },
  'asr_credential.create': async (f) => {
    const res = await f.t.post('/v1/asr-credentials', { name: uniq('asr'), provider: 'openai', api_key: ASR_KEY, model: 'whisper-1' }, asOwner(f));
    return wsRow(f, res, 'asr_credential', f.ok(res).id, { secrets: [ASR_KEY], state: 'after' });
  },
  'asr_credential.update': async (f) => {
    const id = await asrCredential(f);
    const res = await f.t.patch(`/v1/asr-credentials/${id}`, { api_key: `${ASR_KEY}-new` }, asOwner(f));
    f.ok(res, 200);
    return wsRow(f, res, 'asr_credential', id, { secrets: [ASR_KEY, `${ASR_KEY}-new`], state: 'both' });
  },
  'asr_credential.delete': async (f) => {
    const id = await asrCredential(f);
    const res = await f.t.del(`/v1/asr-credentials/${id}`, asOwner(f));
    f.ok(res, 204);
    return wsRow(f, res, 'asr_credential', id, { secrets: [ASR_KEY], state: 'before' });
  },
  'asr_credential.set_default': async (f) => {
    await asrCredential(f);
    const id = await asrCredential(f);
    const res = await f.t.post(`/v1/asr-credentials/${id}/set-default`, undefined, asOwner(f));
    f.ok(res, 200);
    return wsRow(f, res, 'asr_credential', id, { secrets: [ASR_KEY], state: 'both' });
  },

  // Billing (platform admins)
  'credits.adjust': async (f) => {
    const res = await f.t.post('/v1/admin/credits/adjust', { org_id: f.ws, amount: 50, note: 'audited' }, asAdmin(f));
    f.ok(res, 200);
    return { res, orgId: f.ws, actor: f.admin.id, targetType: 'account', targetId: f.ws, state: 'both' };
  },
  'credits.bulk_adjust': async (f) => {
    const res = await f.t.post('/v1/admin/credits/bulk-adjust', { amount: 1, note: 'audited' }, asAdmin(f));
    f.ok(res, 200);
    return platformRow(f, res, null, null);
  },
  'credits.reset_all': async (f) => {
    const res = await f.t.post('/v1/admin/credits/reset-all', { note: 'audited' }, asAdmin(f));
    f.ok(res, 200);
    return platformRow(f, res, null, null);
  },
  'plan.create': async (f) => {
    const res = await f.t.post('/v1/plans', { name: uniq('plan').toLowerCase(), display_name: 'Audited' }, asAdmin(f));
    return platformRow(f, res, 'plan', f.ok(res).id, { state: 'after' });
  },
  'plan.update': async (f) => {
    const id = await plan(f);
    const res = await f.t.patch(`/v1/plans/${id}`, { display_name: 'Renamed' }, asAdmin(f));
    f.ok(res, 200);
    return platformRow(f, res, 'plan', id, { state: 'both' });
  },
  'plan.delete': async (f) => {
    const id = await plan(f);
    const res = await f.t.del(`/v1/plans/${id}`, asAdmin(f));
    f.ok(res, 204);
    return platformRow(f, res, 'plan', id, { state: 'before' });
  },
  'subscription.create': async (f) => {
    const ws = (await createWorkspace(f.t, f.owner)).id;
    const res = await f.t.post('/v1/subscriptions', { org_id: ws, plan_id: await plan(f), current_period_start: '2020-01-01T00:00:00Z', current_period_end: '2020-02-01T00:00:00Z' }, asAdmin(f));
    return { res, orgId: ws, actor: f.admin.id, targetType: 'subscription', targetId: f.ok(res).id, state: 'after' };
  },
  'subscription.cancel': async (f) => {
    const ws = (await createWorkspace(f.t, f.owner)).id;
    const sub = f.ok(await f.t.post('/v1/subscriptions', { org_id: ws, plan_id: await plan(f), current_period_start: '2020-01-01T00:00:00Z', current_period_end: '2020-02-01T00:00:00Z' }, asAdmin(f)));
    const res = await f.t.del(`/v1/subscriptions/${sub.id}`, asAdmin(f));
    assert.ok(res.status === 200 || res.status === 204, res.text);
    return { res, orgId: ws, actor: f.admin.id, targetType: 'subscription', targetId: sub.id, state: 'both' };
  },
  'entitlement_override.create': async (f) => {
    const res = await f.t.post('/v1/entitlement-overrides', { org_id: f.ws, key: 'quota.runs_per_month', value: '100', value_type: 'integer' }, asAdmin(f));
    return { res, orgId: f.ws, actor: f.admin.id, targetType: 'entitlement_override', targetId: f.ok(res).id, state: 'after' };
  },
  'entitlement_override.delete': async (f) => {
    const o = f.ok(await f.t.post('/v1/entitlement-overrides', { org_id: f.ws, key: 'quota.tokens_per_month', value: '100', value_type: 'integer' }, asAdmin(f)));
    const res = await f.t.del(`/v1/entitlement-overrides/${o.id}`, asAdmin(f));
    f.ok(res, 200);
    return { res, orgId: f.ws, actor: f.admin.id, targetType: 'entitlement_override', targetId: o.id, state: 'before' };
  },
  'invite_code.reset': async (f) => {
    const res = await f.t.post('/v1/me/invite-code/reset', undefined, { token: f.owner.token });
    const code = f.ok(res, 200);
    return { res, orgId: f.owner.personalAccountId, actor: f.owner.id, targetType: 'invite_code', targetId: code.id };
  },
  'invite_code.update': async (f) => {
    const code = f.ok(await f.t.get('/v1/me/invite-code', { token: f.owner.token }), 200);
    const res = await f.t.patch(`/v1/admin/invite-codes/${code.id}`, { max_uses: 7 }, asAdmin(f));
    f.ok(res, 200);
    return platformRow(f, res, 'invite_code', code.id, { state: 'both' });
  },
  'redemption_code.batch_create': async (f) => {
    const res = await f.t.post('/v1/admin/redemption-codes/batch', { count: 2, type: 'credits', value: '5' }, asAdmin(f));
    return platformRow(f, res, 'redemption_code_batch', f.ok(res).batch_id);
  },
  'redemption_code.update': async (f) => {
    const batch = f.ok(await f.t.post('/v1/admin/redemption-codes/batch', { count: 1, type: 'credits', value: '5' }, asAdmin(f)));
    const res = await f.t.patch(`/v1/admin/redemption-codes/${batch.codes[0].id}`, { is_active: false }, asAdmin(f));
    f.ok(res, 200);
    return platformRow(f, res, 'redemption_code', batch.codes[0].id, { state: 'both' });
  },
  'redemption_code.redeem': async (f) => {
    const batch = f.ok(await f.t.post('/v1/admin/redemption-codes/batch', { count: 1, type: 'credits', value: '5' }, asAdmin(f)));
    const res = await f.t.post('/v1/me/redeem', { code: batch.codes[0].code }, asOwner(f));
    f.ok(res, 200);
    return wsRow(f, res, 'redemption_code', batch.codes[0].id);
  },

  // Platform
  'broadcast.create': async (f) => {
    const res = await f.t.post('/v1/admin/notifications/broadcasts', { type: 'audited', title: 'A', body: 'b', target: f.ws }, asAdmin(f));
    return platformRow(f, res, 'broadcast', f.ok(res, 202).id, { state: 'after' });
  },
  'broadcast.delete': async (f) => {
    const b = f.ok(await f.t.post('/v1/admin/notifications/broadcasts', { type: 'audited', title: 'A', body: 'b', target: 'all' }, asAdmin(f)), 202);
    const res = await f.t.del(`/v1/admin/notifications/broadcasts/${b.id}`, asAdmin(f));
    f.ok(res, 204);
    return platformRow(f, res, 'broadcast', b.id, { state: 'before' });
  },
};

/** Column names that would hold a secret's stored form; their values must never be in a row. */
const STORED_SECRET_KEY = /"(\w*_hash|\w*_enc|\w*encrypted\w*|\w*ciphertext\w*)":"(?!\[redacted\])/;

function srcFiles(dir: string): string[] {
  return readdirSync(dir).flatMap((n) => {
    const p = join(dir, n);
    return statSync(p).isDirectory() ? srcFiles(p) : p.endsWith('.ts') ? [p] : [];
  });
}

describe('audit: one row per §22 action, found through GET /v1/audit-logs', () => {
  const f = {} as Fixture;

  before(async () => {
    f.t = await startTestApp();
    f.admin = await registerUser(f.t); // the platform admin
    f.owner = await registerUser(f.t);
    f.ws = (await createWorkspace(f.t, f.owner)).id;
    f.ok = (res, status = 201) => {
      assert.equal(res.status, status, res.text);
      return res.body;
    };
    f.newMember = async (role = 'member') => {
      const u = await registerUser(f.t);
      await joinAccount(f.t, f.owner, f.ws, u, role);
      return u;
    };
  });
  after(async () => f.t?.close());

  for (const [action, perform] of Object.entries(CASES)) {
    it(action, async () => {
      const p = await perform(f);
      const q = new URLSearchParams({ action, include: 'state' });
      if (p.orgId) q.set('org_id', p.orgId);
      if (p.targetId) q.set('target_id', p.targetId);
      else if (p.actor) q.set('actor_user_id', p.actor);
      const res = await f.t.get(`/v1/audit-logs?${q}`, { token: f.admin.token });
      assert.equal(res.status, 200, res.text);
      const row = res.body.data.find((r: any) => r.trace_id === p.res.headers['x-trace-id']);
      assert.ok(row, `no ${action} row with the request's trace id among ${JSON.stringify(res.body.data).slice(0, 500)}`);
      assert.deepEqual(
        { org_id: row.org_id, actor_user_id: row.actor_user_id, target_type: row.target_type, target_id: row.target_id },
        { org_id: p.orgId, actor_user_id: p.actor, target_type: p.targetType, target_id: p.targetId },
      );
      assert.equal(row.ip_address, '127.0.0.1');
      if (p.state === 'before' || p.state === 'both') assert.ok(row.before_state && typeof row.before_state === 'object', `${action}: no before_state`);
      if (p.state === 'after' || p.state === 'both') assert.ok(row.after_state && typeof row.after_state === 'object', `${action}: no after_state`);
      const text = JSON.stringify(row);
      for (const s of p.secrets ?? []) assert.ok(!text.includes(s), `${action}: secret ${s.slice(0, 10)}… in ${text}`);
      assert.doesNotMatch(text, STORED_SECRET_KEY);
      // An account's owner finds the rows of the account in its own log.
      if (p.orgId === f.ws) {
        const own = await f.t.get(`/v1/audit-logs?${q}`, inAccount(f.owner, f.ws));
        assert.ok(own.body.data.some((r: any) => r.id === row.id), `${action}: not in the account's own log`);
      }
    });
  }

  it('every §22 action is tested here, or listed as not written yet — and those are indeed not written', () => {
    const tested = Object.keys(CASES);
    assert.deepEqual(tested.filter((a) => !SPEC_ACTIONS.includes(a)), [], 'cases for actions outside §22');
    assert.deepEqual(SPEC_ACTIONS.filter((a) => !tested.includes(a) && !NOT_WRITTEN_YET.includes(a) && !TESTED_IN_MODULE_FILE[a]), [], '§22 actions without a case');
    for (const [action, file] of Object.entries(TESTED_IN_MODULE_FILE)) {
      assert.ok(!tested.includes(action), `${action} has a case here: take it out of TESTED_IN_MODULE_FILE`);
      assert.ok(readFileSync(`test/${file}.test.ts`, 'utf8').includes(`'${action}'`), `test/${file}.test.ts asserts ${action}`);
    }
    const code = srcFiles('src').map((p) => readFileSync(p, 'utf8')).join('\n');
    const written = NOT_WRITTEN_YET.filter((a) => code.includes(`'${a}'`));
    assert.deepEqual(written, [], 'now written by the code: move them to CASES');
  });
});
