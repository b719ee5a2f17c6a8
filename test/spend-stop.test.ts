// The in-run spend stop (api.md §27.2): before every model call after a run's first, the
// worker checks the balance less what the account's unfinished runs spent so far, and the
// monthly token quota counting this run. A priced run stops after the call that crossed the
// line, keeps its text and is charged for what it used; two racing runs of one account
// overshoot by at most one call each.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { registerUser, startTestApp, type TestApp, type TestUser } from './helpers/app.js';
import { chatChunk, chatSse, chatUsageChunk, startFakeLlm, type FakeLlm } from './helpers/fake-llm.js';
import { deleteSetting, setSetting } from './helpers/identity-app.js';
import { createWorkspace, inAccount } from './helpers/accounts-fixtures.js';

/** One priced model turn: some text, then an echo call; 1000 input tokens = 0.4 USD = 400 credits. */
function pricedTurn(n: number) {
  return {
    sse: chatSse([
      chatChunk({ role: 'assistant', content: `step ${n}. ` }),
      chatChunk({ tool_calls: [{ index: 0, id: `call_${n}`, type: 'function', function: { name: 'echo', arguments: `{"n":${n}}` } }] }),
      chatChunk({}, 'tool_calls'),
      chatUsageChunk(1000, 0),
    ]),
  };
}

describe('in-run spend stop', () => {
  let t: TestApp;
  let padmin: TestUser;
  let openai: FakeLlm;

  before(async () => {
    openai = await startFakeLlm();
    t = await startTestApp({ ARKLOOP_WORKER_CONCURRENCY: '4' }, { worker: true });
    padmin = await registerUser(t);
    // Every run pays for what it used (no free tier), 1000 credits per USD, 1000 credits to start.
    await setSetting(t, 'credit.deduction_policy', { tiers: [{ multiplier: 1 }] });
    const p = await t.post('/v1/llm-providers', { scope: 'platform', name: 'priced', provider: 'openai', api_key: 'sk-priced', base_url: openai.baseUrl }, { token: padmin.token });
    assert.equal(p.status, 201, p.text);
    const m = await t.post(`/v1/llm-providers/${p.body.id}/models`, { model: 'priced-model', is_default: true, cost_per_1k_input: 0.4, cost_per_1k_output: 0 }, { token: padmin.token });
    assert.equal(m.status, 201, m.text);
  });
  after(async () => {
    await t.close();
    await openai.close();
  });

  async function startRun(opts: { token: string; headers?: Record<string, string> }) {
    const th = await t.post('/v1/threads', {}, opts);
    await t.post(`/v1/threads/${th.body.id}/messages`, { content: 'work hard' }, opts);
    const created = await t.post(`/v1/threads/${th.body.id}/runs`, {}, opts);
    assert.equal(created.status, 201, created.text);
    return { runId: created.body.run_id as string, threadId: th.body.id as string };
  }
  async function events(runId: string, opts: { token: string; headers?: Record<string, string> }) {
    const sse = await t.get(`/v1/runs/${runId}/events`, opts);
    return sse.text.split('\n\n').filter((f) => f.startsWith('id: ')).map((f) => JSON.parse(f.split('\n')[1].slice(6)));
  }

  it('stops after the call that crossed the line, keeps its text and charges every call', async () => {
    const u = await registerUser(t);
    const opts = { token: u.token };
    const sent = openai.requests.length;
    openai.reply(...Array.from({ length: 8 }, (_, i) => pricedTurn(i + 1)));
    const { runId, threadId } = await startRun(opts);
    const evs = await events(runId, opts);
    const failed = evs.at(-1);
    assert.equal(failed.type, 'run.failed', JSON.stringify(failed));
    assert.equal(failed.data.error_class, 'budget.insufficient_credits');
    // 1000 → 600 → 200 after two calls, still above zero; the third call crosses; no fourth.
    assert.equal(openai.requests.length - sent, 3);
    assert.equal(evs.filter((e) => e.type === 'tool.result').length, 3);
    const run = (await t.get(`/v1/runs/${runId}`, opts)).body;
    assert.equal(run.total_cost_usd, 1.2);
    assert.equal(run.credits_used ?? 1200, 1200);
    const credits = (await t.get('/v1/me/credits', opts)).body;
    assert.equal(credits.balance, 1000 - 1200);
    const msgs = (await t.get(`/v1/threads/${threadId}/messages`, opts)).body;
    assert.equal(msgs.at(-1).role, 'assistant');
    assert.equal(msgs.at(-1).content, 'step 1. step 2. step 3. ');
    // A new run is refused up front now (§8.1).
    const th = await t.post('/v1/threads', {}, opts);
    await t.post(`/v1/threads/${th.body.id}/messages`, { content: 'again' }, opts);
    const refused = await t.post(`/v1/threads/${th.body.id}/runs`, {}, opts);
    assert.equal(refused.status, 402, refused.text);
    assert.equal(refused.body.code, 'budget.insufficient_credits');
  });

  it('two runs racing against one balance overshoot by at most one call each', async () => {
    const owner = await registerUser(t);
    const ws = (await createWorkspace(t, owner)).id;
    const opts = inAccount(owner, ws);
    const sent = openai.requests.length;
    openai.reply(...Array.from({ length: 20 }, (_, i) => pricedTurn(i + 1)));
    const [a, b] = await Promise.all([startRun(opts), startRun(opts)]);
    const [ea, eb] = await Promise.all([events(a.runId, opts), events(b.runId, opts)]);
    for (const evs of [ea, eb]) {
      assert.equal(evs.at(-1).type, 'run.failed');
      assert.equal(evs.at(-1).data.error_class, 'budget.insufficient_credits');
    }
    const calls = openai.requests.length - sent;
    // Each call is 400 credits against 1000: at most 1000 + one call per run may be spent.
    assert.ok(calls * 400 <= 1000 + 2 * 400, `${calls} calls were made`);
    assert.ok(calls >= 3, `${calls} calls: the balance allowed at least three`);
    const credits = (await t.get('/v1/me/credits', opts)).body;
    assert.equal(credits.balance, 1000 - calls * 400, 'every call was charged');
  });

  it('the monthly token quota counts this run’s calls: the call after the quota is reached is not made', async () => {
    await setSetting(t, 'quota.tokens_per_month', 2500);
    try {
      const u = await registerUser(t);
      const opts = { token: u.token };
      const sent = openai.requests.length;
      await setSetting(t, 'credit.per_usd', 1); // credits are not the limit here
      openai.reply(...Array.from({ length: 6 }, (_, i) => pricedTurn(i + 1)));
      const { runId } = await startRun(opts);
      const evs = await events(runId, opts);
      assert.equal(evs.at(-1).type, 'run.failed');
      assert.equal(evs.at(-1).data.error_class, 'budget.tokens_quota_exceeded');
      // 0, 1000, 2000 tokens before calls 1–3 are under 2500; 3000 before a fourth is not.
      assert.equal(openai.requests.length - sent, 3);
    } finally {
      await deleteSetting(t, 'quota.tokens_per_month');
      await deleteSetting(t, 'credit.per_usd');
      openai.requests.length = 0;
    }
  });
});
