// Runs routed over configured LLM providers (api.md §27.3) to local servers speaking the real
// wire formats: the default chain, an explicit route, a selector used ad hoc, BYOK off, the
// fallback across providers, advanced_json on the wire, and the call cost of §27.7.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { registerUser, startTestApp, type TestApp, type TestUser } from './helpers/app.js';
import { anthropicStream, anthropicTextBlock, chatTextStream, startFakeLlm, type FakeLlm } from './helpers/fake-llm.js';
import { expectError } from './helpers/assert.js';
import { setSetting } from './helpers/identity-app.js';
import { openDatabase } from '../src/db/database.js';

describe('runs on configured providers', () => {
  let t: TestApp;
  let admin: TestUser;
  let u: TestUser;
  let openai: FakeLlm;
  let anthropic: FakeLlm;
  let priced: { providerId: string; modelId: string };

  before(async () => {
    openai = await startFakeLlm();
    anthropic = await startFakeLlm();
    t = await startTestApp({ ARKLOOP_LLM_RETRY_BASE_DELAY_MS: '10' }, { worker: true });
    admin = await registerUser(t);
    u = await registerUser(t);
  });
  after(async () => {
    await t.close();
    await openai.close();
    await anthropic.close();
  });

  const asAdmin = () => ({ token: admin.token });
  async function ok(res: { status: number; text: string; body: any }, status = 201) {
    assert.equal(res.status, status, res.text);
    return res.body;
  }

  async function run(body: Record<string, unknown> = {}, as: TestUser = u) {
    const th = await t.post('/v1/threads', {}, { token: as.token });
    await t.post(`/v1/threads/${th.body.id}/messages`, { content: 'hello' }, { token: as.token });
    const created = await t.post(`/v1/threads/${th.body.id}/runs`, body, { token: as.token });
    if (created.status !== 201) return { created, events: [] as any[], runId: '' };
    const sse = await t.get(`/v1/runs/${created.body.run_id}/events`, { token: as.token });
    const events = sse.text.split('\n\n').filter((f) => f.startsWith('id: ')).map((f) => JSON.parse(f.split('\n')[1].slice(6)));
    return { created, events, runId: created.body.run_id as string };
  }

  it('with no selector, the head of the default chain is used and its prices make the cost (§27.7)', async () => {
    const p = await ok(await t.post('/v1/llm-providers', {
      scope: 'platform', name: 'plat-openai', provider: 'openai', api_key: 'sk-platform-key', base_url: openai.baseUrl,
      advanced_json: { headers: { 'x-team': 'core' }, extra_body: { user: 'arkloop' } },
    }, asAdmin()));
    await ok(await t.post(`/v1/llm-providers/${p.id}/models`, { model: 'gpt-cheap', priority: 1 }, asAdmin()));
    const m = await ok(await t.post(`/v1/llm-providers/${p.id}/models`, {
      model: 'gpt-priced', is_default: true, cost_per_1k_input: 2, cost_per_1k_output: 8, cost_per_1k_cache_read: 0.5, advanced_json: { headers: { 'x-model': 'priced' } },
    }, asAdmin()));
    priced = { providerId: p.id, modelId: m.id };

    openai.reply({ sse: chatTextStream(['Hi ', 'there'], { prompt: 1500, completion: 250, cached: 500 }) });
    const { events, runId } = await run();
    assert.equal(events.at(-1).type, 'run.completed', JSON.stringify(events.at(-1)));
    const route = events.find((e) => e.type === 'run.route.selected').data;
    assert.deepEqual([route.route_id, route.provider_id, route.provider_name, route.model, route.source], [m.id, p.id, 'plat-openai', 'gpt-priced', 'default']);
    const sent = openai.requests.at(-1)!;
    assert.equal(sent.path, '/chat/completions');
    assert.equal(sent.headers.authorization, 'Bearer sk-platform-key');
    assert.equal(sent.body.model, 'gpt-priced');
    // Merged key by key, the model's value winning: its `headers` replace the provider's.
    assert.equal(sent.headers['x-model'], 'priced');
    assert.equal(sent.headers['x-team'], undefined);
    assert.equal(sent.body.user, 'arkloop', 'extra_body is merged into the request');
    // (1500 − 500)/1000 × 2 + 500/1000 × 0.5 + 250/1000 × 8 = 2 + 0.25 + 2 = 4.25 USD
    const r = await t.get(`/v1/runs/${runId}`, { token: u.token });
    assert.equal(r.body.total_cost_usd, 4.25);
    const usage = await t.ctx.db.selectFrom('usage_records').selectAll().where('run_id', '=', runId).execute();
    assert.equal(usage.length, 1);
    assert.equal(Number(usage[0].cost_usd), 4.25);
  });

  it('rule 1: an explicit route_id is honoured; an unknown one is 404 policy.route_not_found', async () => {
    openai.reply({ sse: chatTextStream(['routed']) });
    const { events } = await run({ route_id: priced.modelId });
    const route = events.find((e) => e.type === 'run.route.selected').data;
    assert.deepEqual([route.route_id, route.source], [priced.modelId, 'route_id']);
    assert.equal(events.at(-1).type, 'run.completed');
    const missing = await run({ route_id: '01890000-0000-7000-8000-0000000000ff' });
    expectError(missing.created as never, 404, 'policy.route_not_found');
  });

  it('rule 2: P^M with an unconfigured model is used ad hoc at no cost', async () => {
    openai.reply({ sse: chatTextStream(['ad hoc'], { prompt: 1000, completion: 1000, cached: 0 }) });
    const { events, runId } = await run({ model: 'plat-openai^gpt-unlisted' });
    const route = events.find((e) => e.type === 'run.route.selected').data;
    assert.deepEqual([route.route_id, route.model, route.source], [null, 'gpt-unlisted', 'request_model']);
    assert.equal(openai.requests.at(-1)!.body.model, 'gpt-unlisted');
    assert.equal((await t.get(`/v1/runs/${runId}`, { token: u.token })).body.total_cost_usd, 0);
    expectError((await run({ model: 'nobody^gpt' })).created as never, 404, 'policy.route_not_found');
  });

  it("an account provider comes first in the chain, falls back to the platform's on a provider error, and BYOK off hides it", async () => {
    // The account's base_url is a loopback address: allowed for this test only.
    await setSetting(t, 'security.ssrf_allow_private', true);
    const own = await ok(await t.post('/v1/llm-providers', { name: 'own-anthropic', provider: 'anthropic', api_key: 'sk-ant-own', base_url: anthropic.baseUrl }, { token: u.token }));
    const om = await ok(await t.post(`/v1/llm-providers/${own.id}/models`, { model: 'claude-own' }, { token: u.token }));
    anthropic.reply({ status: 500, json: { type: 'error', error: { type: 'api_error', message: 'boom' } } }, { status: 500, json: { type: 'error', error: { type: 'api_error', message: 'boom' } } }, { status: 500, json: { type: 'error', error: { type: 'api_error', message: 'boom' } } });
    openai.reply({ sse: chatTextStream(['from ', 'platform']) });
    const fb = await run();
    assert.equal(fb.events.find((e) => e.type === 'run.route.selected').data.provider_id, own.id);
    const switched = fb.events.find((e) => e.type === 'run.provider_fallback');
    assert.ok(switched, 'a provider_fallback event');
    assert.equal(fb.events.at(-1).type, 'run.completed');
    assert.equal(anthropic.requests.at(-1)!.headers['x-api-key'], 'sk-ant-own');

    // At call time the account's provider is held to the SSRF guard: refused, then the platform's answers.
    await setSetting(t, 'security.ssrf_allow_private', false);
    openai.reply({ sse: chatTextStream(['guarded']) });
    const before = anthropic.requests.length;
    const guarded = await run({ model: 'own-anthropic^claude-own' });
    assert.equal(guarded.events.at(-1).type, 'run.completed');
    assert.equal(anthropic.requests.length, before, 'the loopback upstream of an account provider was never contacted');

    await setSetting(t, 'feature.byok_enabled', false);
    try {
      expectError((await run({ route_id: om.id })).created as never, 403, 'policy.byok_disabled');
      openai.reply({ sse: chatTextStream(['platform only']) });
      const { events } = await run();
      assert.equal(events.find((e) => e.type === 'run.route.selected').data.provider_id, priced.providerId);
    } finally {
      await setSetting(t, 'feature.byok_enabled', true);
    }
  });
  it("credits: ⌈Σ(call cost × model multiplier) × credit.per_usd × tier⌉, deducted from the account's balance", async () => {
    const p = await ok(await t.post('/v1/llm-providers', { scope: 'platform', name: 'plat-pricey', provider: 'openai', api_key: 'sk-x', base_url: openai.baseUrl }, asAdmin()));
    const m = await ok(await t.post(`/v1/llm-providers/${p.id}/models`, { model: 'gpt-pricey', multiplier: 2, cost_per_1k_input: 0.001, cost_per_1k_output: 0.002 }, asAdmin()));
    const balance = async () => (await t.get('/v1/me/credits', { token: u.token })).body.balance as number;
    const before = await balance();
    openai.reply({ sse: chatTextStream(['expensive'], { prompt: 3000, completion: 1001, cached: 0 }) });
    const { events, runId } = await run({ route_id: m.id });
    assert.equal(events.at(-1).type, 'run.completed');
    // cost = 3 × 0.001 + 1.001 × 0.002 = 0.005002 USD; × 2 × 1000 credits/USD × tier 1 (4001 tokens > 2000) = 10.004 → 11
    const r = (await t.get(`/v1/runs/${runId}`, { token: u.token })).body;
    assert.equal(r.total_cost_usd, 0.005002);
    assert.equal(r.credits_used, 11);
    assert.equal(await balance(), before - 11);
  });

  it("rule 4: the default chain skips a model whose `when` excludes the run's persona key or creator role", async () => {
    // A fresh user: no account providers of its own, so the platform chain is the whole chain.
    const v = await registerUser(t);
    const p = await ok(await t.post('/v1/llm-providers', { scope: 'platform', name: 'plat-when', provider: 'openai', api_key: 'sk-when', base_url: openai.baseUrl }, asAdmin()));
    const lite = await ok(await t.post(`/v1/llm-providers/${p.id}/models`, { model: 'gpt-lite-only', is_default: true, priority: 100, when: { persona_keys: ['lite'] } }, asAdmin()));
    // One default per provider: the second guarded model lives on a second provider.
    const p2 = await ok(await t.post('/v1/llm-providers', { scope: 'platform', name: 'plat-when-2', provider: 'openai', api_key: 'sk-when', base_url: openai.baseUrl }, asAdmin()));
    await ok(await t.post(`/v1/llm-providers/${p2.id}/models`, { model: 'gpt-admins-only', is_default: true, priority: 99, when: { roles: ['admin'] } }, asAdmin()));
    try {
      const selected = async (body: Record<string, unknown>) => {
        openai.reply({ sse: chatTextStream(['ok']) });
        const { events } = await run(body, v);
        assert.equal(events.at(-1).type, 'run.completed', JSON.stringify(events.at(-1)));
        const route = events.find((e) => e.type === 'run.route.selected').data;
        assert.equal(openai.requests.at(-1)!.body.model, route.model, 'the selected model is the one called');
        return [route.route_id, route.model, route.source];
      };
      // No persona named (the default persona) and an owner's run: both guarded models are skipped.
      assert.deepEqual(await selected({}), [priced.modelId, 'gpt-priced', 'default']);
      // The lite persona is admitted by the first model's `when`; the chain is ordered across
      // providers (is_default, then priority), so it heads the chain though its provider is newer.
      assert.deepEqual(await selected({ persona_id: 'lite' }), [lite.id, 'gpt-lite-only', 'default']);
    } finally {
      for (const id of [p.id, p2.id]) assert.equal((await t.del(`/v1/llm-providers/${id}`, asAdmin())).status, 204);
    }
  });

  it('a provider change made through one process routes the next run of another (cache dropped by NOTIFY)', async () => {
    const w = await registerUser(t);
    // On PostgreSQL the other process has connections of its own (its own LISTEN); the embedded
    // database is one instance, shared.
    const database = t.db.url ? await openDatabase({ databaseUrl: t.db.url, dataDir: null, poolSize: 2 }) : t.db.database;
    const second = await startTestApp({}, { database });
    const createIn = async (app: TestApp, body: Record<string, unknown>) => {
      const th = await app.post('/v1/threads', {}, { token: w.token });
      await app.post(`/v1/threads/${th.body.id}/messages`, { content: 'hello' }, { token: w.token });
      const res = await app.post(`/v1/threads/${th.body.id}/runs`, body, { token: w.token });
      if (res.status === 201) await t.get(`/v1/runs/${res.body.run_id}/events`, { token: w.token }); // let t's worker finish it
      return res;
    };
    const eventually = async (check: () => Promise<boolean>) => {
      for (let i = 0; i < 100 && !(await check()); i++) await new Promise((r) => setTimeout(r, 20));
      assert.ok(await check());
    };
    try {
      openai.reply({ sse: chatTextStream(['warm']) });
      assert.equal((await createIn(second, {})).status, 201, 'the second process has cached the chain');
      expectError((await createIn(second, { model: 'gpt-fresh' })) as never, 404, 'policy.route_not_found');
      const p = await ok(await t.post('/v1/llm-providers', { scope: 'platform', name: 'plat-fresh', provider: 'openai', api_key: 'sk-fresh', base_url: openai.baseUrl }, asAdmin()));
      await ok(await t.post(`/v1/llm-providers/${p.id}/models`, { model: 'gpt-fresh' }, asAdmin()));
      for (let i = 0; i < 5; i++) openai.reply({ sse: chatTextStream(['fresh']) });
      await eventually(async () => (await createIn(second, { model: 'gpt-fresh' })).status === 201);
      assert.equal((await t.del(`/v1/llm-providers/${p.id}`, asAdmin())).status, 204);
      await eventually(async () => (await createIn(second, { model: 'gpt-fresh' })).status === 404);
    } finally {
      await second.close();
      if (database !== t.db.database) await database.close();
    }
  });
});
