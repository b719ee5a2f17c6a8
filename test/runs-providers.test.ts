// Runs against the environment providers, each a local server speaking the real wire
// format: OpenAI Chat Completions streaming, a 429 retried, a 500 falling back to Anthropic,
// and a stream cut after output.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { registerUser, startTestApp, type TestApp, type TestUser } from './helpers/app.js';
import { anthropicStream, anthropicTextBlock, chatTextStream, startFakeLlm, type FakeLlm } from './helpers/fake-llm.js';

describe('runs on environment providers', () => {
  let t: TestApp;
  let u: TestUser;
  let openai: FakeLlm;
  let anthropic: FakeLlm;
  before(async () => {
    openai = await startFakeLlm();
    anthropic = await startFakeLlm();
    t = await startTestApp(
      {
        ARKLOOP_OPENAI_API_KEY: 'sk-test-openai',
        ARKLOOP_OPENAI_BASE_URL: openai.baseUrl,
        ARKLOOP_OPENAI_MODEL: 'gpt-4o-mini',
        ARKLOOP_ANTHROPIC_API_KEY: 'sk-ant-test',
        ARKLOOP_ANTHROPIC_BASE_URL: anthropic.baseUrl,
        ARKLOOP_LLM_RETRY_BASE_DELAY_MS: '10',
        ARKLOOP_LLM_DEBUG_EVENTS: '1',
      },
      { worker: true },
    );
    await registerUser(t);
    u = await registerUser(t);
  });
  after(async () => {
    await t.close();
    await openai.close();
    await anthropic.close();
  });

  async function run(content: string) {
    const th = await t.post('/v1/threads', {}, { token: u.token });
    await t.post(`/v1/threads/${th.body.id}/messages`, { content }, { token: u.token });
    const { body } = await t.post(`/v1/threads/${th.body.id}/runs`, {}, { token: u.token });
    const sse = await t.get(`/v1/runs/${body.run_id}/events`, { token: u.token });
    const events = sse.text.split('\n\n').filter((f) => f.startsWith('id: ')).map((f) => JSON.parse(f.split('\n')[1].slice(6)));
    return { runId: body.run_id as string, threadId: th.body.id as string, events };
  }

  it('streams an OpenAI answer delta by delta and records its usage', async () => {
    openai.reply({ sse: chatTextStream(['Hel', 'lo ', 'there'], { prompt: 12, completion: 3, cached: 4 }) });
    const before = openai.requests.length;
    const { runId, events } = await run('hi');
    const route = events.find((e) => e.type === 'run.route.selected').data;
    assert.deepEqual([route.provider_name, route.provider_kind, route.model, route.source], ['openai', 'openai', 'gpt-4o-mini', 'env']);
    assert.deepEqual(events.filter((e) => e.type === 'message.delta').map((e) => e.data.content_delta), ['Hel', 'lo ', 'there']);
    assert.equal(events.at(-1).type, 'run.completed');
    // Debug events: the request (no credentials, no system prompt) and each raw chunk.
    const debugReq = events.find((e) => e.type === 'llm.request');
    assert.ok(debugReq);
    assert.equal(debugReq.data.request.model, 'gpt-4o-mini');
    assert.equal(debugReq.data.request.system, undefined);
    assert.doesNotMatch(JSON.stringify(events), /sk-test-openai/);
    assert.ok(events.some((e) => e.type === 'llm.response.chunk'));
    const req = openai.requests[before];
    assert.equal(req.headers.authorization, 'Bearer sk-test-openai');
    assert.equal(req.body.stream, true);
    assert.equal(req.body.model, 'gpt-4o-mini');
    assert.equal(req.body.messages.at(-1).content, 'hi');
    assert.equal(req.body.messages[0].role, 'system');
    const detail = await t.get(`/v1/runs/${runId}`, { token: u.token });
    assert.equal(detail.body.total_input_tokens, 12);
    assert.equal(detail.body.total_output_tokens, 3);
    assert.equal(detail.body.total_cache_read_tokens, 4);
    assert.equal(detail.body.cache_hit_rate, 4 / 12);
  });

  it('retries a 429 and then answers', async () => {
    openai.reply(
      { status: 429, headers: { 'retry-after': '0' }, json: { error: { message: 'slow down', type: 'rate_limit_error' } } },
      { sse: chatTextStream(['ok']) },
    );
    const { events } = await run('again');
    const retry = events.find((e) => e.type === 'run.llm.retry');
    assert.ok(retry);
    assert.equal(retry.data.status, 429);
    assert.equal(retry.data.error_class, 'provider.rate_limited');
    assert.equal(events.at(-1).type, 'run.completed');
  });

  it('falls back to the next provider when one fails', async () => {
    openai.reply({ status: 500, json: { error: { message: 'boom' } } });
    anthropic.reply({ sse: anthropicStream(anthropicTextBlock(0, ['from ', 'claude'])) });
    const { events, threadId } = await run('fallback please');
    const fb = events.find((e) => e.type === 'run.provider_fallback');
    assert.ok(fb, JSON.stringify(events.map((e) => e.type)));
    assert.equal(fb.data.from.provider_name, 'openai');
    assert.equal(fb.data.to.provider_name, 'anthropic');
    assert.equal(fb.data.error_class, 'provider.unavailable');
    assert.equal(events.at(-1).type, 'run.completed');
    const msgs = await t.get(`/v1/threads/${threadId}/messages`, { token: u.token });
    assert.equal(msgs.body.at(-1).content, 'from claude');
    assert.equal(anthropic.requests.at(-1)!.headers['x-api-key'], 'sk-ant-test');
  });

  it('fails with provider.stream_interrupted when the stream breaks after output', async () => {
    openai.reply({ sse: chatTextStream(['partial ', 'answer ', 'never ', 'ends']), cutAfter: 2 });
    const { events, threadId } = await run('cut');
    const last = events.at(-1);
    assert.equal(last.type, 'run.failed');
    assert.equal(last.data.error_class, 'provider.stream_interrupted');
    assert.equal(last.data.retryable, true);
    assert.ok(!events.some((e) => e.type === 'run.provider_fallback'));
    const msgs = await t.get(`/v1/threads/${threadId}/messages`, { token: u.token });
    assert.equal(msgs.body.at(-1).role, 'assistant'); // the text so far is kept (§27.8)
  });
});
