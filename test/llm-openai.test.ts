import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createProvider } from '../src/llm/index.js';
import { LlmError, type LlmChunk, type ProviderConfig } from '../src/llm/types.js';
import {
  chatChunk,
  chatSse,
  chatTextStream,
  chatUsageChunk,
  collect,
  collectUntilError,
  request,
  responsesEvents,
  responsesFunctionCallItem,
  responsesReasoningItem,
  responsesTextItem,
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
  return createProvider({ kind: 'openai', name: 'openai', apiKey: 'sk-test-123', baseUrl: `${fake.baseUrl}/v1`, ...extra });
}

function last() {
  return fake.requests[fake.requests.length - 1];
}

function nonRaw(chunks: LlmChunk[]) {
  return chunks.filter((c) => c.type !== 'raw');
}

const toolCallChunks = [
  chatChunk({
    role: 'assistant',
    content: null,
    tool_calls: [{ index: 0, id: 'call_DdmO9pD3xa9XTPNJ32zg2hcA', type: 'function', function: { name: 'get_weather', arguments: '' } }],
    refusal: null,
  }),
  chatChunk({ tool_calls: [{ index: 0, function: { arguments: '{"' } }] }),
  chatChunk({ tool_calls: [{ index: 0, function: { arguments: 'location' } }] }),
  chatChunk({ tool_calls: [{ index: 0, function: { arguments: '":"Paris' } }] }),
  chatChunk({ tool_calls: [{ index: 0, function: { arguments: ', France"}' } }] }),
  chatChunk({ tool_calls: [{ index: 1, id: 'call_ABCDEFGHIJKLMNOPQRSTUVWX', type: 'function', function: { name: 'echo', arguments: '' } }] }),
  chatChunk({ tool_calls: [{ index: 1, function: { arguments: '{"text": ' } }] }),
  chatChunk({ tool_calls: [{ index: 1, function: { arguments: '"hi"}' } }] }),
  chatChunk({}, 'tool_calls'),
  chatUsageChunk(80, 40, 64),
];

describe('openai chat completions', () => {
  it('streams one text chunk per upstream delta, in order, then usage (with cached tokens) and stop', async () => {
    fake.reply({ sse: chatTextStream(['Hel', 'lo', ' there', '!'], { prompt: 1200, completion: 4, cached: 1024 }) });
    const chunks = await collect(provider().stream(request({ system: 'You are terse.', model: 'gpt-4o-mini' }), never()));
    assert.deepEqual(chunks, [
      { type: 'text', text: 'Hel' },
      { type: 'text', text: 'lo' },
      { type: 'text', text: ' there' },
      { type: 'text', text: '!' },
      { type: 'usage', usage: { inputTokens: 1200, outputTokens: 4, cacheReadTokens: 1024, cacheWriteTokens: 0 } },
      { type: 'finish', reason: 'stop' },
    ]);
    const r = last();
    assert.equal(r.method, 'POST');
    assert.equal(r.path, '/v1/chat/completions');
    assert.equal(r.headers.authorization, 'Bearer sk-test-123');
    assert.equal(r.body.model, 'gpt-4o-mini');
    assert.equal(r.body.stream, true);
    assert.deepEqual(r.body.stream_options, { include_usage: true });
    assert.deepEqual(r.body.messages, [
      { role: 'system', content: 'You are terse.' },
      { role: 'user', content: 'hello' },
    ]);
    assert.equal('tools' in r.body, false);
    assert.equal('max_tokens' in r.body, false);
    assert.equal('temperature' in r.body, false);
  });

  it('passes raw upstream chunks along for debugging', async () => {
    fake.reply({ sse: chatTextStream(['a']) });
    const chunks = await collect(provider().stream(request(), never()), { raw: true });
    const raws = chunks.filter((c) => c.type === 'raw');
    assert.equal(raws.length, 4);
    assert.equal((raws[0] as { data: any }).data.object, 'chat.completion.chunk');
  });

  it('assembles two parallel tool calls whose arguments are split across chunks', async () => {
    fake.reply({ sse: chatSse(toolCallChunks) });
    const chunks = await collect(provider().stream(request(), never()));
    assert.deepEqual(chunks, [
      { type: 'tool_call', call: { id: 'call_DdmO9pD3xa9XTPNJ32zg2hcA', name: 'get_weather', arguments: { location: 'Paris, France' } } },
      { type: 'tool_call', call: { id: 'call_ABCDEFGHIJKLMNOPQRSTUVWX', name: 'echo', arguments: { text: 'hi' } } },
      { type: 'usage', usage: { inputTokens: 80, outputTokens: 40, cacheReadTokens: 64, cacheWriteTokens: 0 } },
      { type: 'finish', reason: 'tool_calls' },
    ]);
  });

  it('keeps invalid argument text in rawArguments', async () => {
    fake.reply({
      sse: chatSse([
        chatChunk({ role: 'assistant', content: null, tool_calls: [{ index: 0, id: 'call_x', type: 'function', function: { name: 'echo', arguments: '{"a":' } }] }),
        chatChunk({}, 'tool_calls'),
        chatUsageChunk(1, 1),
      ]),
    });
    const chunks = await collect(provider().stream(request(), never()));
    assert.deepEqual(chunks[0], { type: 'tool_call', call: { id: 'call_x', name: 'echo', arguments: {}, rawArguments: '{"a":' } });
  });

  it('maps finish_reason length, and reasoning_content of compatible servers to thinking', async () => {
    fake.reply({
      sse: chatSse([
        chatChunk({ role: 'assistant', content: '' }),
        chatChunk({ reasoning_content: 'Let me think.' }),
        chatChunk({ content: 'Partial' }),
        chatChunk({}, 'length'),
        chatUsageChunk(5, 16),
      ]),
    });
    const chunks = await collect(provider().stream(request(), never()));
    assert.deepEqual(chunks.slice(0, 2), [
      { type: 'thinking', text: 'Let me think.' },
      { type: 'text', text: 'Partial' },
    ]);
    assert.deepEqual(chunks[chunks.length - 1], { type: 'finish', reason: 'length' });
  });

  it('estimates usage as ceil(chars/4) when the upstream reports none', async () => {
    fake.reply({ sse: chatSse([chatChunk({ role: 'assistant', content: '' }), chatChunk({ content: 'abcdefghi' }), chatChunk({}, 'stop')]) });
    const chunks = await collect(provider().stream(request({ messages: [{ role: 'user', content: '12345678' }] }), never()));
    assert.deepEqual(chunks.find((c) => c.type === 'usage'), {
      type: 'usage',
      usage: { inputTokens: 2, outputTokens: 3, cacheReadTokens: 0, cacheWriteTokens: 0 },
    });
  });

  it('converts the whole request: tools, tool call round trip, limits, reasoning, extra body and headers', async () => {
    fake.reply({ sse: chatTextStream(['ok']) });
    await collect(
      provider().stream(
        request({
          model: 'qwen3',
          system: 'sys',
          messages: [
            { role: 'user', content: 'weather?' },
            { role: 'assistant', content: '', toolCalls: [{ id: 'call_1', name: 'get_weather', arguments: { location: 'Paris' } }] },
            { role: 'tool', toolCallId: 'call_1', toolName: 'get_weather', content: '{"temp":21}' },
            { role: 'assistant', content: 'It is 21.' },
            { role: 'user', content: 'thanks' },
          ],
          tools: [{ name: 'get_weather', description: 'Weather of a city', inputSchema: { type: 'object', properties: { location: { type: 'string' } }, required: ['location'] } }],
          maxOutputTokens: 256,
          temperature: 0.2,
          topP: 0.9,
          reasoningEffort: 'low',
          extraBody: { seed: 7, temperature: 0.3 },
          headers: { 'x-custom': 'yes' },
        }),
        never(),
      ),
    );
    const r = last();
    assert.deepEqual(r.body.messages, [
      { role: 'system', content: 'sys' },
      { role: 'user', content: 'weather?' },
      { role: 'assistant', content: null, tool_calls: [{ id: 'call_1', type: 'function', function: { name: 'get_weather', arguments: '{"location":"Paris"}' } }] },
      { role: 'tool', tool_call_id: 'call_1', content: '{"temp":21}' },
      { role: 'assistant', content: 'It is 21.' },
      { role: 'user', content: 'thanks' },
    ]);
    assert.deepEqual(r.body.tools, [
      {
        type: 'function',
        function: { name: 'get_weather', description: 'Weather of a city', parameters: { type: 'object', properties: { location: { type: 'string' } }, required: ['location'] } },
      },
    ]);
    assert.equal(r.body.max_tokens, 256, 'compatible servers get max_tokens');
    assert.equal(r.body.top_p, 0.9);
    assert.equal(r.body.reasoning_effort, 'low');
    assert.equal(r.body.seed, 7);
    assert.equal(r.body.temperature, 0.3, 'extra body wins');
    assert.equal(r.headers['x-custom'], 'yes');
  });

  it('429 with Retry-After seconds → rate_limited, retryable, retryAfterMs', async () => {
    fake.reply({
      status: 429,
      headers: { 'retry-after': '7' },
      json: { error: { message: 'Rate limit reached for gpt-4o-mini on requests per min (RPM): Limit 3, Used 3.', type: 'requests', param: null, code: 'rate_limit_exceeded' } },
    });
    const { chunks, error } = await collectUntilError(provider().stream(request(), never()));
    assert.deepEqual(nonRaw(chunks), []);
    assert.ok(error instanceof LlmError);
    assert.equal(error.errorClass, 'provider.rate_limited');
    assert.equal(error.opts.status, 429);
    assert.equal(error.opts.retryable, true);
    assert.equal(error.opts.retryAfterMs, 7000);
    assert.equal(fake.requests.filter((r) => r.path === '/v1/chat/completions').length >= 1, true);
  });

  it('does not retry on its own (maxRetries 0)', async () => {
    const before = fake.requests.length;
    fake.reply({ status: 503, json: { error: { message: 'overloaded', type: 'server_error' } } });
    const { error } = await collectUntilError(provider().stream(request(), never()));
    assert.equal(fake.requests.length - before, 1);
    assert.equal((error as LlmError).errorClass, 'provider.unavailable');
    assert.equal((error as LlmError).opts.retryable, true);
  });

  it('Retry-After as an HTTP date', async () => {
    const date = new Date(Date.now() + 5000).toUTCString();
    fake.reply({ status: 429, headers: { 'retry-after': date }, json: { error: { message: 'slow', type: 'tokens', code: 'rate_limit_exceeded' } } });
    const { error } = await collectUntilError(provider().stream(request(), never()));
    const ms = (error as LlmError).opts.retryAfterMs!;
    assert.ok(ms > 3000 && ms <= 5000, String(ms));
  });

  it('500 → unavailable, not retryable; 401 → auth_failed; 400 context overflow; 400 other; 404', async () => {
    const cases: Array<[number, unknown, string, boolean]> = [
      [500, { error: { message: 'The server had an error while processing your request.', type: 'server_error', param: null, code: null } }, 'provider.unavailable', false],
      [504, { error: { message: 'Gateway timeout', type: 'server_error' } }, 'provider.unavailable', false],
      [502, { error: { message: 'Bad gateway', type: 'server_error' } }, 'provider.unavailable', true],
      [401, { error: { message: 'Incorrect API key provided: sk-test-***123.', type: 'invalid_request_error', param: null, code: 'invalid_api_key' } }, 'provider.auth_failed', false],
      [403, { error: { message: 'forbidden', type: 'invalid_request_error' } }, 'provider.auth_failed', false],
      [
        400,
        {
          error: {
            message: "This model's maximum context length is 128000 tokens. However, your messages resulted in 130012 tokens. Please reduce the length of the messages.",
            type: 'invalid_request_error',
            param: 'messages',
            code: 'context_length_exceeded',
          },
        },
        'provider.context_length_exceeded',
        false,
      ],
      [400, { error: { message: "Invalid value for 'temperature'", type: 'invalid_request_error', param: 'temperature', code: 'invalid_value' } }, 'provider.bad_request', false],
      [404, { error: { message: 'The model `nope` does not exist', type: 'invalid_request_error', code: 'model_not_found' } }, 'provider.bad_request', false],
      [422, { detail: 'bad' }, 'provider.bad_request', false],
    ];
    for (const [status, json, cls, retryable] of cases) {
      fake.reply({ status, json });
      const { error } = await collectUntilError(provider().stream(request(), never()));
      assert.ok(error instanceof LlmError, `status ${status}: ${String(error)}`);
      assert.equal(error.errorClass, cls, `status ${status}`);
      assert.equal(error.opts.status, status);
      assert.equal(error.opts.retryable, retryable, `status ${status}`);
    }
  });

  it('a stream cut after output began → stream_interrupted, not retryable', async () => {
    fake.reply({ sse: chatTextStream(['one', ' two', ' three', ' four']), cutAfter: 3 });
    const { chunks, error } = await collectUntilError(provider().stream(request(), never()));
    assert.deepEqual(texts(chunks), ['one', ' two']);
    assert.ok(error instanceof LlmError, String(error));
    assert.equal(error.errorClass, 'provider.stream_interrupted');
    assert.equal(error.opts.retryable, false);
  });

  it('a stream cut before any output → unavailable, retryable', async () => {
    fake.reply({ sse: chatTextStream(['one']), cutAfter: 1 });
    const { chunks, error } = await collectUntilError(provider().stream(request(), never()));
    assert.deepEqual(texts(chunks), []);
    assert.equal((error as LlmError).errorClass, 'provider.unavailable');
    assert.equal((error as LlmError).opts.retryable, true);
  });

  it('an error frame inside the stream after output → stream_interrupted', async () => {
    fake.reply({
      sse: [
        ...chatSse([chatChunk({ role: 'assistant', content: '' }), chatChunk({ content: 'Hi' })], false),
        `data: ${JSON.stringify({ error: { message: 'The server had an error while processing your request.', type: 'server_error' } })}\n\n`,
      ],
    });
    const { chunks, error } = await collectUntilError(provider().stream(request(), never()));
    assert.deepEqual(texts(chunks), ['Hi']);
    assert.equal((error as LlmError).errorClass, 'provider.stream_interrupted');
  });

  it('connection refused → unavailable, retryable', async () => {
    const p = createProvider({ kind: 'openai', name: 'x', apiKey: 'k', baseUrl: 'http://127.0.0.1:1/v1' });
    const { error } = await collectUntilError(p.stream(request(), never()));
    assert.ok(error instanceof LlmError, String(error));
    assert.equal(error.errorClass, 'provider.unavailable');
    assert.equal(error.opts.retryable, true);
    assert.equal(error.opts.status, null);
  });

  it('no answer before timeoutMs → provider.timeout, retryable', async () => {
    fake.reply({ hang: true });
    const started = Date.now();
    const { error } = await collectUntilError(provider({ timeoutMs: 150 }).stream(request(), never()));
    assert.ok(Date.now() - started < 2000);
    assert.ok(error instanceof LlmError, String(error));
    assert.equal(error.errorClass, 'provider.timeout');
    assert.equal(error.opts.retryable, true);
  });

  it('aborting the signal mid-stream stops promptly with an AbortError and closes the upstream request', async () => {
    fake.reply({ sse: chatTextStream(['a', 'b', 'c']), hangAfter: 2 });
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
    assert.ok(fake.closedCount() > closedBefore, 'upstream connection closed');
  });

  it('aborting before the answer arrives stops promptly', async () => {
    fake.reply({ hang: true });
    const ac = new AbortController();
    setTimeout(() => ac.abort(), 30);
    const started = Date.now();
    const { error } = await collectUntilError(provider().stream(request(), ac.signal));
    assert.equal((error as Error).name, 'AbortError');
    assert.ok(Date.now() - started < 1000);
  });

  it('uses max_completion_tokens against api.openai.com (request body only, checked via conversion)', async () => {
    const { convertToChatRequest } = await import('../src/llm/openai/convert-chat-request.js');
    const body = convertToChatRequest(request({ maxOutputTokens: 10 }), { maxTokensField: 'max_completion_tokens' });
    assert.equal(body.max_completion_tokens, 10);
    assert.equal('max_tokens' in body, false);
  });
});

describe('openai responses api', () => {
  const responses = () => provider({ openaiApiMode: 'responses' });

  it('streams text deltas and reasoning summary deltas, usage with cached tokens', async () => {
    fake.reply({
      sse: responsesEvents([...responsesReasoningItem(0, ['Thinking ', 'hard.']), ...responsesTextItem(1, ['Hi', ' there', '!'])], {
        usage: { input: 2006, output: 30, cached: 1920 },
      }),
    });
    const chunks = await collect(responses().stream(request({ system: 'Be brief.', reasoningEffort: 'high', maxOutputTokens: 500 }), never()));
    assert.deepEqual(chunks, [
      { type: 'thinking', text: 'Thinking ' },
      { type: 'thinking', text: 'hard.' },
      { type: 'text', text: 'Hi' },
      { type: 'text', text: ' there' },
      { type: 'text', text: '!' },
      { type: 'usage', usage: { inputTokens: 2006, outputTokens: 30, cacheReadTokens: 1920, cacheWriteTokens: 0 } },
      { type: 'finish', reason: 'stop' },
    ]);
    const r = last();
    assert.equal(r.path, '/v1/responses');
    assert.equal(r.headers.authorization, 'Bearer sk-test-123');
    assert.equal(r.body.stream, true);
    assert.equal(r.body.instructions, 'Be brief.');
    assert.deepEqual(r.body.input, [{ role: 'user', content: 'hello' }]);
    assert.equal(r.body.max_output_tokens, 500);
    assert.deepEqual(r.body.reasoning, { effort: 'high', summary: 'auto' });
  });

  it('assembles function calls from argument deltas (two in parallel) and finishes with tool_calls', async () => {
    fake.reply({
      sse: responsesEvents([
        ...responsesFunctionCallItem(0, 'call_FhbrcRrWuOv0BcJ9dBH2t81b', 'get_weather', ['{"loc', 'ation":', '"Paris"}']),
        ...responsesFunctionCallItem(1, 'call_2', 'echo', ['{}']),
      ]),
    });
    const chunks = await collect(responses().stream(request(), never()));
    assert.deepEqual(chunks.slice(0, 2), [
      { type: 'tool_call', call: { id: 'call_FhbrcRrWuOv0BcJ9dBH2t81b', name: 'get_weather', arguments: { location: 'Paris' } } },
      { type: 'tool_call', call: { id: 'call_2', name: 'echo', arguments: {} } },
    ]);
    assert.deepEqual(chunks[chunks.length - 1], { type: 'finish', reason: 'tool_calls' });
  });

  it('converts tool calls, tool results, tools, extra body and headers', async () => {
    fake.reply({ sse: responsesEvents(responsesTextItem(0, ['ok'])) });
    await collect(
      responses().stream(
        request({
          messages: [
            { role: 'user', content: 'weather?' },
            { role: 'assistant', content: 'Checking.', toolCalls: [{ id: 'call_1', name: 'get_weather', arguments: { location: 'Paris' } }] },
            { role: 'tool', toolCallId: 'call_1', toolName: 'get_weather', content: '{"temp":21}' },
          ],
          tools: [{ name: 'get_weather', description: 'Weather', inputSchema: { type: 'object' } }],
          temperature: 0.5,
          topP: 0.8,
          extraBody: { store: false },
          headers: { 'openai-beta': 'x' },
        }),
        never(),
      ),
    );
    const r = last();
    assert.deepEqual(r.body.input, [
      { role: 'user', content: 'weather?' },
      { role: 'assistant', content: 'Checking.' },
      { type: 'function_call', call_id: 'call_1', name: 'get_weather', arguments: '{"location":"Paris"}' },
      { type: 'function_call_output', call_id: 'call_1', output: '{"temp":21}' },
    ]);
    assert.deepEqual(r.body.tools, [{ type: 'function', name: 'get_weather', description: 'Weather', parameters: { type: 'object' }, strict: false }]);
    assert.equal(r.body.temperature, 0.5);
    assert.equal(r.body.top_p, 0.8);
    assert.equal(r.body.store, false);
    assert.equal('instructions' in r.body, false);
    assert.equal(r.headers['openai-beta'], 'x');
  });

  it('response.incomplete for max_output_tokens → finish length', async () => {
    fake.reply({
      sse: responsesEvents(responsesTextItem(0, ['Partial']), { type: 'response.incomplete', extra: { incomplete_details: { reason: 'max_output_tokens' } } }),
    });
    const chunks = await collect(responses().stream(request(), never()));
    assert.deepEqual(chunks[chunks.length - 1], { type: 'finish', reason: 'length' });
  });

  it('response.failed before output → an LlmError; a cut after output → stream_interrupted', async () => {
    fake.reply({
      sse: responsesEvents([], { type: 'response.failed', extra: { error: { code: 'rate_limit_exceeded', message: 'Rate limit reached' } } }),
    });
    const a = await collectUntilError(responses().stream(request(), never()));
    assert.equal((a.error as LlmError).errorClass, 'provider.rate_limited');

    const frames = responsesEvents(responsesTextItem(0, ['a', 'b', 'c']));
    fake.reply({ sse: frames, cutAfter: 6 });
    const b = await collectUntilError(responses().stream(request(), never()));
    assert.deepEqual(texts(b.chunks), ['a', 'b']);
    assert.equal((b.error as LlmError).errorClass, 'provider.stream_interrupted');
  });

  it('HTTP errors map the same way (429 with Retry-After)', async () => {
    fake.reply({ status: 429, headers: { 'retry-after': '2' }, json: { error: { message: 'Rate limit', type: 'requests', code: 'rate_limit_exceeded' } } });
    const { error } = await collectUntilError(responses().stream(request(), never()));
    assert.equal((error as LlmError).errorClass, 'provider.rate_limited');
    assert.equal((error as LlmError).opts.retryAfterMs, 2000);
  });
});
