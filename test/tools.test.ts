import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { pino } from 'pino';
import {
  ASK_USER_TOOL_NAME,
  BUILTIN_TOOL_TIMEOUT_MS,
  askUserQuestion,
  askUserResult,
  askUserTool,
  builtinTools,
  createBuiltinToolRegistry,
  echoTool,
  isAskUser,
  noopTool,
} from '../src/tools/builtins.js';
import {
  ToolBudget,
  isToolOffered,
  matchesToolPattern,
  offeredTools,
  runToolWithTimeout,
  toolErrorResult,
  validateToolArguments,
} from '../src/tools/policy.js';
import { ToolRegistry, toolSpec } from '../src/tools/registry.js';
import { ToolError, type Tool, type ToolContext } from '../src/tools/types.js';

function ctx(signal: AbortSignal = new AbortController().signal): ToolContext {
  return { runId: 'run-1', orgId: 'org-1', userId: 'user-1', signal, log: pino({ level: 'silent' }) };
}

function fakeTool(name: string, run: Tool['run'], extra: Partial<Tool> = {}): Tool {
  return { name, description: name, inputSchema: { type: 'object' }, source: 'builtin', run, ...extra };
}

async function toolErrorOf(p: Promise<unknown>): Promise<ToolError> {
  try {
    await p;
  } catch (err) {
    assert.ok(err instanceof ToolError, `expected a ToolError, got ${String(err)}`);
    return err;
  }
  assert.fail('expected the call to fail');
}

describe('tool registry', () => {
  it('holds the built-ins and accepts more tools through register()', () => {
    const reg = createBuiltinToolRegistry();
    assert.deepEqual(
      reg.list().map((t) => t.name),
      ['echo', 'noop', 'ask_user'],
    );
    assert.equal(reg.get('echo'), echoTool);
    assert.equal(reg.get('nope'), undefined);
    assert.equal(reg.size, 3);

    const mcp = fakeTool('mcp__files__read', async () => 'x', { source: 'mcp' });
    reg.register(mcp);
    assert.ok(reg.has('mcp__files__read'));
    assert.equal(reg.list().at(-1), mcp);
    assert.ok(reg.unregister('mcp__files__read'));
    assert.equal(reg.unregister('mcp__files__read'), false);
    assert.equal(reg.has('mcp__files__read'), false);
  });

  it('refuses duplicate and malformed names', () => {
    const reg = new ToolRegistry([echoTool]);
    assert.throws(() => reg.register(echoTool), /already registered/);
    for (const bad of ['', 'has space', 'dots.not.ok', 'x'.repeat(65)]) {
      assert.throws(() => reg.register(fakeTool(bad, async () => null)), /invalid tool name/, bad);
    }
  });

  it('gives the model name, description and JSON schema', () => {
    assert.deepEqual(toolSpec(askUserTool), {
      name: 'ask_user',
      description: askUserTool.description,
      inputSchema: askUserTool.inputSchema,
    });
    for (const t of builtinTools) {
      assert.equal(t.source, 'builtin');
      assert.equal(t.timeoutMs, BUILTIN_TOOL_TIMEOUT_MS);
      assert.equal(t.inputSchema.type, 'object');
      assert.ok(t.description.length > 10);
    }
  });
});

describe('built-in tools', () => {
  it('echo returns the arguments unchanged', async () => {
    const args = { text: 'hi', n: 3, nested: { list: [1, 'two', null], flag: false } };
    assert.deepEqual(await runToolWithTimeout(echoTool, args, ctx()), args);
    assert.deepEqual(await runToolWithTimeout(echoTool, {}, ctx()), {});
  });

  it('noop returns {ok: true} whatever the arguments', async () => {
    assert.deepEqual(await runToolWithTimeout(noopTool, { anything: [1, 2] }, ctx()), { ok: true });
  });

  it('ask_user is recognised by name, parsed by the loop, and never run directly', async () => {
    assert.equal(ASK_USER_TOOL_NAME, 'ask_user');
    assert.ok(isAskUser('ask_user'));
    assert.equal(isAskUser('echo'), false);
    assert.equal(askUserQuestion({ question: 'Which city?' }), 'Which city?');
    for (const bad of [{}, { question: '' }, { question: 3 }, null, 'q']) {
      assert.throws(() => askUserQuestion(bad), (e: unknown) => e instanceof ToolError && e.errorClass === 'tool.invalid_arguments');
    }
    assert.deepEqual(askUserResult('Paris'), { answer: 'Paris' });
    await assert.rejects(askUserTool.run({ question: 'x' }, ctx()), /handled by the agent loop/);
    const err = await toolErrorOf(runToolWithTimeout(askUserTool, { question: 'x' }, ctx()));
    assert.equal(err.errorClass, 'tool.execution_failed');
    const invalid = await toolErrorOf(runToolWithTimeout(askUserTool, { question: 1 }, ctx()));
    assert.equal(invalid.errorClass, 'tool.invalid_arguments');
  });
});

describe('tool policy', () => {
  const names = ['echo', 'noop', 'ask_user', 'web_search', 'web_fetch', 'mcp__git__log', 'mcp__git__push', 'mcp__fs__read'];
  const tools = names.map((n) => ({ name: n }));
  const offered = (allow: string[] | null, deny: string[]) => offeredTools(tools, allow, deny).map((t) => t.name);

  it('matches exact names and prefix*', () => {
    assert.ok(matchesToolPattern('echo', 'echo'));
    assert.equal(matchesToolPattern('echo2', 'echo'), false);
    assert.equal(matchesToolPattern('ech', 'echo'), false);
    assert.ok(matchesToolPattern('web_search', 'web_*'));
    assert.ok(matchesToolPattern('web_', 'web_*'));
    assert.equal(matchesToolPattern('webx', 'web_*'), false);
    assert.ok(matchesToolPattern('anything', '*'));
    assert.equal(matchesToolPattern('web_search', 'web_search*x'), false);
  });

  it('allowlist null offers everything, [] nothing, a list only its matches', () => {
    assert.deepEqual(offered(null, []), names);
    assert.deepEqual(offered([], []), []);
    assert.deepEqual(offered(['web_search', 'web_fetch'], []), ['web_search', 'web_fetch']);
    assert.deepEqual(offered(['mcp__git__*', 'echo', 'unknown'], []), ['echo', 'mcp__git__log', 'mcp__git__push']);
  });

  it('the denylist wins over the allowlist', () => {
    assert.deepEqual(offered(null, ['mcp__*', 'ask_user']), ['echo', 'noop', 'web_search', 'web_fetch']);
    assert.deepEqual(offered(['mcp__*'], ['mcp__git__push']), ['mcp__git__log', 'mcp__fs__read']);
    assert.deepEqual(offered(null, ['*']), []);
    assert.equal(isToolOffered('web_fetch', ['web_*'], ['web_fetch']), false);
    assert.equal(isToolOffered('web_search', ['web_*'], ['web_fetch']), true);
  });
});

describe('tool budget', () => {
  it('counts total calls against tool_continuation_budget', () => {
    const b = new ToolBudget(2);
    assert.deepEqual(b.consume('echo'), { allowed: true });
    assert.deepEqual(b.consume('noop'), { allowed: true });
    const denied = b.consume('echo');
    assert.equal(denied.allowed, false);
    assert.ok(!denied.allowed && denied.errorClass === 'budget.tool_calls_exhausted' && /2 calls/.test(denied.message));
    assert.equal(b.used, 2);
    assert.equal(b.remaining, 0);
  });

  it('a budget of 0 denies the first call', () => {
    assert.equal(new ToolBudget(0).consume('echo').allowed, false);
  });

  it('applies per-tool soft limits, without counting denied calls', () => {
    const b = new ToolBudget(5, { web_search: 2, noop: 0 });
    assert.equal(b.consume('web_search').allowed, true);
    assert.equal(b.consume('web_search').allowed, true);
    const third = b.consume('web_search');
    assert.ok(!third.allowed && third.errorClass === 'budget.tool_calls_exhausted' && /web_search/.test(third.message));
    assert.equal(b.consume('noop').allowed, false);
    assert.equal(b.used, 2);
    assert.equal(b.usedBy('web_search'), 2);
    assert.equal(b.usedBy('noop'), 0);
    assert.equal(b.consume('echo').allowed, true);
    assert.equal(b.consume('constructor').allowed, true, 'object prototype names are not limits');
    assert.equal(b.remaining, 1);
  });
});

describe('running a tool', () => {
  it('rejects arguments that are not an object with tool.invalid_arguments, without running the tool', async () => {
    let ran = false;
    const t = fakeTool('t', async () => {
      ran = true;
    });
    for (const bad of [null, undefined, 'str', 3, [1, 2], true]) {
      const err = await toolErrorOf(runToolWithTimeout(t, bad, ctx()));
      assert.equal(err.errorClass, 'tool.invalid_arguments', String(bad));
      assert.match(err.message, /must be a JSON object/);
    }
    assert.equal(ran, false);
  });

  it('validates arguments against the input schema and fills in defaults on a copy', async () => {
    const seen: Record<string, unknown>[] = [];
    const t = fakeTool('search', async (a) => (seen.push(a), 'ok'), {
      inputSchema: {
        type: 'object',
        properties: {
          query: { type: 'string', minLength: 1, maxLength: 400 },
          max_results: { type: 'integer', minimum: 1, maximum: 10, default: 5 },
          url: { type: 'string', format: 'uri' },
        },
        required: ['query'],
        additionalProperties: false,
      },
    });
    const args = { query: 'cats' };
    assert.equal(await runToolWithTimeout(t, args, ctx()), 'ok');
    assert.deepEqual(seen[0], { query: 'cats', max_results: 5 });
    assert.deepEqual(args, { query: 'cats' });

    for (const [bad, text] of [
      [{}, /query/],
      [{ query: 'x', max_results: 11 }, /max_results/],
      [{ query: 'x', max_results: '3' }, /max_results/],
      [{ query: 'x', extra: 1 }, /additional properties/],
      [{ query: 'x', url: 'not a uri' }, /url/],
    ] as const) {
      const err = await toolErrorOf(runToolWithTimeout(t, bad, ctx()));
      assert.equal(err.errorClass, 'tool.invalid_arguments');
      assert.match(err.message, text);
    }
    assert.equal(seen.length, 1);
  });

  it('a schema that does not compile is not enforced', async () => {
    const t = fakeTool('odd', async (a) => a, { inputSchema: { type: 'object', properties: { a: { type: 'no-such-type' } } } });
    assert.deepEqual(await runToolWithTimeout(t, { a: 1 }, ctx()), { a: 1 });
    assert.deepEqual(validateToolArguments(t, { a: 2 }, ctx()), { a: 2 });
  });

  it('maps a thrown error (sync or async) to tool.execution_failed and passes ToolErrors through', async () => {
    const asyncFail = fakeTool('a', async () => {
      throw new Error('disk on fire');
    });
    let err = await toolErrorOf(runToolWithTimeout(asyncFail, {}, ctx()));
    assert.equal(err.errorClass, 'tool.execution_failed');
    assert.match(err.message, /disk on fire/);

    const syncFail = fakeTool('s', (() => {
      throw new TypeError('boom');
    }) as unknown as Tool['run']);
    err = await toolErrorOf(runToolWithTimeout(syncFail, {}, ctx()));
    assert.equal(err.errorClass, 'tool.execution_failed');

    const nonError = fakeTool('n', () => Promise.reject('just a string'));
    err = await toolErrorOf(runToolWithTimeout(nonError, {}, ctx()));
    assert.equal(err.errorClass, 'tool.execution_failed');
    assert.match(err.message, /just a string/);

    const own = fakeTool('o', async () => {
      throw new ToolError('tool.not_configured', 'no backend', { hint: 1 });
    });
    err = await toolErrorOf(runToolWithTimeout(own, {}, ctx()));
    assert.equal(err.errorClass, 'tool.not_configured');
    assert.deepEqual(err.result, { hint: 1 });
    assert.deepEqual(toolErrorResult(err), { error: { error_class: 'tool.not_configured', message: 'no backend' } });
  });

  it('a result that is not JSON fails; undefined becomes null', async () => {
    const cyclic: Record<string, unknown> = {};
    cyclic.self = cyclic;
    let err = await toolErrorOf(runToolWithTimeout(fakeTool('c', async () => cyclic), {}, ctx()));
    assert.equal(err.errorClass, 'tool.execution_failed');
    err = await toolErrorOf(runToolWithTimeout(fakeTool('b', async () => 10n), {}, ctx()));
    assert.equal(err.errorClass, 'tool.execution_failed');
    assert.equal(await runToolWithTimeout(fakeTool('u', async () => undefined), {}, ctx()), null);
  });

  it('times out with tool.timeout and aborts the tool signal', async () => {
    let aborted = false;
    const slow = fakeTool(
      'slow',
      (_a, c) =>
        new Promise((resolve) => {
          c.signal.addEventListener('abort', () => {
            aborted = true;
          });
          setTimeout(() => resolve('late'), 2_000).unref();
        }),
      { timeoutMs: 30 },
    );
    const started = Date.now();
    const err = await toolErrorOf(runToolWithTimeout(slow, {}, ctx()));
    assert.equal(err.errorClass, 'tool.timeout');
    assert.match(err.message, /30 ms/);
    assert.ok(Date.now() - started < 1_000);
    assert.ok(aborted);

    const hanging = fakeTool('hang', () => new Promise(() => {}));
    const byOption = await toolErrorOf(runToolWithTimeout(hanging, {}, ctx(), { timeoutMs: 10 }));
    assert.equal(byOption.errorClass, 'tool.timeout');

    const mcp = fakeTool('mcp__x__y', () => new Promise(() => {}), { source: 'mcp', timeoutMs: 10 });
    assert.equal((await toolErrorOf(runToolWithTimeout(mcp, {}, ctx()))).errorClass, 'mcp.timeout');
  });

  it('defaults built-ins to a 30 s timeout', () => {
    assert.equal(BUILTIN_TOOL_TIMEOUT_MS, 30_000);
  });

  it('stops at once when the run is cancelled, still with a ToolError', async () => {
    const run = new AbortController();
    let toolSignal: AbortSignal | null = null;
    const hanging = fakeTool('hang', (_a, c) => {
      toolSignal = c.signal;
      return new Promise(() => {});
    });
    const p = runToolWithTimeout(hanging, {}, ctx(run.signal));
    setTimeout(() => run.abort(new Error('cancelled')), 10);
    const err = await toolErrorOf(p);
    assert.equal(err.errorClass, 'tool.execution_failed');
    assert.match(err.message, /cancelled/);
    assert.ok(toolSignal!.aborted);

    let ran = false;
    const before = await toolErrorOf(
      runToolWithTimeout(
        fakeTool('t', async () => {
          ran = true;
        }),
        {},
        ctx(run.signal),
      ),
    );
    assert.equal(before.errorClass, 'tool.execution_failed');
    assert.equal(ran, false);
  });

  it('passes the run context through to the tool', async () => {
    const t = fakeTool('who', async (_a, c) => ({ run: c.runId, org: c.orgId, user: c.userId }));
    assert.deepEqual(await runToolWithTimeout(t, {}, ctx()), { run: 'run-1', org: 'org-1', user: 'user-1' });
  });
});
