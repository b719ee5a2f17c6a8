import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createProvider } from '../src/llm/index.js';
import { LlmError, type ProviderConfig } from '../src/llm/types.js';
import {
  anthropicStream,
  anthropicTextBlock,
  anthropicThinkingBlock,
  anthropicToolUseBlock,
  collect,
  collectUntilError,
  eventSse,
  anthropicMessageStart,
  request,
  startFakeLlm,
  texts,
  type FakeLlm,
} from './helpers/fake-llm.js';

let fake: FakeLlm;
before(async () => {
  fake = await startFakeLlm();
});
after(async () => {
  await fake.close();
});

const never = () => new AbortController().signal;

function provider(extra: Partial<ProviderConfig> = {}) {
  return createProvider({ kind: 'anthropic', name: 'anthropic', apiKey: 'sk-ant-test', baseUrl: fake.baseUrl, ...extra });
}

function last() {
  return fake.requests[fake.requests.length - 1];
}

function errorBody(type: string, message: string) {
  return { type: 'error', error: { type, message }, request_id: 'req_011CSHoEeqs5C35K2UUqR7Fy' };
}

describe('anthropic messages', () => {
  it('streams text deltas in order; usage input includes cache reads and writes; end_turn → stop', async () => {
    fake.reply({ sse: anthropicStream(anthropicTextBlock(0, ['Hello', '!', ' How can I help?']), { input: 10, cacheRead: 2000, cacheWrite: 300, output: 12 }) });
    const chunks = await collect(provider().stream(request({ model: 'claude-sonnet-4-20250514', system: 'Be kind.' }), never()));
    assert.deepEqual(chunks, [
      { type: 'text', text: 'Hello' },
      { type: 'text', text: '!' },
      { type: 'text', text: ' How can I help?' },
      { type: 'usage', usage: { inputTokens: 2310, outputTokens: 12, cacheReadTokens: 2000, cacheWriteTokens: 300 } },
      { type: 'finish', reason: 'stop' },
    ]);
    const r = last();
    assert.equal(r.method, 'POST');
    assert.equal(r.path, '/v1/messages');
    assert.equal(r.headers['x-api-key'], 'sk-ant-test');
    assert.equal(r.headers['anthropic-version'], '2023-06-01');
    assert.equal(r.body.model, 'claude-sonnet-4-20250514');
    assert.equal(r.body.stream, true);
    assert.equal(r.body.system, 'Be kind.');
    assert.equal(r.body.max_tokens, 4096, 'default max_tokens');
    assert.deepEqual(r.body.messages, [{ role: 'user', content: [{ type: 'text', text: 'hello' }] }]);
  });

  it('accepts a base URL that ends in /v1', async () => {
    fake.reply({ sse: anthropicStream(anthropicTextBlock(0, ['x'])) });
    await collect(provider({ baseUrl: `${fake.baseUrl}/v1/` }).stream(request(), never()));
    assert.equal(last().path, '/v1/messages');
  });

  it('thinking deltas become thinking chunks, never text', async () => {
    fake.reply({ sse: anthropicStream([...anthropicThinkingBlock(0, ['Let me ', 'see.']), ...anthropicTextBlock(1, ['42'])]) });
    const chunks = await collect(provider().stream(request({ reasoningEffort: 'medium', maxOutputTokens: 8000 }), never()));
    assert.deepEqual(chunks.slice(0, 3), [
      { type: 'thinking', text: 'Let me ' },
      { type: 'thinking', text: 'see.' },
      { type: 'text', text: '42' },
    ]);
    assert.deepEqual(last().body.thinking, { type: 'enabled', budget_tokens: 4096 });
    assert.equal(last().body.max_tokens, 8000);
  });

  it('assembles tool_use input split across input_json_delta chunks, two blocks; tool_use → tool_calls', async () => {
    fake.reply({
      sse: anthropicStream(
        [
          ...anthropicTextBlock(0, ['Let me check.']),
          ...anthropicToolUseBlock(1, 'toolu_01T1x1fJ34qAmk2tNTrN7Up6', 'get_weather', ['{"locat', 'ion": "San Fra', 'ncisco, CA"}']),
          ...anthropicToolUseBlock(2, 'toolu_02ABC', 'echo', ['{"text"', ': "hi"}']),
        ],
        { stopReason: 'tool_use', input: 400, output: 89 },
      ),
    });
    const chunks = await collect(provider().stream(request(), never()));
    assert.deepEqual(chunks, [
      { type: 'text', text: 'Let me check.' },
      { type: 'tool_call', call: { id: 'toolu_01T1x1fJ34qAmk2tNTrN7Up6', name: 'get_weather', arguments: { location: 'San Francisco, CA' } } },
      { type: 'tool_call', call: { id: 'toolu_02ABC', name: 'echo', arguments: { text: 'hi' } } },
      { type: 'usage', usage: { inputTokens: 400, outputTokens: 89, cacheReadTokens: 0, cacheWriteTokens: 0 } },
      { type: 'finish', reason: 'tool_calls' },
    ]);
  });

  it('max_tokens → length', async () => {
    fake.reply({ sse: anthropicStream(anthropicTextBlock(0, ['cut']), { stopReason: 'max_tokens' }) });
    const chunks = await collect(provider().stream(request({ maxOutputTokens: 5 }), never()));
    assert.deepEqual(chunks[chunks.length - 1], { type: 'finish', reason: 'length' });
    assert.equal(last().body.max_tokens, 5);
  });

  it('converts tool calls and tool results (a user turn of tool_result blocks), tools, sampling, extra body and headers', async () => {
    fake.reply({ sse: anthropicStream(anthropicTextBlock(0, ['ok'])) });
    await collect(
      provider().stream(
        request({
          messages: [
            { role: 'user', content: 'weather in two cities?' },
            {
              role: 'assistant',
              content: 'Checking.',
              toolCalls: [
                { id: 'toolu_1', name: 'get_weather', arguments: { location: 'Paris' } },
                { id: 'toolu_2', name: 'get_weather', arguments: { location: 'Rome' } },
              ],
            },
            { role: 'tool', toolCallId: 'toolu_1', toolName: 'get_weather', content: '{"temp":21}' },
            { role: 'tool', toolCallId: 'toolu_2', toolName: 'get_weather', content: '{"temp":25}' },
            { role: 'assistant', content: '' },
            { role: 'user', content: 'and now?' },
          ],
          tools: [{ name: 'get_weather', description: 'Weather', inputSchema: { type: 'object', properties: { location: { type: 'string' } } } }],
          temperature: 0.1,
          topP: 0.7,
          extraBody: { metadata: { user_id: 'u1' } },
          headers: { 'anthropic-beta': 'prompt-caching-2024-07-31' },
        }),
        never(),
      ),
    );
    const r = last();
    assert.deepEqual(r.body.messages, [
      { role: 'user', content: [{ type: 'text', text: 'weather in two cities?' }] },
      {
        role: 'assistant',
        content: [
          { type: 'text', text: 'Checking.' },
          { type: 'tool_use', id: 'toolu_1', name: 'get_weather', input: { location: 'Paris' } },
          { type: 'tool_use', id: 'toolu_2', name: 'get_weather', input: { location: 'Rome' } },
        ],
      },
      {
        role: 'user',
        content: [
          { type: 'tool_result', tool_use_id: 'toolu_1', content: '{"temp":21}' },
          { type: 'tool_result', tool_use_id: 'toolu_2', content: '{"temp":25}' },
          { type: 'text', text: 'and now?' },
        ],
      },
    ]);
    assert.deepEqual(r.body.tools, [{ name: 'get_weather', description: 'Weather', input_schema: { type: 'object', properties: { location: { type: 'string' } } } }]);
    assert.equal(r.body.temperature, 0.1);
    assert.equal(r.body.top_p, 0.7);
    assert.deepEqual(r.body.metadata, { user_id: 'u1' });
    assert.equal(r.headers['anthropic-beta'], 'prompt-caching-2024-07-31');
    assert.equal('system' in r.body, false);
  });

  it('HTTP errors: 429 Retry-After, 529/503 retryable, 500 not, 401, 400 prompt too long, 413', async () => {
    const cases: Array<[number, unknown, Record<string, string>, string, boolean, number | null]> = [
      [429, errorBody('rate_limit_error', 'Number of request tokens has exceeded your per-minute rate limit'), { 'retry-after': '3' }, 'provider.rate_limited', true, 3000],
      [529, errorBody('overloaded_error', 'Overloaded'), {}, 'provider.unavailable', true, null],
      [503, errorBody('api_error', 'unavailable'), {}, 'provider.unavailable', true, null],
      [500, errorBody('api_error', 'Internal server error'), {}, 'provider.unavailable', false, null],
      [401, errorBody('authentication_error', 'invalid x-api-key'), {}, 'provider.auth_failed', false, null],
      [400, errorBody('invalid_request_error', 'prompt is too long: 208310 tokens > 200000 maximum'), {}, 'provider.context_length_exceeded', false, null],
      [400, errorBody('invalid_request_error', 'messages: text content blocks must be non-empty'), {}, 'provider.bad_request', false, null],
      [413, errorBody('request_too_large', 'Request exceeds the maximum allowed number of bytes.'), {}, 'provider.bad_request', false, null],
    ];
    for (const [status, json, headers, cls, retryable, retryAfterMs] of cases) {
      fake.reply({ status, json, headers });
      const { chunks, error } = await collectUntilError(provider().stream(request(), never()));
      assert.deepEqual(chunks, []);
      assert.ok(error instanceof LlmError, `${status}: ${String(error)}`);
      assert.equal(error.errorClass, cls, `${status}`);
      assert.equal(error.opts.status, status);
      assert.equal(error.opts.retryable, retryable, `${status}`);
      assert.equal(error.opts.retryAfterMs, retryAfterMs);
    }
  });

  it('an overloaded error event before output → unavailable retryable; after output → stream_interrupted', async () => {
    fake.reply({ sse: eventSse([anthropicMessageStart(), { type: 'error', error: { type: 'overloaded_error', message: 'Overloaded' } }]) });
    const a = await collectUntilError(provider().stream(request(), never()));
    assert.equal((a.error as LlmError).errorClass, 'provider.unavailable');
    assert.equal((a.error as LlmError).opts.retryable, true);

    fake.reply({
      sse: eventSse([
        anthropicMessageStart(),
        ...anthropicTextBlock(0, ['Hi', ' there']).slice(0, 2),
        { type: 'error', error: { type: 'overloaded_error', message: 'Overloaded' } },
      ]),
    });
    const b = await collectUntilError(provider().stream(request(), never()));
    assert.deepEqual(texts(b.chunks), ['Hi']);
    assert.equal((b.error as LlmError).errorClass, 'provider.stream_interrupted');
    assert.equal((b.error as LlmError).opts.retryable, false);
  });

  it('a connection cut after output → stream_interrupted', async () => {
    fake.reply({ sse: anthropicStream(anthropicTextBlock(0, ['a', 'b', 'c'])), cutAfter: 5 });
    const { chunks, error } = await collectUntilError(provider().stream(request(), never()));
    assert.deepEqual(texts(chunks), ['a', 'b']);
    assert.ok(error instanceof LlmError, String(error));
    assert.equal(error.errorClass, 'provider.stream_interrupted');
  });

  it('connection refused → unavailable retryable; no answer in time → timeout retryable', async () => {
    const refused = createProvider({ kind: 'anthropic', name: 'a', apiKey: 'k', baseUrl: 'http://127.0.0.1:1' });
    const a = await collectUntilError(refused.stream(request(), never()));
    assert.equal((a.error as LlmError).errorClass, 'provider.unavailable');
    assert.equal((a.error as LlmError).opts.retryable, true);

    fake.reply({ hang: true });
    const b = await collectUntilError(provider({ timeoutMs: 150 }).stream(request(), never()));
    assert.equal((b.error as LlmError).errorClass, 'provider.timeout');
    assert.equal((b.error as LlmError).opts.retryable, true);
  });

  it('aborting mid-stream stops promptly with an AbortError and closes the upstream request', async () => {
    fake.reply({ sse: anthropicStream(anthropicTextBlock(0, ['a', 'b', 'c'])), hangAfter: 4 });
    const ac = new AbortController();
    const closedBefore = fake.closedCount();
    const got: string[] = [];
    const started = Date.now();
    let error: unknown;
    try {
      for await (const c of provider().stream(request(), ac.signal)) {
        if (c.type === 'text') {
          got.push(c.text);
          setTimeout(() => ac.abort(), 20);
        }
      }
    } catch (err) {
      error = err;
    }
    assert.deepEqual(got, ['a']);
    assert.equal((error as Error)?.name, 'AbortError');
    assert.ok(Date.now() - started < 1000);
    for (let i = 0; i < 50 && fake.closedCount() === closedBefore; i++) await new Promise((r) => setTimeout(r, 10));
    assert.ok(fake.closedCount() > closedBefore);
  });
});
