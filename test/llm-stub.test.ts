import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { builtinStub, createProvider, envProviders } from '../src/llm/index.js';
import { splitWords } from '../src/llm/stub.js';
import { LlmError, type LlmChunk, type LlmProvider } from '../src/llm/types.js';
import { collect, collectUntilError, request, texts } from './helpers/fake-llm.js';

const stub = builtinStub().provider;
const never = () => new AbortController().signal;

function script(steps: unknown[]): string {
  return JSON.stringify({ stub: { steps } });
}

function call(p: LlmProvider, content: string, turn = 0, signal = never()): Promise<LlmChunk[]> {
  return collect(p.stream(request({ messages: [{ role: 'user', content }], turn }), signal));
}

function finish(chunks: LlmChunk[]): string | undefined {
  const f = chunks.find((c) => c.type === 'finish');
  return f?.type === 'finish' ? f.reason : undefined;
}

describe('stub model', () => {
  it('is named stub with model stub', () => {
    const s = builtinStub();
    assert.equal(s.provider.name, 'stub');
    assert.equal(s.provider.kind, 'stub');
    assert.equal(s.model, 'stub');
    assert.equal(s.config.name, 'stub');
  });

  it('splits on word boundaries, whitespace kept with the word before it', () => {
    assert.deepEqual(splitWords('[stub] hello world'), ['[stub] ', 'hello ', 'world']);
    assert.deepEqual(splitWords('  a  b\n'), ['  ', 'a  ', 'b\n']);
    assert.deepEqual(splitWords(''), []);
  });

  it('answers a plain message with [stub] + the message, in word chunks, usage and stop', async () => {
    const chunks = await call(stub, 'hello world');
    assert.deepEqual(texts(chunks), ['[stub] ', 'hello ', 'world']);
    const usage = chunks.find((c) => c.type === 'usage');
    assert.deepEqual(usage, {
      type: 'usage',
      usage: { inputTokens: Math.ceil(11 / 4), outputTokens: Math.ceil(18 / 4), cacheReadTokens: 0, cacheWriteTokens: 0 },
    });
    assert.equal(finish(chunks), 'stop');
    assert.equal(chunks[chunks.length - 1].type, 'finish');
  });

  it('uses the last user message and is deterministic', async () => {
    const req = request({
      system: 'be nice',
      messages: [
        { role: 'user', content: 'first' },
        { role: 'assistant', content: '[stub] first' },
        { role: 'user', content: 'second one' },
      ],
    });
    const a = await collect(stub.stream(req, never()));
    const b = await collect(stub.stream(req, never()));
    assert.deepEqual(texts(a), ['[stub] ', 'second ', 'one']);
    assert.deepEqual(a, b);
  });

  it('plays a text step verbatim without prefix, split on words', async () => {
    const chunks = await call(stub, script([{ text: 'exactly this text' }]));
    assert.deepEqual(texts(chunks), ['exactly ', 'this ', 'text']);
    assert.equal(finish(chunks), 'stop');
  });

  it('plays one step per turn: tool_call then text, then silence', async () => {
    const msg = script([{ tool_call: { name: 'echo', arguments: { text: 'hi' } } }, { text: 'done' }]);
    const t0 = await call(stub, msg, 0);
    const calls = t0.filter((c) => c.type === 'tool_call');
    assert.equal(calls.length, 1);
    const tc = calls[0].type === 'tool_call' ? calls[0].call : null;
    assert.equal(tc?.name, 'echo');
    assert.deepEqual(tc?.arguments, { text: 'hi' });
    assert.match(tc!.id, /^call_[0-9a-f]+$/);
    assert.equal(finish(t0), 'tool_calls');
    assert.deepEqual(texts(t0), []);

    const t1 = await call(stub, msg, 1);
    assert.deepEqual(texts(t1), ['done']);
    assert.equal(finish(t1), 'stop');

    const t2 = await call(stub, msg, 2);
    assert.deepEqual(texts(t2), []);
    assert.equal(t2.some((c) => c.type === 'tool_call'), false);
    assert.equal(finish(t2), 'stop');
  });

  it('a lone tool_call step completes after the tool result (steps used up → no output)', async () => {
    const msg = script([{ tool_call: { name: 'noop', arguments: {} } }]);
    const req = request({
      messages: [
        { role: 'user', content: msg },
        { role: 'assistant', content: '', toolCalls: [{ id: 'call_1', name: 'noop', arguments: {} }] },
        { role: 'tool', toolCallId: 'call_1', toolName: 'noop', content: '{"ok":true}' },
      ],
      turn: 1,
    });
    const chunks = await collect(stub.stream(req, never()));
    assert.deepEqual(texts(chunks), []);
    assert.equal(finish(chunks), 'stop');
  });

  it('an error step throws the LlmError of its status; retryable for 429/502/503', async () => {
    const cases: Array<[number, string, boolean]> = [
      [503, 'provider.unavailable', true],
      [502, 'provider.unavailable', true],
      [429, 'provider.rate_limited', true],
      [500, 'provider.unavailable', false],
      [401, 'provider.auth_failed', false],
      [400, 'provider.bad_request', false],
    ];
    for (const [status, cls, retryable] of cases) {
      const { chunks, error } = await collectUntilError(
        stub.stream(request({ messages: [{ role: 'user', content: script([{ error: { status, message: 'boom' } }]) }] }), never()),
      );
      assert.deepEqual(chunks, []);
      assert.ok(error instanceof LlmError, `status ${status}`);
      assert.equal(error.errorClass, cls);
      assert.equal(error.opts.status, status);
      assert.equal(error.opts.retryable, retryable);
      assert.equal(error.message, 'boom');
    }
  });

  it('the retry accounting: an error step then a text step answers on the next call', async () => {
    const msg = script([{ error: { status: 503, message: 'x' } }, { text: 'ok' }]);
    const first = await collectUntilError(stub.stream(request({ messages: [{ role: 'user', content: msg }], turn: 0 }), never()));
    assert.equal((first.error as LlmError).errorClass, 'provider.unavailable');
    assert.deepEqual(texts(await call(stub, msg, 1)), ['ok']);
  });

  it('a trailing error step repeats for every later call; a trailing text step does not', async () => {
    const msg = script([{ text: 'a' }, { error: { status: 429, message: 'slow down' } }]);
    for (const turn of [1, 2, 3, 7]) {
      const r = await collectUntilError(stub.stream(request({ messages: [{ role: 'user', content: msg }], turn }), never()));
      assert.equal((r.error as LlmError).errorClass, 'provider.rate_limited', `turn ${turn}`);
    }
    const lone = script([{ error: { status: 503, message: 'down' } }]);
    for (const turn of [0, 1, 2]) {
      const r = await collectUntilError(stub.stream(request({ messages: [{ role: 'user', content: lone }], turn }), never()));
      assert.equal((r.error as LlmError).opts.retryable, true);
    }
    const t = await call(stub, script([{ text: 'a' }]), 1);
    assert.deepEqual(texts(t), []);
  });

  it('a delay_ms step waits, then plays the next step in the same call (and does not count as a turn)', async () => {
    const msg = script([{ delay_ms: 80 }, { text: 'late' }, { text: 'second' }]);
    const t0 = Date.now();
    const c0 = await call(stub, msg, 0);
    assert.ok(Date.now() - t0 >= 75, 'waited');
    assert.deepEqual(texts(c0), ['late']);
    const c1 = await call(stub, msg, 1);
    assert.deepEqual(texts(c1), ['second']);
  });

  it('delay_ms as a key of another step waits before that step', async () => {
    const msg = script([{ text: 'first' }, { delay_ms: 60, tool_call: { name: 'echo', arguments: { a: 1 } } }]);
    const started = Date.now();
    const c0 = await call(stub, msg, 0);
    assert.ok(Date.now() - started < 50);
    assert.deepEqual(texts(c0), ['first']);
    const s1 = Date.now();
    const c1 = await call(stub, msg, 1);
    assert.ok(Date.now() - s1 >= 55);
    assert.equal(finish(c1), 'tool_calls');
  });

  it('a delay is abortable', async () => {
    const ac = new AbortController();
    const started = Date.now();
    setTimeout(() => ac.abort(), 30);
    const r = await collectUntilError(stub.stream(request({ messages: [{ role: 'user', content: script([{ delay_ms: 5000 }, { text: 'x' }]) }] }), ac.signal));
    assert.ok(Date.now() - started < 1000);
    assert.equal((r.error as Error).name, 'AbortError');
    assert.deepEqual(r.chunks, []);
  });

  it('an already aborted signal stops before any output', async () => {
    const ac = new AbortController();
    ac.abort();
    const r = await collectUntilError(stub.stream(request(), ac.signal));
    assert.equal((r.error as Error).name, 'AbortError');
    assert.deepEqual(r.chunks, []);
  });

  it('ask_input emits ask_input and ends the call; the next call plays the next step with the input as newest user message', async () => {
    const msg = script([{ ask_input: 'What is your name?' }, { text: 'thanks' }]);
    const c0 = await call(stub, msg, 0);
    assert.deepEqual(c0.filter((c) => c.type === 'ask_input'), [{ type: 'ask_input', prompt: 'What is your name?' }]);
    assert.deepEqual(texts(c0), []);
    assert.equal(c0[c0.length - 1].type, 'finish');

    const resumed = request({
      messages: [
        { role: 'user', content: msg },
        { role: 'user', content: 'Ada' },
      ],
      turn: 1,
    });
    const c1 = await collect(stub.stream(resumed, never()));
    assert.deepEqual(texts(c1), ['thanks']);
  });

  it('a new run (turn 0) with a plain message is not played from an older script in the thread', async () => {
    const req = request({
      messages: [
        { role: 'user', content: script([{ text: 'scripted' }]) },
        { role: 'assistant', content: 'scripted' },
        { role: 'user', content: 'plain now' },
      ],
      turn: 0,
    });
    assert.deepEqual(texts(await collect(stub.stream(req, never()))), ['[stub] ', 'plain ', 'now']);
  });

  it('a JSON message without a stub key is a plain message', async () => {
    const chunks = await call(stub, '{"hello": 1}');
    assert.deepEqual(texts(chunks), ['[stub] ', '{"hello": ', '1}']);
  });

  it('chunk_delay_ms sleeps between text chunks, and is abortable', async () => {
    const slow = createProvider({ kind: 'stub', name: 'slow', apiKey: null, baseUrl: null, advancedJson: { chunk_delay_ms: 40 } });
    const started = Date.now();
    const chunks = await call(slow, 'a b c d');
    const took = Date.now() - started;
    assert.deepEqual(texts(chunks), ['[stub] ', 'a ', 'b ', 'c ', 'd']);
    assert.ok(took >= 4 * 40 - 10, `took ${took}`);

    const ac = new AbortController();
    const got: string[] = [];
    const t0 = Date.now();
    try {
      for await (const c of slow.stream(request({ messages: [{ role: 'user', content: 'one two three four five six' }] }), ac.signal)) {
        if (c.type === 'text') got.push(c.text);
        if (got.length === 2) ac.abort();
      }
      assert.fail('expected abort');
    } catch (err) {
      assert.equal((err as Error).name, 'AbortError');
    }
    assert.deepEqual(got, ['[stub] ', 'one ']);
    assert.ok(Date.now() - t0 < 500);
  });

  it('envProviders reads the ARKLOOP_OPENAI_* and ARKLOOP_ANTHROPIC_* variables', () => {
    assert.deepEqual(envProviders({}), []);
    const list = envProviders({
      ARKLOOP_OPENAI_API_KEY: 'sk-1',
      ARKLOOP_ANTHROPIC_API_KEY: 'sk-ant',
      ARKLOOP_ANTHROPIC_BASE_URL: 'http://127.0.0.1:9',
      ARKLOOP_ANTHROPIC_MODEL: 'claude-x',
    });
    assert.deepEqual(
      list.map((e) => [e.config.kind, e.config.name, e.config.apiKey, e.config.baseUrl, e.model]),
      [
        ['openai', 'openai', 'sk-1', null, 'gpt-4o-mini'],
        ['anthropic', 'anthropic', 'sk-ant', 'http://127.0.0.1:9', 'claude-x'],
      ],
    );
    assert.equal(createProvider(list[0].config).kind, 'openai');
    assert.equal(createProvider(list[1].config).kind, 'anthropic');
  });
});
